"""How `WindowedListing` cuts its windows: the windows' state and the cutting rules.

A window is a `created_at` range, bounded along `updatedAt` too once a hand-on along it made it
(`updated_at_start` / `_end`). The rules are those of `toolkit.snapshot.windows` (its docstring
holds the invariant they keep): a hand-on only in a proven order whose nulls are placed; in any
other order a window is only ever cut into windows that cover its whole range again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolkit.client.http import Page
from toolkit.snapshot.order import (
    CREATED_ASC,
    CREATED_DESC,
    KEYS,
    Key,
    OrderEvidence,
)
from toolkit.snapshot.ranges import (
    Window,
    crowd_band,
    floor_of,
    merge_unseen,
    quantile_window_parts,
    split_window,
    stepped_parts,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader


PAGE_ITEMS = 100  # a full page (Lever's maximum limit)
PART_PAGES = 10  # a new window holds about this many pages at the density that made it
MIN_PART_PAGES = 3  # below this many pages left, a window is not worth cutting
LATE_CUT_GAIN = 8  # without a proven order, a later cut needs this many pages left per page lost
BEHIND_CUT_GAIN = 4  # ... or this many, when the window would end well after all the rest
CROWD_PART_PAGES = 7  # a crowd's parts hold about this many pages (cut late: smaller parts)
CROWD_GAIN = 3  # a crowd cut needs this many pages left per page it lists again
ROOT_EXTRA_PARTS = 4  # a root listed in no order is cut into this many more parts than `target`
MAX_TARGET = 32  # windows listed at once, at most (high latency)
# Along a proven updatedAt order a window hands on only with this many pages left, unless half
# the windows wanted are missing: its first pages are its thin edge, so its estimates are rough,
# and every hand-on costs a partial page per new window (with no floor, 10,000 `bulk` made 37
# windows and 117 requests; with it, 20 and 112; with it always, a window of 26 pages estimated
# at 20 was cut only once it ran alone, 10.4 s -> 12.3 s)
UPDATED_HAND_ON_PAGES = 2 * PART_PAGES


Box = tuple[int | None, int | None, int | None, int | None]  # created lo, hi; updated since, until


@dataclass(eq=False)
class Family:
    """The listings of one filter set: their order evidence and the ranges closed on it."""

    filters: dict[str, Any]
    root: Window
    evidence: OrderEvidence = field(default_factory=OrderEvidence)
    claims: list[Box] = field(default_factory=list)
    claim_key: Key | None = None  # the key the claims rely on
    trusted: bool = True  # False once a page contradicted the claims' key
    pages: int = 0
    lag: int = 0  # the largest updatedAt - createdAt seen
    # Whether the updated_at filters match a null updatedAt as its createdAt: a request asks
    # (`WindowedListing._ask_null_filter`); None until one answers yes
    null_filter: bool | None = None
    null_probe: Future[list[dict]] | None = None  # the request's page
    null_asked: set[str] = field(default_factory=set)  # {"null"}: asked with a null one
    null_pages: int = 0  # asked with a page of what was created and updated up to a time


@dataclass(eq=False)
class ListedWindow:
    """One listing of one `created_at` window, and what its pages showed."""

    family: Family
    lo: int | None
    hi: int | None
    since: int | None = None  # updated_at_start (a hand-on along updatedAt)
    until: int | None = None  # updated_at_end
    pages: Iterator[Page] | None = None
    pages_done: int = 0
    local: set[Key] = field(default_factory=lambda: set(KEYS))  # keys its own pages allow
    last: dict | None = None  # the last item of its last page
    key: Key | None = None  # the key its position is tracked on (None: pages in no order)
    position: int | None = None  # the last value of that key listed
    density: float | None = None  # items per ms of that key on its last page
    left: float | None = None  # estimated pages still to list
    sample: list[int] = field(default_factory=list)  # every createdAt it listed
    page_created: list[int] = field(default_factory=list)  # the createdAt of its last page
    page_span: int = 0  # how far its last page reached along `key` (first to last item)

    def params(self) -> dict[str, Any]:
        params = dict(self.family.filters)
        if self.lo is not None:
            params["created_at_start"] = self.lo
        if self.hi is not None:
            params["created_at_end"] = self.hi
        if self.since is not None:
            params["updated_at_start"] = self.since
        if self.until is not None:
            params["updated_at_end"] = self.until
        return params

    @property
    def box(self) -> Box:
        return (self.lo, self.hi, self.since, self.until)

    def clamped(self) -> int:
        assert self.position is not None
        p = self.position
        p = p if self.lo is None else max(self.lo, p)
        return p if self.hi is None else min(self.hi, p)


class Cutting:
    """The sizing and cutting half of `WindowedListing` (a mixin: it reads the listing's state)."""

    client: OpportunityReader
    latency: float | None  # the quickest page seen, seconds
    now_ms: int
    workers: int
    trust_order: bool
    stats: dict[str, int]
    _active: list[ListedWindow]

    # -- sizing ----------------------------------------------------------------------------------

    @property
    def target(self) -> int:
        """Windows to keep listing: enough to keep the limiter's rate with this latency."""
        # the limiter's rate now: lower while it recovers from 429s (another client may share
        # the key), and then fewer windows are needed
        rate = float(getattr(getattr(self.client, "limiter", None), "rate", 10.0))
        need = math.ceil(rate * self.latency * 2) + 1 if self.latency else 0
        return max(self.workers, min(MAX_TARGET, need))

    @property
    def slots(self) -> int:
        """Pages asked for at once: the limiter's rate x latency, with a margin for jitter."""
        rate = float(getattr(getattr(self.client, "limiter", None), "rate", 10.0))
        need = math.ceil(rate * self.latency * 1.5) + 1 if self.latency else self.target
        return max(2, min(self.target, need))

    def _trusted(self, family: Family) -> bool:
        """Whether hand-ons may rely on the family's order: proven by every page, along
        `createdAt`, or along `updatedAt` with every null `updatedAt` placed where a hand-on
        cannot leave it behind (`OrderEvidence.nulls_listed`)."""
        proven = family.evidence.proven
        if not (self.trust_order and family.trusted and proven is not None):
            return False
        if proven in (CREATED_ASC, CREATED_DESC):
            return True
        return family.evidence.nulls_listed(proven, family.null_filter)

    # -- cutting ---------------------------------------------------------------------------------

    def _cut(self, window: ListedWindow) -> list[Box]:
        """The windows to hand `window` (or the rest of it) to, or [] to go on."""
        key, left = window.key, window.left
        along_updated = key is not None and key[0] == "updatedAt"
        if along_updated and self._awaits_null_answer(window):
            return []
        if along_updated and key == window.family.evidence.proven and self._trusted(window.family):
            deficit = self.target - len(self._active)
            floor = UPDATED_HAND_ON_PAGES if 2 * deficit < self.target else 0  # half idle: any
            if left is None or left < floor:
                return []
            return self._hand_on(window, deficit) if deficit > 0 or self._behind(window) else []
        return [(lo, hi, window.since, window.until) for lo, hi in self._cut_range(window)]

    def _awaits_null_answer(self, window: ListedWindow) -> bool:
        """The root along `updatedAt` lists a second page before it is cut while the question
        on null `updatedAt` is out (one latency, which the limiter's burst absorbs): cut before
        the answer, its parts list their range again; after it, they hand on (10,000 `recent`,
        ascending: 86-88% -> 94% of the ceiling in process, 114 pages -> 106)."""
        family = window.family
        root = (window.lo, window.hi) == family.root and window.since is window.until is None
        return root and family.null_probe is not None and window.pages_done <= 2

    def _cut_range(self, window: ListedWindow) -> list[Window]:
        """The `created_at` ranges to hand `window`'s range (or the rest of it) to (each keeps
        the window's `updatedAt` bounds), or [] to go on."""
        deficit = self.target - len(self._active)
        if window.key is None or window.left is None:  # no order: the page is a sample
            if window.pages_done == 1 and deficit > 0 and len(window.sample) >= 4:
                parts = min(self.target, deficit + 1, len(window.sample) // 2)
                if window.lo is None and window.hi is None:  # the root: more, smaller parts,
                    # as the sample's quantiles make parts of uneven size (the largest sets the end)
                    parts = min(self.target + ROOT_EXTRA_PARTS, len(window.sample) // 8)
                cut = quantile_window_parts((window.lo, window.hi), window.sample, parts)
                return cut if len(cut) > 1 else []
            return []
        if self._trusted(window.family) and window.key == window.family.evidence.proven:
            if deficit <= 0 and not self._behind(window):
                return []
            return [(lo, hi) for lo, hi, _s, _u in self._hand_on(window, deficit)]
        # No order relied on: the parts list the window's whole range again.
        crowd = self._crowd_parts(window, deficit)
        if crowd:
            return crowd
        worth = window.left >= 2 * PART_PAGES or (deficit > 0 and window.left >= 2 * MIN_PART_PAGES)
        # newest updatedAt first, as many parts as the work needs however many windows run: a
        # cut costs what was listed, not what the parts hold (cut for the deficit alone, a window
        # of 47 pages became two; ascending, parts of PART_PAGES measured worse on `sparse`)
        sized = max(deficit, self._serial_parts(window))
        wanted = sized if window.key == ("updatedAt", -1) else deficit
        if window.pages_done == 1 and worth:
            return self._relist(window, self._work_parts(window, wanted))
        if window.pages_done == 1 and deficit > 0 and window.lo is None and window.hi is None:
            return self._time_parts(window, deficit)  # one serial listing is the worst case
        # Later, a cut costs as many pages as the window listed: only for a share many times that.
        if deficit > 0 and window.left >= LATE_CUT_GAIN * window.pages_done and self._heavy(window):
            return self._relist(window, self._work_parts(window, wanted))
        # ... or, along updatedAt, when the window would end well after all the rest: its first
        # pages are its least (or most) recently updated, and its work shows only pages later.
        # (Ascending, this rule once cut the wrong windows, 92% -> 80%; since each free token
        # goes to the window with the most work left, it measured 62.8% -> 82.5% on `recent`.)
        if (
            window.key[0] == "updatedAt"
            and window.left >= BEHIND_CUT_GAIN * window.pages_done
            and self._behind(window)
        ):
            return self._relist(window, self._work_parts(window, sized))
        return []

    def _crowd_parts(self, window: ListedWindow, deficit: int) -> list[Window]:
        """In an `updatedAt` order, a page whose `createdAt` values crowd into a narrow band (a
        bulk-import day) is close to a random sample of the band (how long after its creation an
        opportunity was last updated does not depend on where in the band it was created): the
        window is cut into the band, at the page's quantiles, and what lies on either side.

        Every part is listed from its start (the window's whole range again), so it is done only
        for many more pages left than were listed, and when the window would end after the rest.
        """
        if window.key is None or window.key[0] != "updatedAt" or window.left is None:
            return []
        if len(window.page_created) < PAGE_ITEMS // 2:
            return []
        if window.left < 2 * PART_PAGES or window.left < CROWD_GAIN * window.pages_done:
            return []
        if deficit <= 0 and not self._behind(window):
            return []
        band = crowd_band(window.page_created, window.page_span)
        if band is None:
            return []
        a = band[0] if window.lo is None else max(window.lo, band[0])
        b = band[1] if window.hi is None else min(window.hi, band[1])
        inside = [c for c in window.page_created if a <= c <= b]
        work = window.left + window.pages_done  # every part is listed from its start
        parts = min(self.target, math.ceil(work / CROWD_PART_PAGES) + 1, len(inside) // 8)
        if a >= b or parts < 2:
            return []
        out = quantile_window_parts((a, b), inside, parts)
        sliver = 10 * (b - a + 1)  # a side this narrow goes to the band's part beside it
        if window.lo is not None and a > window.lo and a - window.lo < sliver:
            out[0] = (window.lo, out[0][1])
        elif window.lo is None or a > window.lo:
            out.insert(0, (window.lo, a - 1))
        if window.hi is not None and b < window.hi and window.hi - b < sliver:
            out[-1] = (out[-1][0], window.hi)
        elif window.hi is None or b < window.hi:
            out.append((b + 1, window.hi))
        return out

    def _time_parts(self, window: ListedWindow, deficit: int) -> list[Window]:
        """The whole timeline from the earliest `createdAt` listed to now, in equal times."""
        earliest = min(window.sample, default=None)
        if earliest is None or earliest >= self.now_ms:
            return []
        parts = split_window((None, None), earliest, self.now_ms, min(self.target, deficit + 1))
        return parts if len(parts) > 1 else []

    def _behind(self, window: ListedWindow) -> bool:
        """Its pages, one latency apart, would end well after the rest at the limiter's rate."""
        if window.left is None or any(w.left is None for w in self._active):
            return False  # the work elsewhere is not known yet
        rate = float(getattr(getattr(self.client, "limiter", None), "rate", 10.0))
        total = sum(w.left or 0.0 for w in self._active)
        own = window.left * (self.latency or 0.0) * 1.3
        return window.left >= 2 * PART_PAGES and own > total / rate + 2.0

    def _serial_parts(self, window: ListedWindow) -> int:
        """How many parts `window`'s work needs so that none, listing its pages one latency
        apart, ends after the limiter has worked through all the work known (parts of at least
        `PART_PAGES`: at 50,000 parts of 10 pages made 93 windows and 612 requests)."""
        assert window.left is not None
        rate = float(getattr(getattr(self.client, "limiter", None), "rate", 10.0))
        total = sum(w.left for w in self._active if w.left is not None)
        horizon = max(total, window.left) / rate + 2.0
        per_part = max(PART_PAGES, horizon / ((self.latency or 0.3) * 1.3))
        return math.ceil(window.left / per_part)

    def _heavy(self, window: ListedWindow) -> bool:
        """Among the windows with the most work left (at least half the most)."""
        assert window.left is not None
        others = [w.left for w in self._active if w is not window and w.left is not None]
        return window.left >= 2 * MIN_PART_PAGES and window.left >= max(others, default=0.0) / 2

    def _hand_on(self, window: ListedWindow, deficit: int) -> list[Box]:
        """The order is proven: the window stops, holding what lies before where it reached.

        Along `createdAt` the rest is the `created_at` range past the position. Along
        `updatedAt` it is the window's range updated past the position: the new windows step
        along `updatedAt` (`updated_at_start` / `_end`) and keep the window's `created_at`
        range. The claim (listed again in full if a page ever contradicts the order) is the
        part listed, along `createdAt`; along `updatedAt`, the whole window (its nulls too).
        """
        assert window.key is not None and window.position is not None
        if not self._heavy(window):
            return []
        along_updated = window.key[0] == "updatedAt"
        bounds = (window.since, window.until) if along_updated else (window.lo, window.hi)
        parts = self._work_parts(window, deficit, bounds)
        if len(parts) < 2:
            return []
        if along_updated:
            claim: Box = window.box
            boxes = [(window.lo, window.hi, a, b) for a, b in parts]
        else:
            p = window.clamped()
            lo, hi = (window.lo, p - 1) if window.key[1] > 0 else (p + 1, window.hi)
            claim = (lo, hi, window.since, window.until)
            boxes = [(a, b, window.since, window.until) for a, b in parts]
        if claim[0] is None or claim[1] is None or claim[0] <= claim[1]:
            window.family.claims.append(claim)
            window.family.claim_key = window.key
        self.stats["handed_on"] += 1
        return boxes

    def _relist(self, window: ListedWindow, parts: list[Window]) -> list[Window]:
        """`parts` of the rest, and the part already listed as one more window: no order assumed.

        Newest `updatedAt` first, the rest is what was created before the position, where the
        `createdAt` values listed so far show where opportunities are: parts where none was
        seen are merged (two hiring bursts years apart: 25 empty windows in one fetch before).
        Ascending, the rest lies after every value listed, so nothing shows where it is: the
        same merging made one window of it (10,000 in updatedAt order: 100% -> 56%).
        """
        assert window.key is not None
        if not parts:
            return []
        if window.key == ("updatedAt", -1):
            parts = merge_unseen(parts, window.sample)
        p = window.clamped()
        if window.key[1] > 0:
            if window.lo is not None and p <= window.lo:
                return parts if len(parts) > 1 else []
            return [*self._done_parts(window, (window.lo, p - 1)), *parts]
        if window.hi is not None and p >= window.hi:
            return parts if len(parts) > 1 else []
        return [*parts, *self._done_parts(window, (p + 1, window.hi))]

    def _done_parts(self, window: ListedWindow, done: Window) -> list[Window]:
        """The part already listed, listed anew: in `updatedAt` order it also holds what is not
        listed yet (created before the position, updated after it), so where the `createdAt`
        values listed crowd (a bulk-import day) it is cut at their quantiles."""
        lo, hi = done
        values = [c for c in window.sample if (lo is None or c >= lo) and (hi is None or c <= hi)]
        if window.key is None or window.key[0] != "updatedAt" or len(values) < 4 * PAGE_ITEMS:
            return [done]
        return quantile_window_parts(done, values, min(self.target, len(values) // PAGE_ITEMS))

    def _work_parts(
        self, window: ListedWindow, deficit: int, bounds: Window | None = None
    ) -> list[Window]:
        """The rest past the position: windows of `PART_PAGES` pages at the current density
        (above it ascending, below it descending), then one window for what lies beyond.

        `bounds`: the window's bounds along the key of its position (default its `created_at`
        range: the parts are ranges of `createdAt`, even for a position along `updatedAt`).
        When the density fills the range before that, the rest is cut into equal times.
        """
        assert window.key is not None and window.position is not None
        assert window.left is not None and window.density
        lo, hi = (window.lo, window.hi) if bounds is None else bounds
        ascending = window.key[1] > 0
        if ascending and hi is not None and window.position > hi:
            return []
        if not ascending and lo is not None and window.position < lo:
            return []
        start = window.position if lo is None else max(lo, window.position)
        start = start if hi is None else min(hi, start)
        if ascending:
            end = hi if hi is not None else max(self.now_ms, start + 1)
        else:
            end = lo if lo is not None else floor_of(start)
        width = max(1, int(PART_PAGES * PAGE_ITEMS / window.density))
        near = min(
            max(deficit, 1),
            self.target,
            abs(end - start) // width,
            max(1, math.ceil(window.left / PART_PAGES)),
        )
        # along updatedAt a first page sits at its window's edge, where the density shows low:
        # one wide step would hold nearly all of the window (cut again and again, a page lost
        # each time); equal times spread the rest instead
        stepped = near >= 2 or (near == 1 and (window.key[0] != "updatedAt" or bounds is not None))
        if stepped:
            return stepped_parts((lo, hi), start, width * window.key[1], near)
        parts = int(min(max(deficit, 1) + 1, window.left // MIN_PART_PAGES, self.target))
        if parts < 2:
            return []
        if ascending:
            return split_window((start, hi), start, end, parts)
        return split_window((lo, start), end, start, parts)
