"""Which window's page goes out when the limiter frees a token (issue 25): the one with the most
work left, not the one that asked first (`WindowedListing._pump`, `ready_priority`)."""

from __future__ import annotations

from concurrent.futures import Future

from test_ratelimit import FakeClock

from toolkit.client import LeverClient
from toolkit.client.ratelimit import TokenBucket
from toolkit.snapshot.cuts import Family, ListedWindow
from toolkit.snapshot.windows import WindowedListing, ready_priority


class RecordingPool:
    """Stands in for the listing's thread pool: records which window each page was asked for."""

    def __init__(self) -> None:
        self.windows: list[ListedWindow] = []

    def submit(self, fn, window, *args) -> Future:
        self.windows.append(window)
        return Future()


def _window(family: Family, pages_done: int, left: float, key=("createdAt", 1)) -> ListedWindow:
    window = ListedWindow(family, None, None)
    window.pages_done, window.key, window.left = pages_done, key, left
    return window


def test_each_free_token_goes_to_the_window_with_the_most_work_left():
    clock = FakeClock()
    limiter = TokenBucket(10, 1, clock=clock, sleep=lambda s: None)
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k", limiter=limiter))
    listing.latency = 0.3  # six slots: before, all three pages went out at once, in arrival order
    family = Family({}, (None, None))
    small, large, middle = (_window(family, 5, left) for left in (3.0, 20.0, 8.0))
    listing._ready = [small, large, middle]
    listing._pool = pool = RecordingPool()
    assert listing._pump() == 0.1  # one token now: the next in 0.1 s, and nobody waits for it
    assert pool.windows == [large]
    clock.advance(0.1)
    listing._ready.append(large)  # its page came back meanwhile: first again
    assert listing._pump() == 0.1
    clock.advance(0.1)
    assert listing._pump() == 0.1
    assert pool.windows == [large, large, middle]


def test_a_window_listed_in_updated_order_is_not_ranked_by_its_first_pages():
    # along updatedAt a window's first pages are its thin edge: 2.8 pages left by their density,
    # 14 in fact (measured); ranked by it, the window waited 6 s for its second page
    family = Family({}, (None, None))
    edge = _window(family, 1, 2.8, key=("updatedAt", -1))
    sized = _window(family, 6, 10.0, key=("updatedAt", -1))
    created = _window(family, 1, 2.8)  # in createdAt order a first page sizes its window
    ranked = sorted([created, sized, edge], key=ready_priority, reverse=True)
    assert ranked == [edge, sized, created]
