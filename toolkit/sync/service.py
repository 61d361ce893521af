"""`SyncService`: the long-running `lever-tags sync` (workers, poller, HTTP side, clean stop).

Threads: the HTTP server (tornado, its own event loop) stores webhooks; ``workers`` threads take
one contact at a time from the journal's queue (a contact is never checked by two workers at once;
its queued events coalesce into one check) and run `ContactChecker`; the poller lists what changed
every ``poll_interval``. `request_stop` (SIGTERM/SIGINT) stops taking events: each worker finishes
the write in flight, and whatever is not done stays queued in the journal for the next start.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

from toolkit import failpoints
from toolkit.errors import RETRYABLE_STATUSES, AuthenticationError, LeverError, NotFoundError
from toolkit.sync.cap import HOUR_MS, ChangeCap
from toolkit.sync.contact import ConfidentialAccess, ContactChecker, WriteOutcome, shown
from toolkit.sync.metrics import SyncMetrics
from toolkit.sync.poller import DEFAULT_MARGIN_MS, iso_ms, poll_once
from toolkit.sync.store import W_DONE, W_DRY_RUN, W_FAILED, Claim, SyncJournal, now_ms
from toolkit.sync.web import HttpSide, make_app
from toolkit.sync.webhook import DEFAULT_MAX_BODY_BYTES, DEFAULT_REPLAY_WINDOW_S

log = logging.getLogger("toolkit.sync")

DEFAULT_POLL_INTERVAL_S = 300.0
DEFAULT_MAX_CHANGES_PER_HOUR = 500
DEFAULT_WORKERS = 4
DEFAULT_MAX_QUEUE = 10_000
MAX_ATTEMPTS = 8  # checks of one contact that failed for a transient reason, then it is failed
BACKOFF_MAX_S = 300.0


class SyncService:
    """Keep the policy's contact-level tags consistent, from webhooks and polling.

    Args:
        client: a `LeverClient` (its rate limiter paces every worker and the poller).
        policy: a `toolkit.policy.Policy` with ``contact_level`` tags.
        journal_path: the sync journal (SQLite, 0600): queue, writes, decisions.
        dry_run: journal and log what would be written, write nothing (the default).
        perform_as: Lever user id the writes are attributed to.
        listen: ``(host, port)`` for the HTTP side (port 0: a free one); None: polling only.
        secret: the webhook signing token (from ``LEVER_WEBHOOK_SECRET``); needed with listen.
        poll_interval: seconds between polls (0: no polling, webhooks only).
        max_changes_per_hour: the hourly change cap (None: none).
        workers: contact checks at once.
        replay_window: seconds a webhook's triggeredAt may be old.
        max_queue: waiting events above which webhooks are answered 503.
        max_body_bytes: larger webhook bodies are refused (413).
        poll_margin_ms: how far before the watermark each poll lists again.

    Example:
        >>> service = SyncService(client, policy, "sync.sqlite", poll_interval=60)  # doctest: +SKIP
        >>> service.start(); service.wait()  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        policy: Any,
        journal_path: str | Path,
        *,
        dry_run: bool = True,
        perform_as: str | None = None,
        listen: tuple[str, int] | None = None,
        secret: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        max_changes_per_hour: int | None = DEFAULT_MAX_CHANGES_PER_HOUR,
        workers: int = DEFAULT_WORKERS,
        replay_window: float = DEFAULT_REPLAY_WINDOW_S,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_margin_ms: int = DEFAULT_MARGIN_MS,
    ) -> None:
        if not policy.contact_level and not getattr(policy, "patterns", ()):
            raise ValueError("the policy names no contact_level tags: there is nothing to sync")
        if listen is not None and not secret:
            raise ValueError("webhooks need the signing token in LEVER_WEBHOOK_SECRET")
        if listen is None and poll_interval <= 0:
            raise ValueError("without --listen the service polls: give --poll-interval > 0")
        if workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers})")
        self.client = client
        self.policy = policy
        self.journal_path = Path(journal_path)
        self.dry_run = dry_run
        self.perform_as = perform_as
        self.listen = listen
        self.secret = secret if listen is not None else None
        self.poll_interval = poll_interval
        self.max_changes_per_hour = max_changes_per_hour
        self.workers = workers
        self.replay_window = replay_window
        self.max_queue = max_queue
        self.max_body_bytes = max_body_bytes
        self.poll_margin_ms = poll_margin_ms
        self.metrics = SyncMetrics()
        self.journal: SyncJournal | None = None
        self.last_error: str | None = None
        self.fatal: BaseException | None = None
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: HttpSide | None = None
        self._session: int | None = None
        self._cap_logged = False
        self._writes = 0
        self._lock = threading.Lock()
        self._access = ConfidentialAccess()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> SyncService:
        """Open the journal (taking its lock), recover a crashed run, start every thread."""
        self.journal = SyncJournal(self.journal_path)
        try:
            self._open()
        except BaseException:
            self.journal.close()
            raise
        return self

    def _open(self) -> None:
        journal = self.journal
        assert journal is not None
        journal.open_sync_run(
            {
                "dry_run": self.dry_run,
                "perform_as": self.perform_as,
                "policy": self.policy.to_dict(),
                "poll_interval": self.poll_interval,
                "max_changes_per_hour": self.max_changes_per_hour,
                "listen": None if self.listen is None else f"{self.listen[0]}:{self.listen[1]}",
                "host": getattr(self.client, "base_url", None),
            }
        )
        requeued, interrupted = journal.recover()
        if requeued or interrupted:
            log.warning(
                "recovered after an unclean stop: %d queued events back in the queue, %d writes "
                "interrupted (their contacts are checked again before anything is written)",
                requeued,
                interrupted,
            )
        self._session = journal.start_session()
        journal.add_event(
            self._session,
            "start",
            {"dry_run": self.dry_run, "requeued": requeued, "interrupted": interrupted},
        )
        history = journal.recent_changes(now_ms() - HOUR_MS)
        self.cap = ChangeCap(self.max_changes_per_hour, history)
        self.checker = ContactChecker(
            self.client,
            self.policy,
            journal,
            dry_run=self.dry_run,
            perform_as=self.perform_as,
            on_removal=getattr(self.policy, "on_removal", "report"),
            cap=self.cap,
            session=self._session,
            on_write=self._count_write,
        )
        self.metrics.bind(self._depth)
        self.metrics.cap_paused.set_function(lambda: 1 if self.cap.paused() else 0)
        self.metrics.cap_remaining.set_function(
            lambda: float("inf") if self.cap.remaining() is None else self.cap.remaining()
        )
        if self.listen is not None:
            self._http = HttpSide(make_app(self), self.listen, self.max_body_bytes).start()
        for index in range(self.workers):
            self._spawn(self._work, f"sync-worker-{index}")
        if self.poll_interval > 0:
            self._spawn(self._poll_loop, "sync-poller")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def request_stop(self) -> None:
        """Ask the service to stop (safe from a signal handler)."""
        self._stop.set()
        self._wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until `request_stop` (or a fatal error); True when it was asked to stop."""
        return self._stop.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop: no new events, the writes in flight finish, the rest stays queued."""
        self.request_stop()
        if self._http is not None:
            self._http.stop(timeout)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        self._threads = []
        journal = self.journal
        if journal is None:
            return
        with contextlib.suppress(Exception):
            depth = journal.queue_depth()
            status = "failed" if self.fatal is not None else "stopped"
            journal.add_event(self._session, "stop", {"queued_events": depth[0], "status": status})
            journal.finish_session(
                self._session or 0,
                status,
                writes=self._writes,
                stats=self.client.stats.as_dict() if hasattr(self.client, "stats") else None,
                message=str(self.fatal) if self.fatal else "",
            )
            journal.finish_run(status)
            log.info("stopped: %d events stay queued for the next start", depth[0])
        journal.close()
        self.journal = None

    def __enter__(self) -> SyncService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP -----------------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The HTTP side's port, once started."""
        return self._http.port if self._http is not None else None

    @property
    def url(self) -> str | None:
        """``http://HOST:PORT`` of the HTTP side, once started."""
        return self._http.url if self._http is not None else None

    # -- shared state ---------------------------------------------------------------------------

    def wake(self) -> None:
        """A new event is queued: wake the workers."""
        self._wakeup.set()

    def queue_full(self) -> bool:
        return self.journal is not None and self.journal.queue_depth()[0] >= self.max_queue

    def _depth(self) -> tuple[int, int, float]:
        journal = self.journal
        if journal is None:
            return 0, 0, 0.0
        events, contacts = journal.queue_depth()
        oldest = journal.oldest_queued_ms()
        return events, contacts, 0.0 if oldest is None else max(0.0, (now_ms() - oldest) / 1000)

    def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` answers."""
        events, contacts, oldest = self._depth()
        last_poll = self.journal.get_state("last_poll") if self.journal else None
        paused = self.cap.paused()
        status = "failed" if self.fatal else "stopping" if self.stopping else "ok"
        return {
            "status": "paused" if paused and status == "ok" else status,
            "dry_run": self.dry_run,
            "queue_depth": events,
            "queued_contacts": contacts,
            "oldest_event_age_seconds": round(oldest, 3),
            "last_poll": iso_ms(int(last_poll)) if last_poll else None,
            "last_error": self.last_error,
            "change_cap": {
                "per_hour": self.cap.limit,
                "used_last_hour": self.cap.used(),
                "paused_until": iso_ms(self.cap.paused_until) if paused else None,
            },
        }

    def _error(self, where: str, exc: BaseException) -> None:
        text = " ".join(str(exc).split())
        self.last_error = f"{iso_ms(now_ms())} {where}: {text}"

    def _fatal(self, exc: AuthenticationError) -> None:
        self.fatal = exc
        self._error("fatal", exc)
        log.error("stopping: Lever refused the credential (%s); nothing more is written", exc)
        self.request_stop()

    def _count_write(self, outcome: WriteOutcome) -> None:
        self.metrics.writes.labels(op=outcome.op, outcome=outcome.state).inc()
        if outcome.state in (W_DONE, W_DRY_RUN):
            self.metrics.changes.labels(op=outcome.op).inc(len(outcome.tags))
        if outcome.state == W_DONE:
            with self._lock:
                self._writes += 1
        elif outcome.state != W_DRY_RUN:
            self.metrics.failures.labels(kind="write").inc()

    # -- workers --------------------------------------------------------------------------------

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
            try:
                self._process(journal, claim)
            except AuthenticationError as exc:
                journal.release(claim, message="stopped: authentication failed")
                self._fatal(exc)
            except BaseException as exc:  # never lose the claim: it goes back to the queue
                journal.release(claim, not_before=now_ms() + 5000, message=f"error: {exc}")
                self._error("worker", exc)
                log.exception("contact check of %s failed unexpectedly", shown(claim.key))

    def _check_failed(self, journal: SyncJournal, claim: Claim, why: str, exc: LeverError) -> None:
        """A read for a check failed: count it, remember it, try the contact again later."""
        self.metrics.failures.labels(kind="check").inc()
        self._error("check", exc)
        self._backoff(journal, claim, why)

    def _backoff(self, journal: SyncJournal, claim: Claim, why: str) -> None:
        attempts = claim.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            journal.release(claim, failed=True, message=why)
            self.metrics.contacts_checked.labels(outcome="failed").inc()
            log.error(
                "contact %s: giving up after %d attempts: %s", shown(claim.key), attempts, why
            )
            return
        delay = min(BACKOFF_MAX_S, 2.0**attempts) * (0.5 + random.random() / 2)
        journal.release(claim, not_before=now_ms() + int(delay * 1000), message=why)
        log.warning("contact %s: %s; checked again in %.0f s", shown(claim.key), why, delay)

    def _process(self, journal: SyncJournal, claim: Claim) -> None:
        contact = claim.contact_id
        trigger = ",".join(dict.fromkeys(claim.events))
        if contact is None:
            opp_id = claim.opportunity_ids[0]
            try:
                contact, _opp = self.checker.resolve_contact(opp_id)
            except NotFoundError:
                journal.finish(claim, "opportunity not found (deleted)")
                log.info("opportunity %s not found (deleted): nothing to check", shown(opp_id))
                return
            except AuthenticationError:
                raise
            except LeverError as exc:
                self._check_failed(journal, claim, f"reading opportunity failed: {exc}", exc)
                return
            if contact is None:
                journal.finish(claim, "the opportunity has no contact: nothing to propagate")
                return
        try:
            result = self.checker.check(contact, trigger=trigger, stop=self._stop)
        except AuthenticationError:
            raise
        except LeverError as exc:
            why = f"listing the contact's opportunities failed: {exc}"
            self._check_failed(journal, claim, why, exc)
            return
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
            w
            for w in result.writes
            if w.state == W_FAILED and (w.status is None or w.status in RETRYABLE_STATUSES)
        ]
        if transient:
            self._error("write", RuntimeError(transient[0].message or "write failed"))
            self._backoff(journal, claim, f"{len(transient)} writes failed for now")
            return
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

    # -- poller ---------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        journal = self.journal
        assert journal is not None
        start = now_ms()
        while not self._stop.is_set():
            try:
                result = poll_once(
                    self.client,
                    journal,
                    self.policy,
                    margin_ms=self.poll_margin_ms,
                    start_ms=start,
                    access=self._access,
                )
                self.metrics.polls.labels(outcome="ok").inc()
                self.metrics.last_poll.set(time.time())
                for _ in range(result.queued):
                    self.metrics.events_received.labels(source="poll", event="poll").inc()
                if result.queued:
                    self.wake()
            except AuthenticationError as exc:
                self._fatal(exc)
                return
            except LeverError as exc:
                self.metrics.polls.labels(outcome="failed").inc()
                self.metrics.failures.labels(kind="poll").inc()
                self._error("poll", exc)
                log.warning("poll failed (%s); trying again at the next interval", exc)
            self._stop.wait(self.poll_interval)


__all__ = [
    "DEFAULT_MAX_CHANGES_PER_HOUR",
    "DEFAULT_POLL_INTERVAL_S",
    "SyncService",
]
