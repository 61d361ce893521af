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
3. Drift: every opportunity of the contacts the plan touches is re-read by ``contact_id`` (in
   batches; ``updatedAt`` is not trusted); the plan's opportunities whose tags changed since
   the snapshot (the run's own writes aside, on resume) are re-planned against their current
   tags (`remediate.plan.replan`),
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
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

from toolkit.client.account import account_of, check_account, check_host
from toolkit.errors import BadRequestError, NotFoundError, PermissionDeniedError
from toolkit.files import sidecar
from toolkit.remediate.drift import DRIFT_COLUMNS, check_drift, drift_line, replan_from_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_lock import check_unlocked
from toolkit.remediate.journal_schema import INTENT, PENDING, JournalError
from toolkit.remediate.plan import (
    SKIPPED_COLUMNS,
    Plan,
    PlanError,
    calls_from_rows,
)
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.reads import DEFAULT_WORKERS, read_by_contacts, read_each, tags_of
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.runner import Runner, RunOptions
from toolkit.remediate.sessions import (
    calls_to_run,
    first_session,
    open_run,
    result_from_journal,
    resume_perform_as,
    resume_session,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient

# -- results ------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


# -- counting attempts per call -----------------------------------------------------------------


# -- reading current state ----------------------------------------------------------------------


# -- the engine ---------------------------------------------------------------------------------


def client_host(client: TagClient | None) -> str | None:
    base = getattr(client, "base_url", None)
    return urlsplit(base).netloc if base else None


def run_calls(
    client: TagClient,
    plan: Plan,
    journal_path: str | os.PathLike,
    opts: RunOptions,
    params: dict[str, Any],
) -> ApplyResult:
    stats_before = client.stats.as_dict()
    with Journal(journal_path) as journal:
        resumed, run_params = open_run(journal, opts.kind, plan, params)
        notes: list[str] = []
        session = journal.start_session()
        if resumed:
            notes = resume_perform_as(journal, run_params, opts, session)
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
        held_back = 0
        runner: Runner | None = None
        drift = pd.DataFrame(columns=DRIFT_COLUMNS)
        started = time.monotonic()
        try:
            check_first: set[int] = set()
            retry: set[int] = set()
            if resumed:
                drift, check_first, retry = resume_session(client, journal, plan, session, opts)
            else:
                drift, _dropped = first_session(client, journal, plan, session, opts)
            calls = calls_to_run(journal, check_first, retry)
            if opts.limit is not None and len(calls) > opts.limit:
                held_back = len(calls) - opts.limit  # the first N calls; the rest wait
                calls = calls[: opts.limit]
            runner = Runner(client, journal, session, opts)
            started = time.monotonic()
            runner.run(calls, check_first, retry)
            if runner.auth_error is not None:
                raise runner.auth_error
            if opts.stop is not None and opts.stop.is_set():
                status = "stopped"
            else:
                status = "limited" if held_back else "finished"
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
                done = status in ("finished", "stopped") and not open_left
                journal.finish_run("finished" if done else status)
        return result_from_journal(
            journal,
            plan,
            opts.kind,
            runner,
            resumed=resumed,
            elapsed=elapsed,
            stats=stats,
            drift=drift,
            changes_by_tag=plan.changes_by_tag(),
            notes=[*notes, *[line for line in (drift_line(drift, _since(opts.kind)),) if line]],
            max_changes=params.get("max_changes"),
            plan_rows=len(plan.rows),
            stopped=status == "stopped" and bool(journal.calls([PENDING, INTENT])),
            limit=opts.limit,
            limited_calls=held_back,
        )


def plan_account(plan: Plan) -> dict[str, Any] | None:
    """The account a plan was made on (its snapshot's), None for a plan that does not say."""
    return plan.info.snapshot_ref.account


def check_plan_account(
    client: TagClient | None, plan: Plan, what: str = ""
) -> dict[str, Any] | None:
    """Refuse a plan made on another Lever account; returns the account the client reads.

    Raises:
        AccountMismatchError: the plan's account is not the client's (CLI exit 2).
    """
    if client is None:
        return None
    what = what or f"the plan {plan.path or ''}".rstrip()
    recorded = plan_account(plan) or {"host": plan.info.snapshot_ref.host}
    check_host(recorded, client, what)  # another host: refused before any request
    current = account_of(client)
    check_account(plan_account(plan), current, what)
    return current


SAMPLE_SIZE = 5


def check_sample_exists(client: TagClient | None, plan: Plan) -> None:
    """Read a few planned opportunities (one listing by contact); none found: wrong account.

    A plan that records no account (made by hand, or by an older toolkit) applied with the key
    of another account would otherwise look normal in the dry run and end "not found" on every
    write. The sample is the first `SAMPLE_SIZE` planned opportunities whose contact the plan
    knows; one ``GET /opportunities?contact_id=..`` reads them. Some missing is deletion, for
    the writes to record; all missing refuses the plan before anything is written.

    Raises:
        PlanError: none of the sampled opportunities exists (CLI exit 2).
    """
    if client is None or plan.rows.empty:
        return
    sample: dict[str, str] = {}
    for opp in sorted(plan.opportunity_ids()):
        contact = (plan.before.get(opp) or {}).get("contact_id") or ""
        if contact:
            sample[opp] = contact
        if len(sample) == SAMPLE_SIZE:
            break
    if not sample:
        return
    found = {o.get("id") for o in read_by_contacts(client, plan, sample.values(), workers=1)}
    if not found & set(sample):
        raise PlanError(
            f"none of {len(sample)} sampled planned opportunities (first: {next(iter(sample))}) "
            f"exists in {client_host(client)}: wrong account? Use the LEVER_API_KEY and "
            "LEVER_BASE_URL of the account the plan was made on; nothing was written"
        )


def run_with_ledger(
    client: TagClient,
    plan: Plan,
    journal_path: str | os.PathLike,
    opts: RunOptions,
    params: dict[str, Any],
    ledger: Callable[..., Any] | None,
) -> ApplyResult:
    """`run_calls` with the ledger opened (by the `ledger` factory) for its length."""
    if ledger is None:
        return run_calls(client, plan, journal_path, opts, params)
    opts.ledger = ledger(params.get("account"), plan, journal_path)
    try:
        return run_calls(client, plan, journal_path, opts, params)
    finally:
        opts.ledger.close()


def check_perform_as(client: TagClient | None, perform_as: str | None) -> None:
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
            "`lever-tags users --email <their address>`; nothing was written"
        ) from None
    except PermissionDeniedError:
        return
    if user.get("deactivatedAt"):
        log.warning(
            "--perform-as %s is a deactivated Lever user: Lever may refuse the writes", perform_as
        )


def _check_size(plan: Plan, max_changes: int | None, limit: int | None = None) -> None:
    if max_changes is None:
        return
    if limit is not None:
        changes = int(plan.calls()["changes"].astype(int).nlargest(limit).sum())
        if changes > max_changes:
            raise PlanError(
                f"--limit {limit} calls can write up to {changes} changes, more than "
                f"--max-changes {max_changes}; lower --limit; nothing was written"
            )
        return
    if len(plan.rows) > max_changes:
        raise PlanError(
            f"the plan has {len(plan.rows)} changes, more than --max-changes {max_changes}; "
            "stage it with --limit N, or raise --max-changes; nothing was written"
        )


def _check_known_opportunities(client: TagClient | None, plan: Plan, workers: int) -> Plan:
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
    found, missing = read_each(client, unknown, workers)
    if missing:
        raise PlanError(
            f"{len(missing)} opportunity id(s) in the plan do not exist in Lever "
            f"(first: {missing[0]}); fix the CSV; nothing was written"
        )
    before = dict(plan.before)
    before.update({o: {"tags": tags_of(opp)} for o, opp in found.items()})
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


def dry_run_result(
    client: TagClient | None,
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
        notes=[line for line in (drift_line(drift, _since(kind)),) if line],
    )


def _since(kind: str) -> str:
    """What a drift line compares with: a rollback assumes the tags its run left."""
    return "the run" if kind == "rollback" else "the plan"


def default_journal_path(plan_path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.journal.sqlite` beside it."""
    return sidecar(plan_path, ".journal.sqlite")


def apply_plan(
    client: TagClient | None,
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
    stop: threading.Event | None = None,
    ledger: Callable[..., Any] | None = None,
    limit: int | None = None,
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
        stop: once set (`toolkit.remediate.stops.stop_on_signals`: SIGINT, SIGTERM), no new
            call is sent; the calls in flight finish and the result says ``stopped``.
        ledger: ``ledger(account, plan, journal_path)`` opens a `toolkit.ledger.entry.LedgerRun`
            once every check passed; each write sent gets its row there too
            (`toolkit.workflows.apply_changes` gives it).
        limit: write at most this many calls (the first ones still to do, adds before removes
            on each opportunity), then stop cleanly; the run is resumable and the same call
            without ``limit`` writes the rest, each call once. ``max_changes`` then counts the
            changes of the ``limit`` largest calls of the plan (a bound on what is written).

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
    if limit is not None and limit < 1:
        raise PlanError(f"--limit must be at least 1 (got {limit})")
    if not dry_run:
        _check_size(plan, max_changes, limit)
    if workers < 1:
        raise PlanError(f"workers must be at least 1 (got {workers})")
    journal: str | os.PathLike[str] | None = None  # the journal of a write (none in a dry run)
    if not dry_run:
        journal = journal_path
        if journal is None:
            if plan.path is None:
                raise PlanError.naming("writing needs a journal: give {journal_path}")
            journal = default_journal_path(plan.path)
        check_unlocked(Path(journal))  # another run's journal: refused before any request
    account = check_plan_account(client, plan)
    first = journal is None or not _journal_is_planned(journal)
    if first:
        check_sample_exists(client, plan)
    check_perform_as(client, perform_as)
    if first:
        plan = _check_known_opportunities(client, plan, workers)
    if journal is None:  # a dry run
        return dry_run_result(client, plan, "apply", drift_check, workers, max_changes)
    if client is None:
        raise PlanError(
            "writing needs a Lever client (LEVER_API_KEY or OAuth); nothing was written"
        )
    params = {
        "max_changes": max_changes,
        "perform_as": perform_as,
        "workers": workers,
        "host": client_host(client),
        "account": account,
        "drift_check": drift_check,
    }
    opts = RunOptions(
        "apply",
        perform_as,
        workers,
        progress,
        drift_check,
        retry_failed,
        stop=stop,
        limit=limit,
    )
    return run_with_ledger(client, plan, journal, opts, params, ledger)


# -- rollback -----------------------------------------------------------------------------------


# -- verify -------------------------------------------------------------------------------------


__all__ = ["apply_plan", "default_journal_path"]
