"""The `lever-tags` command.

Each subcommand is a pair: `_add_<name>(subparsers)` registers its arguments and
`_cmd_<name>(args) -> int` runs it by calling toolkit functions. Exit codes (docs/architecture.md):
0 success; 1 finished but some changes failed / rows do not hold / gaps found with
--fail-on-gaps; 2 bad input, bad configuration, unreachable or non-Lever URL, authentication
failure, always with one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from toolkit.chars import EscapingFormatter
from toolkit.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    LeverError,
    UnexpectedResponseError,
)
from toolkit.profiles import activate_profile
from toolkit.sanitize import printable
from toolkit.scrub import scrub

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input found by a command (a file, a value): exit 2 with this one line."""


def _fail(message: str) -> int:
    # one line, whatever the cause; no credential, no raw control character from data
    text = printable(" ".join(scrub(message).split()))
    print(f"lever-tags: error: {text}", file=sys.stderr)
    return EXIT_BAD_INPUT


# Subcommand registrations: (name, add-arguments function). Each module's command adds itself here.
_COMMANDS: list[tuple[str, Callable[[argparse._SubParsersAction], None]]] = []


def command(add: Callable[[argparse._SubParsersAction], None]):
    """Register a subcommand's `_add_<name>` function (in the order defined)."""
    _COMMANDS.append((add.__name__.removeprefix("_add_"), add))
    return add


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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for _name, add in _COMMANDS:
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
            activate_profile(args)
        return int(args.func(args) or 0)
    except (ConfigurationError, UsageError) as exc:
        return _fail(str(exc))
    except (AuthenticationError, ConnectionFailedError, UnexpectedResponseError) as exc:
        return _fail(str(exc))
    except LeverError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("lever-tags: interrupted", file=sys.stderr)
        return 130


# Commands register themselves on import; keep these imports at the bottom.
from toolkit import commands as _commands  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover  (python -m toolkit.cli)
    from toolkit.cli import main as _main  # the registered module, not this __main__ copy

    sys.exit(_main())
