"""`lever-tags sync`: the long-running consistency service (argument parsing and printing only).

Dry run unless --yes. Runs until SIGTERM/SIGINT, then finishes the write in flight, keeps the rest
queued in the journal and exits 0. Exit 2: bad input or configuration (no contact_level tags,
--listen without any webhook token, a token under 16 characters, an unknown --perform-as user, a
journal held by another process or belonging to an apply run), or Lever refused the credential.
``--register-webhooks URL`` makes Lever's webhooks and keeps their tokens in the journal;
``--unregister-webhooks`` deletes them and exits.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from toolkit.commands import EXIT_BAD_INPUT, EXIT_OK, add_ledger_options, command
from toolkit.errors import AuthenticationError

DEFAULT_JOURNAL = "lever-sync.sqlite"


@command
def _add_sync(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sync",
        help="keep contact-level tags consistent: Lever webhooks and polling (a service)",
        description="Check a contact whenever Lever reports one of its opportunities (webhooks "
        "at POST /webhooks/lever, each signed with its own token: LEVER_WEBHOOK_SECRET holds "
        "one token or EVENT=TOKEN pairs, or --register-webhooks keeps them) or polling finds it "
        "updated, and put the policy's contact_level tags on all its opportunities. GET /healthz "
        "and GET /metrics (Prometheus) with --listen. Dry run unless --yes. Stops on SIGTERM or "
        "SIGINT after the write in flight; what is left stays queued in the journal.",
    )
    p.add_argument("--policy", required=True, metavar="FILE", help="policy YAML (contact_level)")
    p.add_argument("--listen", metavar="HOST:PORT", help="serve webhooks, /healthz and /metrics")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="seconds between polls (default 300; 0 = webhooks only)",
    )
    p.add_argument(
        "--journal", metavar="FILE", help=f"default {DEFAULT_JOURNAL} (or the --profile's)"
    )
    p.add_argument("--perform-as", metavar="USER_ID", help="Lever user the writes are made as")
    p.add_argument(
        "--max-changes-per-hour",
        type=int,
        default=500,
        metavar="N",
        help="pause writing past N tag changes in any hour (default 500)",
    )
    p.add_argument("--workers", type=int, default=4, help="contacts checked at once")
    p.add_argument(
        "--replay-window",
        type=float,
        default=None,
        metavar="SECONDS",
        help="refuse webhooks whose triggeredAt is older than this (default: any age; Lever "
        "retries for hours and reruns for two weeks; a signed token is accepted once anyway)",
    )
    p.add_argument(
        "--register-webhooks",
        metavar="URL",
        help="create Lever's webhooks to this HTTPS URL (e.g. https://HOST/webhooks/lever) "
        "through Lever's API and keep their tokens in the journal; needs --listen",
    )
    p.add_argument(
        "--unregister-webhooks",
        action="store_true",
        help="delete the webhooks --register-webhooks made, then exit",
    )
    p.add_argument("--yes", action="store_true", help="write (without it: a dry run)")
    add_ledger_options(p)
    p.set_defaults(func=_cmd_sync)


def _unregister(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load the client or tornado
    from toolkit.workflows.sync import unregister_sync_webhooks

    done = unregister_sync_webhooks(args.journal)
    for row in done:
        print(f"deleted the {row['event']} webhook {row['webhook_id']}")
    print(f"lever-tags sync: {len(done)} webhooks deleted; their tokens are gone from the journal")
    return EXIT_OK


def _cmd_sync(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load tornado or the client
    from toolkit.workflows.sync import SyncOptions, start_sync

    args.journal = args.journal or DEFAULT_JOURNAL
    if args.unregister_webhooks:
        return _unregister(args)
    options = SyncOptions(
        policy_path=args.policy,
        journal_path=args.journal,
        listen=args.listen,
        poll_interval=args.poll_interval,
        perform_as=args.perform_as,
        max_changes_per_hour=args.max_changes_per_hour,
        workers=args.workers,
        replay_window=args.replay_window,
        register_url=args.register_webhooks,
        write=args.yes,
        operator=args.operator,
        reason=args.reason,
    )
    options.check()  # bad options: one line, before the policy is read or Lever is asked
    logging.getLogger("toolkit.sync").setLevel(logging.INFO)
    run = start_sync(options)
    service = run.service
    previous = {
        sig: signal.signal(sig, lambda *_: service.request_stop())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    mode = "writing (--yes)" if args.yes else "dry run: nothing is written (give --yes to write)"
    print(f"lever-tags sync: {mode}; journal {args.journal}", flush=True)
    if service.url:
        print(f"listening on {service.url} (POST /webhooks/lever, GET /healthz, GET /metrics)")
    if args.register_webhooks:
        print(
            f"Lever webhooks to {args.register_webhooks}: {', '.join(run.registered)}; their "
            "tokens are kept in the journal (a Super Admin may need to switch the events on in "
            "Lever's webhook settings)"
        )
    if args.poll_interval > 0:
        print(f"polling every {args.poll_interval:g} s")
    sys.stdout.flush()
    try:
        while not service.wait(1.0):
            pass
    finally:
        run.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if isinstance(service.fatal, AuthenticationError):
        print(f"lever-tags: error: {service.fatal}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("lever-tags sync: stopped; queued events are kept in the journal", flush=True)
    return EXIT_OK
