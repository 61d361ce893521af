"""The use cases: one function per job, called by the CLI (`toolkit/commands/`) and the notebooks.

Each job decides here, once, what both front ends used to decide apart: which opportunities are
considered (the parameter and the policy), which personal data a report holds, which warnings a
run gives, what `summary.json` says about a policy, where a plan's snapshot and journal go. The
commands parse arguments and print; the notebooks call one function per cell and display. See
docs/architecture.md.

Example:
    >>> run = audit_account("reports/audit", snapshot_path="snap.parquet")  # doctest: +SKIP
    >>> run.summary["split_pairs"], run.paths["summary"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.audit import AuditResult, considered, run_audit
from toolkit.audit.report import (
    audit_meta,
    audit_summary,
    contact_labels,
    contact_people,
    focus_summary,
    write_audit_artifacts,
)
from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError
from toolkit.files import sidecar, write_csv_atomic
from toolkit.notebook import execute
from toolkit.notebook.execute import RunResult, check_out_root
from toolkit.notebook.params import run_parameters
from toolkit.policy import Policy, load_policy, policy_tag_warnings, unknown_tag_warnings
from toolkit.redact import redact_frame, salt_kind
from toolkit.remediate.apply import apply_plan, default_journal_path
from toolkit.remediate.drift import check_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import JournalError
from toolkit.remediate.outcome import (
    plan_tags,
    project_plan,
    require_success,
    write_remediation_summary,
)
from toolkit.remediate.plan import Plan, nothing_planned
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planner import check_plan_request, make_plan
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.rollback import rollback
from toolkit.remediate.verify import VERIFY_COLUMNS, verify_failures, verify_on_purpose, verify_plan
from toolkit.snapshot.fetch import fetch_snapshot
from toolkit.snapshot.frame import Snapshot, known_tags
from toolkit.snapshot.store import load_snapshot, save_snapshot

PERSONAL_DATA = ("none", "names", "pseudonyms")
# The jobs, and the remediation steps notebook 03 calls as they are (re-exported here so that
# both front ends find every step in this one module).
__all__ = [
    "apply_changes",
    "audit_account",
    "audit_after",
    "audit_for_plan",
    "check_drift",
    "open_snapshot",
    "plan_changes",
    "plan_tags",
    "require_success",
    "roll_back",
    "run_report",
    "verify_applied",
    "verify_changes",
    "write_remediation_summary",
]


def personal_data(with_names: bool = False, redact: bool = False) -> str:
    """The personal data a report holds: ``none``, ``names`` or ``pseudonyms`` (redact wins).

    Example:
        >>> personal_data(), personal_data(with_names=True), personal_data(True, redact=True)
        ('none', 'names', 'pseudonyms')
    """
    return "pseudonyms" if redact else "names" if with_names else "none"


def considered_archived(include_archived: bool = True, policy: Policy | None = None) -> bool:
    """Archived opportunities count only if both the caller and the policy allow them.

    Example:
        >>> considered_archived(True), considered_archived(False)
        (True, False)
        >>> considered_archived(True, Policy(include_archived=False))
        False
    """
    return bool(include_archived) and bool(getattr(policy, "include_archived", True))


def optional_policy(policy_path: str | os.PathLike | None = None) -> Policy | None:
    """The policy at `policy_path`, or None when none is given."""
    return load_policy(policy_path) if policy_path else None


def open_snapshot(
    snapshot_path: str | os.PathLike | None = None,
    *,
    client: Any = None,
    include_archived: bool = True,
    personal: str = "none",
    require_names: bool = False,
) -> Snapshot:
    """Load a saved snapshot, or fetch a fresh one (with the credential from the environment).

    Args:
        snapshot_path: a Parquet snapshot; None or "" fetches from Lever.
        client: a `LeverClient` for the fetch; default `LeverClient.from_env()`.
        include_archived: fetch archived opportunities too (a loaded snapshot is kept whole:
            the audit and the plan leave them out, and say so in the skipped rows).
        personal: ``none``, ``names`` (fetch names and emails) or ``pseudonyms`` (fetch them,
            then replace them by stable pseudonyms, `toolkit.redact`).
        require_names: a loaded snapshot without names is refused when names are asked for
            (a report that promises names must hold them).
    """
    if personal not in PERSONAL_DATA:
        raise ConfigurationError(f"personal data must be one of {', '.join(PERSONAL_DATA)}")
    if snapshot_path:
        snap = load_snapshot(snapshot_path)
        if require_names and personal != "none" and "name" not in snap.frame.columns:
            raise ConfigurationError(
                f"{snapshot_path} holds no names; fetch it with `lever-tags snapshot "
                "--with-personal`, or drop --with-names/--redact (with_personal/redact)"
            )
    else:
        snap = fetch_snapshot(
            client or LeverClient.from_env(),
            include_archived=include_archived,
            with_personal=personal != "none",
        )
    if personal == "pseudonyms" and "name" in snap.frame.columns:
        meta = dict(snap.meta, redacted=True, redaction=salt_kind())  # the kind, never the salt
        snap = Snapshot(redact_frame(snap.frame), meta)
    return snap


# -- audit ------------------------------------------------------------------------------------


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

    @property
    def frame(self) -> pd.DataFrame:
        return self.snapshot.frame

    @property
    def labels(self) -> dict[str, str]:
        """Contact labels for charts: names or pseudonyms when the snapshot holds them."""
        return contact_labels(self.snapshot.frame)

    @property
    def considered(self) -> pd.DataFrame:
        """The opportunities the audit considered (archived ones only when they count)."""
        return considered(self.snapshot.frame, self.include_archived)


def audit_account(
    out_dir: str | os.PathLike,
    *,
    snapshot_path: str | os.PathLike | None = None,
    client: Any = None,
    policy_path: str | os.PathLike | None = None,
    include_archived: bool = True,
    personal: str = "none",
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
    if snap.meta.get("include_archived") is False:
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
    return AuditRun(
        snapshot=snap,
        result=result,
        policy=policy,
        include_archived=include_archived,
        summary=audit_summary(result, meta),
        paths=paths,
        warnings=warnings,
        gaps=gaps,
    )


# -- plan -------------------------------------------------------------------------------------


@dataclass
class PlanRun:
    """A plan made and saved, with the snapshot it came from and its warnings."""

    plan: Plan
    snapshot: Snapshot
    policy: Policy | None
    include_archived: bool
    path: Path | None
    warnings: list[str] = field(default_factory=list)
    note: str = ""


def plan_changes(
    out: str | os.PathLike,
    *,
    snapshot_path: str | os.PathLike | None = None,
    client: Any = None,
    mode: str = "propagate",
    tags: Sequence[str] | None = None,
    policy_path: str | os.PathLike | None = None,
    renames: Mapping[str, str] | None = None,
    include_archived: bool = True,
    allow_nothing: bool = False,
    created_at: str | None = None,
) -> PlanRun:
    """Plan the writes (propagate, remove, rename) and save the plan CSV and its sidecars.

    What `lever-tags plan` and notebook 03 both do: without a snapshot a fresh one is fetched
    (every opportunity, archived ones too, so the skipped rows can say why) and saved beside the
    plan as `<plan>.snapshot.parquet`; the plan's meta records the policy file and the snapshot
    it came from; tags the account does not use are warnings.

    Args:
        out: the plan CSV to write.
        snapshot_path: plan from this saved snapshot; None fetches one.
        client: a `LeverClient` for the fetch (default from the environment).
        mode, tags, renames: as `toolkit.remediate.plan.make_plan`.
        policy_path: a policy YAML (contact_level tags, never_touch, archived handling).
        include_archived: write to archived opportunities too (the policy may turn this off).
        allow_nothing: no tags and no policy give an empty plan with a note instead of an
            error (a notebook run with its defaults previews nothing and says why).
        created_at: the plan's creation time (ISO 8601); default now.
    """
    out = Path(out)
    policy = optional_policy(policy_path)
    include_archived = considered_archived(include_archived, policy)
    chosen = list(tags or []) or list(getattr(policy, "contact_level", None) or [])
    nothing = allow_nothing and not chosen and not (mode == "rename" and renames)
    if not nothing:
        check_plan_request(mode, tags, policy, renames)  # before anything is fetched
    if snapshot_path:
        snap, source = load_snapshot(snapshot_path), str(snapshot_path)
    else:
        snap = fetch_snapshot(client or LeverClient.from_env(), include_archived=True)
        source = str(save_snapshot(snap, sidecar(out, ".snapshot.parquet")))
    named = list(tags or []) + list(renames or {})
    warnings = [*snap.warnings, *unknown_tag_warnings(named, known_tags(snap.frame))]
    created_at = created_at or datetime.now(UTC).isoformat(timespec="seconds")
    note = ""
    if nothing:
        note = "No tags chosen: set `tags` or `policy_path` to plan changes; nothing is planned."
        plan = nothing_planned(mode)
    else:
        plan = make_plan(
            snap,
            mode=mode,
            tags=list(tags) if tags else None,
            policy=policy,
            renames=dict(renames) if renames else None,
            include_archived=include_archived,
            created_at=created_at,
        )
    if policy_path:
        plan.meta["policy_path"] = str(policy_path)
    if "snapshot" in plan.meta:
        plan.meta["snapshot"]["path"] = source
    save_plan(plan, out)
    return PlanRun(plan, snap, policy, include_archived, out, warnings, note)


# -- apply, verify, rollback ---------------------------------------------------------------------


def apply_changes(
    client: Any,
    plan: Plan | str | os.PathLike,
    *,
    journal_path: str | os.PathLike | None = None,
    dry_run: bool = True,
    **options: Any,
) -> ApplyResult:
    """Apply a plan (dry run unless told): `toolkit.remediate.apply.apply_plan`, journaled in
    `journal_path` or `<plan>.journal.sqlite`."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    if not dry_run and journal_path is None and plan.path is not None:
        journal_path = default_journal_path(plan.path)
    return apply_plan(client, plan, journal_path=journal_path, dry_run=dry_run, **options)


def roll_back(client: Any, journal_path: str | os.PathLike, **options: Any) -> ApplyResult:
    """Undo what a journal's run changed (dry run unless ``dry_run=False``):
    `toolkit.remediate.rollback.rollback`."""
    if not Path(journal_path).is_file():
        raise ConfigurationError(f"journal not found: {journal_path}")
    return rollback(client, journal_path, **options)


@dataclass
class VerifyRun:
    """Plan rows that do not hold, told apart from rows the run left out on purpose."""

    rows: int
    bad: pd.DataFrame
    failures: pd.DataFrame
    on_purpose: pd.DataFrame
    journal: Path | None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures.empty


def verify_journal(plan: Plan, journal: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The journal to verify against: the given one, else the plan's default journal when it
    exists and belongs to this plan. Returns (path or None, a note when one was not used)."""
    if journal:
        if not Path(journal).is_file():
            raise ConfigurationError(f"journal not found: {journal}")
        return Path(journal), ""
    if plan.path is None:
        return None, ""
    path = default_journal_path(plan.path)
    if not path.is_file():
        return None, ""
    try:
        with Journal(path, lock=False, create=False) as opened:
            run = opened.run()
    except JournalError:
        run = None
    if not run or run["kind"] != "apply" or run["plan_sha256"] != plan.sha256:
        return None, f"{path} is not this plan's journal; not used"
    return path, ""


def verify_changes(
    client: Any,
    plan: Plan | str | os.PathLike,
    *,
    journal: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    workers: int = 8,
) -> VerifyRun:
    """Re-read the plan's opportunities; rows that do not hold, apart from those its journal
    left out on purpose (drift, anonymized). `out` gets the rows that do not hold (CSV)."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    path, note = verify_journal(plan, journal)
    bad = verify_plan(client, plan, path, workers=workers)
    if out:
        write_csv_atomic(out, bad)
    return VerifyRun(
        rows=len(plan.rows),
        bad=bad,
        failures=verify_failures(bad),
        on_purpose=verify_on_purpose(bad),
        journal=path,
        notes=[note] if note else [],
    )


def verify_applied(client: Any, plan: Plan, result: Any) -> pd.DataFrame:
    """Plan rows that do not hold after a real apply; empty after a dry run (nothing to check)."""
    if result.dry_run or plan.rows.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    return verify_plan(client, plan)


# -- before and after ----------------------------------------------------------------------------


def audit_for_plan(
    frame: pd.DataFrame, plan: Any, *, include_archived: bool = True, policy: Any = None
) -> AuditResult:
    """The audit of `frame` restricted to the plan's tags (what the plan can change)."""
    return run_audit(frame, include_archived=include_archived, tags=plan_tags(plan), policy=policy)


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
    if result.dry_run:
        frame, how = project_plan(snap.frame, plan), "projected (dry run: nothing was written)"
    else:
        frame = fetch_snapshot(client, include_archived=include_archived).frame
        how = "re-fetched after the apply"
    after = audit_for_plan(frame, plan, include_archived=include_archived, policy=policy)
    after.options["after"] = how
    return after


# -- reports -------------------------------------------------------------------------------------


def run_report(
    notebook: str | os.PathLike,
    parameters: Mapping[str, Any],
    *,
    base: str | os.PathLike,
    out_root: str | os.PathLike | None = None,
    name: str | None = None,
    **options: Any,
) -> RunResult:
    """Run one notebook headless into its own folder, with an HTML report.

    Relative path parameters are taken from `base` (where the command was typed); a missing
    input file or an `out_root` that is a file is refused before any kernel starts.
    """
    if out_root:
        check_out_root(out_root)
    params = run_parameters(parameters, base)
    return execute.run_notebook(notebook, params, out_root, name, **options)
