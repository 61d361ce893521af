"""TokenBucket: a frozen, injectable clock and a recording sleep; no wall time anywhere."""

from __future__ import annotations

import math
import threading

import pytest

from toolkit.client.ratelimit import TokenBucket


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """Records every wait instead of sleeping (list.append is atomic, so threads may share it)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_bucket(rate: float, burst: int) -> tuple[TokenBucket, FakeClock, SleepRecorder]:
    clock, sleep = FakeClock(), SleepRecorder()
    return TokenBucket(rate, burst, clock=clock, sleep=sleep), clock, sleep


def test_burst_is_free_then_waits_grow_by_one_interval() -> None:
    bucket, _, sleep = make_bucket(rate=4, burst=3)
    waits = [bucket.acquire() for _ in range(7)]
    assert waits == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75, 1.0])
    assert sleep.waits == pytest.approx([0.25, 0.5, 0.75, 1.0])  # no sleep(0) calls


@pytest.mark.parametrize("threads", [8, 32])
def test_threads_each_get_a_distinct_slot(threads: int) -> None:
    rate, burst = 5.0, 4
    bucket, _, sleep = make_bucket(rate, burst)
    results: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        wait = bucket.acquire()
        with lock:
            results.append(wait)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    expected = [0.0] * burst + [k / rate for k in range(1, threads - burst + 1)]
    assert sorted(results) == pytest.approx(expected)
    assert sorted(sleep.waits) == pytest.approx(expected[burst:])


def test_a_prepaid_block_spends_the_token_already_taken_once() -> None:
    bucket, _, sleep = make_bucket(rate=4, burst=2)
    assert bucket.try_acquire() == 0.0  # a scheduler takes the token ...
    with bucket.prepaid():  # ... and the request it sends spends it
        assert bucket.acquire() == 0.0
        assert bucket.try_acquire() == 0.0  # one token was left, untouched by the paid acquire
        assert bucket.acquire() == pytest.approx(0.25)  # paid once only: this one waits
    assert sleep.waits == pytest.approx([0.25])


def test_a_prepaid_token_never_spent_goes_back_and_other_threads_pay_their_own() -> None:
    bucket, _, _ = make_bucket(rate=4, burst=1)
    assert bucket.try_acquire() == 0.0
    other: list[float] = []
    with bucket.prepaid():
        thread = threading.Thread(target=lambda: other.append(bucket.try_acquire()))
        thread.start()
        thread.join()
    assert other == [pytest.approx(0.25)]  # the paid token is this thread's, not another's
    assert bucket.try_acquire() == 0.0  # unused: back in the bucket


def test_refill_after_the_clock_advances() -> None:
    bucket, clock, _ = make_bucket(rate=4, burst=3)
    for _ in range(3):
        assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.25)
    clock.advance(0.5)  # two tokens back
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.25)


def test_refill_never_exceeds_burst() -> None:
    bucket, clock, _ = make_bucket(rate=10, burst=2)
    clock.advance(3600)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]


def test_try_acquire_does_not_consume_when_it_fails() -> None:
    bucket, clock, sleep = make_bucket(rate=2, burst=1)
    assert bucket.try_acquire() == 0.0
    first = bucket.try_acquire()
    second = bucket.try_acquire()
    assert first == second == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_acquire() == 0.0
    assert sleep.waits == []  # try_acquire never sleeps


def test_try_acquire_sees_reservations_made_by_acquire() -> None:
    bucket, _, _ = make_bucket(rate=2, burst=1)
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)  # reserved: the bucket now owes one token
    assert bucket.try_acquire() == pytest.approx(1.0)


def test_reserved_waits_are_paid_back_by_time() -> None:
    bucket, clock, _ = make_bucket(rate=1, burst=1)
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0, 1, 2])
    clock.advance(2)  # the two reserved slots have come due, nothing left over
    assert bucket.acquire() == pytest.approx(1)


def test_a_clock_stepping_back_does_not_drain_the_bucket() -> None:
    bucket, clock, _ = make_bucket(rate=1, burst=2)
    clock.advance(-50)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == 0.0


@pytest.mark.parametrize(
    ("rate", "burst"),
    [
        (0, 1),
        (-1, 1),
        (math.nan, 1),
        (math.inf, 1),
        (1, 0),
        (1, -3),
        (1, 1.5),
    ],
)
def test_bad_arguments_raise_value_error(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_default_clock_and_sleep_take_a_free_token_without_waiting() -> None:
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.acquire() == 0.0
    assert bucket.rate == 10.0
    assert bucket.burst == 2


def test_slow_down_halves_the_rate_then_it_climbs_back_linearly() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 10, clock=lambda: now[0], sleep=lambda s: None, recovery=1.0)
    assert bucket.slow_down() == 5.0
    assert bucket.slow_down() == 2.5
    assert bucket.acquire() == pytest.approx(1 / 2.5)  # no burst right after a 429
    now[0] += 3.0
    bucket.try_acquire()
    assert bucket.rate == pytest.approx(5.5)
    now[0] += 100.0
    bucket.try_acquire()
    assert bucket.rate == 10.0  # never above the configured rate


def test_slow_down_never_goes_below_the_floor() -> None:
    bucket = TokenBucket(10, 10, clock=lambda: 0.0, sleep=lambda s: None, min_rate=2.0)
    for _ in range(10):
        bucket.slow_down()
    assert bucket.rate == 2.0
