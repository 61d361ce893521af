"""The sandbox's command line: `python -m lever_sandbox` (also `lever-sandbox`, and `lever-tags
sandbox`, which delegates here). Serves until SIGINT or SIGTERM.

Prints exactly two lines on stdout before serving (``LEVER_BASE_URL=...`` and
``LEVER_API_KEY=...``), so a shell or a parent process can read them
(`lever_sandbox.process.SandboxProcess` does). The key is random unless ``LEVER_SANDBOX_KEY`` is
set in the environment (``LEVER_SANDBOX_RESTRICTED_KEY`` likewise for the key without
confidential access, which is not printed).

The run-time options are `SandboxConfig`'s fields (`lever_sandbox.config`): their flags, help,
choices and bounds are declared there once, and checked by `SandboxConfig.validated`.
This module imports no tornado until it serves, so another program's parser can include it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from lever_sandbox.config import (
    CONFIG_TYPES,
    SandboxConfig,
    SandboxConfigError,
    coerce_config,
    option_flag,
)
from lever_sandbox.data import CREATED_PROFILES

DEFAULT_PORT = 8765
MODES_GROUP = (
    "Lever behaviours that are not documented (defaults: what the toolkit is built against; "
    "see docs/lever-fidelity.md)"
)


class SandboxUsageError(Exception):
    """A bad option value: one line, exit code 2."""


def _number(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _metavar(name: str, meta: Any) -> str:
    return "P" if meta["maximum"] == 1 else name.split("_")[-1].upper()


def _add_setting(parser: argparse._ActionsContainer, f: Any) -> None:
    meta, kind = f.metadata, CONFIG_TYPES[f.name]
    flag = option_flag(f.name)
    if kind is bool:
        action = "store_false" if f.default else "store_true"
        parser.add_argument(flag, dest=f.name, action=action, help=meta["help"])
        return
    choices = meta["choices"]
    parser.add_argument(
        flag,
        dest=f.name,
        type=_number(kind) if kind in (int, float) else str,
        default=f.default,
        metavar=meta["metavar"] or (None if choices else _metavar(f.name, meta)),
        choices=choices,
        help=meta["help"],
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options on `parser` (its own, or `lever-tags sandbox`'s)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port; 0 = any free (default {DEFAULT_PORT})",
    )
    parser.add_argument("--seed", type=int, default=7, help="data and fault seed (default 7)")
    parser.add_argument(
        "--contacts", type=int, default=1000, help="contacts to generate (default 1000)"
    )
    parser.add_argument(
        "--opportunities", type=int, default=None, help="generate exactly N opportunities instead"
    )
    parser.add_argument(
        "--created-profile",
        default="uniform",
        choices=CREATED_PROFILES,
        help="how createdAt spreads: uniform (even), recent (most in the last year), bulk (40%% "
        "on one import day), sparse (two short hiring bursts years apart); default uniform",
    )
    parser.add_argument("--state", metavar="FILE", default=None, help="load/save the data in FILE")
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="plant hostile tags, names and emails (script, formulas, mathtext, escapes) on "
        "some opportunities of several contacts: for testing reports and CSVs",
    )
    parser.add_argument(
        "--webhook-retry-scale",
        type=_number(float),
        default=1.0,
        metavar="F",
        help="multiply the delays of the five webhook retries by F (default 1; tests: 0.001)",
    )
    parser.add_argument(
        "--webhooks-without-id",
        action="store_true",
        help="send webhook deliveries without id, as Lever's documented example delivery",
    )
    modes = parser.add_argument_group(MODES_GROUP)
    for f in fields(SandboxConfig):
        _add_setting(modes if f.metadata["group"] else parser, f)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The `SandboxConfig` fields of parsed arguments, checked; `SandboxUsageError` names the flag.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_arguments(parser)
        >>> settings(parser.parse_args(["--rate", "5"]))["rate"]
        5.0
        >>> settings(parser.parse_args(["--fail-rate", "2"]))
        Traceback (most recent call last):
        ...
        lever_sandbox.cli.SandboxUsageError: --fail-rate must be between 0 and 1 (got 2)
    """
    config = {f.name: getattr(args, f.name) for f in fields(SandboxConfig)}
    try:
        SandboxConfig(**coerce_config(config)).validated()
    except SandboxConfigError as exc:
        raise SandboxUsageError(f"{option_flag(exc.field)} {exc.problem}") from None
    return config


def check(args: argparse.Namespace) -> dict[str, Any]:
    """Every option checked, before anything is generated or bound; the `Sandbox` arguments."""
    if not 0 <= args.port <= 65535:
        raise SandboxUsageError(f"--port must be between 0 and 65535 (got {args.port})")
    if args.contacts < 0:
        raise SandboxUsageError(f"--contacts must be >= 0 (got {args.contacts})")
    if args.opportunities is not None and args.opportunities < 0:
        raise SandboxUsageError(f"--opportunities must be >= 0 (got {args.opportunities})")
    if args.state and os.path.isdir(args.state):
        raise SandboxUsageError(f"--state must be a file, not a directory: {args.state}")
    if not 0 < args.webhook_retry_scale <= 1000:  # also refuses nan
        raise SandboxUsageError(
            f"--webhook-retry-scale must be > 0 and <= 1000 (got {args.webhook_retry_scale})"
        )
    return settings(args)


def serve(args: argparse.Namespace) -> int:
    """Check the options, start the sandbox, print the two lines, serve until a signal."""
    config = check(args)
    # imported here: building the parser (lever-tags --help) must not load tornado
    from lever_sandbox.data import hostile_dataset
    from lever_sandbox.server import Sandbox
    from lever_sandbox.webhooks import hub_for

    try:
        dataset = None
        if args.hostile and not (args.state and os.path.exists(args.state)):
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
            access_token=os.environ.get("LEVER_SANDBOX_ACCESS_TOKEN") or None,
            state_file=args.state,
            created_profile=args.created_profile,
            **config,
        )
        hub_for(sb.engine).settings.update(
            sendIds=not args.webhooks_without_id, retryScale=args.webhook_retry_scale
        )
        sb.start()
    except OSError as exc:
        raise SandboxUsageError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise SandboxUsageError(str(exc)) from None

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"LEVER_BASE_URL={sb.base_url}", flush=True)
        print(f"LEVER_API_KEY={sb.api_key}", flush=True)
        oauth = " ".join(f"{k}={v}" for k, v in sb.oauth_env().items() if k != "LEVER_BASE_URL")
        print(
            f"lever-sandbox: {len(sb.engine.state)} opportunities at {sb.base_url}; "
            "OAuth (Bearer only): LEVER_ACCESS_TOKEN=" + sb.access_token + "; "
            f"OAuth with refresh: {oauth}; stop with Ctrl-C",
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


DESCRIPTION = (
    "Serve a Lever-compatible API on loopback with deterministic synthetic data. Prints "
    "LEVER_BASE_URL=... and LEVER_API_KEY=... then serves until Ctrl-C / SIGTERM."
)


def build_parser(prog: str = "lever-sandbox") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lever_sandbox`: exit 0 after a signal, 2 with one line for a bad option."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    try:
        return serve(args)
    except SandboxUsageError as exc:
        print(f"lever-sandbox: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["SandboxUsageError", "add_arguments", "build_parser", "check", "main", "serve"]
