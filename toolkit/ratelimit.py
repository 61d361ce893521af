"""A thread-safe token bucket shared by every thread that uses one client.

Hand-written rather than a dependency: it is small, it must take an injectable clock and sleep
(tests prove the rate without wall time), and the sandbox server uses the same bucket per key.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allow `rate` events per second on average, with bursts up to `burst`.

    Args:
        rate: steady refill, tokens per second (> 0).
        burst: bucket capacity (>= 1); the bucket starts full.
        clock: monotonic seconds; injectable for tests.
        sleep: how to wait; injectable for tests.

    Example:
        >>> bucket = TokenBucket(rate=10, burst=20)
        >>> bucket.acquire()  # returns the seconds this call waited
        0.0
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a finite number > 0 per second (got {rate})")
        if isinstance(burst, bool) or burst < 1 or int(burst) != burst:
            raise ValueError(f"burst must be a whole number >= 1 (got {burst})")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self, now: float) -> None:
        if now <= self._last:  # no time passed (or a clock that stepped back): nothing to add
            return
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_acquire(self) -> float:
        """Take a token if one is free. Returns 0.0 on success, else the seconds until one is."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate

    def acquire(self) -> float:
        """Reserve the next token and wait for it. Returns the seconds waited.

        Reservations are handed out in order under the lock, so any number of threads together
        never exceed `burst` at once nor `rate` per second over time.
        """
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait
