"""The `lever-tags` command: the leaf of the import graph.

It imports the explicit list of command modules below (each registers itself with
`toolkit.commands.command`); nothing imports this module but the `lever-tags` entry point and
`python -m toolkit`. Exit codes (docs/architecture.md): 0 success; 1 finished but some changes
failed / rows do not hold / gaps found with --fail-on-gaps; 2 bad input, bad configuration,
unreachable or non-Lever URL, authentication failure; 3 Lever kept failing (5xx, 429, connection)
after the retries. 2 and 3 always with one line on stderr and no traceback; every error class
declares its code (toolkit/errors.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from toolkit import __version__
from toolkit.chars import EscapingFormatter

# The registry and the explicit list of commands: each command module registers itself on
# import, in this order. A new command: a module in toolkit/commands/ with `@command`, added here.
from toolkit.commands import (  # noqa: F401  (the command modules: registration)
    COMMANDS,
    EXIT_BAD_INPUT,
    EXIT_FAILURES,
    EXIT_OK,
    FLAGS,
    UsageError,
    audit,
    command,
    diff,
    doctor,
    fail,
    ledger,
    policy,
    remediate,
    report,
    sandbox,
    sync,
    users,
)
from toolkit.errors import EXIT_LEVER_FAILED, ToolkitError

# Re-exported: the names callers imported from here before the registry moved to toolkit.commands.
__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURES",
    "EXIT_OK",
    "UsageError",
    "build_parser",
    "command",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lever-tags",
        description="Audit and repair Lever tags split across a contact's opportunities. "
        "Credentials come from LEVER_API_KEY or LEVER_ACCESS_TOKEN; the API root from "
        "LEVER_BASE_URL.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="an account's settings from the profiles file (LEVER_PROFILES; docs/operations.md)",
    )
    parser.add_argument("--version", action="version", version=f"lever-tags {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for _name, add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    handler = logging.StreamHandler()  # log lines escaped: data from Lever is untrusted
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if args.verbose else logging.WARNING
    logging.basicConfig(level=level, handlers=[handler])
    try:
        if args.profile:
            # imported when asked for: the profiles file's reader loads pandas (toolkit.files)
            from toolkit.profiles import activate_profile

            activate_profile(args)
        return int(args.func(args) or 0)
    except ToolkitError as exc:  # each class declares its exit code (toolkit/errors.py)
        if exc.exit_code == EXIT_LEVER_FAILED:
            message = f"{exc} (Lever kept failing after the retries; try again later)"
            return fail(message, EXIT_LEVER_FAILED)
        return fail(exc.worded(FLAGS), exc.exit_code)  # fields worded as this command's flags
    except KeyboardInterrupt:
        print("lever-tags: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover  (python -m toolkit.cli)
    sys.exit(main())
