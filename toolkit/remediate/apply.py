"""Apply a plan: drift check, rate-limited concurrent writes, a journal, resume; and rollback.

The engine is the same for an apply and a rollback (a rollback is the inverse plan of a
journal, run under its own journal):

1. Refuse a plan larger than ``max_changes`` (a dry run previews it and says that a real run
   would be refused). Pre-flight: the plan's opportunities the plan does not know the tags of
   (rows added by hand, a plan without its sidecars) are read once; an id that does not exist
   refuses the plan before any journal exists. A dry run stops here (after an optional drift
   check) and sends no write.
2. Open the journal (taking its lock). A new journal records the plan and parameters; an
   existing one for the same plan is resumed; one for another plan is refused. A resume with
   another ``perform_as`` records the new value (run params, and a per-session event): the
   writes of each session are attributed to the user that session named.
3. Drift: one ``updated_at_start=<snapshot watermark>`` listing; the plan's opportunities that
   changed since the snapshot are re-planned against their current tags (`remediate.plan.replan`),
   never written blindly. On resume, pending calls are narrowed the same way, and calls that may
   have reached Lever (an intent without outcome, or a transient failure) are checked by reading
   the opportunity first.
4. Write: one call per (opportunity, op) with all its tags, adds before removes, from a bounded
   pool of workers sharing the client (and so its one token bucket). Intent committed before each
   call, outcome after. 400/403/404 are recorded and the run goes on; 401 stops it at once.
   A resume retries transient failures by itself; calls Lever refused (400/403) are retried only
   with ``retry_failed`` (``--retry-failed``): read first, written again if still needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from toolkit.errors import BadRequestError, NotFoundError, PermissionDeniedError
from toolkit.files import sidecar
from toolkit.remediate.drift import DRIFT_COLUMNS, check_drift, drift_line, replan_from_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, INTENT, NOOP, PENDING, Call, JournalError
from toolkit.remediate.plan import (
    REASON_ANONYMIZED,
    SKIPPED_COLUMNS,
    Plan,
    PlanError,
    calls_from_rows,
)
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.reads import DEFAULT_WORKERS, _read_each, _tags_of, _transient
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.runner import _desired, _narrow, _Options, _Runner

# -- results ------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


# -- counting attempts per call -----------------------------------------------------------------


# -- reading current state ----------------------------------------------------------------------


# -- the engine ---------------------------------------------------------------------------------


def _host(client: Any) -> str | None:
    base = getattr(client, "base_url", None)
    return urlsplit(base).netloc if base else None


def _open_run(
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
    host, old_host = params.get("host"), run["params"].get("host")
    if host and old_host and host != old_host:
        raise JournalError(f"the journal {journal.path} was written against {old_host}, not {host}")
    return bool(run["planned"]), run["params"]


def _first_session(
    client: Any, journal: Journal, plan: Plan, session: int, opts: _Options
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
        dropped=dropped.to_dict("records"),
        drift=drift[drift["changed"].astype(bool)].to_dict("records"),
        session=session,
    )
    return drift, dropped


def _resume_session(
    client: Any, journal: Journal, plan: Plan, session: int, opts: _Options
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
        if c.state == INTENT or (c.state == FAILED and _transient(c.status))
    }
    retry = (
        {c.id for c in open_calls if c.state == FAILED and not _transient(c.status)}
        if opts.retry_failed
        else set()
    )
    live = [c for c in open_calls if c.state == PENDING or c.id in check_first]
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    if opts.drift_check and live:
        drift = check_drift(client, plan, workers=opts.workers)
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
            if call.id in check_first and _desired(call.op, call.tags, now):
                journal.mark_outcome(
                    call.id,
                    DONE,
                    message="already in place when checked on resume",
                    after_tags=now,
                    session=session,
                )
                continue
            wanted = [t for t in call.tags if (call.opportunity_id, call.op, t) in kept]
            tags = _narrow(call.op, wanted, now)
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
        journal.add_drift(drift[drift["changed"]].to_dict("records"), session)
    return drift, check_first, retry


def _calls_to_run(journal: Journal, check_first: set[int], retry: set[int]) -> list[Call]:
    return [
        c
        for c in journal.calls([PENDING, INTENT, FAILED])
        if c.state != FAILED or c.id in check_first or c.id in retry
    ]


def _result_from_journal(
    journal: Journal, plan: Plan, kind: str, runner: _Runner | None, **extra: Any
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


def _run(
    client: Any,
    plan: Plan,
    journal_path: str | os.PathLike,
    opts: _Options,
    params: dict[str, Any],
) -> ApplyResult:
    stats_before = client.stats.as_dict()
    with Journal(journal_path) as journal:
        resumed, run_params = _open_run(journal, opts.kind, plan, params)
        notes: list[str] = []
        session = journal.start_session()
        if resumed:
            notes = _resume_perform_as(journal, run_params, opts, session)
        journal.add_event(
            session,
            "session",
            {
                "resumed": resumed,
                "perform_as": opts.perform_as,
                "retry_failed": opts.retry_failed,
                "workers": opts.workers,
                "max_changes": params.get("max_changes"),
                "drift_check": opts.drift_check,
            },
        )
        status = "aborted"
        runner: _Runner | None = None
        drift = pd.DataFrame(columns=DRIFT_COLUMNS)
        started = time.monotonic()
        try:
            check_first: set[int] = set()
            retry: set[int] = set()
            if resumed:
                drift, check_first, retry = _resume_session(client, journal, plan, session, opts)
            else:
                drift, _dropped = _first_session(client, journal, plan, session, opts)
            calls = _calls_to_run(journal, check_first, retry)
            runner = _Runner(client, journal, session, opts)
            started = time.monotonic()
            runner.run(calls, check_first, retry)
            if runner.auth_error is not None:
                raise runner.auth_error
            status = "finished"
        finally:
            elapsed = time.monotonic() - started
            stats = client.stats.since(stats_before)
            with contextlib.suppress(Exception):
                journal.finish_session(
                    session,
                    status,
                    writes=runner.writes if runner else 0,
                    stats=stats,
                    message=str(runner.auth_error) if runner and runner.auth_error else "",
                )
                open_left = journal.calls([PENDING, INTENT])
                journal.finish_run("finished" if status == "finished" and not open_left else status)
        return _result_from_journal(
            journal,
            plan,
            opts.kind,
            runner,
            resumed=resumed,
            elapsed=elapsed,
            stats=stats,
            drift=drift,
            changes_by_tag=plan.changes_by_tag(),
            notes=[*notes, *[line for line in (drift_line(drift),) if line]],
            max_changes=params.get("max_changes"),
            plan_rows=len(plan.rows),
        )


def _resume_perform_as(
    journal: Journal, run_params: dict[str, Any], opts: _Options, session: int
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


def check_perform_as(client: Any, perform_as: str | None) -> None:
    """Refuse a ``perform_as`` user Lever does not know, before anything is written.

    One ``GET /users/{id}``. Lever may answer a write's unknown perform_as with 404 instead of
    400; found only by the writes, every opportunity would look deleted. A key that may not read
    users (403) is let through: the writes' 404s are then confirmed by reads.

    Raises:
        PlanError: the user does not exist (CLI exit 2).
    """
    if client is None or not perform_as:
        return
    try:
        user = client.get_user(perform_as)
    except (NotFoundError, BadRequestError):
        raise PlanError(
            f"--perform-as {perform_as}: no such user in this Lever account; find the id with "
            "GET /users?email=<their address> (LeverClient.iter_users); nothing was written"
        ) from None
    except PermissionDeniedError:
        return
    if user.get("deactivatedAt"):
        log.warning(
            "--perform-as %s is a deactivated Lever user: Lever may refuse the writes", perform_as
        )


def _check_size(plan: Plan, max_changes: int | None) -> None:
    if max_changes is not None and len(plan.rows) > max_changes:
        raise PlanError(
            f"the plan has {len(plan.rows)} changes, more than --max-changes {max_changes}; "
            "nothing was written"
        )


def _check_known_opportunities(client: Any, plan: Plan, workers: int) -> Plan:
    """Pre-flight: read the plan's opportunities whose tags it does not know; refuse unknown ids.

    `plan.before` holds the tag sets a plan made by `make_plan` assumed: every opportunity of
    the contacts it touches, not the whole snapshot. A row added by hand for another contact's
    opportunity (or every row of a plan written by hand, without sidecars) is not in it: those
    ids are read once, concurrently, before any journal exists. An id Lever does not know
    refuses the plan (`PlanError`, nothing written); the tags read join the before-state the
    drift check and rollback rely on. They carry no contact: the plan does not know that
    contact's other opportunities, so the propagate re-plan never judges their sources.
    """
    unknown = [o for o in plan.opportunity_ids() if o not in plan.before]
    if client is None or not unknown:
        return plan
    found, missing = _read_each(client, unknown, workers)
    if missing:
        raise PlanError(
            f"{len(missing)} opportunity id(s) in the plan do not exist in Lever "
            f"(first: {missing[0]}); fix the CSV; nothing was written"
        )
    before = dict(plan.before)
    before.update({o: {"tags": _tags_of(opp)} for o, opp in found.items()})
    return replace(plan, before=before)


def _journal_is_planned(journal_path: str | os.PathLike) -> bool:
    """The journal exists and already recorded its calls (so it holds the before-state)."""
    if not Path(journal_path).is_file():
        return False
    try:
        with Journal(journal_path, lock=False, create=False) as journal:
            run = journal.run()
    except JournalError:
        return False
    return bool(run and run["planned"])


def _dry_run(
    client: Any,
    plan: Plan,
    kind: str,
    drift_check: bool,
    workers: int,
    max_changes: int | None = None,
) -> ApplyResult:
    rows = plan.rows
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    dropped = pd.DataFrame(columns=SKIPPED_COLUMNS)
    if client is not None and drift_check and len(rows):
        drift = check_drift(client, plan, workers=workers)
        rows, dropped = replan_from_drift(plan, drift)
    preview = Plan(rows=rows, meta=plan.meta)
    return ApplyResult(
        kind=kind,
        dry_run=True,
        planned_changes=len(rows),
        planned_calls=len(calls_from_rows(rows)),
        skipped=len(plan.skipped) + len(dropped),
        drift=drift,
        dropped=dropped,
        changes_by_tag=preview.changes_by_tag(),
        outcomes=calls_from_rows(rows),
        max_changes=max_changes,
        plan_rows=len(plan.rows),
        over_max_changes=max_changes is not None and len(plan.rows) > max_changes,
        notes=[line for line in (drift_line(drift),) if line],
    )


def default_journal_path(plan_path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.journal.sqlite` beside it."""
    return sidecar(plan_path, ".journal.sqlite")


def apply_plan(
    client: Any,
    plan: Plan | str | os.PathLike,
    *,
    journal_path: str | os.PathLike | None = None,
    dry_run: bool = True,
    max_changes: int | None = None,
    perform_as: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: bool | None = None,
    drift_check: bool = True,
    retry_failed: bool = False,
) -> ApplyResult:
    """Apply a plan: dry run by default; with ``dry_run=False`` write it, journaled.

    Running it again with the same journal resumes: finished calls are not repeated, calls that
    may have reached Lever are checked by reading the opportunity first, transient failures are
    tried again. Calls Lever refused (400/403, e.g. a bad perform_as) are tried again only with
    ``retry_failed``.

    Args:
        client: a `LeverClient` (its limiter paces every worker). May be None for a dry run
            (then no drift check).
        plan: a `Plan` or the path of a plan CSV.
        journal_path: the run journal (SQLite); default ``<plan>.journal.sqlite``.
        dry_run: write nothing (the default); the result previews the changes.
        max_changes: refuse to write a plan with more rows than this (`PlanError`); a dry run
            previews it anyway and sets ``over_max_changes`` (its summary says a real run
            would be refused).
        perform_as: Lever user id the changes are attributed to (sent on every write). On
            resume: None keeps the journal's; another value is recorded in the journal (run
            params and a per-session event) and used for the writes from then on.
        workers: concurrent calls; a few more than rate x latency keeps the rate at the limit.
        progress: a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        drift_check: re-read what changed since the snapshot before writing (keep it on).
        retry_failed: on resume, retry the calls Lever refused: each is read first and written
            again only if still needed; the retry is journaled (a ``retry`` event per call).

    Returns:
        An `ApplyResult`.

    Raises:
        PlanError: a write of a plan larger than max_changes, an opportunity id that does not
            exist, or no journal path can be chosen.
        JournalError: another run holds the journal, or it belongs to another plan.
        AuthenticationError: Lever answered 401; the run stopped at once (resumable).

    Example:
        >>> result = apply_plan(client, "plan.csv", dry_run=False, journal_path="j.sqlite")
        ... # doctest: +SKIP
        >>> result.applied, result.failed  # doctest: +SKIP
    """
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    if not dry_run:
        _check_size(plan, max_changes)
    if workers < 1:
        raise PlanError(f"workers must be at least 1 (got {workers})")
    if not dry_run and journal_path is None:
        if plan.path is None:
            raise PlanError("writing needs a journal: give journal_path (--journal FILE)")
        journal_path = default_journal_path(plan.path)
    check_perform_as(client, perform_as)
    if dry_run or not _journal_is_planned(journal_path):
        plan = _check_known_opportunities(client, plan, workers)
    if dry_run:
        return _dry_run(client, plan, "apply", drift_check, workers, max_changes)
    params = {
        "max_changes": max_changes,
        "perform_as": perform_as,
        "workers": workers,
        "host": _host(client),
        "drift_check": drift_check,
    }
    opts = _Options("apply", perform_as, workers, progress, drift_check, retry_failed)
    return _run(client, plan, journal_path, opts, params)


# -- rollback -----------------------------------------------------------------------------------


# -- verify -------------------------------------------------------------------------------------


__all__ = ["apply_plan", "default_journal_path"]
