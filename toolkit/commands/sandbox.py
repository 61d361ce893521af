"""`lever-tags sandbox`: the sandbox's own command line (`python -m lever_sandbox`), delegated.

The options, their checks and the serving loop are `lever_sandbox.cli`'s (declared once, from
`SandboxConfig`'s fields); this module adds the subcommand and words a bad option as every
`lever-tags` error is worded. It prints exactly two lines on stdout before serving
(``LEVER_BASE_URL=...`` and ``LEVER_API_KEY=...``).
"""

from __future__ import annotations

import argparse

from lever_sandbox import cli as sandbox_cli  # argparse and the settings only: no tornado
from toolkit.commands import UsageError, command

DEFAULT_PORT = sandbox_cli.DEFAULT_PORT


@command
def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="serve a local Lever-compatible API with synthetic data",
        description=sandbox_cli.DESCRIPTION,
    )
    sandbox_cli.add_arguments(p)
    p.set_defaults(func=_cmd_sandbox)


def _cmd_sandbox(args: argparse.Namespace) -> int:
    try:
        return sandbox_cli.serve(args)
    except sandbox_cli.SandboxUsageError as exc:
        raise UsageError(str(exc)) from None
