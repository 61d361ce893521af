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

from toolkit.errors import (  # re-exported: the commands import them from here
    EXIT_BAD_INPUT,
    EXIT_FAILURES,
    EXIT_LEVER_FAILED,
    EXIT_OK,
    UsageError,
)
from toolkit.sanitize import printable
from toolkit.scrub import scrub

__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILURES",
    "EXIT_LEVER_FAILED",
    "EXIT_OK",
    "FLAGS",
    "UsageError",
    "add_ledger_options",
    "add_notify_option",
    "command",
    "fail",
]


# How the command line words the fields library errors name (`ToolkitError.naming`).
FLAGS = {
    "tags": "--tag T",
    "policy_path": "--policy FILE",
    "mode": "--mode",
    "renames": "--rename OLD=NEW",
    "journal_path": "--journal FILE",
    # sync (toolkit.workflows.sync.SyncOptions)
    "listen": "--listen",
    "poll_interval": "--poll-interval",
    "max_changes_per_hour": "--max-changes-per-hour",
    "workers": "--workers",
    "replay_window": "--replay-window",
    "register_url": "--register-webhooks",
    # doctor (toolkit.workflows.doctor)
    "write_test": "--write-test",
    "confirm_write": "--yes",
    "json_path": "--json",
}

AddArguments = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Subcommand registrations: (name, add-arguments function), in the order the modules define them.
COMMANDS: list[tuple[str, AddArguments]] = []


def command(add: AddArguments) -> AddArguments:
    """Register a subcommand's `_add_<name>` function (in the order defined)."""
    COMMANDS.append((add.__name__.removeprefix("_add_"), add))
    return add


def add_notify_option(p: argparse.ArgumentParser) -> None:
    """`--notify URL` (audit, apply, batch): a Slack-compatible incoming webhook."""
    p.add_argument(
        "--notify",
        metavar="URL",
        help='post a short JSON message ({"text": ...}, Slack-compatible) to this incoming '
        "webhook on failure or when split pairs are found; env:NAME reads the URL from the "
        "environment (it is a secret)",
    )


def add_ledger_options(p: argparse.ArgumentParser) -> None:
    """`--operator` and `--reason` (apply, rollback, sync): who writes, and why, for the ledger
    (docs/operations.md)."""
    p.add_argument(
        "--operator", metavar="NAME", help="who runs it, for the ledger (default: the OS user)"
    )
    p.add_argument(
        "--reason", default="", metavar="TEXT", help="why, for the ledger: a ticket, a change"
    )


def fail(message: str, exit_code: int = EXIT_BAD_INPUT) -> int:
    """Print one `lever-tags: error:` line (scrubbed, printable) and return `exit_code`."""
    # one line, whatever the cause; no credential, no raw control character from data
    text = printable(" ".join(scrub(message).split()))
    print(f"lever-tags: error: {text}", file=sys.stderr)
    return exit_code
