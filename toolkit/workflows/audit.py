"""Audit an account (`lever-tags audit`, notebook 02), and the audits before and after a
remediation (notebook 03)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.audit import AuditResult, considered, run_audit
from toolkit.audit.diff import AuditDiff, diff_sides, side_from_audit
from toolkit.audit.report import (
    audit_meta,
    audit_summary,
    contact_labels,
    contact_people,
    focus_summary,
    write_audit_artifacts,
)
from toolkit.policy import Policy, policy_tag_warnings
from toolkit.redact import salt_kind
from toolkit.remediate.outcome import plan_tags, project_plan
from toolkit.snapshot.fetch import fetch_snapshot
from toolkit.snapshot.frame import Snapshot, known_tags
from toolkit.snapshot.store import save_snapshot
from toolkit.workflows.diff import SNAPSHOT_IN_FOLDER, contact_names, snapshot_side, write_diff
from toolkit.workflows.inputs import considered_archived, open_snapshot, optional_policy
from toolkit.workflows.worklists import audit_worklist, people_to_check

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI
    from toolkit.remediate.plan import Plan
    from toolkit.remediate.result import ApplyResult


@dataclass
class AuditRun:
    """An audit of an account: the inputs as decided, the result, and the files written."""

    snapshot: Snapshot
    result: AuditResult
    policy: Policy | None
    include_archived: bool
    summary: dict[str, Any]
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)
    gaps: int = 0  # split pairs that count: the policy's contact-level ones, else all
    since: AuditDiff | None = None  # what changed since `previous_snapshot` (None: not asked)

    @property
    def gaps_by_tag(self) -> dict[str, int]:
        """The split pairs that count (`gaps`), per tag."""
        pairs = self.result.split_pairs
        tags = list(getattr(self.policy, "contact_level", None) or [])
        if tags:
            pairs = pairs.loc[pairs["tag"].isin(tags)]
        counts = pairs["tag"].value_counts()  # categorical: every category, zeros included
        return {str(tag): int(n) for tag, n in counts.items() if n > 0}

    @property
    def frame(self) -> pd.DataFrame:
        return self.snapshot.frame

    @property
    def labels(self) -> dict[str, str]:
        """Contact labels for charts: names or pseudonyms when the snapshot holds them."""
        return contact_labels(self.snapshot.frame)

    def people_to_check(self) -> pd.DataFrame:
        """The audit's work list: each opportunity missing a tag that belongs to the person
        (`toolkit.workflows.worklists.people_to_check`), sorted by owner."""
        return people_to_check(self.result, self.snapshot, self.policy)

    @property
    def considered(self) -> pd.DataFrame:
        """The opportunities the audit considered (archived ones only when they count)."""
        return considered(self.snapshot.frame, self.include_archived)


def audit_account(
    out_dir: str | os.PathLike,
    *,
    snapshot_path: str | os.PathLike | None = None,
    client: LeverAPI | None = None,
    policy_path: str | os.PathLike | None = None,
    include_archived: bool = True,
    personal: str = "none",
    previous_snapshot: str | os.PathLike | None = None,
    keep_snapshot: bool = False,
) -> AuditRun:
    """Audit an account (or a saved snapshot) and write `summary.json` and the CSVs.

    What `lever-tags audit` and notebook 02 both do: the policy (if any) decides archived
    handling with the parameter; a snapshot fetched without archived ones is audited as such;
    names or pseudonyms join the CSVs only when asked; the policy's tags the account does not use
    are warnings; with a policy, `summary.json` has a `policy` section counting its
    contact-level split pairs.

    Args:
        out_dir: the report folder (created).
        snapshot_path: audit this saved snapshot offline; None fetches from Lever.
        client: a `LeverClient` for the fetch (default from the environment).
        policy_path: a policy YAML.
        include_archived: consider archived opportunities (the policy may turn this off).
        personal: ``none``, ``names`` or ``pseudonyms`` (see `personal_data`).
        previous_snapshot: an earlier snapshot of the account: `AuditRun.since` says what
            changed since (`toolkit.audit.diff`), written as `since_last_run.json`,
            `changes.csv` and `per_tag.csv` (names only with personal data).
        keep_snapshot: save this run's snapshot as `snapshot.parquet` in the report folder
            (a batch keeps it as the next run's `previous_snapshot`).
    """
    policy = optional_policy(policy_path)
    include_archived = considered_archived(include_archived, policy)
    snap = open_snapshot(
        snapshot_path,
        client=client,
        include_archived=include_archived,
        personal=personal,
        require_names=True,
    )
    if snap.info.include_archived is False:
        include_archived = False  # archived ones were never fetched into this snapshot
    meta = {k: v for k, v in snap.meta.items() if k not in ("redacted", "redaction")}
    frame = snap.frame
    if policy is not None and policy.include_archived != include_archived:
        policy = replace(policy, include_archived=include_archived)
    result = run_audit(frame, include_archived=include_archived, policy=policy)
    warnings = list(snap.warnings)
    if policy is not None:
        warnings += policy_tag_warnings(policy, known_tags(frame))
    meta.update(warnings=warnings, include_archived=include_archived)
    meta = audit_meta(meta, result, policy)  # with a policy, its contact-level numbers
    gaps = int(focus_summary(result, policy)["split_pairs"])
    meta["personal_data"] = personal
    if personal == "pseudonyms":
        meta["redaction"] = salt_kind()  # which salt, in words; never the salt itself
    people = contact_people(frame) if personal != "none" and "name" in frame.columns else None
    paths = write_audit_artifacts(result, out_dir, meta, people=people)
    since = None
    if previous_snapshot:
        named = personal != "none"
        since = diff_sides(
            snapshot_side(previous_snapshot, with_names=named),
            side_from_audit(result, contact_names(frame) if named else None),
        )
        paths.update(write_diff(since, out_dir))
    if keep_snapshot:
        paths["snapshot"] = save_snapshot(snap, Path(out_dir) / SNAPSHOT_IN_FOLDER)
    if people is not None:  # names (or pseudonyms) asked for: the people to check, as a sheet
        sheets = audit_worklist(result, snap, policy, out_dir)
        paths.update({"worklist_xlsx": sheets["xlsx"], "worklist_csv": sheets["csv"]})
    return AuditRun(
        snapshot=snap,
        result=result,
        policy=policy,
        include_archived=include_archived,
        summary=audit_summary(result, meta),
        paths=paths,
        warnings=warnings,
        gaps=gaps,
        since=since,
    )


# -- before and after ----------------------------------------------------------------------------


def audit_for_plan(
    frame: pd.DataFrame,
    plan: Plan,
    *,
    include_archived: bool = True,
    policy: Policy | None = None,
) -> AuditResult:
    """The audit of `frame` restricted to the plan's tags (what the plan can change)."""
    return run_audit(frame, include_archived=include_archived, tags=plan_tags(plan), policy=policy)


def audit_after(
    client: LeverAPI,
    snap: Snapshot,
    plan: Plan,
    result: ApplyResult,
    *,
    include_archived: bool = True,
    policy: Policy | None = None,
) -> AuditResult:
    """The audit, restricted to the plan's tags, after the run: of a fresh fetch after a real
    apply, of the snapshot with the plan projected onto it after a dry run. `options["after"]`
    says which."""
    if result.dry_run:
        frame, how = project_plan(snap.frame, plan), "projected (dry run: nothing was written)"
    else:
        frame = fetch_snapshot(client, include_archived=include_archived).frame
        how = "re-fetched after the apply"
    after = audit_for_plan(frame, plan, include_archived=include_archived, policy=policy)
    after.options["after"] = how
    return after
