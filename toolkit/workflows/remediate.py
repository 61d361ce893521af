"""Plan, apply, verify and roll back (`lever-tags plan|apply|verify|rollback`, notebook 03)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.client import LeverClient
from toolkit.client.account import account_of, check_account, check_host
from toolkit.enums import Mode
from toolkit.errors import ConfigurationError, LeverError
from toolkit.files import sidecar, write_csv_atomic
from toolkit.ledger.entry import LedgerRun, open_ledger_run
from toolkit.policy import Policy, unknown_tag_warnings
from toolkit.remediate.apply import apply_plan, check_plan_account, default_journal_path
from toolkit.remediate.drift import DRIFT_COLUMNS, check_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import JournalError
from toolkit.remediate.plan import Plan, nothing_planned
from toolkit.remediate.planfile import save_plan
from toolkit.remediate.planner import check_plan_request, make_plan
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.rollback import rollback
from toolkit.remediate.verify import (
    VERIFY_COLUMNS,
    on_purpose_counts,
    verify_failures,
    verify_on_purpose,
    verify_plan,
)
from toolkit.scrub import scrub
from toolkit.snapshot.fetch import fetch_snapshot
from toolkit.snapshot.frame import Snapshot, known_tags
from toolkit.snapshot.store import load_snapshot, save_snapshot
from toolkit.workflows.contacts import people_from_file, read_contacts_file
from toolkit.workflows.inputs import considered_archived, optional_policy
from toolkit.workflows.worklists import check_sheet_host, open_plan, plan_worklist

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI


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
    worklist: dict[str, Path] = field(default_factory=dict)


def plan_changes(
    out: str | os.PathLike,
    *,
    snapshot_path: str | os.PathLike | None = None,
    client: LeverAPI | None = None,
    mode: str = "propagate",
    tags: Sequence[str] | None = None,
    policy_path: str | os.PathLike | None = None,
    renames: Mapping[str, str] | None = None,
    include_archived: bool = True,
    allow_nothing: bool = False,
    created_at: str | None = None,
    contacts_path: str | os.PathLike | None = None,
    with_names: bool = False,
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
        contacts_path: plan for the people this file names only (contact ids or emails, one a
            line or a CSV column: `toolkit.remediate.contacts`); rows matching nobody, or an
            email several contacts share, go to the skipped rows with the reason.
        with_names: fetch names too (or require them in `snapshot_path`) and write the work
            list `<plan>.worklist.xlsx` / `.csv` beside the plan (`PlanRun.worklist`).
    """
    out = Path(out)
    policy = optional_policy(policy_path)
    include_archived = considered_archived(include_archived, policy)
    chosen = list(tags or []) or list(getattr(policy, "contact_level", None) or [])
    nothing = allow_nothing and not chosen and not (mode == Mode.RENAME and renames)
    rows = read_contacts_file(contacts_path) if contacts_path else None
    if not nothing:
        check_plan_request(mode, tags, policy, renames, contacts=rows is not None)  # no fetch yet
    if snapshot_path:
        snap, source = load_snapshot(snapshot_path), str(snapshot_path)
        account_note = check_snapshot_account(snap, client, f"the snapshot {snapshot_path}")
        if with_names and "name" not in snap.frame.columns:
            raise ConfigurationError(
                f"{snapshot_path} holds no names; fetch it with `lever-tags snapshot "
                "--with-personal`, or drop --with-names"
            )
    else:
        snap = fetch_snapshot(
            client or LeverClient.from_env(), include_archived=True, with_personal=with_names
        )
        source = str(save_snapshot(snap, sidecar(out, ".snapshot.parquet")))
    named = list(tags or []) + list(renames or {})
    warnings = [*snap.warnings, *unknown_tag_warnings(named, known_tags(snap.frame))]
    if snapshot_path and account_note:
        warnings.append(account_note)
    created_at = created_at or datetime.now(UTC).isoformat(timespec="seconds")
    note = ""
    if nothing:
        note = "No tags chosen: set `tags` or `policy_path` to plan changes; nothing is planned."
        plan = nothing_planned(mode)
    else:
        people = None
        if rows is not None:
            op = "remove" if mode == Mode.REMOVE else "add"
            people = people_from_file(rows, snap.frame, client=client, op=op, tags=chosen)
        plan = make_plan(
            snap,
            contacts=people.contact_ids if people is not None else None,
            mode=mode,
            tags=list(tags) if tags else None,
            policy=policy,
            renames=dict(renames) if renames else None,
            include_archived=include_archived,
            created_at=created_at,
        )
        if people is not None and rows is not None:
            plan.skipped = pd.concat([plan.skipped, people.skipped], ignore_index=True)
            plan.meta.update(
                contacts_file=str(contacts_path),
                contacts_rows=len(rows),
                contacts_skipped_rows=int(people.skipped["reason"].nunique()),
                emails_matched_through=people.emails_from,
            )
            plan.meta["counts"] = plan.counts()
    info = plan.info
    if policy_path:
        info = replace(info, policy_path=str(policy_path))
    if info.snapshot is not None:
        info = replace(info, snapshot=replace(info.snapshot, path=source))
    plan.meta = info.to_dict()
    save_plan(plan, out)
    run = PlanRun(plan, snap, policy, include_archived, out, warnings, note)
    if with_names:
        run.worklist = plan_worklist(plan, snap)
    return run


def check_snapshot_account(snap: Snapshot, client: LeverAPI | None, what: str) -> str:
    """Refuse a saved snapshot of another account than the configured key reads.

    Planning from a saved snapshot needs no request, so it still works offline: without a key,
    or with Lever unreachable, the check is skipped and the returned warning says so (apply
    checks the plan's account again before it writes anything).

    Raises:
        AccountMismatchError: the snapshot's account is not the key's (CLI exit 2).
    """
    recorded = snap.info.account
    if not recorded:
        return ""
    try:
        client = client or LeverClient.from_env()
    except ConfigurationError as exc:
        return f"the snapshot's Lever account was not checked ({scrub(exc)}); apply checks it"
    check_host(recorded, client, what)  # another host: refused before any request
    try:
        current = account_of(client)
    except LeverError as exc:
        return f"the snapshot's Lever account was not checked ({scrub(exc)}); apply checks it"
    check_account(recorded, current, what)
    return ""


# -- apply, verify, rollback ---------------------------------------------------------------------


def apply_changes(
    client: LeverAPI | None,
    plan: Plan | str | os.PathLike,
    *,
    journal_path: str | os.PathLike | None = None,
    dry_run: bool = True,
    operator: str | None = None,
    reason: str = "",
    ledger_path: str | os.PathLike | None = None,
    **options: Any,
) -> ApplyResult:
    """Apply a plan (dry run unless told): `toolkit.remediate.apply.apply_plan`, journaled in
    `journal_path` or `<plan>.journal.sqlite`; a real run's writes also go to the ledger
    (`ledger_path`, else `LEVER_LEDGER`, else beside the reports) with `operator` (default: the
    OS user) and `reason`."""
    if not isinstance(plan, Plan):
        plan = open_plan(plan)
    check_sheet_host(plan, client)  # a sheet of another account: refused before any request
    if not dry_run and journal_path is None and plan.path is not None:
        journal_path = default_journal_path(plan.path)
    if not dry_run:
        options["ledger"] = ledger_factory(client, "apply", operator, reason, ledger_path)
    return apply_plan(client, plan, journal_path=journal_path, dry_run=dry_run, **options)


def roll_back(
    client: LeverAPI,
    journal_path: str | os.PathLike,
    *,
    operator: str | None = None,
    reason: str = "",
    ledger_path: str | os.PathLike | None = None,
    **options: Any,
) -> ApplyResult:
    """Undo what a journal's run changed (dry run unless ``dry_run=False``):
    `toolkit.remediate.rollback.rollback`; a real run's writes also go to the ledger."""
    if not Path(journal_path).is_file():
        raise ConfigurationError(f"journal not found: {journal_path}")
    if options.get("dry_run") is False:
        options["ledger"] = ledger_factory(client, "rollback", operator, reason, ledger_path)
    return rollback(client, journal_path, **options)


def ledger_factory(
    client: LeverAPI | None,
    source: str,
    operator: str | None,
    reason: str,
    path: str | os.PathLike | None,
) -> Callable[[dict[str, Any] | None, Plan, str | os.PathLike], LedgerRun]:
    """Opens the ledger for a run once its checks passed (`toolkit.remediate.apply`)."""

    def make(account: dict[str, Any] | None, plan: Plan, journal: str | os.PathLike) -> LedgerRun:
        return open_ledger_run(
            client,
            source=source,
            account=account,
            operator=operator,
            reason=reason,
            plan_sha256=plan.sha256,
            journal=journal,
            sources=plan.info.sources,
            path=path,
        )

    return make


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

    @property
    def on_purpose_counts(self) -> dict[str, int]:
        """Rows not written on purpose, by kind: ``{"drift": 2, "anonymized": 1}``."""
        return on_purpose_counts(self.on_purpose)


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
    client: LeverAPI,
    plan: Plan | str | os.PathLike,
    *,
    journal: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    workers: int = 8,
) -> VerifyRun:
    """Re-read the plan's opportunities; rows that do not hold, apart from those its journal
    left out on purpose (drift, anonymized). `out` gets the rows that do not hold (CSV)."""
    if not isinstance(plan, Plan):
        plan = open_plan(plan)
    check_sheet_host(plan, client)  # a sheet of another account: refused before any request
    check_plan_account(client, plan)
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


def verify_applied(client: LeverAPI, plan: Plan, result: ApplyResult) -> pd.DataFrame:
    """Plan rows that do not hold after a real apply; empty after a dry run (nothing to check).

    The same rule as `verify_changes` (`lever-tags verify`): read with the apply's journal, so
    the rows it left out on purpose keep their reason (`verify_on_purpose`) and only
    `verify_failures` make the run fail (`require_success`).
    """
    if result.dry_run or plan.rows.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    return verify_plan(client, plan, result.journal_path)


def client_for(dry_run: bool) -> tuple[LeverClient | None, str]:
    """The client from the environment, and a note when a dry run goes on without one.

    A dry run needs no credential: without one it plans and previews from a saved snapshot,
    and skips what needs Lever (the drift check, the account check, the sample check), which
    the note says. A real run without a credential raises.

    Raises:
        ConfigurationError: no credential (or a bad one) and not a dry run (CLI exit 2).

    Example:
        >>> import os
        >>> saved = {k: os.environ.pop(k, None) for k in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN")}
        >>> client_for(dry_run=True)[1][:31]
        'no drift check: no Lever access'
        >>> os.environ.update({k: v for k, v in saved.items() if v is not None})
    """
    try:
        return LeverClient.from_env(), ""
    except ConfigurationError as exc:
        if not dry_run:
            raise
        return None, f"no drift check: no Lever access ({scrub(exc)})"


def drift_of(client: LeverClient | None, plan: Plan) -> pd.DataFrame:
    """`check_drift` of the plan; an empty table without a client (a dry run without access)."""
    if client is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    return check_drift(client, plan)
