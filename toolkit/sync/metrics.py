"""The service's Prometheus metrics, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from toolkit.sync.webhook import OPPORTUNITY_EVENTS

PREFIX = "lever_sync"
# The values the ``event`` label may take: Lever's webhook events, ``poll``, and ``other`` for
# anything else (every distinct label value is a series of its own: a sender must not mint them).
KNOWN_EVENTS = OPPORTUNITY_EVENTS | {"poll"}


def event_label(event: object) -> str:
    """The ``event`` label for an event name: itself when known, else ``other``.

    Example:
        >>> event_label("candidateHired"), event_label("x" * 10_000)
        ('candidateHired', 'other')
    """
    return event if isinstance(event, str) and event in KNOWN_EVENTS else "other"


class EventCounter(Counter):
    """A counter whose ``event`` label is bounded by `event_label`, whoever calls `labels`."""

    def labels(self, *values: object, **labels: object) -> EventCounter:
        if "event" in labels:
            labels["event"] = event_label(labels["event"])
        elif values and "event" in self._labelnames:
            position = self._labelnames.index("event")
            values = (*values[:position], event_label(values[position]), *values[position + 1 :])
        return super().labels(*values, **labels)


class SyncMetrics:
    """Counters, gauges and the lag histogram of one `SyncService`.

    Example:
        >>> m = SyncMetrics()
        >>> m.events_received.labels(source="webhook", event="applicationCreated").inc()
        >>> b"lever_sync_events_received_total" in m.render()
        True
    """

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.events_received = EventCounter(
            f"{PREFIX}_events_received",
            "Events accepted into the queue (event: Lever's event name, poll or other)",
            ["source", "event"],
            registry=r,
        )
        self.events_refused = Counter(
            f"{PREFIX}_events_refused",
            "Webhooks refused or ignored (signature, stale, duplicate, too_large, malformed, "
            "queue_full)",
            ["reason"],
            registry=r,
        )
        self.contacts_checked = Counter(
            f"{PREFIX}_contacts_checked", "Contact checks finished", ["outcome"], registry=r
        )
        self.writes = Counter(
            f"{PREFIX}_writes",
            "Write calls by op and outcome (dry_run: not sent)",
            ["op", "outcome"],
            registry=r,
        )
        self.changes = Counter(
            f"{PREFIX}_changes", "Tags written (or that a dry run would write)", ["op"], registry=r
        )
        self.failures = Counter(
            f"{PREFIX}_failures", "Failures by kind (write, check, poll)", ["kind"], registry=r
        )
        self.removals = Counter(
            f"{PREFIX}_removals_detected",
            "Contact-level tags removed from one opportunity while still on others",
            ["action"],
            registry=r,
        )
        self.polls = Counter(f"{PREFIX}_polls", "Polls finished", ["outcome"], registry=r)
        self.lag = Histogram(
            f"{PREFIX}_lag_seconds",
            "From the event (triggeredAt, or when it was queued) to the end of its contact check",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Events waiting (or in process)", registry=r
        )
        self.queued_contacts = Gauge(f"{PREFIX}_queued_contacts", "Contacts waiting", registry=r)
        self.oldest_age = Gauge(
            f"{PREFIX}_oldest_event_age_seconds", "Age of the oldest waiting event", registry=r
        )
        self.last_poll = Gauge(
            f"{PREFIX}_last_poll_timestamp_seconds", "When the last poll finished", registry=r
        )
        self.cap_paused = Gauge(
            f"{PREFIX}_cap_paused", "1 while the hourly change cap pauses writes", registry=r
        )
        self.cap_remaining = Gauge(
            f"{PREFIX}_cap_remaining", "Changes left in the current hour", registry=r
        )

    def bind(self, depth: Callable[[], tuple[int, int, float]]) -> None:
        """Read the queue gauges from `depth()` -> (events, contacts, oldest age s) at scrape."""
        self.queue_depth.set_function(lambda: depth()[0])
        self.queued_contacts.set_function(lambda: depth()[1])
        self.oldest_age.set_function(lambda: depth()[2])

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE_LATEST", "KNOWN_EVENTS", "EventCounter", "SyncMetrics", "event_label"]
