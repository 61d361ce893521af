"""Notebook runs with papermill, HTML reports, batches, and the helpers the notebooks call.

A run executes one notebook of `notebooks/` into its own folder `reports/<UTC timestamp>-<name>/`
with that folder as the kernel's working directory, so whatever the notebook writes "beside
itself" (summary.json, CSVs, chart PNGs, the journal) lands there. The folder then holds:

- `<notebook>.ipynb`: the executed notebook (partial when a cell failed: papermill saves it as it
  goes and marks the failing cell);
- `<notebook>.html`: the report, inputs hidden, charts embedded as PNG images;
- the notebook's artifacts.

The kernel inherits this process's environment and reads the Lever credential from it
(`LeverClient.from_env()`); the credential is never a parameter, and every produced file is
scanned for it (raw, Basic-auth encoded, as a bearer, in an Authorization header) after the run
as a safety net. Kernels also get `LEVER_TOOLKIT_PROGRESS=0`: reports carry no progress bars.
A headless run of a notebook that fetches names by default is redacted unless the caller chose
(`headless_defaults`).

A batch (`runs.yaml`) is a list of named runs executed one after another; consecutive read-only
runs (explore, audit) may run side by side, `parallel_audits` at a time. A failing run does not
stop the others; `index.html` and `runs.csv` list every run with its status and links.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import html
import json
import logging
import os
import re
import shlex
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from toolkit import config
from toolkit.batch_index import batch_history, number_cells, run_numbers, series, trend_html
from toolkit.errors import ConfigurationError
from toolkit.sanitize import (
    MAX_TAG_LENGTH,
    create_private,
    csv_cell,
    private_dir,
    private_file,
    private_tree,
    safe_yaml_load,
    short_repr,
    tag_problem,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from toolkit.audit import AuditResult
    from toolkit.snapshot import Snapshot

log = logging.getLogger(__name__)

KERNEL_NAME = "python3"
SUCCEEDED = "succeeded"
FAILED = "failed"
READ_ONLY_NOTEBOOKS = ("01-explore-tag-coverage", "02-audit-report", "04-sync-activity")
NOTEBOOK_ALIASES = {
    "explore": "01-explore-tag-coverage",
    "audit": "02-audit-report",
    "remediate": "03-remediate",
    "sync-activity": "04-sync-activity",
}
MODES = ("propagate", "remove", "rename")
REDACTED = b"[redacted]"

# ------------------------------------------------------------------------------------------------
# parameters
# ------------------------------------------------------------------------------------------------

# Every parameter a notebook of this project may declare: name -> (type, check, what it must be).
_PATHLIKE = "a path (or empty)"
# The longest parameter value accepted from the command line or a batch file (before parsing).
MAX_PARAMETER_CHARS = 100_000


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(tag_problem(v) is None for v in value)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        tag_problem(k) is None and tag_problem(v) is None for k, v in value.items()
    )


PARAMETER_SPEC: dict[str, tuple[type, Any, str]] = {
    "snapshot_path": (str, None, _PATHLIKE),
    "output_dir": (str, None, _PATHLIKE),
    "policy_path": (str, None, _PATHLIKE),
    "journal_path": (str, None, _PATHLIKE),
    "include_archived": (bool, None, "true or false"),
    "with_personal": (bool, None, "true or false"),
    "redact": (bool, None, "true or false"),
    "dry_run": (bool, None, "true or false"),
    "retry_failed": (bool, None, "true or false"),
    "tags": (list, _is_str_list, f"a list of non-empty tag strings (<= {MAX_TAG_LENGTH} chars)"),
    "renames": (dict, _is_str_map, "a mapping of old tag -> new tag (tags as for `tags`)"),
    "mode": (str, lambda v: v in MODES, "one of " + ", ".join(MODES)),
    "max_changes": (int, lambda v: v >= 0, "an integer >= 0"),
    "top": (int, lambda v: v >= 1, "an integer >= 1"),
    "min_opportunities": (int, lambda v: v >= 1, "an integer >= 1"),
    "search": (str, None, "a string"),
    "perform_as": (str, lambda v: v == v.strip(), "a Lever user id (or empty)"),
}
# The parameters that are paths; the first two are files a run reads (they must exist).
PATH_PARAMETERS = tuple(name for name, spec in PARAMETER_SPEC.items() if spec[2] == _PATHLIKE)
INPUT_PATH_PARAMETERS = ("snapshot_path", "policy_path")
_SECRET_NAMES = re.compile(r"(key|token|secret|password)", re.I)


class Parameters(dict):
    """Checked notebook parameters: a dict that also reads as attributes (`params.dry_run`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _repr_html_(self) -> str:  # a small table in notebooks and HTML reports
        return parameters_table(self).to_html(index=False)


def _type_name(value: Any) -> str:
    return type(value).__name__


def parameter_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with `params` (empty when nothing), one short sentence per problem.

    Example:
        >>> parameter_problems({"dry_run": "no", "max_changes": 5})
        ["dry_run must be true or false, got str 'no'"]
    """
    problems: list[str] = []
    for name, value in params.items():
        if _SECRET_NAMES.search(name):
            problems.append(
                f"{name}: credentials are never notebook parameters; set LEVER_API_KEY or "
                "LEVER_ACCESS_TOKEN in the environment instead"
            )
            continue
        spec = PARAMETER_SPEC.get(name)
        if spec is None:
            continue
        kind, check, what = spec
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if ok and check is not None:
            ok = bool(check(value))
        if not ok:
            problems.append(f"{name} must be {what}, got {_type_name(value)} {short_repr(value)}")
    return problems


def check_parameters(**params: Any) -> Parameters:
    """Check a notebook's parameters and return them; raise one clear ConfigurationError if not.

    Types and values follow `PARAMETER_SPEC`; paths that are given must exist (`snapshot_path`,
    `policy_path`); a name that looks like a credential is refused. Call it in the cell after the
    parameters cell, so a wrong parameter fails there with a one-line reason.

    Example:
        >>> p = check_parameters(dry_run=True, max_changes=10, mode="propagate")
        >>> p.max_changes
        10
        >>> check_parameters(max_changes="ten")
        Traceback (most recent call last):
        ...
        toolkit.errors.ConfigurationError: bad notebook parameter: max_changes must be an integer >= 0, got str 'ten'
    """  # noqa: E501
    problems = parameter_problems(params) + missing_input_files(params)
    if problems:
        raise ConfigurationError("bad notebook parameter: " + "; ".join(problems))
    return Parameters(params)


def parameters_table(params: Mapping[str, Any]) -> pd.DataFrame:
    """The parameters as a two-column table, for display.

    Example:
        >>> parameters_table({"dry_run": True}).to_dict("records")
        [{'parameter': 'dry_run', 'value': 'True'}]
    """
    return pd.DataFrame(
        {"parameter": list(params), "value": [str(v) for v in params.values()]},
        dtype="object",
    )


def resolve_path(path: str | os.PathLike) -> Path:
    """A user-given path: `~` expanded; relative paths are taken from the project root.

    Example:
        >>> resolve_path("notebooks/demo-policy.yaml") == config.PROJECT_ROOT / "notebooks/demo-policy.yaml"
        True
    """  # noqa: E501
    p = Path(path).expanduser()
    return p if p.is_absolute() else config.PROJECT_ROOT / p


def absolute_path_parameters(
    params: Mapping[str, Any],
    base: str | os.PathLike,
) -> dict[str, Any]:
    """`params` with every relative path parameter (`PATH_PARAMETERS`) made absolute from `base`.

    `lever-tags report` passes the caller's current folder and a batch file its own folder, so
    `-p policy_path pol.yaml` means the file where the command was typed; the kernel (whose
    working folder is the run folder) then gets an absolute path. `~` is expanded; `""` and
    non-strings are left alone.

    Example:
        >>> absolute_path_parameters({"policy_path": "p.yaml", "top": 3}, "/jobs")
        {'policy_path': '/jobs/p.yaml', 'top': 3}
    """
    out = dict(params)
    for name in PATH_PARAMETERS:
        value = out.get(name)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path(base) / path
        out[name] = os.path.abspath(path)
    return out


def missing_input_files(params: Mapping[str, Any]) -> list[str]:
    """One phrase per input file parameter (`snapshot_path`, `policy_path`) that does not exist.

    Example:
        >>> missing_input_files({"policy_path": "/no/such/policy.yaml", "snapshot_path": ""})
        ['policy_path: no such file /no/such/policy.yaml']
    """
    problems = []
    for name in INPUT_PATH_PARAMETERS:
        value = params.get(name)
        if isinstance(value, str) and value and not resolve_path(value).is_file():
            problems.append(f"{name}: no such file {resolve_path(value)}")
    return problems


_INTERACTIVE_DIR: Path | None = None


def resolve_output_dir(output_dir: str | os.PathLike = "") -> Path:
    """Where a notebook writes its artifacts, created if needed.

    `""` means beside the executed notebook, i.e. the working directory papermill gives the kernel
    (the run folder). Opened interactively from `notebooks/`, `""` means a fresh
    `reports/<timestamp>-interactive/` instead, so artifacts never land among the sources.
    """
    if output_dir:
        out = resolve_path(output_dir)
    else:
        cwd = Path.cwd().resolve()
        if cwd == config.NOTEBOOKS_DIR.resolve() or cwd == config.PROJECT_ROOT.resolve():
            global _INTERACTIVE_DIR
            if _INTERACTIVE_DIR is None:  # one folder per kernel session, however many calls
                _INTERACTIVE_DIR = config.REPORTS_DIR / f"{utc_stamp()}-interactive"
            out = _INTERACTIVE_DIR
        else:
            out = cwd
    private_dir(out)  # the folders it creates are 0700: artifacts hold personal data
    return out


# ------------------------------------------------------------------------------------------------
# helpers the notebooks call
# ------------------------------------------------------------------------------------------------


def load_or_fetch_snapshot(
    snapshot_path: str = "",
    include_archived: bool = True,
    redact: bool = False,
    *,
    with_personal: bool = False,
    client: Any = None,
) -> Snapshot:
    """Load a saved snapshot, or fetch a fresh one with the credential from the environment.

    Args:
        snapshot_path: a Parquet snapshot to load ("" = fetch from Lever).
        include_archived: keep archived opportunities (a loaded snapshot is filtered).
        redact: replace names and emails by stable pseudonyms (`toolkit.redact`).
        with_personal: fetch names and emails (for search and labels); off by default.
        client: a `LeverClient`; default `LeverClient.from_env()`.
    """
    from toolkit.redact import redact_frame, salt_kind
    from toolkit.snapshot import Snapshot, fetch_snapshot, load_snapshot

    if snapshot_path:
        snap = load_snapshot(resolve_path(snapshot_path))
        if not include_archived:
            snap = Snapshot(
                snap.frame.loc[~snap.frame["archived"].astype(bool)].reset_index(drop=True),
                dict(snap.meta, include_archived=False),
            )
    else:
        if client is None:
            from toolkit.client import LeverClient

            client = LeverClient.from_env()
        snap = fetch_snapshot(
            client, include_archived=include_archived, with_personal=with_personal or redact
        )
    if redact:
        snap = Snapshot(
            redact_frame(snap.frame), dict(snap.meta, redacted=True, redaction=salt_kind())
        )
    return snap


def snapshot_overview(snap: Snapshot) -> pd.DataFrame:
    """A short table about a snapshot: where from, when, how many, and its warnings."""
    meta = snap.meta or {}
    frame = snap.frame
    rows: list[tuple[str, Any]] = [
        ("host", meta.get("host", "")),
        ("fetched_at", meta.get("fetched_at", "")),
        ("opportunities", len(frame)),
    ]
    for column in ("archived", "confidential", "anonymized"):
        if column in frame.columns:
            rows.append((column, int(frame[column].fillna(False).astype(bool).sum())))
    rows += [
        ("confidential_access", meta.get("confidential_access", "")),
        ("personal_data", "name" in frame.columns),
        ("redacted", bool(meta.get("redacted", False))),
    ]
    if meta.get("redaction"):
        rows.append(("redaction", meta["redaction"]))
    rows += [("warning", w) for w in meta.get("warnings", [])]
    return pd.DataFrame(rows, columns=["item", "value"]).astype({"value": "object"})


def summary_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """A summary dict as a two-column table.

    Example:
        >>> summary_table({"split_pairs": 3}).to_dict("records")
        [{'metric': 'split_pairs', 'value': 3}]
    """
    return pd.DataFrame({"metric": list(summary), "value": list(summary.values())}).astype(
        {"value": "object"}
    )


def contact_labels(frame: pd.DataFrame) -> dict[str, str]:
    """contact id -> name (or pseudonym) when the snapshot holds names, else empty."""
    if "name" not in frame.columns or frame.empty:
        return {}
    known = frame.dropna(subset=["contact_id", "name"]).drop_duplicates("contact_id")
    return {
        str(c): f"{n} ({str(c)[:8]})"
        for c, n in zip(known["contact_id"], known["name"], strict=True)
    }


def focus_coverage(coverage: pd.DataFrame, policy: Any = None) -> pd.DataFrame:
    """Coverage rows of the policy's contact-level tags when a policy names some, else all.

    Posting-derived tags are meant to differ between a person's opportunities; with a policy, the
    heatmap shows the tags that should not.
    """
    tags = list(getattr(policy, "contact_level", None) or [])
    if not tags:
        return coverage
    return coverage.loc[coverage["tag"].isin(set(tags))].reset_index(drop=True)


def write_audit_artifacts(
    result: AuditResult, output_dir: str | os.PathLike = "", meta: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """summary.json and the audit CSVs into `output_dir` (see `resolve_output_dir`)."""
    from toolkit.artifacts import write_audit_artifacts as _write

    return _write(result, resolve_output_dir(output_dir), dict(meta or {}))


def artifacts_table(paths: Mapping[str, Path] | Iterable[Path]) -> pd.DataFrame:
    """The files a step wrote, with their sizes."""
    items = paths.items() if isinstance(paths, Mapping) else ((Path(p).stem, p) for p in paths)
    rows = [(name, Path(p).name, Path(p).stat().st_size) for name, p in items]
    return pd.DataFrame(rows, columns=["artifact", "file", "bytes"])


def keep_figure(fig: Figure, name: str, output_dir: str | os.PathLike = "") -> Any:
    """Save `fig` as `<output_dir>/charts/<name>.png`; return it as a PNG image to display.

    The returned `IPython.display.Image` embeds the PNG in the notebook, so the HTML report
    carries the chart as an image whatever the plotting backend.
    """
    from IPython.display import Image

    from toolkit.charts import describe_figure, save_figure

    path = save_figure(fig, resolve_output_dir(output_dir) / "charts" / f"{name}.png")
    # alternative text: the title, the axes and the first values (what a reader would see)
    alt = describe_figure(fig) or figure_title(fig) or name
    return Image(data=path.read_bytes(), format="png", alt=alt)


def figure_title(fig: Figure) -> str:
    """The first axes' title (left, then centre): the chart's alternative text in reports."""
    for ax in fig.axes:
        for loc in ("left", "center"):
            title = ax.get_title(loc=loc)
            if title:
                return title
    return ""


def load_optional_policy(policy_path: str = "") -> Any:
    """The policy at `policy_path` (see `toolkit.policy`), or None for `""`."""
    if not policy_path:
        return None
    from toolkit.policy import load_policy

    return load_policy(resolve_path(policy_path))


def effective_include_archived(include_archived: bool, policy: Any = None) -> bool:
    """Archived opportunities are considered only if both the parameter and the policy allow it.

    Example:
        >>> effective_include_archived(True), effective_include_archived(False)
        (True, False)
    """
    return bool(include_archived) and bool(getattr(policy, "include_archived", True))


def make_plan(
    snapshot: Any,
    *,
    mode: str = "propagate",
    tags: Sequence[str] | None = None,
    policy: Any = None,
    renames: Mapping[str, str] | None = None,
    include_archived: bool = True,
) -> Any:
    """`toolkit.plan.make_plan`, except that nothing chosen gives an empty plan, not an error.

    A notebook run with its defaults (no tags, no policy) then previews nothing, instead of
    failing: the plan's `meta["note"]` says why and the report's headline says "nothing to do"
    (`toolkit.present.headline_remediation`); given tags or a policy, it is exactly
    `toolkit.plan.make_plan`.
    """
    from toolkit.plan import PLAN_COLUMNS, Plan
    from toolkit.plan import make_plan as _make_plan

    chosen = list(tags or []) or list(getattr(policy, "contact_level", None) or [])
    if not chosen and not (mode == "rename" and renames):
        empty = pd.DataFrame({c: pd.Series([], dtype="object") for c in PLAN_COLUMNS})
        return Plan(rows=empty, meta={"mode": mode, "tags": [], "note": "no tags chosen"})
    return _make_plan(
        snapshot,
        mode=mode,
        tags=list(tags) if tags else None,
        policy=policy,
        renames=dict(renames) if renames else None,
        include_archived=include_archived,
    )


def save_plan(plan: Any, output_dir: str | os.PathLike = "") -> Path:
    """Save the plan (CSV + sidecars) as `plan.csv` in the output folder; return its path."""
    return plan.save(resolve_output_dir(output_dir) / "plan.csv")


def journal_path_for(journal_path: str = "", output_dir: str | os.PathLike = "") -> Path:
    """The journal to use: the given path, else `journal.sqlite` beside the report."""
    if journal_path:
        path = resolve_path(journal_path)
        private_dir(path.parent)
        return path
    return resolve_output_dir(output_dir) / "journal.sqlite"


def drift_table(drift: pd.DataFrame) -> pd.DataFrame:
    """The opportunities that changed since the snapshot (empty: no drift)."""
    if drift.empty or "changed" not in drift.columns:
        return drift
    return drift.loc[drift["changed"].astype(bool)].reset_index(drop=True)


def apply_overview(result: Any) -> pd.DataFrame:
    """An `ApplyResult` as a table: what happened, in words and counts."""
    rows: list[tuple[str, Any]] = [("summary", line) for line in result.summary_lines()]
    for key in ("dry_run", "planned_changes", "planned_calls", "applied", "failed", "not_found",
                "skipped", "pending", "calls", "attempts"):  # fmt: skip
        rows.append((key, getattr(result, key)))
    rows.append(("elapsed_seconds", round(float(result.elapsed), 1)))
    return pd.DataFrame(rows, columns=["item", "value"]).astype({"value": "object"})


def verify_applied(client: Any, plan: Any, result: Any) -> pd.DataFrame:
    """Plan rows that do not hold after a real apply; empty on a dry run (nothing to check)."""
    from toolkit.apply import VERIFY_COLUMNS, verify_plan

    if result.dry_run or plan.rows.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    return verify_plan(client, plan)


def project_plan(frame: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """The snapshot frame as it would be once the plan's rows are written (pure).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1"], "tags": [["a", "b"]]})
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o1"], "contact_id": ["c", "c"],
        ...                      "op": ["add", "remove"], "tag": ["x", "a"]})
        >>> project_plan(f, rows)["tags"].tolist()
        [['b', 'x']]
    """
    rows = getattr(plan, "rows", plan)
    if rows.empty:
        return frame
    adds: dict[str, list[str]] = {}
    removes: dict[str, set[str]] = {}
    for opp, op, tag in zip(rows["opportunity_id"], rows["op"], rows["tag"], strict=True):
        if op == "add":
            adds.setdefault(opp, []).append(tag)
        else:
            removes.setdefault(opp, set()).add(tag)
    out = frame.copy()
    new_tags = []
    for opp, tags in zip(out["opportunity_id"], out["tags"], strict=True):
        current = [t for t in list(tags) if t not in removes.get(opp, ())]
        current += [t for t in adds.get(opp, []) if t not in current]
        new_tags.append(current)
    out["tags"] = pd.Series(new_tags, index=out.index, dtype="object")
    return out


def audit_after(
    client: Any,
    snap: Snapshot,
    plan: Any,
    result: Any,
    *,
    include_archived: bool = True,
    policy: Any = None,
) -> AuditResult:
    """The audit, restricted to the plan's tags, after the run: of a fresh fetch after a real
    apply, of the snapshot with the plan projected onto it after a dry run. `options["after"]`
    says which."""
    from toolkit.snapshot import fetch_snapshot

    if result.dry_run:
        frame, how = project_plan(snap.frame, plan), "projected (dry run: nothing was written)"
    else:
        frame = fetch_snapshot(client, include_archived=include_archived).frame
        how = "re-fetched after the apply"
    after = audit_for_plan(frame, plan, include_archived=include_archived, policy=policy)
    after.options["after"] = how
    return after


def before_after_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> pd.DataFrame:
    """Two summaries side by side, with the change.

    Example:
        >>> before_after_table({"split_pairs": 5}, {"split_pairs": 0}).to_dict("records")
        [{'metric': 'split_pairs', 'before': 5, 'after': 0, 'change': -5}]
    """
    keys = list(dict.fromkeys([*before, *after]))
    rows = [(k, before.get(k, 0), after.get(k, 0)) for k in keys]
    table = pd.DataFrame(rows, columns=["metric", "before", "after"])
    table["change"] = table["after"] - table["before"]
    return table


def plan_tags(plan: Any) -> list[str]:
    """Every tag a plan is about: its chosen tags, renames (both sides), and the rows' tags."""
    meta = getattr(plan, "meta", {}) or {}
    tags = list(meta.get("tags") or [])
    for old, new in (meta.get("renames") or {}).items():
        tags += [old, new]
    tags += [str(t) for t in getattr(plan, "rows", pd.DataFrame(columns=["tag"]))["tag"]]
    return list(dict.fromkeys(tags))


def audit_for_plan(
    frame: pd.DataFrame, plan: Any, *, include_archived: bool = True, policy: Any = None
) -> AuditResult:
    """The audit of `frame` restricted to the plan's tags (what the plan can change)."""
    from toolkit.audit import run_audit

    return run_audit(frame, include_archived=include_archived, tags=plan_tags(plan), policy=policy)


def tags_of_plan(stats: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """Per-tag statistics restricted to the tags the plan is about."""
    return stats.loc[stats["tag"].isin(set(plan_tags(plan)))].reset_index(drop=True)


def journal_overview(result: Any) -> pd.DataFrame:
    """The journal's summary as a table; a dry run has no journal."""
    from toolkit.journal import journal_summary

    if result.dry_run or not result.journal_path:
        return pd.DataFrame([("journal", "dry run: no journal, nothing was written")],
                            columns=["item", "value"])  # fmt: skip
    summary = journal_summary(result.journal_path)
    summary["path"] = Path(summary.get("path", "")).name  # the folder is the report's
    return pd.DataFrame(
        [(k, json.dumps(v, default=str) if isinstance(v, dict | list) else v)
         for k, v in summary.items()],
        columns=["item", "value"],
    ).astype({"value": "object"})  # fmt: skip


def write_remediation_summary(
    output_dir: str | os.PathLike,
    *,
    plan: Any,
    result: Any,
    before: AuditResult,
    after: AuditResult,
    residual: pd.DataFrame,
) -> dict[str, Path]:
    """`remediation.json` (counts, before/after summaries) and `outcomes.csv` beside the report."""
    from toolkit.artifacts import write_csv_atomic, write_json_atomic

    out = resolve_output_dir(output_dir)
    data = {
        "dry_run": bool(result.dry_run),
        "plan": plan.counts(),
        "mode": plan.mode,
        "tags": list((plan.meta or {}).get("tags") or []),
        "apply": {
            k: getattr(result, k)
            for k in (
                "planned_changes",
                "planned_calls",
                "applied",
                "failed",
                "not_found",
                "skipped",
                "pending",
                "calls",
                "attempts",
            )
        },
        "ok": bool(result.ok),
        "before": {k: int(v) for k, v in before.summary.items()},
        "after": {k: int(v) for k, v in after.summary.items()},
        "after_is": after.options.get("after", ""),
        "residual_rows": len(residual),
        "residual_dropped_for_drift": len(residual) - len(unexpected_residual(residual, result)),
        "journal": Path(result.journal_path).name if result.journal_path else None,
        "problems": remediation_problems(result, residual),
    }
    data["succeeded"] = not data["problems"]
    data["resume_command"] = resume_command(result, plan) if data["problems"] else None
    paths = {"remediation": write_json_atomic(out / "remediation.json", data)}
    if isinstance(result.outcomes, pd.DataFrame) and len(result.outcomes):
        paths["outcomes"] = write_csv_atomic(out / "outcomes.csv", result.outcomes)
    if len(residual):
        paths["residual"] = write_csv_atomic(out / "residual.csv", residual)
    return paths


class RemediationFailedError(RuntimeError):
    """A real apply finished, but some changes failed or do not hold in Lever afterwards."""


_ROW_KEY = ["opportunity_id", "op", "tag"]


def unexpected_residual(residual: pd.DataFrame, result: Any) -> pd.DataFrame:
    """The verify residual without the rows the apply dropped on purpose because of drift.

    A row dropped by the drift re-plan (the opportunity changed since the snapshot, or became
    anonymized) may legitimately not hold; every other residual row is a change that should
    be in Lever and is not.

    Example:
        >>> from types import SimpleNamespace
        >>> residual = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                          "op": ["add", "add"], "tag": ["Go", "Go"],
        ...                          "reason": ["missing", "missing"]})
        >>> dropped = residual.iloc[:1].assign(reason="drift: changed since the snapshot")
        >>> unexpected_residual(residual, SimpleNamespace(dropped=dropped))["opportunity_id"].tolist()
        ['o2']
    """  # noqa: E501
    dropped = getattr(result, "dropped", None)
    if residual.empty or not isinstance(dropped, pd.DataFrame) or dropped.empty:
        return residual
    if not set(_ROW_KEY) <= set(dropped.columns):
        return residual
    keys = set(zip(*(dropped[c].astype(str) for c in _ROW_KEY), strict=True))
    mine = pd.Series(
        [k in keys for k in zip(*(residual[c].astype(str) for c in _ROW_KEY), strict=True)],
        index=residual.index,
        dtype=bool,
    )
    return residual.loc[~mine].reset_index(drop=True)


def remediation_problems(result: Any, residual: pd.DataFrame) -> list[str]:
    """Why a remediation run did not succeed, one phrase each; empty when it did.

    A dry run writes nothing and cannot fail here. A real apply fails when a change failed, an
    opportunity was not found, changes are left pending, or verify found plan rows that do not
    hold (other than rows dropped on purpose for drift).

    Example:
        >>> from types import SimpleNamespace
        >>> r = SimpleNamespace(dry_run=False, planned_changes=65, failed=65, not_found=0,
        ...                     pending=0, outcomes=pd.DataFrame(), dropped=pd.DataFrame())
        >>> remediation_problems(r, pd.DataFrame())
        ['65 of 65 changes failed']
    """
    if getattr(result, "dry_run", True):
        return []
    problems: list[str] = []
    planned = int(getattr(result, "planned_changes", 0) or 0)
    for attr, what in (
        ("failed", "failed"),
        ("not_found", "were on opportunities not found"),
        ("pending", "are still pending"),
    ):
        n = int(getattr(result, attr, 0) or 0)
        if n:
            problems.append(f"{n} of {planned} changes {what}")
    message = _first_failure(getattr(result, "outcomes", None))
    if problems and message:
        problems[0] += f" (first: {message})"
    unexpected = len(unexpected_residual(residual, result))
    if unexpected:
        problems.append(f"{unexpected} plan rows do not hold in Lever after verify")
    return problems


def _first_failure(outcomes: Any) -> str:
    if not isinstance(outcomes, pd.DataFrame) or outcomes.empty:
        return ""
    if not {"state", "message"} <= set(outcomes.columns):
        return ""
    bad = outcomes.loc[outcomes["state"].isin(["failed", "not_found"]), "message"].dropna()
    text = " ".join(str(bad.iloc[0]).split()) if len(bad) else ""
    return text if len(text) <= 160 else text[:159] + "…"


def resume_command(result: Any, plan: Any = None) -> str:
    """The CLI command that resumes or retries THIS run from its saved plan and journal.

    Rerunning the notebook fetches a fresh snapshot and plans again: a different plan, which the
    run's journal refuses. `lever-tags apply` of the run's own `plan.csv` (its sidecars are
    beside it; apply needs no snapshot) with the same `--journal` continues the run and never
    repeats a finished write. `--retry-failed` is added when Lever refused changes: a plain
    resume does not retry refused calls. `--max-changes` keeps the run's limit. "" without a
    journal (a dry run) or a saved plan.

    Example:
        >>> from types import SimpleNamespace
        >>> r = SimpleNamespace(journal_path="/r/run 1/journal.sqlite", failed=2, max_changes=500)
        >>> resume_command(r, SimpleNamespace(path=Path("/r/run 1/plan.csv")))
        "lever-tags apply '/r/run 1/plan.csv' --yes --journal '/r/run 1/journal.sqlite' --max-changes 500 --retry-failed"
    """  # noqa: E501
    journal = getattr(result, "journal_path", None)
    plan_path = getattr(plan, "path", None)
    if not journal or not plan_path:
        return ""
    parts = ["lever-tags", "apply", str(plan_path), "--yes", "--journal", str(journal)]
    limit = getattr(result, "max_changes", None)
    if isinstance(limit, int) and not isinstance(limit, bool):
        parts += ["--max-changes", str(limit)]
    if int(getattr(result, "failed", 0) or 0) or int(getattr(result, "not_found", 0) or 0):
        parts.append("--retry-failed")
    return " ".join(shlex.quote(p) for p in parts)


def require_success(result: Any, residual: pd.DataFrame, plan: Any = None) -> str:
    """Raise `RemediationFailedError` when a real apply did not fully succeed; else say so.

    The last cell of `03-remediate` calls it after every artifact is written, so a failed run
    keeps its plan, outcomes, residual, journal and report, and `lever-tags report` / `batch`
    see the failure (exit 1, run marked failed, this cell named). A dry run always passes.
    Given the saved `plan`, the error names the command that resumes or retries this run
    (`resume_command`).

    Example:
        >>> from types import SimpleNamespace
        >>> require_success(SimpleNamespace(dry_run=True), pd.DataFrame())
        'dry run: nothing was written'
    """
    problems = remediation_problems(result, residual)
    if problems:
        message = (
            "; ".join(problems) + ". The report, plan.csv, outcomes.csv, residual.csv and "
            "remediation.json are beside this notebook."
        )
        command = resume_command(result, plan)
        if command:
            message += (
                f" To resume or retry this run without repeating finished writes: {command}"
                " (add --perform-as USER_ID to write as another Lever user, e.g. after an "
                "unknown perform_as; rerunning the notebook plans afresh, which this journal "
                "refuses)"
            )
        raise RemediationFailedError(message)
    if getattr(result, "dry_run", True):
        return "dry run: nothing was written"
    return f"succeeded: {int(result.applied)} changes applied, every plan row holds in Lever"


# ------------------------------------------------------------------------------------------------
# single runs
# ------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one notebook run produced."""

    name: str
    notebook: Path
    folder: Path
    status: str = SUCCEEDED
    parameters: dict[str, Any] = field(default_factory=dict)
    executed_path: Path | None = None
    html_path: Path | None = None
    artifacts: list[Path] = field(default_factory=list)
    error_cell: int | None = None  # index of the failing cell in the executed notebook
    error_message: str = ""
    started_at: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    def as_row(self, relative_to: Path | None = None) -> dict[str, Any]:
        def rel(p: Path | None) -> str:
            if p is None:
                return ""
            return os.path.relpath(p, relative_to) if relative_to else str(p)

        return {
            "name": self.name,
            "notebook": self.notebook.name,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error_message,
            "folder": rel(self.folder),
            "html": rel(self.html_path),
            "notebook_out": rel(self.executed_path),
            "started_at": self.started_at,
            **run_numbers(self.folder),  # key numbers from the run's summary/remediation JSON
        }


class SecretLeakError(RuntimeError):
    """A produced file contained the credential (text redacted, binary files left intact)."""


def utc_stamp(now: datetime | None = None) -> str:
    """`20250101T120000Z`: sortable, safe in file names.

    Example:
        >>> utc_stamp(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
        '20250102T030405Z'
    """
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def resolve_notebook(notebook: str | os.PathLike) -> Path:
    """A notebook by path, by file name in `notebooks/`, by stem, or by alias (`audit`).

    Example:
        >>> resolve_notebook("audit").name
        '02-audit-report.ipynb'
    """
    text = str(notebook)
    text = NOTEBOOK_ALIASES.get(text, text)
    candidates = [Path(text), resolve_path(text), config.NOTEBOOKS_DIR / text]
    candidates += [c.with_name(c.name + ".ipynb") for c in candidates if c.suffix != ".ipynb"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigurationError(f"no such notebook: {notebook} (looked in {config.NOTEBOOKS_DIR})")


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares in its `parameters` cell: name -> type, default, help."""
    import papermill

    path = resolve_notebook(notebook)
    try:
        found = papermill.inspect_notebook(str(path))
    except Exception as exc:  # not JSON, not a notebook
        raise ConfigurationError(f"cannot read notebook {path.name}: {exc}") from exc
    return dict(found)


_TYPE_NAMES = {"str": str, "bool": bool, "int": int, "float": float, "list": list, "dict": dict}


def coerce_parameter(value: Any, type_name: str | None) -> Any:
    """A CLI value (a string parsed as YAML) fitted to the declared type where that is safe.

    A scalar for a `list` parameter becomes a one-item list; an int for a `float` one a float;
    anything for a `str` parameter stays the text given.

    Example:
        >>> coerce_parameter("Python", "list"), coerce_parameter("7", "str"), coerce_parameter("7", "int")
        (['Python'], '7', 7)
    """  # noqa: E501
    kind = _TYPE_NAMES.get((type_name or "").strip())
    if isinstance(value, str) and len(value) > MAX_PARAMETER_CHARS:
        raise ConfigurationError(
            f"a parameter value of {len(value):,} characters (the maximum is "
            f"{MAX_PARAMETER_CHARS:,}); pass large inputs as files (policy_path, snapshot_path)"
        )
    if isinstance(value, str) and kind is not str:
        try:
            value = safe_yaml_load(value) if value.strip() else value
        except yaml.composer.ComposerError as exc:
            if "aliases" in str(exc):
                raise ConfigurationError(
                    f"parameter value {short_repr(value)}: YAML aliases (*name) are not allowed"
                ) from None
        except yaml.YAMLError:
            pass  # not YAML: the text as given
    if kind is list and isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and value is None:
        return ""
    return value


def validate_run_parameters(notebook: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check parameters against the notebook before starting a kernel: names, then types."""
    declared = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigurationError(
            f"{notebook.name} has no parameter {', '.join(unknown)} "
            f"(it has: {', '.join(declared) or 'none'})"
        )
    fitted = {
        name: coerce_parameter(value, declared[name].get("inferred_type_name"))
        for name, value in parameters.items()
    }
    problems = parameter_problems(fitted)
    for name, value in fitted.items():
        kind = _TYPE_NAMES.get((declared[name].get("inferred_type_name") or "").strip())
        if name in PARAMETER_SPEC or kind is None:
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(
                f"{name} must be {kind.__name__}, got {_type_name(value)} {short_repr(value)}"
            )
    if problems:
        raise ConfigurationError(f"{notebook.name}: bad parameter: " + "; ".join(problems))
    return fitted


def _secrets() -> tuple[str, ...]:
    """The strings no produced file may hold: the Lever credential and the redaction salt."""
    from toolkit.redact import redaction_salt

    try:
        found = list(config.load_settings().secrets)
    except ConfigurationError:
        found = []
    webhook_secret = (os.environ.get("LEVER_WEBHOOK_SECRET") or "").strip()  # lever-tags sync
    if webhook_secret:
        found.append(webhook_secret)
    with contextlib.suppress(ConfigurationError):  # a too-short salt is refused where it is used
        salt = redaction_salt()
        if salt:
            found.append(salt.decode())
    return tuple(found)


def _refuse_secret_values(parameters: Mapping[str, Any], secrets: Sequence[str]) -> None:
    text = json.dumps(parameters, default=str)
    if any(s in text for s in secrets):
        raise ConfigurationError(
            "a parameter value contains the Lever credential; credentials are read from the "
            "environment inside the kernel, never passed as parameters"
        )


def secret_forms(secret: str) -> list[bytes]:
    """The byte strings a credential can travel as (`toolkit.scrub.secret_forms`).

    Example:
        >>> b"c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg==" in secret_forms("sk-test-0123456789abcdef")
        True
    """
    from toolkit.scrub import secret_forms as forms

    return [f.encode() for f in forms(secret)]


# Files the scan never edits: a database, a columnar file or an image rewritten byte-wise is
# corrupt (a journal so edited said "database disk image is malformed" and rollback crashed).
_BINARY_SUFFIXES = {".sqlite", ".sqlite-wal", ".sqlite-shm", ".db", ".parquet", ".png", ".lock"}


def _is_text(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in _BINARY_SUFFIXES or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def scan_for_secrets(folder: Path, secrets: Sequence[str] | None = None) -> list[Path]:
    """Files under `folder` holding a credential: the last check after a run (a safety net).

    It looks for the real credentials only (the Lever key or token and the redaction salt),
    in every form they travel as (`secret_forms`: raw, base64 of `KEY:` as Basic auth sends it,
    `Bearer KEY`). Text that merely looks like a header (a tag called
    `Authorization: Bearer innocentlookingtag`) is data and is not a finding. Credentials are
    scrubbed where they enter (`toolkit.scrub`), so a finding here is a bug.

    A text file that holds one is rewritten atomically with `[redacted]` in its place (same
    private mode). A binary file (the journal, a Parquet snapshot, an image) is never edited:
    it is left intact and private (0600) and reported, so nothing is corrupted; the caller
    fails the run and names it.
    """
    secrets = _secrets() if secrets is None else tuple(secrets)
    needles = sorted(
        {form for s in secrets if s for form in secret_forms(s)}, key=len, reverse=True
    )
    leaked: list[Path] = []
    if not needles:
        return leaked
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if not any(needle in data for needle in needles):
            continue
        leaked.append(path)
        if not _is_text(path, data):
            private_file(path)  # left as it is: editing it would corrupt it
            continue
        clean = data
        for needle in needles:
            clean = clean.replace(needle, REDACTED)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(clean)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return leaked


def _unique_folder(out_root: Path, name: str) -> Path:
    check_out_root(out_root)
    try:
        private_dir(out_root)  # folders it creates are 0700; an existing one is left as it is
    except (FileExistsError, NotADirectoryError):
        raise ConfigurationError(f"--out-root {out_root} is not a folder") from None
    base = f"{utc_stamp()}-{name}"
    for n in range(1, 1000):
        folder = out_root / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)  # whatever the umask: a run folder holds personal data
        return folder
    raise ConfigurationError(f"cannot create a run folder under {out_root}")  # pragma: no cover


def check_out_root(out_root: str | os.PathLike) -> None:
    """Refuse an `--out-root` that is a file, or lies under one (one ConfigurationError line)."""
    path = Path(out_root)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigurationError(f"--out-root {out_root} is not a folder ({p} is a file)")
            return


_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_OK.fullmatch(name):
        raise ConfigurationError(
            f"run name {short_repr(name)} must be letters, digits, '.', '_' or '-' (1-100, "
            "starting with a letter or digit; no spaces, slashes or line breaks)"
        )
    return name


def _image_alts(nb: Any) -> list[str]:
    """The alternative text of each PNG output, in document order ("" when none)."""
    alts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                meta = output.get("metadata", {})
                alt = meta.get("image/png", {}).get("alt") if isinstance(meta, dict) else None
                alts.append(str(alt or meta.get("alt") or ""))
    return alts


# Reports are documents: no script runs, nothing loads from elsewhere (a report tells no third
# party it was opened, and a payload that slipped through an escape still cannot run).
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "script-src 'none'; base-uri 'none'; form-action 'none'"
)
_TEMPLATES = Path(__file__).resolve().parent / "templates"
# What HTML outputs may keep (nbconvert's SanitizeHTML, bleach): tables as pandas and Styler
# write them, with their <style>, and simple text markup. Anything else (script, svg, iframe,
# form, event handlers, javascript: links) is stripped; widget views and JavaScript outputs are
# dropped (their text/plain stays).
REPORT_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "div",
    "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p",
    "pre", "small", "span", "strong", "style", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
]  # fmt: skip
REPORT_ATTRIBUTES = {
    "*": ["class", "id", "title", "style"],
    "a": ["href"],
    "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
    "table": ["border"],
}
REPORT_STYLES = [
    "background-color", "border", "border-collapse", "color", "font-style", "font-weight",
    "padding", "text-align", "vertical-align", "white-space", "width",
]  # fmt: skip


def _strip_external(soup: Any) -> int:
    """Remove every element that would load something from elsewhere; return how many."""
    removed = 0
    for tag in soup.find_all(["script", "link", "iframe", "object", "embed", "base"]):
        if tag.name != "link" or tag.get("href"):  # a report runs no script (widget views too)
            tag.decompose()
            removed += 1
    for tag in soup.find_all(src=True):
        if not str(tag["src"]).startswith("data:"):
            del tag["src"]
            removed += 1
    return removed


def export_html(executed: Path, html_path: Path | None = None) -> Path:
    """Export an executed notebook to a self-contained, offline, sanitized HTML report.

    The code is hidden; images stay embedded (base64), and each chart gets its title as
    alternative text (`keep_figure` records it). The template (`toolkit/templates/offline`, the
    lab template without its CDN loads) references no require.js, MathJax, Mermaid or widget
    renderer, and carries a Content-Security-Policy (`REPORT_CSP`) that lets no script run and
    nothing load from another origin. Code cell outputs are sanitized by nbconvert's
    `SanitizeHTML` (bleach) with an allowlist that keeps pandas/Styler tables and their styles
    (`REPORT_TAGS`, `REPORT_ATTRIBUTES`, `REPORT_STYLES`): script, svg, iframes, forms, event
    handlers and javascript: links are escaped or dropped. Whatever would still load from
    elsewhere is removed (`_strip_external`). The file is 0600.
    """
    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    html_path = html_path or executed.with_suffix(".html")
    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)  # widget state would need a renderer from a CDN
    sanitizer = SanitizeHTML(tags=REPORT_TAGS, attributes=REPORT_ATTRIBUTES, styles=REPORT_STYLES)
    sanitizer.log.setLevel(logging.WARNING)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":  # outputs carry data; Markdown is the notebook's own text
            sanitizer.preprocess_cell(cell, {}, index)
    exporter = HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        template_name="offline",
        extra_template_basedirs=[str(_TEMPLATES)],
        require_js_url="",
        mathjax_url="",
        jquery_url="",
        widget_renderer_url="",
    )
    exporter.log.setLevel(logging.ERROR)  # it warns about missing alt text, set below
    resources = {"metadata": {"name": executed.stem}, "report_csp": REPORT_CSP}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    soup = BeautifulSoup(body, features="html.parser")
    alts = _image_alts(nb)
    images = soup.select('img[src^="data:image/png"]')
    for img, alt in zip(images, alts, strict=False):
        if alt:
            img["alt"] = alt
    _strip_external(soup)
    create_private(html_path)
    html_path.write_text(str(soup), encoding="utf-8")
    return html_path


# What every kernel a run starts gets in its environment, on top of this process's: no progress
# bars (`toolkit.progress`), since a report is a document, not a terminal.
HEADLESS_KERNEL_ENV = {"LEVER_TOOLKIT_PROGRESS": "0"}


@functools.cache
def _headless_kernel_manager_base() -> type:
    from jupyter_client import AsyncKernelManager

    class HeadlessKernelManager(AsyncKernelManager):
        run_cwd: str | None = None

        async def start_kernel(self, **kw: Any) -> None:
            env = dict(kw.pop("env", None) or os.environ)
            env.update(HEADLESS_KERNEL_ENV)
            if self.run_cwd:
                kw["cwd"] = self.run_cwd
            await super().start_kernel(env=env, **kw)

    return HeadlessKernelManager


def _headless_kernel_manager(cwd: Path) -> type:
    """An `AsyncKernelManager` class that starts its kernel in `cwd` with `HEADLESS_KERNEL_ENV`.

    Both go to the child process only. This process's `os.environ` and working directory are
    never changed: papermill's own `cwd=` does `os.chdir` for the whole run, so runs side by
    side in threads (a batch's parallel audits) started each other's kernels in the wrong
    folder.
    """
    base = _headless_kernel_manager_base()
    return type("RunKernelManager", (base,), {"run_cwd": str(cwd)})


def headless_defaults(notebook: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a headless run, with the defaults that keep personal data out of it.

    A notebook may default to fetching names for interactive use (`01-explore-tag-coverage`:
    `with_personal = True`, to search people by name in JupyterLab). A report is a file that
    gets shared, so when such a notebook runs headless and the caller chose neither
    `with_personal` nor `redact`, the run is redacted: names and emails become pseudonyms.
    Passing either parameter explicitly is a choice and is kept as given.

    Example:
        >>> headless_defaults(resolve_notebook("explore"), {})
        {'redact': True}
        >>> headless_defaults(resolve_notebook("explore"), {"with_personal": True})
        {'with_personal': True}
        >>> headless_defaults(resolve_notebook("audit"), {})
        {}
    """
    params = dict(parameters)
    declared = notebook_parameters(notebook)
    personal = {"with_personal", "redact"}
    if personal <= set(declared) and not personal & set(params):
        default = str(declared["with_personal"].get("default", "")).strip()
        if default == "True":
            params["redact"] = True
    return params


def _describe_failure(exc: Exception) -> tuple[int | None, str]:
    """(cell index, 'cell N (In [k]) `first line`: Error: message') from papermill's error."""
    index = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    source = str(getattr(exc, "source", "") or "")
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    if len(first) > 80:
        first = first[:79] + "…"
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = " ".join(str(getattr(exc, "evalue", exc)).split())
    where = f"cell {index}" if index is not None else "the notebook"
    if count is not None:
        where += f" (In [{count}])"
    if first:
        where += f" `{first}`"
    return index, f"{where}: {ename}: {evalue}"


def run_notebook(
    notebook: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    out_root: str | os.PathLike | None = None,
    name: str | None = None,
    *,
    kernel_name: str = KERNEL_NAME,
    execution_timeout: int | None = 900,
    log_output: bool = False,
) -> RunResult:
    """Execute a notebook with papermill into `out_root/<UTC timestamp>-<name>/`; export HTML.

    The kernel's working directory is the run folder, so the notebook's artifacts land beside
    the executed notebook. A failing cell does not raise: the result says which cell failed and
    why, and the partial notebook (and its HTML) are kept. Bad parameters raise
    `ConfigurationError` before any kernel starts. The kernel runs with `HEADLESS_KERNEL_ENV`
    (no progress bars) and `headless_defaults` (no names unless asked for).

    Args:
        notebook: a path, a file name in `notebooks/`, or an alias (`explore`, `audit`,
            `remediate`).
        parameters: values for the notebook's `parameters` cell (never a credential).
        out_root: where run folders go (default `config.REPORTS_DIR`).
        name: the run's name (default: the notebook's stem).

    Raises:
        ConfigurationError: unknown notebook or parameter, wrong-typed value, credential given.
        SecretLeakError: a produced file contained the credential (text files are redacted,
            binary ones left intact; see `scan_for_secrets`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = resolve_notebook(notebook)
    params = validate_run_parameters(path, dict(parameters or {}))
    params = headless_defaults(path, params)
    secrets = _secrets()
    _refuse_secret_values(params, secrets)
    name = _check_name(name or path.stem)
    folder = _unique_folder(Path(out_root) if out_root else config.REPORTS_DIR, name)
    result = RunResult(name=name, notebook=path, folder=folder, parameters=params)
    result.executed_path = folder / path.name
    result.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    create_private(result.executed_path)  # papermill rewrites it in place: it stays 0600
    t0 = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path),
            str(result.executed_path),
            parameters=params,
            kernel_name=kernel_name,
            cwd=None,  # the kernel's cwd is set by its manager: no process-wide chdir
            progress_bar=False,
            log_output=log_output,
            execution_timeout=execution_timeout,
            # the kernel's own chatter stays out of the terminal: its start-up warning (TCP on
            # loopback) and the "KeyboardInterrupt caught in kernel" ERROR it logs now and then
            # when jupyter_client interrupts it on shutdown; cell errors reach the report anyway
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            kernel_manager_class=_headless_kernel_manager(folder),
        )
    except PapermillExecutionError as exc:
        result.status = FAILED
        result.error_cell, result.error_message = _describe_failure(exc)
    except Exception as exc:  # kernel died, timeout, ...: keep what was saved
        result.status = FAILED
        result.error_message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    result.seconds = time.monotonic() - t0
    if result.executed_path.exists():
        try:
            result.html_path = export_html(result.executed_path)
        except Exception as exc:  # a report without HTML is still a report
            log.warning("HTML export of %s failed: %s", result.executed_path, exc)
    result.artifacts = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p not in (result.executed_path, result.html_path) and p.suffix != ".lock"
    )
    private_tree(folder)  # 0700 folders, 0600 files, whatever the umask
    leaked = scan_for_secrets(folder, secrets)
    if leaked:
        names = ", ".join(str(p.relative_to(folder)) for p in leaked)
        raise SecretLeakError(
            f"a credential (the Lever key or token, its Basic-auth or bearer form, or the "
            f"redaction salt) was found in {names} under {folder}; text files have been "
            "redacted, binary files (journal, snapshot) were left intact and private: rotate "
            "the key. This is a bug: please report it"
        )
    return result


# ------------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    name: str
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def read_only(self) -> bool:
        return self.notebook.stem in READ_ONLY_NOTEBOOKS


@dataclass
class BatchSpec:
    runs: list[RunSpec]
    parallel_audits: int = 1
    source: Path | None = None


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


_BATCH_KEYS = {"runs", "parallel_audits"}
_RUN_KEYS = {"name", "notebook", "parameters"}


def load_batch(path: str | os.PathLike) -> BatchSpec:
    """Read and check a batch file; any problem is one ConfigurationError line.

    Relative path parameters are taken from the batch file's folder and made absolute; a
    missing input file (`policy_path`, `snapshot_path`) is an error here, before any run.

    Format::

        parallel_audits: 1          # optional, default 1 (see docs/usage.md: one key, one limit)
        runs:
          - name: audit-all
            notebook: 02-audit-report.ipynb
            parameters: {include_archived: true}
    """
    path = Path(path)
    folder = Path(os.path.abspath(path)).parent
    try:
        data = safe_yaml_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"no such batch file: {path}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path.name}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigurationError(f"{path.name}: bad YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path.name}: expected a mapping with a 'runs' list")
    unknown = sorted(set(data) - _BATCH_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{path.name}: unknown key {', '.join(unknown)} (allowed: runs, parallel_audits)"
        )
    parallel = data.get("parallel_audits", 1)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= 16:
        raise ConfigurationError(f"{path.name}: parallel_audits must be an integer 1..16")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ConfigurationError(f"{path.name}: 'runs' must be a non-empty list")
    specs: list[RunSpec] = []
    seen: set[str] = set()
    for i, run in enumerate(runs, 1):
        where = f"{path.name}: run {i}"
        if not isinstance(run, dict):
            raise ConfigurationError(f"{where}: expected a mapping with name, notebook")
        unknown = sorted(set(run) - _RUN_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown key {', '.join(unknown)} (allowed: name, notebook, parameters)"
            )
        name, notebook = run.get("name"), run.get("notebook")
        if not isinstance(name, str) or not isinstance(notebook, str):
            raise ConfigurationError(f"{where}: 'name' and 'notebook' are required strings")
        try:
            _check_name(name)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        if name in seen:
            raise ConfigurationError(f"{where}: duplicate run name {short_repr(name)}")
        seen.add(name)
        params = run.get("parameters") or {}
        if not isinstance(params, dict):
            raise ConfigurationError(f"{where}: 'parameters' must be a mapping")
        try:
            nb = resolve_notebook(notebook)
            params = validate_run_parameters(nb, params)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where} ({name}): {exc}") from None
        params = absolute_path_parameters(params, folder)
        missing = missing_input_files(params)
        if missing:
            raise ConfigurationError(f"{where} ({name}): " + "; ".join(missing))
        specs.append(RunSpec(name=name, notebook=nb, parameters=params))
    return BatchSpec(runs=specs, parallel_audits=parallel, source=path)


def _groups(runs: list[RunSpec], parallel: int) -> list[list[RunSpec]]:
    """Consecutive read-only runs form one group (run side by side); any other run is alone."""
    groups: list[list[RunSpec]] = []
    for run in runs:
        if parallel > 1 and run.read_only and groups and groups[-1][0].read_only:
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
    folder = _unique_folder(Path(out_root) if out_root else config.REPORTS_DIR, f"batch-{stem}")
    results: dict[str, RunResult] = {}

    def one(run: RunSpec) -> RunResult:
        try:
            res = run_notebook(
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


def write_runs_csv(results: Sequence[RunResult], path: Path) -> Path:
    """One row per run: name, notebook, status, seconds, error, folder, html, notebook_out,
    started_at, then its key numbers (`toolkit.batch_index.NUMBER_COLUMNS`, "" when none)."""
    rows = [{k: csv_cell(v) for k, v in r.as_row(path.parent).items()} for r in results]
    create_private(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["name"])
        writer.writeheader()
        writer.writerows(rows)
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
    earlier batches' runs.csv, `toolkit.batch_index.batch_history`)."""
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
            f'<tr class="{cls}"><td>{esc(r.name)}</td><td>{esc(r.notebook.name)}</td>'
            f'<td class="status">{esc(r.status)}</td><td class="num">{row["seconds"]}</td>'
            f"{number_cells(row)}<td>{link}</td><td>{esc(r.error_message)}</td></tr>"
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
<table><thead><tr><th>run</th><th>notebook</th><th>status</th><th>seconds</th>
<th>split pairs</th><th>written (of planned)</th><th>failed writes</th><th>links</th>
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
