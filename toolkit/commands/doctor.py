"""`lever-tags doctor`: the compatibility table of the configured Lever account.

Exit codes: 0 every behaviour the toolkit relies on holds; 1 some differ (listed); 2 bad
configuration (no key, a refused key, a wrong LEVER_BASE_URL) or a write test without --yes.
"""

from __future__ import annotations

import argparse
import sys

from toolkit.commands import EXIT_FAILURES, EXIT_OK, command

SEND_US = (
    "Some rows differ from what the toolkit was built against. Please send us the output of "
    "`lever-tags doctor --json doctor.json` (the file holds no key and no personal data: "
    "statuses, counts, header names and Lever's error messages), the host (api.lever.co, "
    "api.eu.lever.co or api.sandbox.lever.co) and the toolkit version."
)


@command
def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check every Lever behaviour the toolkit relies on, against your account",
        description="Read-only checks (a few dozen requests) of the Lever behaviours the "
        "toolkit relies on, printed as a compatibility table. Exit 0 when all hold, 1 when "
        "some differ, 2 for bad configuration.",
    )
    p.add_argument(
        "--write-test",
        metavar="OPPORTUNITY_ID",
        help="also add and remove a throwaway tag on this one opportunity (journaled) to see "
        "whether a tag write moves updatedAt and what a wrong perform_as answers; needs --yes",
    )
    p.add_argument("--yes", action="store_true", help="allow the --write-test writes")
    p.add_argument("--perform-as", metavar="USER_ID", help="user the write test is attributed to")
    p.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the write test's journals go (default: a new temporary folder)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON (to send us)")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    from toolkit.workflows.doctor import check_lever

    report = check_lever(
        write_test=args.write_test,
        confirm_write=args.yes,
        json_path=args.json,
        journal_dir=args.journal_dir,
        perform_as=args.perform_as,
    )
    print(f"lever-tags doctor: {report.host} ({report.requests} requests)")
    print(report.table())
    if report.differences:
        names = ", ".join(c.name for c in report.differences)
        print(f"\n{len(report.differences)} behaviour(s) differ: {names}", file=sys.stderr)
        print(SEND_US, file=sys.stderr)
        return EXIT_FAILURES
    print("\nevery behaviour the toolkit relies on holds")
    return EXIT_OK
