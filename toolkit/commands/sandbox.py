"""`lever-tags sandbox`: serve the Lever-compatible sandbox until SIGINT or SIGTERM.

Prints exactly two lines on stdout before serving (``LEVER_BASE_URL=...`` and
``LEVER_API_KEY=...``), so a shell or a parent process can read them. The key is random unless
``LEVER_SANDBOX_KEY`` is set in the environment (``LEVER_SANDBOX_RESTRICTED_KEY`` likewise for
the key without confidential access, which is not printed).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from toolkit.cli import UsageError, command

DEFAULT_PORT = 8765


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return value


@command
def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="serve a local Lever-compatible API with synthetic data",
        description="Serve a Lever-compatible API on loopback with deterministic synthetic data. "
        "Prints LEVER_BASE_URL=... and LEVER_API_KEY=... then serves until Ctrl-C / SIGTERM.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port; 0 = any free (default {DEFAULT_PORT})",
    )
    p.add_argument("--seed", type=int, default=7, help="data and fault seed (default 7)")
    p.add_argument("--contacts", type=int, default=1000, help="contacts to generate (default 1000)")
    p.add_argument(
        "--opportunities", type=int, default=None, help="generate exactly N opportunities instead"
    )
    p.add_argument("--latency-ms", type=_rate, default=0.0, help="delay per request (default 0)")
    p.add_argument("--jitter-ms", type=_rate, default=None, help="latency jitter (default 10%%)")
    p.add_argument("--rate", type=_rate, default=10.0, help="requests/s per key (default 10)")
    p.add_argument("--burst", type=int, default=20, help="token bucket size (default 20)")
    p.add_argument("--fail-rate", type=_rate, default=0.0, help="probability of 500/502/503")
    p.add_argument(
        "--drop-rate", type=_rate, default=0.0, help="probability of a dropped connection"
    )
    p.add_argument(
        "--offset-fault-rate",
        type=_rate,
        default=0.0,
        help="probability of an invalid-offset-token answer on a page after the first",
    )
    p.add_argument(
        "--spike-rate",
        type=_rate,
        default=0.0,
        help="probability of a latency spike of --spike-ms on a request",
    )
    p.add_argument(
        "--spike-ms", type=float, default=2000.0, help="extra delay of a spike (default 2000)"
    )
    p.add_argument(
        "--retry-after", action="store_true", help="send Retry-After on 429 (Lever does not say)"
    )
    p.add_argument(
        "--offset-error-status",
        type=int,
        choices=(200, 400),
        default=400,
        help="HTTP status of the invalid-offset-token answer (default 400)",
    )
    modes = p.add_argument_group(
        "Lever behaviours that are not documented (defaults: what the toolkit is built against; "
        "see docs/lever-fidelity.md)"
    )
    modes.add_argument(
        "--perform-as-status",
        type=int,
        choices=(400, 404),
        default=400,
        help="answer to a write whose perform_as user does not exist (default 400)",
    )
    modes.add_argument(
        "--no-updated-at-bump",
        action="store_true",
        help="tag writes leave updatedAt as it was",
    )
    modes.add_argument(
        "--confidential-denied",
        choices=("403", "filter"),
        default="403",
        help="a key without confidential access asking for it: 403 (default) or silently filtered",
    )
    modes.add_argument(
        "--omit-next",
        choices=("never", "once", "always"),
        default="never",
        help="answer hasNext: true without next on the first page of a listing (once each, or "
        "always)",
    )
    modes.add_argument(
        "--access-token-ttl",
        type=_rate,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime of the OAuth access token (default 3600, as Lever's)",
    )
    modes.add_argument(
        "--access-token-requests",
        type=int,
        default=0,
        metavar="N",
        help="the OAuth access token expires after N requests (default 0: by time only); "
        "POST /_sandbox/oauth/token (with the API key) issues a new one",
    )
    modes.add_argument(
        "--deleted-shape",
        choices=("minimal", "opportunity", "id"),
        default="minimal",
        help="items of GET /opportunities/deleted: {id, deletedAt} (default), the whole "
        "opportunity, or {id}",
    )
    p.add_argument(
        "--created-profile",
        default="uniform",
        help="how createdAt spreads: uniform (even), recent (most in the last year), bulk (40%% "
        "on one import day), sparse (two short hiring bursts years apart); default uniform",
    )
    p.add_argument(
        "--listing-order",
        default="created",
        help="the order opportunities are listed in (Lever's is undocumented): created, "
        "newest (createdAt descending), updated, updated-desc (by updatedAt) or shuffled; "
        "default created",
    )
    p.add_argument("--state", metavar="FILE", default=None, help="load/save the data in FILE")
    p.add_argument(
        "--hostile",
        action="store_true",
        help="plant hostile tags, names and emails (script, formulas, mathtext, escapes) on "
        "some opportunities of several contacts: for testing reports and CSVs",
    )
    p.set_defaults(func=_cmd_sandbox)


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535 (got {args.port})")
    if args.contacts < 0:
        raise UsageError(f"--contacts must be >= 0 (got {args.contacts})")
    if args.opportunities is not None and args.opportunities < 0:
        raise UsageError(f"--opportunities must be >= 0 (got {args.opportunities})")
    if args.latency_ms < 0 or (args.jitter_ms is not None and args.jitter_ms < 0):
        raise UsageError("--latency-ms and --jitter-ms must be >= 0")
    if args.rate <= 0:
        raise UsageError(f"--rate must be > 0 (got {args.rate})")
    if args.burst < 1:
        raise UsageError(f"--burst must be >= 1 (got {args.burst})")
    if args.access_token_ttl <= 0 or args.access_token_requests < 0:
        raise UsageError("--access-token-ttl must be > 0 and --access-token-requests >= 0")
    if args.spike_ms < 0:
        raise UsageError(f"--spike-ms must be >= 0 (got {args.spike_ms})")
    for name in ("fail_rate", "drop_rate", "offset_fault_rate", "spike_rate"):
        value = getattr(args, name)
        if not 0 <= value <= 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be between 0 and 1 (got {value})")
    # imported here, not at the top: other commands must not load tornado
    from lever_sandbox.data import CREATED_PROFILES
    from lever_sandbox.state import LISTING_ORDERS

    if args.created_profile not in CREATED_PROFILES:
        raise UsageError(
            f"--created-profile must be one of {', '.join(CREATED_PROFILES)} "
            f"(got {args.created_profile!r})"
        )
    if args.listing_order not in LISTING_ORDERS:
        raise UsageError(
            f"--listing-order must be one of {', '.join(LISTING_ORDERS)} "
            f"(got {args.listing_order!r})"
        )
    if args.state and os.path.isdir(args.state):
        raise UsageError(f"--state must be a file, not a directory: {args.state}")


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from lever_sandbox import Sandbox  # tornado only when this command runs

    _check(args)
    try:
        dataset = None
        if args.hostile and not (args.state and os.path.exists(args.state)):
            from lever_sandbox.data import hostile_dataset  # the sandbox only when it runs

            dataset = hostile_dataset(args.seed, args.contacts, args.opportunities)
        sb = Sandbox(
            dataset=dataset,
            seed=args.seed,
            contacts=args.contacts,
            opportunities=args.opportunities,
            host=args.host,
            port=args.port,
            api_key=os.environ.get("LEVER_SANDBOX_KEY") or None,
            restricted_api_key=os.environ.get("LEVER_SANDBOX_RESTRICTED_KEY") or None,
            state_file=args.state,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            rate=args.rate,
            burst=args.burst,
            fail_rate=args.fail_rate,
            drop_rate=args.drop_rate,
            offset_fault_rate=args.offset_fault_rate,
            retry_after=args.retry_after,
            offset_error_status=args.offset_error_status,
            spike_rate=args.spike_rate,
            spike_ms=args.spike_ms,
            access_token=os.environ.get("LEVER_SANDBOX_ACCESS_TOKEN") or None,
            perform_as_status=args.perform_as_status,
            tag_writes_bump_updated_at=not args.no_updated_at_bump,
            confidential_denied=args.confidential_denied,
            omit_next=args.omit_next,
            access_token_ttl_s=args.access_token_ttl,
            access_token_max_requests=args.access_token_requests,
            deleted_shape=args.deleted_shape,
            created_profile=args.created_profile,
            listing_order=args.listing_order,
        )
        sb.start()
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"LEVER_BASE_URL={sb.base_url}", flush=True)
        print(f"LEVER_API_KEY={sb.api_key}", flush=True)
        print(
            f"lever-tags sandbox: {len(sb.engine.state)} opportunities at {sb.base_url}; "
            "OAuth (Bearer only): LEVER_ACCESS_TOKEN=" + sb.access_token + "; "
            "stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sb.stop()
    return 0
