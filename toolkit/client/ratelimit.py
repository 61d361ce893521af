"""A thread-safe token bucket shared by every thread that uses one client.

Hand-written rather than a dependency: it is small, it must take an injectable clock and sleep
(tests prove the rate without wall time). The sandbox has its own bucket (`lever_sandbox.bucket`):
a pacing bug shared by both could never show up as a difference.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class TokenBucket:
    """Allow `rate` events per second on average, with bursts up to `burst`.

    When the server says it is overloaded anyway (a 429: another client may share the key's
    budget), `slow_down` halves the rate for every thread at once, and the rate then climbs
    back linearly to the configured one, `recovery` requests/second every second (AIMD, as TCP
    does), so a storm of 429s becomes a few retries instead of exhausted retry budgets.

    Args:
        rate: steady refill, tokens per second (> 0).
        burst: bucket capacity (>= 1); the bucket starts full.
        clock: monotonic seconds; injectable for tests.
        sleep: how to wait; injectable for tests.
        recovery: how fast a slowed rate climbs back, requests/second per second
            (default: a tenth of `rate`, so full speed returns within about ten seconds).
        min_rate: the floor `slow_down` never goes below (default: min(rate, 0.5)).

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
        recovery: float | None = None,
        min_rate: float | None = None,
    ) -> None:
        if isinstance(rate, bool) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate must be a finite number > 0 per second (got {rate})")
        if isinstance(burst, bool) or burst < 1 or int(burst) != burst:
            raise ValueError(f"burst must be a whole number >= 1 (got {burst})")
        self.nominal_rate = float(rate)
        self.rate = float(rate)
        self.recovery = self.nominal_rate / 10 if recovery is None else float(recovery)
        self.min_rate = min(self.nominal_rate, 0.5) if min_rate is None else float(min_rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()
        self._local = threading.local()  # .prepaid: this thread's next acquire is paid for

    def _refill(self, now: float) -> None:
        if now <= self._last:  # no time passed (or a clock that stepped back): nothing to add
            return
        elapsed = now - self._last
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        if self.rate < self.nominal_rate:
            self.rate = min(self.nominal_rate, self.rate + elapsed * self.recovery)
        self._last = now

    def slow_down(self) -> float:
        """Halve the rate for everyone (the server answered 429). Returns the new rate."""
        with self._lock:
            self._refill(self._clock())
            self.rate = max(self.min_rate, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)  # no burst right after being told to slow down
            return self.rate

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
        if getattr(self._local, "prepaid", False):
            self._local.prepaid = False
            return 0.0
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait

    @contextmanager
    def prepaid(self) -> Iterator[None]:
        """A block whose next `acquire` on this thread is paid for already.

        For a scheduler that takes each token with `try_acquire` the moment it is free and gives
        it to its most urgent work, instead of queueing every request in arrival order. A token
        the block did not use goes back into the bucket.

        Example:
            >>> bucket = TokenBucket(rate=10, burst=1)
            >>> bucket.try_acquire()
            0.0
            >>> with bucket.prepaid():
            ...     bucket.acquire()  # the token taken above: no wait, no second token
            0.0
        """
        self._local.prepaid = True
        try:
            yield
        finally:
            if self._local.prepaid:
                self._local.prepaid = False
                with self._lock:
                    self._refill(self._clock())
                    self._tokens = min(float(self.burst), self._tokens + 1)
