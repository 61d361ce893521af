"""The sandbox's own rate limit: Lever's per-key token bucket as a server enforces it.

Written apart from the client's `toolkit.ratelimit.TokenBucket` on purpose: the sandbox imitates
Lever, and a bug shared with the client's pacing could never show up as a difference between the
two. This one is the generic cell rate algorithm (GCRA): it keeps one "theoretical arrival time"
per key instead of a token count, which is how many API gateways implement a token bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ServerBucket:
    """Admit `rate` requests per second on average, `burst` at once; answer how long to wait.

    Args:
        rate: steady requests per second (> 0).
        burst: requests admitted back to back from idle (>= 1).
        clock: monotonic seconds; injectable for tests.

    Example:
        >>> now = [0.0]
        >>> bucket = ServerBucket(rate=2, burst=2, clock=lambda: now[0])
        >>> [bucket.try_acquire() for _ in range(3)]
        [0.0, 0.0, 0.5]
        >>> now[0] = 0.5
        >>> bucket.try_acquire()
        0.0
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second (got {rate})")
        if int(burst) != burst or burst < 1:
            raise ValueError(f"burst must be a whole number >= 1 (got {burst})")
        self._interval = 1.0 / float(rate)
        self._tolerance = (int(burst) - 1) * self._interval
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = clock()  # theoretical arrival time of the next conforming request

    def try_acquire(self) -> float:
        """Admit one request now (returns 0.0) or refuse it (returns seconds until admitted)."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            earliest = tat - self._tolerance
            if now < earliest:
                return earliest - now
            self._tat = tat + self._interval
            return 0.0
