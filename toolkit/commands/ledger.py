"""`lever-tags ledger export` and `lever-tags ledger verify`: the ledger of every tag write.

Exit codes: 0 done (verify: every row chains); 1 verify found a row that does not chain (named);
2 bad input (no ledger, a bad date).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.commands import EXIT_FAILURES, EXIT_OK, UsageError, command
from toolkit.sanitize import printable

if TYPE_CHECKING:  # annotations only: the ledger loads when the command runs
    from toolkit.ledger.store import Ledger

SHOWN = ["seq", "at", "source", "operator", "op", "opportunity_id", "tags", "outcome"]


def _since(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return (datetime if "T" in value else date).fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(
            f"--since {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None


@command
def _add_ledger(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ledger",
        help="the ledger of every tag write (apply, rollback, sync): export, verify",
        description="The ledger is LEVER_LEDGER (default: ledger.sqlite in the reports folder).",
    )
    actions = p.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="rows since a date, as CSV")
    export.add_argument("--since", metavar="DATE", help="YYYY-MM-DD (UTC) or an ISO time")
    export.add_argument("--csv", metavar="FILE", help="write them here (default: a table)")
    export.set_defaults(func=_cmd_export)
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 naming a bad row")
    verify.set_defaults(func=_cmd_verify)
    for action in (export, verify):
        action.add_argument("--ledger", metavar="FILE", help="the ledger (default: LEVER_LEDGER)")


def _open(args: argparse.Namespace) -> Ledger:
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit.ledger.store import Ledger, default_ledger_path

    return Ledger(Path(args.ledger) if args.ledger else default_ledger_path(), create=False)


def _cmd_export(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit.files import write_csv_atomic

    since = _since(args.since)
    with _open(args) as ledger:
        frame = ledger.frame(since)
    if args.csv:
        write_csv_atomic(args.csv, frame)  # formula-safe: tags come from Lever
        print(f"{args.csv}: {len(frame)} rows" + (f" since {since}" if since else ""))
        return EXIT_OK
    for row in frame[SHOWN].itertuples(index=False):
        print("  ".join(printable(str(v)) for v in row))
    print(f"{len(frame)} rows" + (f" since {since}" if since else ""), file=sys.stderr)
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        count, broken = ledger.verify()
        head = ledger.head()
    if broken is not None:
        print(f"ledger {ledger.path}: row {broken.seq} does not chain: {broken.why}")
        return EXIT_FAILURES
    print(f"ledger {ledger.path}: all {count} rows chain; head {head}")
    return EXIT_OK
