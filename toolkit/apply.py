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
   changed since the snapshot are re-planned against their current tags (`toolkit.plan.replan`),
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
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from tqdm.auto import tqdm

from toolkit import failpoints
from toolkit.errors import (
    AuthenticationError,
    BadRequestError,
    LeverError,
    NotFoundError,
    PermissionDeniedError,
)
from toolkit.fetch import WindowedListing
from toolkit.journal import (
    DONE,
    FAILED,
    INTENT,
    NOOP,
    NOT_FOUND,
    PENDING,
    TRANSIENT_STATUSES,
    Call,
    Journal,
    JournalError,
)
from toolkit.plan import (
    PLAN_COLUMNS,
    REASON_ANONYMIZED,
    SKIPPED_COLUMNS,
    Plan,
    PlanError,
    calls_from_rows,
    load_plan,
    replan,
)
from toolkit.progress import progress_bar
from toolkit.scrub import scrub

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8
DRIFT_COLUMNS = [
    "opportunity_id",
    "contact_id",
    "updated_at",
    "before_tags",
    "current_tags",
    "anonymized",
    "archived",
    "changed",
]


# -- results ------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    """What an apply (or rollback) did. Counts of changes are tags; calls are requests.

    Attributes:
        kind: ``apply`` or ``rollback``.
        dry_run: True when nothing was written.
        journal_path: the run journal (None for a dry run).
        planned_changes, planned_calls: the plan's rows and (opportunity, op) groups.
        applied, failed, not_found: changes by outcome over the whole run (all sessions).
        skipped: changes not written: the plan's skipped rows, rows dropped by the drift
            re-plan, and calls found to have nothing left to do.
        pending: changes still to do (an aborted run).
        calls: write calls this invocation sent (retries not counted).
        attempts: HTTP attempts those calls took (retries counted).
        resumed: this invocation continued an earlier run of the same journal.
        elapsed: seconds spent writing in this invocation.
        writes_per_second: `calls` / `elapsed`.
        stats: the client's stats delta over this invocation.
        outcomes: one row per call (the journal's calls table).
        drift: the opportunities found changed since the snapshot.
        dropped: plan rows not written because of drift, with reason.
        changes_by_tag: (op, tag, opportunities) still to be written (a dry run's preview).
        max_changes: the limit asked for (None: no limit).
        plan_rows: the plan's rows as given, before any drift re-plan (what max_changes counts).
        over_max_changes: a dry run of a plan a real run would refuse (more rows than
            max_changes).
        retried: failed calls this invocation retried (``retry_failed``).
        notes: lines worth telling the user (a changed perform_as, ...); in `summary_lines`.
    """

    kind: str = "apply"
    dry_run: bool = True
    journal_path: str | None = None
    planned_changes: int = 0
    planned_calls: int = 0
    applied: int = 0
    failed: int = 0
    not_found: int = 0
    skipped: int = 0
    pending: int = 0
    calls: int = 0
    attempts: int = 0
    resumed: bool = False
    elapsed: float = 0.0
    writes_per_second: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)
    drift: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DRIFT_COLUMNS))
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    changes_by_tag: pd.DataFrame = field(default_factory=pd.DataFrame)
    max_changes: int | None = None
    plan_rows: int = 0
    over_max_changes: bool = False
    retried: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No change failed and none is left pending."""
        return self.failed == 0 and self.not_found == 0 and self.pending == 0

    @property
    def permanent_failures(self) -> int:
        """Failed calls Lever refused (400/403...): a plain resume does not retry them."""
        outcomes = self.outcomes
        if self.dry_run or outcomes.empty or "state" not in outcomes.columns:
            return 0
        failed = outcomes[outcomes["state"] == FAILED]
        return sum(1 for status in failed["status"] if not _transient(_status(status)))

    @property
    def transient_failures(self) -> int:
        """Failed calls that may succeed later (429/5xx after the retries, a lost connection)."""
        outcomes = self.outcomes
        if self.dry_run or outcomes.empty or "state" not in outcomes.columns:
            return 0
        return int((outcomes["state"] == FAILED).sum()) - self.permanent_failures

    def summary_lines(self) -> list[str]:
        """A short human summary (what the CLI prints)."""
        what = "rollback" if self.kind == "rollback" else "apply"
        if self.dry_run:
            lines = [
                f"dry run ({what}): {self.planned_changes} changes in {self.planned_calls} "
                f"calls would be written; nothing was written"
            ]
            if len(self.drift) and self.kind == "apply":
                lines.append(
                    f"drift: {int(self.drift['changed'].sum())} of the plan's opportunities "
                    f"changed since the snapshot; {len(self.dropped)} changes dropped"
                )
            if self.over_max_changes:
                lines.append(
                    f"a real run would be refused by --max-changes {self.max_changes}: the plan "
                    f"has {self.plan_rows} changes"
                )
            return [*lines, *self.notes]
        lines = [
            f"{what}: {self.applied} applied, {self.failed} failed, "
            f"{self.not_found} not found (deleted), {self.skipped} skipped"
            + (f", {self.pending} pending" if self.pending else "")
            + f" - journal {self.journal_path}",
            f"{self.calls} write calls ({self.attempts} attempts) in {self.elapsed:.1f} s, "
            f"{self.writes_per_second:.1f} writes/s"
            + (" (resumed)" if self.resumed else "")
            + (f"; {self.retried} failed calls retried" if self.retried else ""),
        ]
        if len(self.dropped):
            lines.append(f"drift: {len(self.dropped)} changes dropped (already done or changed)")
        lines.extend(self.notes)
        if self.transient_failures:
            lines.append(
                f"{self.transient_failures} calls failed for now (rate limit, server, "
                "connection); run the same command again to retry them"
            )
        if self.permanent_failures:
            lines.append(
                f"{self.permanent_failures} calls were refused by Lever (see above); fix the "
                "cause, then run again with --retry-failed to retry them"
            )
        return lines


# -- counting attempts per call -----------------------------------------------------------------


class _AttemptCounter:
    """Count HTTP attempts per thread, and remember the last status, by wrapping the session.

    The client retries inside one call; wrapping `session.request` for the duration of a run is
    the least intrusive way to know how many attempts one call took when many run at once.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._local = threading.local()
        self._had_attr = False
        self._previous: Any = None

    def __enter__(self) -> _AttemptCounter:
        self._had_attr = "request" in vars(self._session)
        self._previous = self._session.request
        previous, local = self._previous, self._local

        def request(*args: Any, **kwargs: Any) -> Any:
            local.count = getattr(local, "count", 0) + 1
            local.status = None
            response = previous(*args, **kwargs)
            local.status = getattr(response, "status_code", None)
            return response

        self._session.request = request
        return self

    def __exit__(self, *exc: object) -> None:
        if self._had_attr:
            self._session.request = self._previous
        else:
            with contextlib.suppress(AttributeError):
                del self._session.request

    def reset(self) -> None:
        self._local.count = 0
        self._local.status = None

    @property
    def count(self) -> int:
        return getattr(self._local, "count", 0)

    @property
    def status(self) -> int | None:
        return getattr(self._local, "status", None)


def _stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, int | float) and isinstance(before.get(key), int | float):
            out[key] = round(value - before[key], 3)
        elif isinstance(value, dict):
            old = before.get(key) or {}
            out[key] = {k: v - old.get(k, 0) for k, v in value.items() if v - old.get(k, 0)}
    return out


# -- reading current state ----------------------------------------------------------------------


def _list_opportunities(client: Any, plan: Plan, **filters: Any) -> list[dict]:
    """A listing with confidential opportunities included when the key may read them."""
    return _list_many(client, plan, [filters])


def _list_many(
    client: Any,
    plan: Plan,
    filter_sets: list[dict[str, Any]],
    on_items: Callable[[int], None] | None = None,
) -> list[dict]:
    """Several listings (one per filter set, e.g. a batch of contact ids) listed at once under
    the client's rate limiter, a long one cut into `created_at` windows (`toolkit.fetch`);
    confidential opportunities included when the key may read them. Each opportunity once."""
    access = (plan.meta.get("snapshot") or {}).get("confidential_access")

    def run(extra: dict[str, Any]) -> list[dict]:
        listing = WindowedListing(client, on_items=on_items)
        return list(listing.run([({**extra, **f}, (None, None)) for f in filter_sets]).values())

    if access is False:
        return run({})
    try:
        return run({"confidentiality": "all"})
    except PermissionDeniedError:
        return run({})


def _read_each(
    client: Any, ids: Iterable[str], workers: int, forbidden_unread: bool = False
) -> tuple[dict[str, dict], list[str]]:
    """get_opportunity for each id, concurrently; returns (found, not found).

    With `forbidden_unread`, an id the key may not read (403) is left out of both.
    """
    found: dict[str, dict] = {}
    missing: list[str] = []
    unread = object()

    def one(opp_id: str) -> tuple[str, Any]:
        try:
            return opp_id, client.get_opportunity(opp_id)
        except NotFoundError:
            return opp_id, None
        except PermissionDeniedError:
            if not forbidden_unread:
                raise
            return opp_id, unread

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for opp_id, opp in pool.map(one, list(ids)):
            if opp is unread:
                continue
            if opp is None:
                missing.append(opp_id)
            else:
                found[opp_id] = opp
    return found, missing


def _transient(status: int | None) -> bool:
    """A failure that may or may not have reached Lever (retries exhausted, connection lost)."""
    return status is None or status in TRANSIENT_STATUSES


def _status(value: Any) -> int | None:
    """An HTTP status from a frame cell (None, NaN, NA, float or int) as int or None."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def _clean_tags(tags: Any) -> list[str] | None:
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else None


def _tags_of(opp: dict) -> list[str]:
    tags = opp.get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


DRIFT_BATCH = 50  # contact ids per listing of the drift read


def read_by_contacts(
    client: Any,
    plan: Plan,
    contact_ids: Iterable[str],
    *,
    batch: int = DRIFT_BATCH,
    workers: int = DEFAULT_WORKERS,
) -> list[dict]:
    """Every opportunity of these contacts, now: ``GET /opportunities?contact_id=..``, in batches.

    One listing per ``batch`` contact ids (repeated keys: Lever answers their union), with
    confidential opportunities included when the key may read them; up to ``workers`` listings
    at once (the client's one limiter paces them).
    """
    contacts = sorted(set(contact_ids))
    chunks = [contacts[i : i + batch] for i in range(0, len(contacts), batch)]
    if not chunks:
        return []
    with ThreadPoolExecutor(max(1, min(workers, len(chunks)))) as pool:
        pages = pool.map(lambda chunk: _list_opportunities(client, plan, contact_id=chunk), chunks)
        return [opp for page in pages for opp in page]


def check_drift(
    client: Any, plan: Plan, *, workers: int = DEFAULT_WORKERS, batch: int = DRIFT_BATCH
) -> pd.DataFrame:
    """The current tags of the plan's opportunities and of their contacts' other ones.

    The one drift rule of apply (first run, resume, dry run): re-read, compare the tags, re-plan
    (`replan_from_drift`). Reads by ``contact_id`` in batches (every opportunity of every contact
    the plan touches: the propagate re-plan needs the sources too); the plan's opportunities not
    found that way (no contact in the plan, moved) are read by id. ``updatedAt`` is never
    trusted: Lever does not promise that a tag write moves it.

    Args:
        client: a `LeverClient`.
        plan: the plan (its ``before`` and rows are used).
        workers: concurrent reads when reading by id.
        batch: contact ids per listing.

    Returns:
        DataFrame[opportunity_id, contact_id, updated_at, before_tags, current_tags, anonymized,
        archived, changed]: one row per re-read opportunity; ``changed`` when the tag set differs
        from what the plan assumed (or the plan assumed nothing). ``attrs["reads"]`` says what
        the read cost: ``{"calls", "opportunities", "contacts"}``.

    Example:
        >>> drift = check_drift(client, plan)  # doctest: +SKIP
        >>> drift[drift["changed"]], drift.attrs["reads"]["calls"]  # doctest: +SKIP
    """
    planned = set(plan.opportunity_ids())
    if not planned:
        return _drift_frame([], {"calls": 0, "opportunities": 0, "contacts": 0})
    before_calls = client.stats.requests
    # the contacts the rows touch (not every contact the plan's before-state knows)
    contacts = set(plan.rows["contact_id"].astype(str))
    contacts |= {(plan.before.get(o) or {}).get("contact_id") or "" for o in planned}
    contacts.discard("")
    wanted = planned | {
        o for o, e in plan.before.items() if ((e or {}).get("contact_id") or "") in contacts
    }
    found: dict[str, dict] = {}
    for opp in read_by_contacts(client, plan, contacts, batch=batch, workers=workers):
        if isinstance(opp.get("id"), str) and opp["id"] in wanted:
            found[opp["id"]] = opp
    rest = sorted(planned - set(found))
    if rest:
        by_id, _missing = _read_each(client, rest, workers, forbidden_unread=True)
        found.update(by_id)  # unreadable or gone: the write (or its 404 check) finds out
    records = []
    for opp_id, opp in found.items():
        entry = plan.before.get(opp_id)
        before = entry.get("tags") if entry else None
        current = _tags_of(opp)
        contact = opp.get("contact")
        if isinstance(contact, dict):
            contact = contact.get("id")
        records.append(
            (
                opp_id,
                contact or "",
                opp.get("updatedAt"),
                before,
                current,
                bool(opp.get("isAnonymized")),
                bool(opp.get("archived") or opp.get("archivedAt")),
                before is None or set(before) != set(current),
            )
        )
    reads = {
        "calls": client.stats.requests - before_calls,
        "opportunities": len(found),
        "contacts": len(contacts),
    }
    return _drift_frame(records, reads)


def _drift_frame(records: list[tuple], reads: dict[str, int]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=DRIFT_COLUMNS)
    frame.attrs["reads"] = reads
    return frame


def replan_from_drift(plan: Plan, drift: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's rows re-planned against a drift read: (rows kept, rows dropped with reason).

    Example:
        >>> kept, dropped = replan_from_drift(plan, check_drift(client, plan))  # doctest: +SKIP
    """
    if drift.empty:
        return plan.rows.copy(), pd.DataFrame(columns=SKIPPED_COLUMNS)
    current = dict(zip(drift["opportunity_id"], drift["current_tags"], strict=True))
    anonymized = set(drift.loc[drift["anonymized"].astype(bool), "opportunity_id"])
    return replan(plan, current, anonymized)


def drift_line(drift: pd.DataFrame) -> str | None:
    """One line on what the drift read cost and found, or None when none was made."""
    reads = drift.attrs.get("reads")
    if not reads:
        return None
    changed = int(drift["changed"].astype(bool).sum()) if len(drift) else 0
    return (
        f"drift check: re-read {reads['opportunities']} opportunities of {reads['contacts']} "
        f"contacts in {reads['calls']} calls; {changed} changed since the plan"
    )


# -- the engine ---------------------------------------------------------------------------------


@dataclass
class _Options:
    kind: str
    perform_as: str | None
    workers: int
    progress: bool | None
    drift_check: bool
    retry_failed: bool = False


def _progress(total: int, progress: bool | None, desc: str) -> tqdm:
    return progress_bar(progress, total=total, desc=desc, unit=" call")


def _desired(op: str, tags: list[str], current: list[str]) -> bool:
    now = set(current)
    return set(tags) <= now if op == "add" else not (set(tags) & now)


def _narrow(op: str, tags: list[str], current: list[str]) -> list[str]:
    """The tags of a call still to write given the current tags."""
    now = set(current)
    return [t for t in tags if (t not in now if op == "add" else t in now)]


class _Runner:
    """Runs the journal's open calls with a pool of workers."""

    def __init__(self, client: Any, journal: Journal, session: int, opts: _Options) -> None:
        self.client = client
        self.journal = journal
        self.session = session
        self.opts = opts
        self.stop = threading.Event()
        self.auth_error: AuthenticationError | None = None
        self.writes = 0
        self.attempts = 0
        self.retried = 0
        self._count_lock = threading.Lock()
        self.counter = _AttemptCounter(client.session)

    def _count(self, attempts: int) -> None:
        with self._count_lock:
            self.writes += 1
            self.attempts += attempts

    def _record_failure(
        self,
        call: Call,
        state: str,
        message: str,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        """Journal the outcome of a write that did not succeed (it may have reached Lever)."""
        self._count(self.counter.count)
        self.journal.mark_outcome(
            call.id,
            state,
            status=status,
            attempts=self.counter.count,
            wrote=True,
            code=code,
            message=message,
            session=self.session,
        )

    def _write(self, call: Call) -> None:
        journal, client = self.journal, self.client
        journal.mark_intent(call.id, self.session)
        self.counter.reset()
        write = client.add_tags if call.op == "add" else client.remove_tags
        try:
            data = write(call.opportunity_id, call.tags, perform_as=self.opts.perform_as)
        except AuthenticationError as exc:
            journal.reset_to_pending(call.id, str(exc))
            self._count(self.counter.count)
            raise
        except NotFoundError as exc:
            # A write's 404 may concern the perform_as user, not the opportunity: only a read
            # that 404s too proves the opportunity is gone.
            exists = self._exists(call.opportunity_id)
            if exists is None:
                self._record_failure(
                    call, FAILED, f"{exc} (could not confirm the opportunity by a read)"
                )
                return
            if exists:
                self._record_failure(
                    call,
                    FAILED,
                    f"{exc} (the opportunity exists: check --perform-as and the tags)",
                    exc.status,
                    exc.code,
                )
                return
            self._record_failure(call, NOT_FOUND, exc.message, exc.status, exc.code)
            raise
        except LeverError as exc:
            self._record_failure(call, FAILED, str(exc), exc.status, exc.code)
            return
        except Exception as exc:  # a bug or an unexpected library error: record, go on
            self._record_failure(call, FAILED, f"{type(exc).__name__}: {scrub(exc)}")
            return
        failpoints.hit("after_write")
        self._count(self.counter.count)
        after = data.get("tags") if isinstance(data, dict) else None
        journal.mark_outcome(
            call.id,
            DONE,
            status=self.counter.status or 200,
            attempts=self.counter.count,
            wrote=True,
            after_tags=_clean_tags(after),
            session=self.session,
        )

    def _exists(self, opportunity_id: str) -> bool | None:
        """Whether a read finds the opportunity (True also for a 403); None when unsure."""
        try:
            self.client.get_opportunity(opportunity_id)
        except NotFoundError:
            return False
        except PermissionDeniedError:
            return True
        except AuthenticationError:
            raise
        except LeverError:
            return None
        return True

    def _check_then_write(self, call: Call) -> None:
        """A call that may have reached Lever: read the opportunity first."""
        opp = self.client.get_opportunity(call.opportunity_id)  # NotFoundError propagates
        current = _tags_of(opp)
        if _desired(call.op, call.tags, current):
            self.journal.mark_outcome(
                call.id,
                DONE,
                message="already in place when checked on resume",
                after_tags=current,
                session=self.session,
            )
            return
        if opp.get("isAnonymized"):
            self.journal.mark_outcome(
                call.id, NOOP, message="anonymized since the plan", session=self.session
            )
            return
        self._write(call)

    def _retry(self, call: Call) -> None:
        """A call Lever refused (400/403) in an earlier session: read, then write what is left.

        Lever wrote nothing for it, so the tags read now are its new before-state (rollback
        then leaves alone a tag someone put there meanwhile). The retry is journaled.
        """
        opp = self.client.get_opportunity(call.opportunity_id)  # NotFoundError propagates
        current = _tags_of(opp)
        tags = _narrow(call.op, call.tags, current)
        if not self.journal.reopen_failed(call.id, tags, current, self.session):
            return
        with self._count_lock:
            self.retried += 1
        if not tags:
            self.journal.mark_outcome(
                call.id, NOOP, message="nothing left to write when retried", session=self.session
            )
            return
        if opp.get("isAnonymized"):
            self.journal.mark_outcome(
                call.id, NOOP, message="anonymized since the plan", session=self.session
            )
            return
        self._write(replace(call, tags=tags, before_tags=current, state=PENDING))

    def _run_opportunity(
        self, calls: list[Call], check_first: set[int], retry: set[int], bar: tqdm
    ) -> None:
        for index, call in enumerate(calls):
            if self.stop.is_set():
                return
            try:
                if call.id in retry:
                    self._retry(call)
                elif call.id in check_first:
                    self._check_then_write(call)
                else:
                    self._write(call)
            except AuthenticationError as exc:
                self.auth_error = self.auth_error or exc
                self.stop.set()
                return
            except NotFoundError as exc:
                for rest in calls[index:]:
                    if rest is not call or call.id in check_first or call.id in retry:
                        self.journal.mark_outcome(
                            rest.id,
                            NOT_FOUND,
                            status=404,
                            code=exc.code,
                            message=exc.message or "opportunity not found",
                            session=self.session,
                        )
                bar.update(len(calls) - index)
                return
            except LeverError as exc:  # a failed check read: record, go on
                self.journal.mark_outcome(
                    call.id, FAILED, status=exc.status, code=exc.code, message=str(exc)
                )
            bar.update(1)

    def run(self, calls: list[Call], check_first: set[int], retry: set[int] | None = None) -> None:
        retry = retry or set()
        by_opp: dict[str, list[Call]] = defaultdict(list)
        for call in calls:
            by_opp[call.opportunity_id].append(call)
        for group in by_opp.values():
            group.sort(key=lambda c: (c.op != "add", c.id))  # adds first (rename: never tagless)
        desc = "rollback" if self.opts.kind == "rollback" else "apply"
        failpoints.hit("before_first_write")
        bar = _progress(len(calls), self.opts.progress, desc)
        workers = max(1, min(self.opts.workers, len(by_opp) or 1))
        with self.counter, ThreadPoolExecutor(workers, thread_name_prefix="apply") as pool:
            futures = [
                pool.submit(self._run_opportunity, group, check_first, retry, bar)
                for group in by_opp.values()
            ]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                self.stop.set()
                for future in futures:
                    future.cancel()
                raise
            finally:
                bar.close()


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
            stats = _stats_delta(stats_before, client.stats.as_dict())
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
    path = Path(plan_path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + ".journal.sqlite")


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


def default_rollback_path(journal_path: str | os.PathLike) -> Path:
    """`j.sqlite` -> `j.rollback.sqlite` beside it."""
    path = Path(journal_path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + ".rollback.sqlite")


def inverse_plan(journal_path: str | os.PathLike) -> Plan:
    """The plan that undoes what a journal's run changed, and nothing else (pure read).

    For each call that was (or may have been) written: an add is undone by removing only the
    tags that were not there before the run; a remove by re-adding only the tags that were.

    Raises:
        JournalError: the journal is missing or belongs to a run still holding its lock.
    """
    with Journal(journal_path, lock=True, create=False) as journal:
        run = journal.run()
        if run is None:
            raise JournalError(f"{journal_path} holds no run to roll back")
        calls = journal.calls([DONE, INTENT, FAILED])
    records = []
    for call in calls:
        if call.state == FAILED and not _transient(call.status):
            continue  # 400/403: Lever refused, nothing was written
        before = set(call.before_tags) if call.before_tags is not None else None
        if call.op == "add":
            tags = [t for t in call.tags if before is None or t not in before]
            inverse = "remove"
        else:
            tags = [t for t in call.tags if before is None or t in before]
            inverse = "add"
        records.extend((call.opportunity_id, call.contact_id, inverse, t) for t in tags)
    rows = pd.DataFrame.from_records(records, columns=PLAN_COLUMNS).astype(object)
    rows = rows.drop_duplicates().reset_index(drop=True)
    source_meta = run["plan_meta"] or {}
    meta = {
        "mode": "rollback",
        "source_journal": str(journal_path),
        "source_kind": run["kind"],
        "source_plan_sha256": run["plan_sha256"],
        "snapshot": {
            "watermark": (source_meta.get("snapshot") or {}).get("watermark"),
            "confidential_access": (source_meta.get("snapshot") or {}).get("confidential_access"),
        },
    }
    return Plan(rows=rows, meta=meta, before={})


def rollback(
    client: Any,
    journal_path: str | os.PathLike,
    *,
    dry_run: bool = True,
    rollback_journal: str | os.PathLike | None = None,
    perform_as: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: bool | None = None,
    retry_failed: bool = False,
) -> ApplyResult:
    """Undo a run from its journal: remove the tags it added, re-add the ones it removed.

    A tag that was already there before the run stays. The rollback is itself journaled
    (default ``<journal>.rollback.sqlite``) and resumable; it re-reads the touched opportunities
    first (one listing since the source snapshot) and writes only what still differs.

    Args:
        client: a `LeverClient`.
        journal_path: the journal of the run to undo.
        dry_run: write nothing (the default).
        rollback_journal: where to journal the rollback.
        perform_as: Lever user id; default the one the run used.
        workers, progress, retry_failed: as in `apply_plan`.

    Example:
        >>> rollback(client, "j.sqlite", dry_run=False).applied  # doctest: +SKIP
    """
    plan = inverse_plan(journal_path)
    if perform_as is None:
        with Journal(journal_path, lock=False, create=False) as source:
            perform_as = ((source.run() or {}).get("params") or {}).get("perform_as")
    if dry_run:
        return _dry_run(client, plan, "rollback", True, workers)
    check_perform_as(client, perform_as)
    target = rollback_journal or default_rollback_path(journal_path)
    params = {
        "perform_as": perform_as,
        "workers": workers,
        "host": _host(client),
        "source_journal": str(journal_path),
    }
    opts = _Options("rollback", perform_as, workers, progress, True, retry_failed)
    # Hold the source journal's lock too: no rollback while its run is still writing.
    with Journal(journal_path, lock=True, create=False):
        return _run(client, plan, target, opts, params)


# -- verify -------------------------------------------------------------------------------------

VERIFY_COLUMNS = [*PLAN_COLUMNS, "reason"]
# Reasons of rows the apply did not write on purpose (from its journal): they do not fail verify.
REASON_DROPPED_DRIFT = "dropped (drift)"
REASON_DROPPED_ANONYMIZED = "dropped (anonymized)"
REASON_NOOP_DRIFT = "no-op (drift)"
REASON_NOOP_ANONYMIZED = "no-op (anonymized)"
ON_PURPOSE_REASONS = (
    REASON_DROPPED_DRIFT,
    REASON_DROPPED_ANONYMIZED,
    REASON_NOOP_DRIFT,
    REASON_NOOP_ANONYMIZED,
)


def verify_on_purpose(bad: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `verify_plan` answer the apply did not write on purpose (drift, anonymized).

    Example:
        >>> bad = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                     "op": ["add", "add"], "tag": ["T", "T"],
        ...                     "reason": ["missing", "dropped (drift)"]})
        >>> verify_on_purpose(bad)["opportunity_id"].tolist()
        ['o2']
    """
    return bad[bad["reason"].isin(ON_PURPOSE_REASONS)].reset_index(drop=True)


def verify_failures(bad: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `verify_plan` answer that should hold and do not (verify fails on these).

    Example:
        >>> bad = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                     "op": ["add", "add"], "tag": ["T", "T"],
        ...                     "reason": ["missing", "dropped (drift)"]})
        >>> verify_failures(bad)["opportunity_id"].tolist()
        ['o1']
    """
    return bad[~bad["reason"].isin(ON_PURPOSE_REASONS)].reset_index(drop=True)


def _not_written_on_purpose(
    plan: Plan, journal_path: str | os.PathLike
) -> dict[tuple[str, str, str], str]:
    """{(opportunity_id, op, tag): reason} of the plan rows its apply journal chose not to write.

    Rows the drift re-plan dropped (journal table ``dropped``), calls found with nothing left to
    write (``noop``), and tags narrowed out of a call because they were already in place.
    """
    with Journal(journal_path, lock=False, create=False) as journal:
        run = journal.run()
        if run is None:
            return {}
        if run["kind"] != "apply" or run["plan_sha256"] != plan.sha256:
            raise JournalError(
                f"the journal {journal_path} belongs to another plan or to a {run['kind']} run "
                f"(plan {run['plan_sha256'][:12]}, this plan {plan.sha256[:12]}); "
                "give the journal of this plan's apply"
            )
        dropped = journal.table("dropped")
        calls = journal.calls()
    out: dict[tuple[str, str, str], str] = {}
    for row in dropped.to_dict("records"):
        anonymized = row["reason"] == REASON_ANONYMIZED
        reason = REASON_DROPPED_ANONYMIZED if anonymized else REASON_DROPPED_DRIFT
        out[(row["opportunity_id"], row["op"], row["tag"])] = reason
    for call in calls:
        if call.state == NOOP:
            anonymized = "anonymized" in (call.message or "")
            reason = REASON_NOOP_ANONYMIZED if anonymized else REASON_NOOP_DRIFT
            untouched = call.planned_tags
        else:
            reason = REASON_NOOP_DRIFT
            untouched = [t for t in call.planned_tags if t not in set(call.tags)]
        for tag in untouched:
            out.setdefault((call.opportunity_id, call.op, tag), reason)
    return out


def verify_plan(
    client: Any,
    plan: Plan | str | os.PathLike,
    journal_path: str | os.PathLike | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    by: str = "auto",
    batch: int = 50,
) -> pd.DataFrame:
    """Re-read every opportunity the plan touches; return the rows that do not hold.

    Reads by ``contact_id`` listings, ``batch`` contacts per listing (one call covers many
    opportunities), or by id; ``auto`` uses listings when the rows carry contact ids and falls
    back to reading by id for the rest.

    With the apply's journal, rows it did not write on purpose (dropped by the drift re-plan,
    nothing left to write, anonymized since the plan) keep their own reason; tell them apart
    with `verify_failures` (should hold and do not) and `verify_on_purpose`.

    Args:
        client: a `LeverClient`.
        plan: a `Plan` or a plan CSV path.
        journal_path: the journal of this plan's apply (None: none is read; the CLI defaults
            to ``<plan>.journal.sqlite`` when it exists).
        workers: concurrent reads.
        by: ``auto``, ``contact`` or ``id``.
        batch: contact ids per listing.

    Returns:
        DataFrame[opportunity_id, contact_id, op, tag, reason]; empty when every row holds.
        Reasons: ``missing`` (an add not there), ``still present`` (a remove still there),
        ``not found`` (the opportunity is gone); with a journal, for rows not written on
        purpose: ``dropped (drift)``, ``dropped (anonymized)``, ``no-op (drift)``,
        ``no-op (anonymized)``.

    Raises:
        JournalError: the journal is missing or belongs to another plan.

    Example:
        >>> verify_plan(client, "plan.csv").empty  # doctest: +SKIP
        True
        >>> bad = verify_plan(client, "plan.csv", "plan.journal.sqlite")  # doctest: +SKIP
        >>> verify_failures(bad).empty  # doctest: +SKIP
        True
    """
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    rows = plan.rows
    on_purpose = _not_written_on_purpose(plan, journal_path) if journal_path is not None else {}
    if rows.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    wanted = set(rows["opportunity_id"])
    current: dict[str, list[str]] = {}
    if by in ("auto", "contact"):
        contacts = sorted({c for c in rows["contact_id"] if c})
        chunks = [contacts[i : i + batch] for i in range(0, len(contacts), batch)]
        listed = _list_many(
            client,
            plan,
            [{"contact_id": chunk} for chunk in chunks],
            on_items=lambda _new: failpoints.hit("verify_midway"),
        )
        for opp in listed:
            if opp.get("id") in wanted:
                current[opp["id"]] = _tags_of(opp)
    elif by != "id":
        raise ValueError(f"by must be auto, contact or id (got {by!r})")
    rest = sorted(wanted - set(current))
    found, _missing = _read_each(client, rest, workers)
    current.update({k: _tags_of(v) for k, v in found.items()})
    reasons = []
    for opp, op, tag in rows[["opportunity_id", "op", "tag"]].itertuples(index=False, name=None):
        if opp not in current:
            reason = "not found"
        elif op == "add" and tag not in current[opp]:
            reason = "missing"
        elif op == "remove" and tag in current[opp]:
            reason = "still present"
        else:
            reason = ""
        reasons.append(on_purpose.get((opp, op, tag), reason) if reason else "")
    reason = pd.Series(reasons, index=rows.index, dtype=object)
    bad = rows[reason != ""].assign(reason=reason[reason != ""])
    return bad[VERIFY_COLUMNS].reset_index(drop=True)


__all__ = [
    "ApplyResult",
    "apply_plan",
    "check_drift",
    "default_journal_path",
    "default_rollback_path",
    "inverse_plan",
    "rollback",
    "verify_failures",
    "verify_on_purpose",
    "verify_plan",
]
