"""The sync service's workers: take a contact from the journal's queue, check it, and decide what
becomes of a failure (`toolkit.sync.retry`: fail at once, back off and keep, or count a strike).

`QueueWorker` is a mixin of `toolkit.sync.service.SyncService`, which holds the state it uses
(the journal, the checker, the cap, the metrics, the stop and wake-up events).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from toolkit import failpoints
from toolkit.errors import AuthenticationError, NotFoundError
from toolkit.sync.cap import ChangeCap
from toolkit.sync.contact import ContactChecker, shown
from toolkit.sync.metrics import SyncMetrics
from toolkit.sync.poller import iso_ms
from toolkit.sync.retry import (
    MAX_STRIKES,
    PERMANENT,
    TRANSIENT,
    UNEXPECTED,
    backoff_seconds,
    check_id,
    classify,
    status_kind,
)
from toolkit.sync.store import W_FAILED, Claim, SyncJournal, now_ms

log = logging.getLogger("toolkit.sync")


class QueueWorker:
    """The worker loop and the failure rules of `SyncService` (see the module doc)."""

    journal: SyncJournal | None
    checker: ContactChecker
    cap: ChangeCap
    metrics: SyncMetrics
    dry_run: bool
    backoff_base: float
    backoff_max: float
    last_error: str | None
    _stop: threading.Event
    _wakeup: threading.Event
    _lock: threading.Lock
    _session: int | None
    _cap_logged: bool
    _ok_at: int
    _failing: int
    _failing_since: int | None

    _fatal: Callable[[AuthenticationError], None]  # stop the service: Lever refused the key

    def _work(self) -> None:
        journal = self.journal
        assert journal is not None
        while not self._stop.is_set():
            if self.cap.paused():
                self._stop.wait(min(1.0, max(0.05, (self.cap.paused_until or 0) - now_ms()) / 1000))
                continue
            claim = journal.claim()
            if claim is None:
                self._wakeup.wait(0.5)
                self._wakeup.clear()
                continue
            failpoints.hit("sync_before_process")  # accepted and claimed, not yet processed
            started = now_ms()
            try:
                self._process(journal, claim, started)
            except AuthenticationError as exc:
                journal.release(claim, message="stopped: authentication failed")
                self._fatal(exc)
            except BaseException as exc:  # never lose the claim: retried or failed, by its kind
                kind = classify(exc)
                why = " ".join(str(exc).split())[:500]
                if kind == UNEXPECTED:
                    why = f"unexpected {type(exc).__name__}: {why}"
                self._failed(journal, claim, started, kind, why, exc)

    def _ok(self) -> None:
        """Lever answered a check (or a poll) in full: work is not failing."""
        with self._lock:
            self._ok_at, self._failing, self._failing_since = now_ms(), 0, None

    def _failed(
        self,
        journal: SyncJournal,
        claim: Claim,
        started: int,
        kind: str,
        why: str,
        exc: BaseException | None = None,
    ) -> None:
        """A check failed: fail its events at once (permanent), or back off and try again.

        A strike is counted for an unexpected error, and for a transient one only when Lever
        answered other work since this check started (not an outage); `MAX_STRIKES` fail it.
        A traceback is logged once per event, at its first unexpected error.
        """
        self.metrics.failures.labels(kind="check").inc()
        self.last_error = f"{iso_ms(now_ms())} check: {why}"
        key = shown(claim.key[:100])  # a hostile id can be long
        if kind == PERMANENT:
            journal.release(claim, failed=True, strike=True, message=why)
            self.metrics.contacts_checked.labels(outcome="failed").inc()
            log.error("contact %s: failed, not retried (a permanent error): %s", key, why)
            return
        with self._lock:
            self._failing += 1
            self._failing_since = self._failing_since or now_ms()
            strike = kind == UNEXPECTED or self._ok_at > started
        strikes = claim.strikes + strike
        if strikes >= MAX_STRIKES:
            journal.release(claim, failed=True, strike=strike, message=why)
            self.metrics.contacts_checked.labels(outcome="failed").inc()
            log.error("contact %s: failed after %d failed checks: %s", key, strikes, why)
            return
        tries = claim.attempts + 1
        delay = backoff_seconds(tries, self.backoff_base, self.backoff_max)
        journal.release(
            claim, not_before=now_ms() + max(1, int(delay * 1000)), message=why, strike=strike
        )
        if kind == UNEXPECTED and claim.strikes == 0:
            log.error(
                "contact %s: check failed unexpectedly; checked again in %.1f s, failed after "
                "%d such errors",
                key,
                delay,
                MAX_STRIKES,
                exc_info=exc,
            )
        elif tries & (tries - 1) == 0:  # the 1st, 2nd, 4th, 8th... try: an outage logs little
            log.warning("contact %s: %s (try %d); checked again in %.1f s", key, why, tries, delay)

    def _process(self, journal: SyncJournal, claim: Claim, started: int) -> None:
        """Check a claimed contact; a failure raises (`_work` decides what becomes of it)."""
        contact = claim.contact_id
        trigger = ",".join(dict.fromkeys(claim.events))
        check_id(contact, "contact")
        if contact is None:
            opp_id = claim.opportunity_ids[0]
            check_id(opp_id, "opportunity")
            try:
                contact, _opp = self.checker.resolve_contact(opp_id)
            except NotFoundError:
                self._ok()
                journal.finish(claim, "opportunity not found (deleted)")
                log.info("opportunity %s not found (deleted): nothing to check", shown(opp_id))
                return
            if contact is None:
                self._ok()
                journal.finish(claim, "the opportunity has no contact: nothing to propagate")
                return
            check_id(contact, "contact")
        result = self.checker.check(contact, trigger=trigger, stop=self._stop)
        for removal in result.removals:
            self.metrics.removals.labels(action=removal["action"]).inc()
        if result.interrupted:
            journal.release(claim, message="service stopped mid-check; checked again at start")
            return
        if result.paused:
            until = self.cap.paused_until or now_ms() + 60_000
            journal.release(claim, not_before=until, message="hourly change cap reached")
            if not self._cap_logged:
                self._cap_logged = True
                journal.add_event(
                    self._session, "cap", {"per_hour": self.cap.limit, "until": iso_ms(until)}
                )
            log.warning(
                "change cap reached: %d changes in the last hour (--max-changes-per-hour %s); "
                "writes paused until %s, events stay queued",
                self.cap.used(),
                self.cap.limit,
                iso_ms(until),
            )
            return
        self._cap_logged = False
        transient = [
            w for w in result.writes if w.state == W_FAILED and status_kind(w.status) == TRANSIENT
        ]
        if transient:
            why = f"{len(transient)} writes failed for now: {transient[0].message or 'no answer'}"
            self._failed(journal, claim, started, TRANSIENT, " ".join(why.split())[:500])
            return
        self._ok()
        lag = max(0.0, (now_ms() - claim.first_at) / 1000)
        self.metrics.lag.observe(lag)
        self.metrics.contacts_checked.labels(
            outcome="ok" if not result.failed else "failures"
        ).inc()
        journal.finish(claim, f"{len(result.writes)} writes, {result.changes} changes")
        journal.add_event(
            self._session,
            "check",
            {
                "contact_id": contact,
                "trigger": trigger,
                "opportunities": result.opportunities,
                "writes": len(result.writes),
                "changes": result.changes,
                "failed": len(result.failed),
                "removals": len(result.removals),
                "lag_seconds": round(lag, 3),
            },
        )
        log.info(
            "contact %s checked (%s): %d opportunities, %d %s, %d removals, lag %.2f s",
            shown(contact),
            trigger,
            result.opportunities,
            result.changes,
            "changes would be written (dry run)" if self.dry_run else "changes written",
            len(result.removals),
            lag,
        )


__all__ = ["QueueWorker"]
