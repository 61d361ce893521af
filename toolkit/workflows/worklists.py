"""Work lists a person can act on (`audit --with-names`, `plan --with-names`), and applying an
edited one (`lever-tags apply SHEET`): the sheets of `toolkit.remediate.worklistfile`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from toolkit.audit import AuditResult
from toolkit.policy import Policy
from toolkit.remediate.apply import client_host
from toolkit.remediate.plan import Plan, PlanError
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.worklist import worklist_frame
from toolkit.remediate.worklistfile import is_worklist, plan_from_worklist, write_worklist
from toolkit.snapshot.frame import Snapshot

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI

HOW_TO_APPLY = (
    "Delete the rows (whole rows) you do not want written, save the file (.xlsx, or the .csv "
    "downloaded from Google Sheets), then run `lever-tags apply <this file>` for a dry run and "
    "add --yes to write: only the rows left are written, after the same checks as the plan "
    "(same account, same plan, re-read of the current tags)."
)


def plan_worklist(plan: Plan, snapshot: Snapshot) -> dict[str, Path]:
    """Write `<plan>.worklist.xlsx` and `.csv`: one row per person and opportunity to change."""
    host = plan.info.snapshot_ref.host or snapshot.info.host
    frame = worklist_frame(plan.rows, snapshot.frame, host=host, plan_sha256=plan.sha256)
    about = {
        "What this is": f"The changes of the plan {plan.path.name if plan.path else ''}, one row "
        "per person and opportunity, for review.",
        "How to use it": HOW_TO_APPLY,
        "plan": plan.sha256,
        "account": host or "",
        "mode": str(plan.mode or ""),
        "tags": ", ".join(plan.info.tags or []),
    }
    return write_worklist(frame, plan.path or Path("plan.csv"), about)


def audit_worklist(
    result: AuditResult, snapshot: Snapshot, policy: Policy | None, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write `worklist.xlsx` and `.csv` in the audit folder: the people to check.

    The missing assignments of the tags that belong to the person: the policy's contact-level
    tags, else the tags the evidence calls likely contact-level (posting tags differ on purpose).
    """
    tags = focus_tags(result, policy)
    host = snapshot.info.host
    frame = people_to_check(result, snapshot, policy)
    about = {
        "What this is": "The people to check: each row an opportunity without a tag that the "
        "person's other opportunities carry (" + (", ".join(tags) or "no tag") + ").",
        "How to fix": "Review it, then plan the changes with `lever-tags plan --with-names "
        "--tag T` (or --policy FILE) and edit that plan's sheet.",
        "account": host or "",
    }
    return write_worklist(frame, out_dir, about)


def people_to_check(result: AuditResult, snapshot: Snapshot, policy: Policy | None) -> pd.DataFrame:
    """One row per person and opportunity missing a tag that belongs to the person (the
    `focus_tags`), with posting, stage, owner and a link: the audit's work list."""
    tags = set(focus_tags(result, policy))
    missing = result.missing_assignments
    changes = missing[missing["tag"].astype(str).isin(tags)]
    changes = pd.DataFrame(
        {c: changes[c].astype(str).tolist() for c in ("opportunity_id", "contact_id", "tag")}
    )
    return worklist_frame(changes, snapshot.frame, host=snapshot.info.host)


def focus_tags(result: AuditResult, policy: Policy | None) -> list[str]:
    """The tags a work list is about: the policy's contact-level ones, else the evidence's
    likely contact-level ones."""
    if policy is not None:
        return list(policy.contact_level)
    evidence = result.evidence
    if evidence.empty or "suggestion" not in evidence:
        return []
    return (
        evidence.loc[evidence["suggestion"] == "likely contact-level", "tag"].astype(str).tolist()
    )


def open_plan(path: str | os.PathLike, plan_path: str | os.PathLike | None = None) -> Plan:
    """A plan CSV, or an edited work-list sheet turned back into its plan's rows left."""
    if is_worklist(path):
        return plan_from_worklist(path, plan_path)
    if plan_path:
        raise PlanError("--plan goes with a work-list sheet (.xlsx or its .csv), not a plan CSV")
    return load_plan(path)


def check_sheet_host(plan: Plan, client: LeverAPI | None) -> None:
    """Refuse, before any request, a sheet of another account than the client's (`PlanError`)."""
    sheet = plan.info.worklist or {}
    expected = sheet.get("account") or plan.info.snapshot_ref.host
    actual = client_host(client) if client is not None else None
    if sheet and expected and actual and expected != actual:
        raise PlanError(
            f"{sheet.get('path')} belongs to the Lever account at {expected}, and LEVER_BASE_URL "
            f"points at {actual}; nothing was written"
        )
