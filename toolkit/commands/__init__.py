"""The `lever-tags` subcommands, one module per step, and what they share: the registry
(`command`), `UsageError` and the exit codes.

Imports go one way: `toolkit.cli` (the leaf) imports an explicit list of command modules, each
command module imports this package, and this package imports no command. A command module
imports only light modules at its top; what a command needs to run (pandas, the client, the
notebook machinery, tornado) it imports inside its `_cmd_<name>` function, so `lever-tags audit
--help` loads none of it (docs/benchmarks.md, "Start-up").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from toolkit.sanitize import printable
from toolkit.scrub import scrub

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input found by a command (a file, a value): exit 2 with this one line."""


AddArguments = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Subcommand registrations: (name, add-arguments function), in the order the modules define them.
COMMANDS: list[tuple[str, AddArguments]] = []


def command(add: AddArguments) -> AddArguments:
    """Register a subcommand's `_add_<name>` function (in the order defined)."""
    COMMANDS.append((add.__name__.removeprefix("_add_"), add))
    return add


def fail(message: str) -> int:
    """Print one `lever-tags: error:` line (scrubbed, printable) and return exit code 2."""
    # one line, whatever the cause; no credential, no raw control character from data
    text = printable(" ".join(scrub(message).split()))
    print(f"lever-tags: error: {text}", file=sys.stderr)
    return EXIT_BAD_INPUT
