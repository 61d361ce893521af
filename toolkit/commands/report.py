"""`lever-tags report` (one notebook run) and `lever-tags batch` (a runs.yaml of runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.commands import EXIT_FAILURES, EXIT_OK, UsageError, add_notify_option, command
from toolkit.sanitize import printable

if TYPE_CHECKING:  # annotations only: the modules load when the command runs
    from toolkit.notebook.execute import RunResult


def _params_file(path: str) -> dict[str, Any]:
    from toolkit.files import read_yaml  # pandas, with the files helpers: when the command runs

    data = read_yaml(path, "parameters file")
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
    p.add_argument("notebook", metavar="NOTEBOOK", nargs="?")
    p.add_argument(
        "--from-executed",
        metavar="IPYNB",
        help="instead of running NOTEBOOK: a notebook executed by plain papermill, nbconvert or "
        "Airflow made private (0600) with its offline, CSP-protected HTML report beside it",
    )
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
    # imported when the command runs: `lever-tags --help` must not load papermill or pandas
    from toolkit import workflows
    from toolkit.notebook.secrets import SecretLeakError

    if args.from_executed:
        if args.notebook or args.parameter or args.parameters_file:
            raise UsageError("--from-executed takes no NOTEBOOK and no parameters")
        try:
            print(workflows.publish_executed_report(args.from_executed))
        except SecretLeakError as exc:
            raise UsageError(str(exc)) from None
        return EXIT_OK
    if not args.notebook:
        raise UsageError("report needs a NOTEBOOK (or --from-executed IPYNB)")

    try:
        result = workflows.run_report(
            args.notebook,
            _collect(args),
            base=Path.cwd(),
            out_root=args.out_root,
            name=args.name,
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
    add_notify_option(p)
    p.add_argument(
        "--fail-on-gaps",
        action="store_true",
        help="exit 1 when a run found split pairs (as the batch file's fail_on_gaps: true)",
    )
    p.set_defaults(func=_cmd_batch)


def _cmd_batch(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load papermill or pandas
    from toolkit.notify import Notifier, escape, resolve_url
    from toolkit.workflows.batch import open_batch, run_batch_file

    spec = open_batch(args.runs, args.out_root)  # exit 2, one line, before any run
    url = resolve_url(args.notify) or resolve_url(spec.notify, f"{args.runs}: notify")
    notifier = Notifier(url, f"lever-tags batch {escape(Path(args.runs).name)}")

    def progress(res: RunResult) -> None:
        line = f"{res.status:9} {res.name}  {res.seconds:.1f} s  {res.folder}"
        if not res.ok:
            line += f"\n          {printable(res.error_message)}"
        print(line, file=sys.stderr, flush=True)

    with notifier.on_error():
        run = run_batch_file(
            spec,
            args.out_root,
            fail_on_gaps=args.fail_on_gaps,
            progress=progress,
            execution_timeout=args.timeout,
        )
    print(run.batch.index_html)
    if run.problems:
        print("lever-tags: " + "; ".join(run.problems), file=sys.stderr)
        notifier.send(escape("; ".join(run.problems)) + f"; index: {escape(run.batch.index_html)}")
        return EXIT_FAILURES
    return EXIT_OK
