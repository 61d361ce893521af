"""Listings at the rate limiter's pace, in whatever order Lever lists, never missing one.

One paginated listing is serial: each page needs the previous page's token, so with 300 ms per
answer it gets about three pages a second while the key allows ten. `WindowedListing` keeps
enough listings running at once for the shared rate limiter to be the only pace-setter, by
cutting them into `created_at` windows, and cutting again where the pages show the data is.

The invariant (what makes a fetch complete). Every opportunity that exists from the fetch's
first request to its last is in the result exactly once, because:

1. The windows of a listing always partition the `createdAt` timeline (the outer ones are
   open-ended), and no window is ever dropped.
2. Each window is either listed to its end (`hasNext: false`), which is complete in any order,
   or closed early by a *hand-on* (its rest given to new windows). A hand-on is made only while
   the listing's sort key is *proven* `createdAt` (ascending or descending: see
   `toolkit.snapshot.order`) by every page of that family of listings, each range closed that
   way is recorded (a *claim*), and the first page anywhere in the family that contradicts the
   key withdraws the trust: every claim is listed again in full and no hand-on follows.
3. A listing of more than one page whose order is not proven `createdAt` ends with a
   *catch-up*: everything updated since just before the fetch began (`updated_at_start`),
   repeated while a catch-up itself spans pages. It picks up what an edit moved past a running
   window (an `updatedAt` order, or an unknown one). Ids de-duplicate; the catch-up's copy, the
   newer, wins.

The trust rests on Lever sorting a query by one timestamp, one way (`trust_order=False` relies
on no order). One deleted during the fetch may be in it (the next refresh's deletions drop it).

Speed: only `slots` pages are asked for at once (rate x latency, with a margin), the windows
with the most work left first, so the longest listings never wait behind short ones.
- `createdAt` proven (ascending or newest first): the window with the most work left hands on
  the rest of its range when fewer windows run than the limiter can keep busy (`target`), or
  when its pages, one latency apart, would end after all the rest at the limiter's rate. Work
  left comes from its last page's density (items per ms); the new windows next to where it
  reached hold `PART_PAGES` pages at that density, one more takes whatever lies beyond.
- Any other order: windows are cut only into windows that cover their whole range again, at a
  window's first page (one page lost) and later only for a share of work many times the pages
  it lost. A page in `updatedAt` order still shows where a window is and how dense it is; a
  page in no order (shuffled) is a sample of its window, cut at the sample's quantiles.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toolkit.client.http import Page
from toolkit.snapshot.order import (
    CREATED_ASC,
    CREATED_DESC,
    KEYS,
    Key,
    OrderEvidence,
    consistent_keys,
    describe,
    ms,
    value_of,
)
from toolkit.snapshot.ranges import (
    Window,
    floor_of,
    quantile_window_parts,
    split_window,
    stepped_parts,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

log = logging.getLogger(__name__)

PAGE_ITEMS = 100  # a full page (Lever's maximum limit)
PART_PAGES = 10  # a new window holds about this many pages at the density that made it
MIN_PART_PAGES = 3  # below this many pages left, a window is not worth cutting
LATE_CUT_GAIN = 8  # without a proven order, a later cut needs this many pages left per page lost
MAX_TARGET = 32  # windows listed at once, at most (high latency)
CATCH_UP_MARGIN_MS = 60_000  # the catch-up starts this long before Lever's clock at the start
CATCH_UP_ROUNDS = 3


@dataclass(eq=False)
class _Family:
    """The listings of one filter set: their order evidence and the ranges closed on it."""

    filters: dict[str, Any]
    root: Window
    evidence: OrderEvidence = field(default_factory=OrderEvidence)
    claims: list[Window] = field(default_factory=list)
    claim_key: Key | None = None  # the key the claims rely on
    trusted: bool = True  # False once a page contradicted the claims' key
    pages: int = 0
    lag: int = 0  # the largest updatedAt - createdAt seen


@dataclass(eq=False)
class _Window:
    """One listing of one `created_at` window, and what its pages showed."""

    family: _Family
    lo: int | None
    hi: int | None
    pages: Iterator[Page] | None = None
    pages_done: int = 0
    local: set[Key] = field(default_factory=lambda: set(KEYS))  # keys its own pages allow
    last: dict | None = None  # the last item of its last page
    key: Key | None = None  # the key its position is tracked on (None: pages in no order)
    position: int | None = None  # the last value of that key listed
    density: float | None = None  # items per ms of that key on its last page
    left: float | None = None  # estimated pages still to list
    sample: list[int] = field(default_factory=list)  # every createdAt it listed

    def params(self) -> dict[str, Any]:
        params = dict(self.family.filters)
        if self.lo is not None:
            params["created_at_start"] = self.lo
        if self.hi is not None:
            params["created_at_end"] = self.hi
        return params

    def clamped(self) -> int:
        assert self.position is not None
        p = self.position
        p = p if self.lo is None else max(self.lo, p)
        return p if self.hi is None else min(self.hi, p)


class WindowedListing:
    """List `GET /opportunities` for one or more filter sets, as fast as the limiter allows.

    Args:
        client: a `LeverClient`; its one rate limiter paces every window.
        workers: the fewest windows to keep listing at once; more when the measured latency
            needs more to keep the limiter busy (rate x latency, with a margin).
        now_ms: the present in ms: where the timeline is cut up to (later ones stay in the
            open-ended last window).
        on_items: called with the number of new opportunities after each page (a progress bar).
        trust_order: hand on the rest of a running window once the pages prove a `createdAt`
            order (see the module's docstring); False: never rely on the order.

    Example:
        >>> listing = WindowedListing(client)  # doctest: +SKIP
        >>> everything = ({"confidentiality": "all"}, (None, None))
        >>> opportunities = listing.run([everything])  # doctest: +SKIP
    """

    def __init__(
        self,
        client: OpportunityReader,
        *,
        workers: int = 8,
        now_ms: int | None = None,
        on_items: Callable[[int], object] | None = None,
        trust_order: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1 (got {workers})")
        self.client = client
        self.workers = workers
        self.now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        self.on_items = on_items
        self.items: dict[str, dict] = {}
        self.server_time_ms: int | None = None  # Lever's clock at the first answer
        self.latency: float | None = None  # the quickest page seen, seconds
        self.trust_order = trust_order
        self.families: list[_Family] = []
        self.stats = {
            "pages": 0,
            "windows": 0,
            "cuts": 0,
            "handed_on": 0,
            "relisted": 0,
            "catch_up_pages": 0,
        }
        self._active: list[_Window] = []
        self._futures: dict[Future, _Window] = {}
        self._ready: list[_Window] = []  # windows waiting for a free slot for their next page
        self._pool: ThreadPoolExecutor | None = None

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

    # -- running ---------------------------------------------------------------------------------

    def run(self, roots: Iterable[tuple[Mapping[str, Any], Window]]) -> dict[str, dict]:
        """List every root `(filters, window)` completely; return the opportunities by id.

        Raises:
            LeverError: a page failed after the client's retries (the whole run stops: a
                partial result is never returned as complete).
        """
        started_ms = int(time.time() * 1000)
        with ThreadPoolExecutor(MAX_TARGET + 4, thread_name_prefix="fetch") as pool:
            self._pool = pool
            try:
                for filters, (lo, hi) in roots:
                    family = _Family(dict(filters), (lo, hi))
                    self.families.append(family)
                    self._start(_Window(family, lo, hi))
                while self._futures:
                    done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._on_page(self._futures.pop(future), future.result())
                    self._pump()
            finally:
                for future in self._futures:
                    future.cancel()
                self._futures.clear()
                self._pool = None
        since = (self.server_time_ms or started_ms) - CATCH_UP_MARGIN_MS
        for family in self.families:
            # one page is one answer, and an edit does not move an opportunity in a createdAt
            # order: nothing can have moved past a running window
            if family.pages > 1 and family.evidence.proven not in (CREATED_ASC, CREATED_DESC):
                self._catch_up(family, since)
        return self.items

    def _catch_up(self, family: _Family, since: int) -> None:
        """List what was updated since `since` again (point 3 of the invariant)."""
        for _ in range(CATCH_UP_ROUNDS):
            params = _Window(family, *family.root).params()
            params["updated_at_start"] = max(since, int(params.get("updated_at_start") or 0))
            before = self.client.server_time_ms
            pages = 0
            for page in self.client.iter_opportunity_pages(**params):
                pages += 1
                self._keep(page.items, replace=True)
            self.stats["catch_up_pages"] += pages
            if pages <= 1 or before is None:
                return
            since = before - 5_000  # a catch-up of several pages: once more, from its start

    def _start(self, window: _Window) -> None:
        window.pages = self.client.iter_opportunity_pages(**window.params())
        self._active.append(window)
        self.stats["windows"] += 1
        self._submit(window)

    def _submit(self, window: _Window) -> None:
        self._ready.append(window)
        self._pump()

    def _pump(self) -> None:
        """Ask for next pages, `slots` at most at once, the most work left first (unknown: a
        first page, or pages in no order, first of all)."""
        assert self._pool is not None
        while self._ready and len(self._futures) < self.slots:
            window = max(self._ready, key=lambda w: math.inf if w.left is None else w.left)
            self._ready.remove(window)
            self._futures[self._pool.submit(self._next_page, window)] = window

    @staticmethod
    def _next_page(window: _Window) -> tuple[Page | None, float]:
        started = time.monotonic()
        page = next(window.pages, None)  # type: ignore[arg-type]
        return page, time.monotonic() - started

    def _finish(self, window: _Window) -> None:
        log.debug("window %s..%s ends after %d pages", window.lo, window.hi, window.pages_done)
        self._active.remove(window)
        if window.pages is not None:
            window.pages.close()  # type: ignore[attr-defined]

    def _on_page(self, window: _Window, result: tuple[Page | None, float]) -> None:
        page, seconds = result
        if self.server_time_ms is None:
            self.server_time_ms = getattr(self.client, "server_time_ms", None)
        if page is None:
            self._finish(window)
            return
        self.latency = seconds if self.latency is None else min(self.latency, seconds)
        self.stats["pages"] += 1
        window.pages_done += 1
        window.family.pages += 1
        self._keep(page.items)
        self._observe(window, page)
        if not page.has_next:
            self._finish(window)
            return
        parts = self._cut(window)
        if not parts:
            self._submit(window)
            return
        self._finish(window)
        self.stats["cuts"] += 1
        log.debug(
            "window %s..%s after %d pages (key %s, left ~%.1f, %d active): %s",
            window.lo,
            window.hi,
            window.pages_done,
            window.key,
            window.left or -1,
            len(self._active),
            parts,
        )
        for lo, hi in parts:
            self._start(_Window(window.family, lo, hi))

    def _keep(self, items: list[dict], replace: bool = False) -> None:
        new = 0
        for item in items:
            opp_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(opp_id, str):
                if opp_id not in self.items:
                    new += 1
                elif not replace:
                    continue
                self.items[opp_id] = item
        if self.on_items is not None and new:
            self.on_items(new)

    # -- the order -------------------------------------------------------------------------------

    def _observe(self, window: _Window, page: Page) -> None:
        """Feed the order evidence; track the window's position, density and work left."""
        items = [item for item in page.items if isinstance(item, dict)]
        created = (ms(item.get("createdAt")) for item in items)
        window.sample.extend(c for c in created if c is not None)
        family = window.family
        for item in items:
            c, u = ms(item.get("createdAt")), ms(item.get("updatedAt"))
            if c is not None and u is not None:
                family.lag = max(family.lag, u - c)
        family.evidence.see(window.last, items)
        sequence = ([window.last] if window.last is not None else []) + items
        window.local = consistent_keys(sequence, window.local)
        if family.claim_key is not None and family.claim_key not in family.evidence.left:
            self._distrust(family)
        if not items:
            return
        window.last = items[-1]
        proven = family.evidence.proven
        key = proven if proven in window.local else None
        # a key whose opposite still fits has shown no direction (every value equal): no position
        directed = [k for k in KEYS if k in window.local and (k[0], -k[1]) not in window.local]
        key = key or next(iter(directed), None)
        if key is None:
            window.key = window.position = window.density = window.left = None
            return
        values = [value_of(item, key[0]) for item in items]
        first = window.position if window.key == key and window.position is not None else values[0]
        if values[-1] == first:  # no span to measure a density on (ties): no estimate
            window.key = window.position = window.density = window.left = None
            return
        window.key, window.position = key, values[-1]
        last = values[-1]
        window.density = len(values) / max(1, abs(last - first))  # type: ignore[operator]
        if key[1] > 0:
            end = window.hi if window.hi is not None else max(self.now_ms, last + 1)  # type: ignore[operator]
            if key[0] == "updatedAt":  # the window's updatedAt reach past its createdAt end
                end += family.lag
            span = end - last  # type: ignore[operator]
        else:
            start = window.lo if window.lo is not None else floor_of(last)  # type: ignore[arg-type]
            span = last - start  # type: ignore[operator]
        window.left = window.density * max(0, span) / PAGE_ITEMS

    def _distrust(self, family: _Family) -> None:
        """A page contradicted the order the claims rely on: list every claim again in full."""
        log.info("a page contradicts the listing order: ranges closed early are listed again")
        family.trusted = False
        family.claim_key = None
        claims, family.claims = family.claims, []
        for lo, hi in claims:
            self.stats["relisted"] += 1
            self._start(_Window(family, lo, hi))

    def _trusted(self, family: _Family) -> bool:
        proven = family.evidence.proven
        return self.trust_order and family.trusted and proven in (CREATED_ASC, CREATED_DESC)

    @property
    def order_trusted(self) -> bool:
        """Whether every listing's order was proven `createdAt` and never contradicted."""
        return bool(self.families) and all(self._trusted(f) for f in self.families)

    @property
    def order_seen(self) -> str:
        """The order the first listing's pages showed, in words."""
        return describe(self.families[0].evidence.left) if self.families else "no listing"

    # -- cutting ---------------------------------------------------------------------------------

    def _cut(self, window: _Window) -> list[Window]:
        """The windows to hand `window`'s range (or the rest of it) to, or [] to go on."""
        deficit = self.target - len(self._active)
        if window.key is None or window.left is None:  # no order: the page is a sample
            if window.pages_done == 1 and deficit > 0 and len(window.sample) >= 4:
                parts = min(self.target, deficit + 1, len(window.sample) // 2)
                cut = quantile_window_parts((window.lo, window.hi), window.sample, parts)
                return cut if len(cut) > 1 else []
            return []
        if self._trusted(window.family) and window.key == window.family.evidence.proven:
            return self._hand_on(window, deficit) if deficit > 0 or self._behind(window) else []
        # No order relied on: the parts list the window's whole range again.
        worth = window.left >= 2 * PART_PAGES or (deficit > 0 and window.left >= 2 * MIN_PART_PAGES)
        if window.pages_done == 1 and worth:
            return self._relist(window, self._work_parts(window, deficit))
        if window.pages_done == 1 and deficit > 0 and window.lo is None and window.hi is None:
            return self._time_parts(window, deficit)  # one serial listing is the worst case
        # Later, a cut costs as many pages as the window listed: only for a share many times that.
        if deficit > 0 and window.left >= LATE_CUT_GAIN * window.pages_done and self._heavy(window):
            return self._relist(window, self._work_parts(window, deficit))
        return []

    def _time_parts(self, window: _Window, deficit: int) -> list[Window]:
        """The whole timeline from the earliest `createdAt` listed to now, in equal times."""
        earliest = min(window.sample, default=None)
        if earliest is None or earliest >= self.now_ms:
            return []
        parts = split_window((None, None), earliest, self.now_ms, min(self.target, deficit + 1))
        return parts if len(parts) > 1 else []

    def _behind(self, window: _Window) -> bool:
        """Its pages, one latency apart, would end well after the rest at the limiter's rate."""
        if window.left is None or any(w.left is None for w in self._active):
            return False  # the work elsewhere is not known yet
        rate = float(getattr(getattr(self.client, "limiter", None), "rate", 10.0))
        total = sum(w.left or 0.0 for w in self._active)
        own = window.left * (self.latency or 0.0) * 1.3
        return window.left >= 2 * PART_PAGES and own > total / rate + 2.0

    def _heavy(self, window: _Window) -> bool:
        """Among the windows with the most work left (at least half the most)."""
        assert window.left is not None
        others = [w.left for w in self._active if w is not window and w.left is not None]
        return window.left >= 2 * MIN_PART_PAGES and window.left >= max(others, default=0.0) / 2

    def _hand_on(self, window: _Window, deficit: int) -> list[Window]:
        """The order is proven: the window stops, holding what lies before where it reached."""
        assert window.key is not None and window.position is not None
        if not self._heavy(window):
            return []
        parts = self._work_parts(window, deficit)
        if len(parts) < 2:
            return []
        p = window.clamped()
        claim = (window.lo, p - 1) if window.key[1] > 0 else (p + 1, window.hi)
        if claim[0] is None or claim[1] is None or claim[0] <= claim[1]:
            window.family.claims.append(claim)
            window.family.claim_key = window.key
        self.stats["handed_on"] += 1
        return parts

    def _relist(self, window: _Window, parts: list[Window]) -> list[Window]:
        """`parts` of the rest, and the part already listed as one more window: no order assumed."""
        assert window.key is not None
        if not parts:
            return []
        p = window.clamped()
        if window.key[1] > 0:
            if window.lo is not None and p <= window.lo:
                return parts if len(parts) > 1 else []
            return [*self._done_parts(window, (window.lo, p - 1)), *parts]
        if window.hi is not None and p >= window.hi:
            return parts if len(parts) > 1 else []
        return [*parts, *self._done_parts(window, (p + 1, window.hi))]

    def _done_parts(self, window: _Window, done: Window) -> list[Window]:
        """The part already listed, listed anew: in `updatedAt` order it also holds what is not
        listed yet (created before the position, updated after it), so where the `createdAt`
        values listed crowd (a bulk-import day) it is cut at their quantiles."""
        lo, hi = done
        values = [c for c in window.sample if (lo is None or c >= lo) and (hi is None or c <= hi)]
        if window.key is None or window.key[0] != "updatedAt" or len(values) < 4 * PAGE_ITEMS:
            return [done]
        return quantile_window_parts(done, values, min(self.target, len(values) // PAGE_ITEMS))

    def _work_parts(self, window: _Window, deficit: int) -> list[Window]:
        """The rest past the position: windows of `PART_PAGES` pages at the current density
        (above it ascending, below it descending), then one window for what lies beyond.

        When the density fills the range before that, the rest is cut into equal times.
        """
        assert window.key is not None and window.position is not None
        assert window.left is not None and window.density
        ascending = window.key[1] > 0
        if ascending and window.hi is not None and window.position > window.hi:
            return []
        if not ascending and window.lo is not None and window.position < window.lo:
            return []
        start = window.clamped()
        if ascending:
            end = window.hi if window.hi is not None else max(self.now_ms, start + 1)
        else:
            end = window.lo if window.lo is not None else floor_of(start)
        width = max(1, int(PART_PAGES * PAGE_ITEMS / window.density))
        near = min(
            max(deficit, 1),
            self.target,
            abs(end - start) // width,
            max(1, math.ceil(window.left / PART_PAGES)),
        )
        if near >= 1:
            return stepped_parts((window.lo, window.hi), start, width * window.key[1], near)
        parts = int(min(max(deficit, 1) + 1, window.left // MIN_PART_PAGES, self.target))
        if parts < 2:
            return []
        if ascending:
            return split_window((start, window.hi), start, end, parts)
        return split_window((window.lo, start), end, start, parts)
