"""`lever-tags report` (one notebook run) and `lever-tags batch` (a runs.yaml of runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from toolkit.cli import EXIT_FAILURES, EXIT_OK, UsageError, command
from toolkit.sanitize import printable, safe_yaml_load


def _params_file(path: str) -> dict[str, Any]:
    try:
        data = safe_yaml_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such parameters file: {path}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        raise UsageError(f"{path}: bad YAML{where}" + (f": {problem}" if problem else "")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of parameter names to values")
    return data


def _collect(args: argparse.Namespace) -> dict[str, Any]:
    """-f values first, then -p values; a name given twice with -p collects a list."""
    params: dict[str, Any] = {}
    for path in args.parameters_file or []:
        params.update(_params_file(path))
    repeated: dict[str, list[str]] = {}
    for name, value in args.parameter or []:
        repeated.setdefault(name, []).append(value)
    for name, values in repeated.items():
        params[name] = values[0] if len(values) == 1 else values
    return params


def _out_root(value: str | None) -> str | None:
    """--out-root, refused (exit 2, one line) when it is a file or lies under one."""
    from toolkit.errors import ConfigurationError
    from toolkit.reports import check_out_root

    if value:
        try:
            check_out_root(value)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
    return value


def _report_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The run's parameters, relative paths made absolute from the current folder; an input
    file that does not exist is a UsageError (exit 2) before any kernel starts."""
    from toolkit.reports import absolute_path_parameters, missing_input_files

    params = absolute_path_parameters(_collect(args), Path.cwd())
    missing = missing_input_files(params)
    if missing:
        raise UsageError("; ".join(missing))
    return params


@command
def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="run a notebook with papermill into reports/<UTC timestamp>-<name>/ (+ HTML)",
        description="Execute NOTEBOOK (a path, a name in notebooks/, or explore|audit|remediate) "
        "into a new folder with the executed notebook, an HTML report with the code hidden, and "
        "the notebook's CSV/JSON artifacts; print the folder. The Lever credential is read from "
        "the environment inside the kernel, never passed as a parameter. Relative path parameters "
        "(policy_path, snapshot_path, journal_path, output_dir) are taken from the current "
        "folder. Exit 1 when a cell fails (the partial notebook is kept); exit 2 before any "
        "kernel starts for a bad parameter or a missing input file.",
    )
    p.add_argument("notebook", metavar="NOTEBOOK")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter (VALUE is read as YAML: 10, true, [a, b]); repeat a NAME for a list",
    )
    p.add_argument(
        "-f",
        "--parameters-file",
        action="append",
        metavar="FILE",
        help="YAML mapping of parameters (-p values win)",
    )
    p.add_argument("--name", help="run name (default: the notebook's name)")
    p.add_argument("--out-root", metavar="DIR", help="where run folders go (default: reports/)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    p.add_argument("--log-output", action="store_true", help="echo the notebook's output")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from toolkit.reports import SecretLeakError, run_notebook

    params = _report_parameters(args)
    out_root = _out_root(args.out_root)
    try:
        result = run_notebook(
            args.notebook,
            params,
            out_root,
            args.name,
            execution_timeout=args.timeout,
            log_output=args.log_output,
        )
    except SecretLeakError as exc:
        raise UsageError(str(exc)) from None
    print(result.folder)
    if not result.ok:
        print(
            f"lever-tags: report {result.name} failed at {result.error_message}; "
            f"partial notebook kept: {result.executed_path}",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK


@command
def _add_batch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="run the named notebook runs of a runs.yaml; index.html + runs.csv",
        description="Run every run of RUNS (YAML: runs: [{name, notebook, parameters}], "
        "parallel_audits: N, default 1) one after another; consecutive explore/audit runs may "
        "run N at a time. Relative path parameters are taken from the folder of RUNS.yaml. "
        "A failing run does not stop the others. Exit 1 if any run failed.",
    )
    p.add_argument("runs", metavar="RUNS.yaml")
    p.add_argument("--out-root", metavar="DIR", help="where the batch folder goes (reports/)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    p.set_defaults(func=_cmd_batch)


def _cmd_batch(args: argparse.Namespace) -> int:
    from toolkit.reports import load_batch, run_batch

    spec = load_batch(args.runs)  # ConfigurationError -> exit 2, one line, before any run
    out_root = _out_root(args.out_root)

    def progress(res) -> None:
        line = f"{res.status:9} {res.name}  {res.seconds:.1f} s  {res.folder}"
        if not res.ok:
            line += f"\n          {printable(res.error_message)}"
        print(line, file=sys.stderr, flush=True)

    batch = run_batch(spec, out_root, progress=progress, execution_timeout=args.timeout)
    failed = batch.failed
    print(batch.index_html)
    if failed:
        print(
            f"lever-tags: {len(failed)} of {len(batch.results)} runs failed: "
            + ", ".join(r.name for r in failed),
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK
