"""Which window's page goes out when the limiter frees a token (issue 25): the one with the most
work left, not the one that asked first (`WindowedListing._pump`, `ready_priority`); and no
windows for a stretch where nothing was seen (`toolkit.snapshot.ranges.merge_unseen`)."""

from __future__ import annotations

import math
import random
from concurrent.futures import Future
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import responses
from fake_pages import page_answer
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


DAY_MS = 86_400_000
BURSTS = (1_553_644_800_000, 1_718_841_600_000)  # 2019-03-27 and 2024-06-20: 45 days each


def _two_bursts(n: int = 6000, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        created = BURSTS[i % 2] + rng.randrange(45 * DAY_MS)
        updated = created + rng.randrange(10, 60 * DAY_MS)
        out.append({"id": f"o{i:05d}", "createdAt": created, "updatedAt": updated})
    return out


def _newest_updated_first(opps: list[dict]) -> tuple[WindowedListing, int]:
    """List `opps` newest `updatedAt` first through a transport fake; returns the listing and
    how many windows' first pages were empty."""
    ordered = sorted(opps, key=lambda o: (-o["updatedAt"], o["id"]))
    empty = 0

    def answer(request):
        nonlocal empty
        query = parse_qs(urlsplit(request.url).query)
        lo = int(query.get("created_at_start", [-(10**15)])[0])
        hi = int(query.get("created_at_end", [10**15])[0])
        since = int(query.get("updated_at_start", [-(10**15)])[0])
        rows = [o for o in ordered if lo <= o["createdAt"] <= hi and o["updatedAt"] >= since]
        empty += not rows and "offset" not in query
        return page_answer(rows, query)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, "https://lever.test/v1/opportunities", callback=answer)
        client = LeverClient("https://lever.test/v1", api_key="k", rate=500, burst=500)
        listing = WindowedListing(client, now_ms=BURSTS[1] + 200 * DAY_MS)
        listing.latency = 0.3  # as on Lever: the windows a 300 ms page needs
        listing.run([({}, (None, None))])
    return listing, empty


def test_newest_updated_first_no_windows_go_to_the_gap_between_two_bursts():
    opps = _two_bursts()
    listing, empty = _newest_updated_first(opps)
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert empty <= 8, f"{empty} empty windows"  # 6 measured; 14-20 before (the test below)


def test_without_merging_where_nothing_was_seen_the_gap_costs_empty_windows(monkeypatch):
    """The same listing with the merging switched off: what the test above would see before."""
    monkeypatch.setattr("toolkit.snapshot.cuts.merge_unseen", lambda parts, seen: parts)
    listing, empty = _newest_updated_first(_two_bursts())
    assert len(listing.items) == 6000 and empty >= 10, f"{empty} empty windows"  # 14-20 seen


def test_newest_updated_first_a_large_window_is_cut_into_parts_of_its_work_not_of_the_deficit():
    # enough windows run already (no deficit): cut for the deficit alone, a window with 120 pages
    # left became two (a 47-page window then ended alone, one page a latency apart); now into as
    # many parts as keep each within what the limiter needs for all the work known
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k"), now_ms=10**7)
    listing.latency = 0.3
    family = Family({}, (None, None))
    window = _window(family, 1, 120.0, key=("updatedAt", -1))
    window.lo, window.hi, window.position, window.density = 0, 10**7, 8 * 10**6, 0.002
    window.sample = random.Random(2).sample(range(10**7), 400)
    listing._active = [window] + [_window(family, 1, 5.0) for _ in range(listing.target)]
    # all the work known: 160 pages, 18 s at 10/s (+2); one window lists 46 pages in that time
    assert listing._serial_parts(window) == math.ceil(120 / (18.0 / (0.3 * 1.3)))
    parts = listing._cut(window)
    assert len(parts) >= 1 + 3 + 1  # the part listed, three parts, the rest beyond them
    assert parts == sorted(parts) and parts[0][0] == 0 and parts[-1][1] == 10**7
    assert all(b[0] == a[1] + 1 for a, b in pairwise(parts))
