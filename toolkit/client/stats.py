"""The client's own instrumentation: counters for the whole client (`ClientStats`) and, per thread,
what the latest calls took (`CallRecord`: attempts, last status, seconds waited). Callers read
them; nothing patches the client's session from outside."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClientStats:
    """Counters a caller (a report, a benchmark) can show. Thread-safe."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    connection_errors: int = 0
    listing_restarts: int = 0
    replaced_text: int = 0  # strings from Lever with undecodable text, replaced (toolkit.chars)
    backoff_seconds: float = 0.0
    throttle_seconds: float = 0.0
    by_status: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def count_status(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, for JSON summaries."""
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "server_errors": self.server_errors,
                "connection_errors": self.connection_errors,
                "listing_restarts": self.listing_restarts,
                "replaced_text": self.replaced_text,
                "backoff_seconds": round(self.backoff_seconds, 3),
                "throttle_seconds": round(self.throttle_seconds, 3),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            }

    def since(self, before: dict[str, Any]) -> dict[str, Any]:
        """What changed since `before` (an earlier `as_dict()`): numbers and per-status counts.

        Example:
            >>> stats = ClientStats()
            >>> before = stats.as_dict()
            >>> stats.add(requests=3)
            >>> stats.count_status(429)
            >>> delta = stats.since(before)
            >>> delta["requests"], delta["by_status"]
            (3, {'429': 1})
        """
        out: dict[str, Any] = {}
        for key, value in self.as_dict().items():
            if isinstance(value, int | float) and isinstance(before.get(key), int | float):
                out[key] = round(value - before[key], 3)
            elif isinstance(value, dict):
                old = before.get(key) or {}
                out[key] = {k: v - old.get(k, 0) for k, v in value.items() if v - old.get(k, 0)}
        return out


@dataclass
class CallRecord:
    """What the calls of one thread took since `LeverClient.start_call_record()`: HTTP attempts
    (retries counted), the status of the last answer (None: none yet, or no answer), and the
    seconds waited (rate limit and backoff). The runner journals one per write."""

    attempts: int = 0
    status: int | None = None
    waited: float = 0.0


class CallRecords:
    """One current `CallRecord` per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self) -> CallRecord:
        self._local.record = CallRecord()
        return self._local.record

    @property
    def current(self) -> CallRecord:
        record = getattr(self._local, "record", None)
        return record if record is not None else self.start()
