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
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.client.account import check_account, check_host, host_of, recorded_account
from toolkit.errors import AuthenticationError, LeverError
from toolkit.remediate.apply import check_perform_as
from toolkit.sync.cap import HOUR_MS, ChangeCap
from toolkit.sync.contact import ConfidentialAccess, ContactChecker, WriteOutcome
from toolkit.sync.listener import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    HttpSide,
    ListenerLimits,
)
from toolkit.sync.metrics import SyncMetrics
from toolkit.sync.poller import DEFAULT_MARGIN_MS, iso_ms, poll_once
from toolkit.sync.registration import webhook_secrets
from toolkit.sync.retry import (
    DEFAULT_BACKOFF_BASE_S,
    DEFAULT_BACKOFF_MAX_S,
    DEFAULT_STALE_AFTER_S,
    check_interval,
    health_problems,
)
from toolkit.sync.store import W_DONE, W_DRY_RUN, SyncJournal, now_ms
from toolkit.sync.web import make_app
from toolkit.sync.webhook import DEFAULT_MAX_BODY_BYTES, WebhookSecrets
from toolkit.sync.worker import QueueWorker

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.policy import Policy
    from toolkit.ports import LeverAPI

log = logging.getLogger("toolkit.sync")

DEFAULT_POLL_INTERVAL_S = 300.0
DEFAULT_MAX_CHANGES_PER_HOUR = 500
DEFAULT_WORKERS = 4
DEFAULT_MAX_QUEUE = 10_000  # contacts due at once (see SyncJournal.due_contacts)
QUEUE_ROWS_PER_CONTACT = 20  # the hard cap on stored rows: max_queue times this


class SyncService(QueueWorker):
    """Keep the policy's contact-level tags consistent, from webhooks and polling.

    Args:
        client: a `LeverClient` (its rate limiter paces every worker and the poller).
        policy: a `toolkit.policy.Policy` with ``contact_level`` tags.
        journal_path: the sync journal (SQLite, 0600): queue, writes, decisions.
        dry_run: journal and log what would be written, write nothing (the default).
        perform_as: Lever user id the writes are attributed to.
        listen: ``(host, port)`` for the HTTP side (port 0: a free one); None: polling only.
        secret: the webhook signature tokens (``LEVER_WEBHOOK_SECRET``: a `WebhookSecrets` or
            one plain token); with listen, these or the tokens the journal keeps are needed.
        poll_interval: seconds between polls (0: no polling, webhooks only).
        max_changes_per_hour: the hourly change cap (None: none).
        workers: contact checks at once.
        replay_window: seconds a webhook's triggeredAt may be old (None: any age, the default;
            duplicates are refused by their signed token).
        register_url: make Lever's webhooks to this URL at start (`register_webhooks`).
        max_queue: contacts due at once (in backoff excluded) at which webhooks get 503.
        max_body_bytes: larger webhook bodies are refused (413).
        poll_margin_ms: how far before the watermark each poll lists again.
        backoff_base, backoff_max: seconds of the retry backoff of a failed check (doubling
            from the base, capped; `toolkit.sync.retry`); small values make outages testable.
        stale_after: ``/healthz`` is degraded while an event waits longer than this (seconds).
        header_timeout, body_timeout: seconds a client has to send a request's headers (also
            the idle time allowed between requests) and its body.
        max_connections: connections served at once (the oldest is closed past it).

    Example:
        >>> service = SyncService(client, policy, "sync.sqlite", poll_interval=60)  # doctest: +SKIP
        >>> service.start(); service.wait()  # doctest: +SKIP
    """

    def __init__(
        self,
        client: LeverAPI,
        policy: Policy,
        journal_path: str | Path,
        *,
        dry_run: bool = True,
        perform_as: str | None = None,
        listen: tuple[str, int] | None = None,
        secret: str | WebhookSecrets | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        max_changes_per_hour: int | None = DEFAULT_MAX_CHANGES_PER_HOUR,
        workers: int = DEFAULT_WORKERS,
        replay_window: float | None = None,
        register_url: str | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_margin_ms: int = DEFAULT_MARGIN_MS,
        backoff_base: float = DEFAULT_BACKOFF_BASE_S,
        backoff_max: float = DEFAULT_BACKOFF_MAX_S,
        stale_after: float = DEFAULT_STALE_AFTER_S,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT_S,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ledger: Any = None,
    ) -> None:
        if not policy.contact_level and not getattr(policy, "patterns", ()):
            raise ValueError("the policy names no contact_level tags: there is nothing to sync")
        check_interval("poll_interval", poll_interval, zero_ok=True)
        if listen is None and poll_interval <= 0:
            raise ValueError("without --listen the service polls: give --poll-interval > 0")
        if workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers})")
        if replay_window is not None:
            check_interval("replay_window", replay_window)
        for name, value in (
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("stale_after", stale_after),
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
        ):
            check_interval(name, value)
        if max_connections < 1 or max_queue < 0:
            raise ValueError("max_connections must be >= 1 and max_queue >= 0")
        self.client = client
        self.policy = policy
        self.journal_path = Path(journal_path)
        self.dry_run = dry_run
        self.perform_as = perform_as
        self.listen = listen
        if isinstance(secret, str):
            secret = WebhookSecrets(plain=(secret,)) if secret else None
        self.secrets = (secret or WebhookSecrets()) if listen is not None else WebhookSecrets()
        self.register_url = register_url
        self.poll_interval = poll_interval
        self.max_changes_per_hour = max_changes_per_hour
        self.workers = workers
        self.replay_window = replay_window
        self.max_queue = max_queue
        self.max_body_bytes = max_body_bytes
        self.poll_margin_ms = poll_margin_ms
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.stale_after = stale_after
        self.limits = ListenerLimits(header_timeout, body_timeout, max_connections)
        self.ledger = ledger  # a `toolkit.ledger.entry.LedgerRun` (docs/operations.md)
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
        self._ok_at = 0  # when Lever last answered a check or a poll in full (epoch ms)
        self._failing = 0  # contact checks failed in a row (transient or unexpected)
        self._failing_since: int | None = None

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
        # A journal of another account is refused before anything is written: by its host
        # before any request, then by the account's fingerprint (one users listing).
        run = journal.run()
        recorded = (run or {}).get("params") or {} if (run or {}).get("kind") == "sync" else {}
        what = f"the sync journal {self.journal_path}"
        check_host({"host": recorded.get("host")}, self.client, what)
        account = recorded_account(self.client)
        check_account(recorded.get("account"), account, what)
        # Before anything is served: a mistyped --perform-as would make every write a 404.
        check_perform_as(self.client, self.perform_as)
        journal.open_sync_run(
            {
                "dry_run": self.dry_run,
                "perform_as": self.perform_as,
                "policy": self.policy.to_dict(),
                "poll_interval": self.poll_interval,
                "max_changes_per_hour": self.max_changes_per_hour,
                "listen": None if self.listen is None else f"{self.listen[0]}:{self.listen[1]}",
                "host": host_of(getattr(self.client, "base_url", None)),
                "account": account,
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
        if self.listen is not None:
            self.secrets = webhook_secrets(self.client, journal, self.secrets, self.register_url)
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
            ledger=self.ledger,
        )
        self.metrics.bind(self._depth)
        self.metrics.cap_paused.set_function(lambda: 1 if self.cap.paused() else 0)
        self.metrics.cap_remaining.set_function(self._cap_remaining)
        if self.listen is not None:
            self._http = HttpSide(
                make_app(self), self.listen, self.max_body_bytes, self.limits
            ).start()
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
        """Webhooks are answered 503: too many contacts due now, or too many rows stored."""
        journal = self.journal
        if journal is None:
            return False
        if journal.due_contacts() >= self.max_queue:
            return True
        return journal.queue_depth()[0] >= self.max_queue * QUEUE_ROWS_PER_CONTACT

    def _depth(self) -> tuple[int, int, float]:
        journal = self.journal
        if journal is None:
            return 0, 0, 0.0
        events, contacts = journal.queue_depth()
        oldest = journal.oldest_queued_ms()
        return events, contacts, 0.0 if oldest is None else max(0.0, (now_ms() - oldest) / 1000)

    def _cap_remaining(self) -> float:
        remaining = self.cap.remaining()
        return float("inf") if remaining is None else remaining

    def health(self, *, with_error: bool = True) -> dict[str, Any]:
        """What ``GET /healthz`` answers (``last_error`` only `with_error`, else whether any).

        ``status``: failed, stopping, degraded (``problems`` says why: a full queue, failing
        checks, an old event), paused (the change cap) or ok.
        """
        events, contacts, oldest = self._depth()
        journal = self.journal
        last_poll = journal.get_state("last_poll") if journal else None
        paused = self.cap.paused()
        failing_since = self._failing_since
        problems = health_problems(
            due_contacts=journal.due_contacts() if journal else 0,
            max_queue=self.max_queue,
            failing=self._failing,
            failing_since=None if failing_since is None else iso_ms(failing_since),
            oldest_age_s=oldest,
            stale_after_s=self.stale_after,
        )
        status = "failed" if self.fatal else "stopping" if self.stopping else "ok"
        if status == "ok":
            status = "degraded" if problems else "paused" if paused else "ok"
        return {
            "status": status,
            "problems": problems,
            "dry_run": self.dry_run,
            "queue_depth": events,
            "queued_contacts": contacts,
            "oldest_event_age_seconds": round(oldest, 3),
            "last_poll": iso_ms(int(last_poll)) if last_poll else None,
            "last_error": self.last_error if with_error else self.last_error is not None,
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

    # -- poller ---------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        journal = self.journal
        assert journal is not None
        while not self._stop.is_set():
            try:
                result = poll_once(
                    self.client,
                    journal,
                    self.policy,
                    margin_ms=self.poll_margin_ms,
                    access=self._access,
                )
                self.metrics.polls.labels(outcome="ok").inc()
                self._ok()
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
