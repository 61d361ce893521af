"""The sessions of a run: opening (or resuming) its journal, the first session's drift check and
planning, a resume's re-read of open calls by the same drift rule, and the result from the
journal (see `toolkit.remediate.apply` for the whole engine)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.client.account import check_account
from toolkit.remediate.drift import DRIFT_COLUMNS, check_drift, own_writes, replan_from_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, INTENT, NOOP, PENDING, Call, JournalError
from toolkit.remediate.plan import REASON_ANONYMIZED, SKIPPED_COLUMNS, Plan, calls_from_rows
from toolkit.remediate.reads import is_transient
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.runner import Runner, RunOptions, desired_tags, narrow_tags

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient


def open_run(
    journal: Journal, kind: str, plan: Plan, params: dict[str, Any]
) -> tuple[bool, dict[str, Any]]:
    """Start or reopen the run. Returns (planned already: a resume, the run's params)."""
    run = journal.run()
    if run is None:
        journal.init_run(
            kind=kind,
            plan_sha256=plan.sha256,
            plan_meta=plan.meta,
            params=params,
            plan_rows=plan.rows,
            plan_path=str(plan.path) if plan.path else None,
        )
        return False, params
    if run["kind"] != kind or run["plan_sha256"] != plan.sha256:
        raise JournalError(
            f"the journal {journal.path} belongs to another {run['kind']} run "
            f"(plan {run['plan_sha256'][:12]}, this plan {plan.sha256[:12]}); "
            "use a new --journal"
        )
    check_account(
        run["params"].get("account"), params.get("account"), f"the journal {journal.path}"
    )
    host, old_host = params.get("host"), run["params"].get("host")
    if host and old_host and host != old_host:
        raise JournalError(f"the journal {journal.path} was written against {old_host}, not {host}")
    return bool(run["planned"]), run["params"]


def first_session(
    client: TagClient, journal: Journal, plan: Plan, session: int, opts: RunOptions
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drift check and re-plan, then record every call as pending. Returns (drift, dropped)."""
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    rows = plan.rows
    dropped = pd.DataFrame(columns=SKIPPED_COLUMNS)
    current: dict[str, list[str]] = {}
    if opts.drift_check and len(rows):
        drift = check_drift(client, plan, workers=opts.workers)
        current = dict(zip(drift["opportunity_id"], drift["current_tags"], strict=True))
        rows, dropped = replan_from_drift(plan, drift)

    def before(opp: str) -> list[str] | None:
        if opp in current:
            return current[opp]
        return (plan.before.get(opp) or {}).get("tags")

    calls = calls_from_rows(rows)
    journal.record_planning(
        (
            {
                "opportunity_id": c["opportunity_id"],
                "contact_id": c["contact_id"],
                "op": c["op"],
                "tags": c["tags"],
                "before_tags": before(c["opportunity_id"]),
            }
            for c in calls.to_dict("records")
        ),
        dropped=dropped.to_dict("records", into=dict),
        drift=drift[drift["changed"].astype(bool)].to_dict("records", into=dict),
        session=session,
    )
    return drift, dropped


def resume_session(
    client: TagClient, journal: Journal, plan: Plan, session: int, opts: RunOptions
) -> tuple[pd.DataFrame, set[int], set[int]]:
    """Re-read and re-plan the open calls by the same rule as the first run.

    Every call still open (pending, or one that may have reached Lever: an intent without
    outcome, a transient failure) keeps only the tags the plan re-planned against the current
    tags still wants (`replan_from_drift`: an opportunity anonymized meanwhile, a tag already in
    place, a propagate source whose tag someone removed). A call that may have reached Lever
    and whose tags are all in place is done; one with nothing left is a no-op; the rows dropped
    are journaled (verify tells them apart).

    Returns (drift, ids to check before writing, failed ids to retry (``retry_failed``)).
    """
    open_calls = journal.calls([PENDING, INTENT, FAILED])
    check_first = {
        c.id
        for c in open_calls
        if c.state == INTENT or (c.state == FAILED and is_transient(c.status))
    }
    retry = (
        {c.id for c in open_calls if c.state == FAILED and not is_transient(c.status)}
        if opts.retry_failed
        else set()
    )
    live = [c for c in open_calls if c.state == PENDING or c.id in check_first]
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    if opts.drift_check and live:
        written = [
            c
            for c in journal.calls([DONE, INTENT, FAILED])
            if c.state != FAILED or is_transient(c.status)
        ]  # the run's own writes (or possible ones) are not drift
        drift = check_drift(client, plan, workers=opts.workers, own=own_writes(written))
        kept_rows, dropped_rows = replan_from_drift(plan, drift)
        kept = set(kept_rows[["opportunity_id", "op", "tag"]].itertuples(index=False, name=None))
        why = {
            (r["opportunity_id"], r["op"], r["tag"]): r["reason"]
            for r in dropped_rows.to_dict("records")
        }
        current = dict(zip(drift["opportunity_id"], drift["current_tags"], strict=True))
        dropped: list[dict[str, Any]] = []
        for call in live:
            if call.opportunity_id not in current:
                continue  # not readable now (deleted?): the write or its check finds out
            now = current[call.opportunity_id]
            if call.id in check_first and desired_tags(call.op, call.tags, now):
                journal.mark_outcome(
                    call.id,
                    DONE,
                    message="already in place when checked on resume",
                    after_tags=now,
                    session=session,
                )
                continue
            wanted = [t for t in call.tags if (call.opportunity_id, call.op, t) in kept]
            tags = narrow_tags(call.op, wanted, now)
            for tag in call.tags:
                reason = why.get((call.opportunity_id, call.op, tag))
                if reason and tag not in tags:
                    dropped.append(
                        {
                            "opportunity_id": call.opportunity_id,
                            "contact_id": call.contact_id,
                            "op": call.op,
                            "tag": tag,
                            "reason": reason,
                        }
                    )
            if not tags:
                anonymized = REASON_ANONYMIZED in {
                    why.get((call.opportunity_id, call.op, t)) for t in call.tags
                }
                message = (
                    "anonymized since the plan" if anonymized else "drift: nothing left to write"
                )
                journal.mark_outcome(call.id, NOOP, message=message, session=session)
            elif call.state == PENDING and (tags != call.tags or call.before_tags is None):
                journal.replan_call(call.id, tags, now)
            elif tags != call.tags:
                # It may have reached Lever: narrow what is left, keep the before-state rollback
                # relies on.
                journal.narrow_open_call(call.id, tags)
        journal.add_dropped(dropped, session)
        journal.add_drift(drift[drift["changed"]].to_dict("records", into=dict), session)
    return drift, check_first, retry


def calls_to_run(journal: Journal, check_first: set[int], retry: set[int]) -> list[Call]:
    return [
        c
        for c in journal.calls([PENDING, INTENT, FAILED])
        if c.state != FAILED or c.id in check_first or c.id in retry
    ]


def result_from_journal(
    journal: Journal, plan: Plan, kind: str, runner: Runner | None, **extra: Any
) -> ApplyResult:
    summary = journal.summary()
    outcomes = journal.calls_frame()
    dropped = journal.table("dropped")
    dropped = pd.DataFrame(columns=SKIPPED_COLUMNS) if dropped.empty else dropped[SKIPPED_COLUMNS]
    noop_changes = int(outcomes.loc[outcomes["state"] == NOOP, "tags"].map(len).sum())
    elapsed = extra.pop("elapsed", 0.0)
    writes = runner.writes if runner else 0
    retried = runner.retried if runner else 0
    return ApplyResult(
        kind=kind,
        dry_run=False,
        journal_path=str(journal.path),
        planned_changes=len(plan.rows),
        planned_calls=len(plan.calls()),
        applied=summary["applied"],
        failed=summary["failed"],
        not_found=summary["not_found"],
        pending=summary["pending"],
        skipped=len(plan.skipped) + len(dropped) + noop_changes,
        calls=writes,
        attempts=runner.attempts if runner else 0,
        elapsed=elapsed,
        writes_per_second=writes / elapsed if elapsed > 0 else 0.0,
        outcomes=outcomes,
        dropped=dropped,
        retried=retried,
        **extra,
    )


def resume_perform_as(
    journal: Journal, run_params: dict[str, Any], opts: RunOptions, session: int
) -> list[str]:
    """perform_as on resume: none given -> the journal's; another one -> journaled and used.

    Refusing would leave a run whose writes failed for a bad --perform-as with no way forward
    but a new journal (losing resume and rollback of what it did). Instead the new value
    becomes the run's (``params.perform_as``, which rollback uses by default) and the change is
    an event of this session; every session records the perform_as it wrote with, and every
    call its session, so who each write was attributed to stays known.
    """
    old = run_params.get("perform_as")
    if opts.perform_as is None:
        opts.perform_as = old
        return []
    if opts.perform_as == old:
        return []
    journal.update_params(perform_as=opts.perform_as)
    journal.add_event(session, "perform_as", {"from": old, "to": opts.perform_as})
    return [
        f"perform_as changed on resume: {old or '(none)'} -> {opts.perform_as}; "
        "recorded in the journal, used for the writes from now on"
    ]
