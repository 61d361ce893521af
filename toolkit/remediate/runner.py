"""The runner: the journal's open calls written by a pool of workers sharing one client.

Intent committed before each call, outcome after; 400/403/404 are recorded and the run goes on;
401 stops it at once. Adds before removes on each opportunity (a rename never leaves it
tagless).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from toolkit import failpoints
from toolkit.errors import AuthenticationError, LeverError, NotFoundError, PermissionDeniedError
from toolkit.progress import progress_bar
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, NOOP, NOT_FOUND, PENDING, Call
from toolkit.remediate.reads import clean_tags, tags_of
from toolkit.scrub import scrub

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient


@dataclass
class RunOptions:
    kind: str
    perform_as: str | None
    workers: int
    progress: bool | None
    drift_check: bool
    retry_failed: bool = False
    stop: threading.Event | None = None  # set by SIGINT/SIGTERM (`toolkit.remediate.stops`)
    ledger: Any = None  # a `toolkit.ledger.entry.LedgerRun`: one row per write sent
    limit: int | None = None  # write at most this many calls in this invocation (--limit)


def _progress(total: int, progress: bool | None, desc: str) -> tqdm[Any]:
    return progress_bar(progress, total=total, desc=desc, unit=" call")


def desired_tags(op: str, tags: list[str], current: list[str]) -> bool:
    now = set(current)
    return set(tags) <= now if op == "add" else not (set(tags) & now)


def narrow_tags(op: str, tags: list[str], current: list[str]) -> list[str]:
    """The tags of a call still to write given the current tags."""
    now = set(current)
    return [t for t in tags if (t not in now if op == "add" else t in now)]


class Runner:
    """Runs the journal's open calls with a pool of workers."""

    def __init__(self, client: TagClient, journal: Journal, session: int, opts: RunOptions) -> None:
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
        self._count(self.client.call_record.attempts)
        self._ledger(call, state, status)
        self.journal.mark_outcome(
            call.id,
            state,
            status=status,
            attempts=self.client.call_record.attempts,
            wrote=True,
            code=code,
            message=message,
            session=self.session,
        )

    def _write(self, call: Call) -> None:
        journal, client = self.journal, self.client
        journal.mark_intent(call.id, self.session)
        client.start_call_record()  # the client counts this write's attempts and status
        write = client.add_tags if call.op == "add" else client.remove_tags
        try:
            data = write(call.opportunity_id, call.tags, perform_as=self.opts.perform_as)
        except AuthenticationError as exc:
            journal.reset_to_pending(call.id, str(exc))
            self._count(self.client.call_record.attempts)
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
        self._count(self.client.call_record.attempts)
        after = data.get("tags") if isinstance(data, dict) else None
        self._ledger(call, DONE, self.client.call_record.status or 200, clean_tags(after))
        journal.mark_outcome(
            call.id,
            DONE,
            status=self.client.call_record.status or 200,
            attempts=self.client.call_record.attempts,
            wrote=True,
            after_tags=clean_tags(after),
            session=self.session,
        )

    def _ledger(
        self, call: Call, state: str, status: int | None, after: list[str] | None = None
    ) -> None:
        """The ledger row of a write sent, appended before its outcome is journaled: a crash in
        between leaves the call an intent, checked on resume; never a write missing from the
        ledger."""
        if self.opts.ledger is None:
            return
        self.opts.ledger.record(
            opportunity_id=call.opportunity_id,
            contact_id=call.contact_id,
            op=call.op,
            tags=list(call.tags),
            before=call.before_tags,
            outcome=state,
            status=status,
            perform_as=self.opts.perform_as,
            after=after,
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
        current = tags_of(opp)
        if desired_tags(call.op, call.tags, current):
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
        current = tags_of(opp)
        tags = narrow_tags(call.op, call.tags, current)
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

    @property
    def stopped(self) -> bool:
        """A clean stop was asked for (a signal): no new call is sent."""
        return self.opts.stop is not None and self.opts.stop.is_set()

    def _run_opportunity(
        self, calls: list[Call], check_first: set[int], retry: set[int], bar: tqdm[Any]
    ) -> None:
        for index, call in enumerate(calls):
            if self.stop.is_set() or self.stopped:
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
        with ThreadPoolExecutor(workers, thread_name_prefix="apply") as pool:
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
