"""The hourly change cap: at most N tag changes in any sliding hour, then a pause that says so."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

HOUR_MS = 3_600_000


class ChangeCap:
    """A sliding one-hour window of tag changes (a write of 3 tags counts 3).

    Args:
        limit: changes allowed in any hour (None: no cap).
        history: (epoch ms, changes) already made in the last hour (from the journal, so a
            restart does not reset the budget).
        clock: epoch milliseconds; injectable for tests.

    Example:
        >>> cap = ChangeCap(3, clock=lambda: 0)
        >>> cap.take(2), cap.take(2), cap.take(1), cap.remaining()
        (2, 1, 0, 0)
    """

    def __init__(
        self,
        limit: int | None,
        history: Iterable[tuple[int, int]] = (),
        *,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"the change cap must be at least 1 per hour (got {limit})")
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._window: deque[tuple[int, int]] = deque(sorted(history))
        self.paused_until: int | None = None

    def _trim(self, now: int) -> int:
        while self._window and self._window[0][0] <= now - HOUR_MS:
            self._window.popleft()
        return sum(n for _, n in self._window)

    def used(self) -> int:
        """Changes made in the last hour."""
        with self._lock:
            return self._trim(self._clock())

    def remaining(self) -> int | None:
        with self._lock:
            return None if self.limit is None else max(0, self.limit - self._trim(self._clock()))

    def take(self, changes: int) -> int:
        """Count up to `changes` now, as many as fit in the hour's budget; returns how many.

        Fewer than asked (0 included) means the cap is reached: `paused_until` says when the
        budget frees again.
        """
        with self._lock:
            now = self._clock()
            used = self._trim(now)
            granted = changes if self.limit is None else max(0, min(changes, self.limit - used))
            if granted:
                self._window.append((now, granted))
            if granted < changes:
                self.paused_until = self._resume_at(now, used + changes - (self.limit or 0))
            else:
                self.paused_until = None
            return granted

    def _resume_at(self, now: int, excess: int) -> int:
        """When enough changes will have left the window for `excess` more to fit."""
        freed = 0
        for at, n in self._window:
            freed += n
            if freed >= excess:
                return at + HOUR_MS
        return now + HOUR_MS

    def paused(self) -> bool:
        with self._lock:
            return self.paused_until is not None and self._clock() < self.paused_until


__all__ = ["HOUR_MS", "ChangeCap"]
