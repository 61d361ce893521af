"""A remediation's outcome, pure: the plan projected onto a snapshot, the tags it is about, why a
run did not succeed, and the command that resumes it (docs/architecture.md)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.audit import AuditResult
from toolkit.enums import FAILURE_STATES
from toolkit.errors import RemediationFailedError
from toolkit.files import write_csv_atomic, write_json_atomic
from toolkit.remediate.plan import Plan
from toolkit.remediate.verify import on_purpose_counts, verify_failures, verify_on_purpose
from toolkit.sanitize import private_dir

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.remediate.result import ApplyResult


def project_plan(frame: pd.DataFrame, plan: Plan | pd.DataFrame) -> pd.DataFrame:
    """The snapshot frame as it would be once the plan's rows are written (pure).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1"], "tags": [["a", "b"]]})
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o1"], "contact_id": ["c", "c"],
        ...                      "op": ["add", "remove"], "tag": ["x", "a"]})
        >>> project_plan(f, rows)["tags"].tolist()
        [['b', 'x']]
    """
    rows = plan.rows if isinstance(plan, Plan) else plan
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


def plan_tags(plan: Plan) -> list[str]:
    """Every tag a plan is about: its chosen tags, renames (both sides), and the rows' tags."""
    info = plan.info
    tags = list(info.tags or [])
    for old, new in (info.renames or {}).items():
        tags += [old, new]
    tags += [str(t) for t in getattr(plan, "rows", pd.DataFrame(columns=["tag"]))["tag"]]
    return list(dict.fromkeys(tags))


def remediation_problems(result: ApplyResult, residual: pd.DataFrame) -> list[str]:
    """Why a remediation run did not succeed, one phrase each; empty when it did.

    A dry run writes nothing and cannot fail here. A real apply fails when a change failed, an
    opportunity was not found, changes are left pending, or verify found plan rows that do not
    hold: `verify_failures`, the one rule `lever-tags verify` applies too (rows the apply's
    journal left out on purpose, for drift or anonymization, do not count).

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
    unexpected = len(verify_failures(residual)) if len(residual) else 0
    if unexpected:
        problems.append(f"{unexpected} plan rows do not hold in Lever after verify")
    return problems


def _first_failure(outcomes: Any) -> str:
    if not isinstance(outcomes, pd.DataFrame) or outcomes.empty:
        return ""
    if not {"state", "message"} <= set(outcomes.columns):
        return ""
    bad = outcomes.loc[outcomes["state"].isin(FAILURE_STATES), "message"].dropna()
    text = " ".join(str(bad.iloc[0]).split()) if len(bad) else ""
    return text if len(text) <= 160 else text[:159] + "…"


def resume_command(result: ApplyResult, plan: Plan | None = None) -> str:
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
        >>> from pathlib import Path
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


def rollback_resume_command(result: ApplyResult, source_journal: str | os.PathLike) -> str:
    """The CLI command that resumes THIS rollback (its source journal and its own journal).

    Example:
        >>> from types import SimpleNamespace
        >>> rollback_resume_command(SimpleNamespace(journal_path="r.sqlite"), "j.sqlite")
        'lever-tags rollback --journal j.sqlite --yes --rollback-journal r.sqlite'
    """
    parts = ["lever-tags", "rollback", "--journal", str(source_journal), "--yes"]
    if getattr(result, "journal_path", None):
        parts += ["--rollback-journal", str(result.journal_path)]
    return " ".join(shlex.quote(p) for p in parts)


def require_success(result: ApplyResult, residual: pd.DataFrame, plan: Plan | None = None) -> str:
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


def write_remediation_summary(
    output_dir: str | os.PathLike,
    *,
    plan: Plan,
    result: ApplyResult,
    before: AuditResult,
    after: AuditResult,
    residual: pd.DataFrame,
) -> dict[str, Path]:
    """`remediation.json` (counts, before/after summaries) and `outcomes.csv` beside the report."""
    out = Path(output_dir)
    private_dir(out)
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
        "residual_on_purpose": on_purpose_counts(verify_on_purpose(residual))
        if len(residual)
        else {},
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
