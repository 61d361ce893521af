"""Cutting a bulk-import day out of a window listed in `updatedAt` order (issue 25): the pages of
a window crowd into the day's narrow `createdAt` band, and the window is cut at the quantiles of
that band (`toolkit.snapshot.cuts.Cutting._crowd_parts`), every part listed from its start."""

from __future__ import annotations

import random
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from fake_pages import page_answer

from toolkit.client import LeverClient
from toolkit.snapshot.cuts import Family, ListedWindow
from toolkit.snapshot.ranges import crowd_band
from toolkit.snapshot.windows import WindowedListing, ready_priority

DAY = (5_000_000, 5_002_000)  # the bulk import's createdAt band (ms)


def _bulk(n: int = 6000, seed: int = 4) -> list[dict]:
    """Half created evenly over [1e6, 9e6), half inside `DAY`; updated 10 ms to 2e6 ms later."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        created = rng.randrange(*DAY) if i % 2 else rng.randrange(1_000_000, 9_000_000)
        out.append(
            {
                "id": f"o{i:05d}",
                "createdAt": created,
                "updatedAt": created + rng.randrange(10, 2_000_000),
            }
        )
    return out


def _listing(opps: list[dict], direction: int) -> tuple[WindowedListing, list[tuple[int, int]]]:
    """List `opps` in updatedAt order (`direction`) through a transport fake; returns the
    listing and the (created_at_start, created_at_end) of every window's first page."""
    ordered = sorted(opps, key=lambda o: (direction * o["updatedAt"], o["id"]))
    firsts: list[tuple[int, int]] = []

    def answer(request):
        query = parse_qs(urlsplit(request.url).query)
        lo = int(query.get("created_at_start", [-(10**15)])[0])
        hi = int(query.get("created_at_end", [10**15])[0])
        since = int(query.get("updated_at_start", [-(10**15)])[0])
        rows = [o for o in ordered if lo <= o["createdAt"] <= hi and o["updatedAt"] >= since]
        if int(query.get("offset", ["0"])[0]) == 0:
            firsts.append((lo, hi))
        return page_answer(rows, query)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, "https://lever.test/v1/opportunities", callback=answer)
        client = LeverClient("https://lever.test/v1", api_key="k", rate=200, burst=200)
        listing = WindowedListing(client, workers=16, now_ms=10**7)
        listing.run([({}, (None, None))])
    return listing, firsts


def _inside_the_day(firsts: list[tuple[int, int]]) -> int:
    return sum(1 for lo, hi in firsts if DAY[0] - 1_000 <= lo and hi <= DAY[1] + 1_000)


@pytest.mark.parametrize("direction", [1, -1])
def test_a_bulk_day_listed_in_updated_order_is_cut_at_its_quantiles_and_nothing_is_lost(direction):
    opps = _bulk()
    listing, firsts = _listing(opps, direction)
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["handed_on"] == 0 and not listing.order_trusted
    assert _inside_the_day(firsts) >= 2  # the day is listed as several windows


def test_without_the_crowd_rule_the_bulk_day_stays_one_window(monkeypatch):
    """The same listing with the rule switched off: the day is never cut (what the test above
    would see on the scheduler before it)."""
    monkeypatch.setattr(WindowedListing, "_crowd_parts", lambda self, window, deficit: [])
    listing, firsts = _listing(_bulk(), 1)
    assert len(listing.items) == 6000
    assert _inside_the_day(firsts) == 0


def test_a_crowd_is_narrow_against_the_pages_span_not_against_the_window():
    """A page in updatedAt order is always bunched at its window's edge: that is no crowd unless
    its createdAt values are much closer together than its updatedAt values."""
    edge = list(range(0, 100_000, 1_000))  # createdAt as spread as the page's updatedAt span
    assert crowd_band(edge, span=100_000) is None
    day = [50_000 + i for i in range(80)] + [0, 10_000, 90_000]
    band = crowd_band(day, span=100_000)
    assert band is not None and band[0] <= 50_000 and band[1] >= 50_079 and band[1] - band[0] < 200


def _crowd_parts_of_a_window_from(lo: int) -> list:
    """The crowd cut of a running window from `lo` whose last page crowds into the day."""
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k"), now_ms=10**7)
    window = ListedWindow(Family({}, (None, None)), lo, 9_000_000)
    window.key, window.position, window.left, window.pages_done = ("updatedAt", 1), 5_100_000, 40, 3
    window.page_created = [DAY[0] + 20 * i for i in range(95)] + [1_500_000] * 5
    window.page_span = 400_000
    listing.latency = 0.3
    listing._active = [window]
    return listing._crowd_parts(window, deficit=4)


def test_a_crowd_cut_covers_the_whole_window_again():
    """The parts of a crowd cut partition the window (the listed part too: no order relied on)."""
    parts = _crowd_parts_of_a_window_from(1_000_000)
    assert len(parts) >= 4
    assert parts[0][0] == 1_000_000 and parts[-1][1] == 9_000_000
    assert all(b[0] == a[1] + 1 for a, b in pairwise(parts))
    assert sum(1 for lo, hi in parts if DAY[0] - 1_000 <= lo and hi <= DAY[1] + 1_000) >= 2


def _running(listing: WindowedListing, key, left: float, pages_done: int) -> ListedWindow:
    window = ListedWindow(Family({}, (None, None)), 1_000_000, 9_000_000)
    window.key, window.left, window.pages_done = key, left, pages_done
    window.position = 8_000_000 if key[1] < 0 else 2_000_000
    window.density = left * 100 / 7_000_000
    window.sample = list(range(1_000_000, 9_000_000, 80_000))
    return window


@pytest.mark.parametrize("direction", [1, -1])
def test_along_updated_a_window_ending_well_after_the_rest_is_cut_late(direction):
    """Along updatedAt, a window's first pages (its least or most recently updated) can show few
    opportunities while the bulk of its work lies beyond: once its pages, one latency apart,
    would end well after all the rest, it is cut into parts covering its whole range again.
    (Ascending it once was not: on `recent` at 10,000, two windows of about 30 pages then ran
    to the end alone, 62.8% of the ceiling; cut, 82.5%.)"""
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k"), now_ms=10**7)
    listing.latency = 0.3
    big = _running(listing, ("updatedAt", direction), left=30, pages_done=4)
    small = [_running(listing, ("updatedAt", direction), left=3, pages_done=2) for _ in range(8)]
    listing._active = [big, *small]
    parts = sorted(listing._cut(big))  # bounded windows: in createdAt order
    assert len(parts) >= 3
    assert parts[0][0] == 1_000_000 and parts[-1][1] == 9_000_000
    assert all(b[0] == a[1] + 1 for a, b in pairwise(parts))


@pytest.mark.parametrize("field", ["updatedAt", "createdAt"])
def test_a_first_updated_at_page_spreads_the_rest_in_equal_times_not_one_wide_step(field):
    """At a window's edge the density along updatedAt shows low: one step of `PART_PAGES` pages
    at that density would hold nearly the whole window (cut again at its first page, and again).
    In an updatedAt order the rest is cut into equal times; along createdAt the step stays."""
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k"), now_ms=10**7)
    listing.latency = 0.3
    window = _running(listing, (field, -1), left=20, pages_done=1)
    window.density = 1000 / 5_000_000  # one step of 10 pages: 5e6 ms of the 7e6 left
    listing._active = [window]
    parts = sorted(listing._work_parts(window, deficit=5))
    widths = [hi - lo for lo, hi in parts]
    if field == "createdAt":
        assert len(parts) == 2  # the step, and the rest beyond it
        return
    assert len(parts) >= 4 and max(widths) - min(widths) <= len(parts)  # rounding


# -- listings in no order (shuffled) ----------------------------------------------------------


def test_a_root_listed_in_no_order_is_cut_into_more_parts_than_windows_run():
    """A shuffled first page is a sample of the whole account: its quantiles make parts of
    uneven size, and the largest sets the end, so the root is cut into `target` + 4 parts."""
    listing = WindowedListing(LeverClient("https://lever.test/v1", api_key="k"), now_ms=10**7)
    root = ListedWindow(Family({}, (None, None)), None, None)
    root.pages_done = 1
    root.sample = random.Random(3).sample(range(10**6, 9 * 10**6), 100)
    listing._active = [root]
    parts = listing._cut(root)
    assert len(parts) == listing.target + 4
    assert parts[0][0] is None and parts[-1][1] is None


def test_windows_in_no_order_take_turns_the_one_that_listed_least_first():
    family = Family({}, (None, None))
    fresh, ahead, behind, known = (ListedWindow(family, None, None) for _ in range(4))
    ahead.pages_done, behind.pages_done, known.pages_done = 6, 2, 3
    known.key, known.left = ("updatedAt", 1), 40.0
    ranked = sorted([ahead, known, behind, fresh], key=ready_priority, reverse=True)
    assert ranked == [fresh, behind, ahead, known]


def test_a_sliver_beside_the_band_goes_to_the_band_part_next_to_it():
    """One request saved: a side of the window narrower than ten bands is no window of its own."""
    parts = _crowd_parts_of_a_window_from(DAY[0] - 3_000)
    assert parts[0][0] == DAY[0] - 3_000 and parts[0][1] > DAY[0]  # the sliver, with the band
    assert parts[-1][1] == 9_000_000 and parts[-1][0] > DAY[1]  # the wide side: its own window
    assert all(b[0] == a[1] + 1 for a, b in pairwise(parts))
