"""`lever-tags sync`: the long-running consistency service (argument parsing and printing only).

Dry run unless --yes. Runs until SIGTERM/SIGINT, then finishes the write in flight, keeps the rest
queued in the journal and exits 0. Exit 2: bad input or configuration (no contact_level tags,
--listen without LEVER_WEBHOOK_SECRET, a journal held by another process or belonging to an
apply run), or Lever refused the credential.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from toolkit.commands import EXIT_BAD_INPUT, EXIT_OK, UsageError, command
from toolkit.errors import AuthenticationError

DEFAULT_JOURNAL = "lever-sync.sqlite"


def _listen(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen takes HOST:PORT, e.g. 127.0.0.1:8080 (got {value!r})")
    return host, int(port)


@command
def _add_sync(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sync",
        help="keep contact-level tags consistent: Lever webhooks and polling (a service)",
        description="Check a contact whenever Lever reports one of its opportunities (webhooks "
        "at POST /webhooks/lever, signed with LEVER_WEBHOOK_SECRET) or polling finds it "
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
        "--journal", default=DEFAULT_JOURNAL, metavar="FILE", help=f"default {DEFAULT_JOURNAL}"
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
        default=300.0,
        metavar="SECONDS",
        help="refuse webhooks whose triggeredAt is older than this (default 300)",
    )
    p.add_argument("--yes", action="store_true", help="write (without it: a dry run)")
    p.set_defaults(func=_cmd_sync)


def _cmd_sync(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load tornado or the client
    from toolkit.client import LeverClient
    from toolkit.policy import load_policy
    from toolkit.sync.service import SyncService
    from toolkit.sync.webhook import SECRET_ENV

    listen = _listen(args.listen)
    if args.poll_interval < 0 or (listen is None and args.poll_interval == 0):
        raise UsageError("--poll-interval must be > 0 (0 is allowed only with --listen)")
    if args.max_changes_per_hour < 1:
        raise UsageError("--max-changes-per-hour must be at least 1")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.replay_window <= 0:
        raise UsageError("--replay-window must be > 0 seconds")
    policy = load_policy(args.policy)
    if not policy.contact_level:
        raise UsageError(f"{args.policy}: no contact_level tags: there is nothing to sync")
    secret = (os.environ.get(SECRET_ENV) or "").strip() or None
    if listen is not None and secret is None:
        raise UsageError(
            f"--listen needs the webhook signing token in {SECRET_ENV} (from Lever's webhook "
            "settings); it is read from the environment only"
        )
    logging.getLogger("toolkit.sync").setLevel(logging.INFO)
    client = LeverClient.from_env()
    service = SyncService(
        client,
        policy,
        args.journal,
        dry_run=not args.yes,
        perform_as=args.perform_as,
        listen=listen,
        secret=secret,
        poll_interval=args.poll_interval,
        max_changes_per_hour=args.max_changes_per_hour,
        workers=args.workers,
        replay_window=args.replay_window,
    )
    try:
        service.start()
    except OSError as exc:  # the port is taken, the address is not this machine's
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    previous = {
        sig: signal.signal(sig, lambda *_: service.request_stop())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    mode = "writing (--yes)" if args.yes else "dry run: nothing is written (give --yes to write)"
    print(f"lever-tags sync: {mode}; journal {args.journal}", flush=True)
    if service.url:
        print(f"listening on {service.url} (POST /webhooks/lever, GET /healthz, GET /metrics)")
    if args.poll_interval > 0:
        print(f"polling every {args.poll_interval:g} s")
    sys.stdout.flush()
    try:
        while not service.wait(1.0):
            pass
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if isinstance(service.fatal, AuthenticationError):
        print(f"lever-tags: error: {service.fatal}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("lever-tags sync: stopped; queued events are kept in the journal", flush=True)
    return EXIT_OK
