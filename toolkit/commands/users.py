"""`lever-tags users [--email X]`: the Lever user ids `--perform-as` takes, with names and emails.

Exit codes: 0 listed (even none: a line says so); 2 bad configuration or a refused key.
"""

from __future__ import annotations

import argparse

from toolkit.commands import EXIT_OK, command
from toolkit.sanitize import printable


@command
def _add_users(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "users",
        help="list Lever user ids (for --perform-as), with names and emails",
        description="List the account's users (GET /users): id, name, email, access role, "
        "and whether deactivated. Pass an id to apply/rollback/sync --perform-as so the changes "
        "are attributed to that user in Lever's activity feed.",
    )
    p.add_argument("--email", metavar="ADDRESS", help="only the user with this email address")
    p.set_defaults(func=_cmd_users)


def _cmd_users(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit.client import LeverClient
    from toolkit.workflows.users import list_users

    rows = list_users(LeverClient.from_env(), args.email)
    if not rows:
        print("no user" + (f" with email {printable(args.email)}" if args.email else ""))
        return EXIT_OK
    print("id\tname\temail\taccess role")
    for row in rows:
        line = "\t".join(printable(row[k]) for k in ("id", "name", "email", "access_role"))
        print(line + ("\t(deactivated)" if row["deactivated"] else ""))
    return EXIT_OK
