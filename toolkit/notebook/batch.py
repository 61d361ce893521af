"""A batch (`runs.yaml`): named notebook runs one after another; consecutive read-only runs may
run side by side, `parallel_audits` at a time. A failing run does not stop the others;
`index.html` and `runs.csv` list every run with its status and links."""

from __future__ import annotations

import html
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from toolkit import config
from toolkit.csvout import render_row
from toolkit.errors import ConfigurationError
from toolkit.files import read_yaml
from toolkit.notebook import execute
from toolkit.notebook.batch_index import (
    batch_history,
    number_cells,
    run_numbers,
    series,
    trend_html,
)
from toolkit.notebook.execute import (
    FAILED,
    READ_ONLY_NOTEBOOKS,
    REPORT_CSP,
    RunResult,
    unique_folder,
)
from toolkit.notebook.params import (
    resolve_notebook,
    run_parameters,
    utc_stamp,
    validate_run_parameters,
)
from toolkit.profiles import Profile, get_profile, profile_environment
from toolkit.sanitize import create_private, csv_cell, private_dir, short_repr
from toolkit.snapshot.store import SNAPSHOT_IN_FOLDER, meta_path
from toolkit.specs import BATCH, check


@dataclass
class RunSpec:
    name: str
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: Profile | None = None  # the account it runs against (`toolkit.profiles`)

    @property
    def read_only(self) -> bool:
        return self.notebook.stem in READ_ONLY_NOTEBOOKS

    @property
    def side_by_side(self) -> bool:
        """May run beside others: read-only, and not switching the environment to a profile."""
        return self.read_only and self.profile is None


@dataclass
class BatchSpec:
    runs: list[RunSpec]
    parallel_audits: int = 1
    source: Path | None = None
    fail_on_gaps: bool = False  # a run that found split pairs counts as a failure
    notify: str | None = None  # incoming-webhook URL or env:NAME (`toolkit.notify`)


@dataclass
class BatchResult:
    folder: Path
    results: list[RunResult]
    index_html: Path
    runs_csv: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    def with_gaps(self) -> list[tuple[RunResult, int]]:
        """Runs that found split pairs that count (a policy's contact-level ones when the run
        had a policy, else all), with their number."""
        found = []
        for r in self.results:
            numbers = run_numbers(r.folder)
            gaps = numbers.get("contact_level_split_pairs")
            if gaps in ("", None):
                gaps = numbers.get("split_pairs")
            if isinstance(gaps, int) and gaps > 0:
                found.append((r, gaps))
        return found


_BATCH_KEYS = {"runs", "parallel_audits", "fail_on_gaps", "notify"}


_RUN_KEYS = {"name", "notebook", "parameters", "profile"}


def load_batch(path: str | os.PathLike) -> BatchSpec:
    """Read and check a batch file; any problem is one ConfigurationError line.

    Relative path parameters are taken from the batch file's folder and made absolute; a
    missing input file (`policy_path`, `snapshot_path`) is an error here, before any run.

    Format::

        parallel_audits: 1          # optional, default 1 (see docs/usage.md: one key, one limit)
        fail_on_gaps: true          # optional: a run that finds split pairs fails the batch
        notify: env:SLACK_WEBHOOK   # optional: post failures there (docs/operations.md)
        runs:
          - name: audit-all
            notebook: 02-audit-report.ipynb
            parameters: {include_archived: true}
    """
    path = Path(path)
    folder = Path(os.path.abspath(path)).parent
    data = read_yaml(path, "batch file")
    check(data, BATCH, path.name)  # the declarative spec: one line naming the key and the fix
    parallel = data.get("parallel_audits", 1)
    runs = data["runs"]
    specs: list[RunSpec] = []
    seen: set[str] = set()
    for i, run in enumerate(runs, 1):
        where = f"{path.name}: run {i}"
        name, notebook = run["name"], run["notebook"]
        if name in seen:
            raise ConfigurationError(f"{where}: duplicate run name {short_repr(name)}")
        seen.add(name)
        params = run.get("parameters") or {}
        try:
            nb = resolve_notebook(notebook)
            params = validate_run_parameters(nb, params)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where} ({name}): {exc}") from None
        try:
            params = run_parameters(params, folder)
            profile = get_profile(run["profile"]) if run.get("profile") else None
            if profile is not None:
                profile.environment()  # its variables are set: checked before any run
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where} ({name}): {exc}") from None
        specs.append(RunSpec(name=name, notebook=nb, parameters=params, profile=profile))
    return BatchSpec(
        runs=specs,
        parallel_audits=parallel,
        source=path,
        fail_on_gaps=bool(data.get("fail_on_gaps", False)),
        notify=data.get("notify") or None,
    )


def _groups(runs: list[RunSpec], parallel: int) -> list[list[RunSpec]]:
    """Consecutive read-only runs form one group (run side by side); any other run is alone."""
    groups: list[list[RunSpec]] = []
    for run in runs:
        if parallel > 1 and run.side_by_side and groups and groups[-1][0].side_by_side:
            groups[-1].append(run)
        else:
            groups.append([run])
    return groups


def run_batch(
    batch: BatchSpec | str | os.PathLike,
    out_root: str | os.PathLike | None = None,
    *,
    progress: Any = None,
    execution_timeout: int | None = 900,
) -> BatchResult:
    """Run every run of a batch into `out_root/<timestamp>-batch-<file stem>/<timestamp>-<name>/`.

    Runs go one after another in file order; consecutive read-only runs (explore, audit) run up to
    `parallel_audits` at a time. A failing run is recorded and the batch goes on. `index.html` and
    `runs.csv` in the batch folder list every run with its status and links.

    Args:
        progress: optional callable `progress(RunResult)` called as each run ends.
    """
    spec = batch if isinstance(batch, BatchSpec) else load_batch(batch)
    stem = spec.source.stem if spec.source else "batch"
    folder = unique_folder(Path(out_root) if out_root else config.REPORTS_DIR, f"batch-{stem}")
    results: dict[str, RunResult] = {}

    keep = folder.parent / LAST_SNAPSHOTS  # the last snapshot of each audit run, by name

    def one(run: RunSpec) -> RunResult:
        run = with_last_snapshot(run, keep)
        try:
            with profile_environment(run.profile):  # a profile's run: alone, never side by side
                res = execute.run_notebook(
                    run.notebook,
                    run.parameters,
                    folder,
                    run.name,
                    execution_timeout=execution_timeout,
                )
        except Exception as exc:  # a broken run never stops the batch
            res = RunResult(name=run.name, notebook=run.notebook, folder=folder / run.name)
            res.status = FAILED
            res.error_message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        res.profile = run.profile.name if run.profile else ""
        if res.ok:
            keep_last_snapshot(res, keep)
        if progress is not None:
            progress(res)
        return res

    for group in _groups(spec.runs, spec.parallel_audits):
        if len(group) == 1:
            results[group[0].name] = one(group[0])
            continue
        with ThreadPoolExecutor(max_workers=spec.parallel_audits) as pool:
            for run, res in zip(group, pool.map(one, group), strict=True):
                results[run.name] = res
    ordered = [results[r.name] for r in spec.runs]
    history = batch_history(folder, f"batch-{stem}")  # earlier batches of this file: the trend
    runs_csv = write_runs_csv(ordered, folder / "runs.csv")
    index = write_index_html(ordered, folder / "index.html", title=f"Batch {stem}", history=history)
    return BatchResult(folder=folder, results=ordered, index_html=index, runs_csv=runs_csv)


LAST_SNAPSHOTS = "last-snapshots"
AUDIT_NOTEBOOK = "02-audit-report"


def with_last_snapshot(run: RunSpec, keep: Path) -> RunSpec:
    """An audit run keeps its snapshot and is compared with the last one of its run name.

    Unless the batch file says otherwise: `keep_snapshot: true`, and `previous_snapshot` the
    snapshot the last successful run of this name kept (`keep/<name>.parquet`), when there is
    one; its report then has "since the last run".
    """
    if run.notebook.stem != AUDIT_NOTEBOOK:
        return run
    params = dict(run.parameters)
    params.setdefault("keep_snapshot", True)
    last = keep / f"{run.name}.parquet"
    if "previous_snapshot" not in params and last.is_file():
        params["previous_snapshot"] = str(last)
    return replace(run, parameters=params)


def keep_last_snapshot(result: RunResult, keep: Path) -> Path | None:
    """Keep a succeeded audit run's `snapshot.parquet` (and its meta) as its name's last one."""
    source = result.folder / SNAPSHOT_IN_FOLDER
    if not source.is_file():
        return None
    private_dir(keep)
    target = keep / f"{result.name}.parquet"
    for src, dst in ((meta_path(source), meta_path(target)), (source, target)):
        if src.is_file():
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o600)  # the snapshot may hold names: private
            os.replace(tmp, dst)
    return target


def write_runs_csv(results: Sequence[RunResult], path: Path) -> Path:
    """One row per run: name, notebook, status, seconds, error, folder, html, notebook_out,
    started_at, then its key numbers (`batch_index.NUMBER_COLUMNS`, "" when none)."""
    rows = [{k: csv_cell(v) for k, v in r.as_row(path.parent).items()} for r in results]
    create_private(path)
    fields = list(rows[0]) if rows else ["name"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(render_row(fields))  # quoted as every CSV of the toolkit (csvout)
        handle.writelines(render_row([row.get(f, "") for f in fields]) for row in rows)
    return path


def write_index_html(
    results: Sequence[RunResult],
    path: Path,
    *,
    title: str = "Runs",
    history: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """A small self-contained HTML page listing the runs with their key numbers (split pairs,
    writes, failures) and links, then the trend of each notebook's runs (`history`: rows of
    earlier batches' runs.csv, `toolkit.notebook.batch_index.batch_history`)."""
    esc = html.escape
    body = []
    rows = []
    for r in results:
        row = r.as_row(path.parent)
        rows.append(row)
        link = (f'<a href="{esc(row["html"])}">report</a>' if row["html"] else "") + (
            f' · <a href="{esc(row["notebook_out"])}">notebook</a>' if row["notebook_out"] else ""
        )
        cls = "ok" if r.ok else "failed"
        body.append(
            f'<tr class="{cls}"><td>{esc(r.name)}</td><td>{esc(r.profile)}</td>'
            f"<td>{esc(r.notebook.name)}</td>"
            f'<td class="status">{esc(r.status)}</td><td class="num">{row["seconds"]}</td>'
            f"{number_cells(row)}<td>{esc(row.get('since_last_run', ''))}</td>"
            f"<td>{link}</td><td>{esc(r.error_message)}</td></tr>"
        )
    failed = sum(not r.ok for r in results)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">
<title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
tr.failed .status {{ color: #D55E00; font-weight: bold; }}
tr.ok .status {{ color: #009E73; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{len(results)} runs, {failed} failed. Generated {esc(utc_stamp())}.</p>
<table><thead><tr><th>run</th><th>profile</th><th>notebook</th><th>status</th><th>seconds</th>
<th>split pairs</th><th>written (of planned)</th><th>failed writes</th>
<th>since the last run</th><th>links</th>
<th>error</th></tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
{trend_html(series(rows, history))}
</body></html>
"""
    create_private(path)
    path.write_text(page, encoding="utf-8")
    return path


def result_json(result: RunResult) -> dict[str, Any]:
    """A RunResult as JSON-friendly data (paths as strings)."""
    data = asdict(result)
    return json.loads(json.dumps(data, default=str))
