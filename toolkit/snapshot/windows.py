"""Listings at the rate limiter's pace, in whatever order Lever lists, never missing one.

One paginated listing is serial: each page needs the previous page's token, so with 300 ms per
answer it gets about three pages a second while the key allows ten. `WindowedListing` keeps
enough listings running at once for the shared rate limiter to be the only pace-setter, by
cutting them into `created_at` windows, and cutting again where the pages show the data is.

The invariant (what makes a fetch complete). Every opportunity that exists from the fetch's
first request to its last is in the result exactly once, because:

1. The windows of a listing always partition what it lists: the `createdAt` timeline (the outer
   ones are open-ended) and, where a hand-on along `updatedAt` cut a window, that window's
   `updatedAt` timeline; no window is ever dropped.
2. Each window is either listed to its end (`hasNext: false`), which is complete in any order,
   or closed early by a *hand-on* (its rest given to new windows). A hand-on is made only while
   the listing's sort key is *proven* by every page of that family of listings (see
   `toolkit.snapshot.order`). Along `createdAt` (either way) the rest is the `created_at`
   range past the position. Along `updatedAt` (either way) it is the window's range updated
   past the position (`updated_at_start` / `_end`), and only once every opportunity whose
   `updatedAt` is null is known to be listed already or matched by that filter: the pages have
   ruled out its place at the far end of the order, and either its place at its `createdAt` or
   a request has shown the filters match a null one by its `createdAt`
   (`OrderEvidence.nulls_listed`). Each window closed that way is recorded (a *claim*: along
   `createdAt` the range listed, along `updatedAt` the whole window), and the first page
   anywhere in the family that contradicts the key withdraws the trust: every claim is listed
   again in full and no hand-on follows.
3. A listing of more than one page whose order is not proven `createdAt` ends with a
   *catch-up*: everything updated since just before the fetch began (`updated_at_start`),
   repeated while a catch-up itself spans pages. It picks up what an edit moved past a running
   window (an `updatedAt` order, or an unknown one). Ids de-duplicate; the catch-up's copy, the
   newer, wins.

The trust rests on Lever sorting a query by one timestamp, one way, whatever its time bounds
(`trust_order=False` relies on no order). One deleted during the fetch may be in it (the next
refresh's deletions drop it).

Speed: only `slots` pages are asked for at once (rate x latency, with a margin), each with a
token taken from the limiter the moment one is free, by the window with the most work left, so
the longest listings never wait behind short ones.
- `createdAt` proven (ascending or newest first): the window with the most work left hands on
  the rest of its range when fewer windows run than the limiter can keep busy (`target`), or
  when its pages, one latency apart, would end after all the rest at the limiter's rate. Work
  left comes from its last page's density (items per ms); the new windows next to where it
  reached hold `PART_PAGES` pages at that density, one more takes whatever lies beyond.
- `updatedAt` proven, its nulls placed: the same, stepping along `updatedAt` (a window hands
  on only with `UPDATED_HAND_ON_PAGES` left). Until the nulls are placed, as any other order.
- Any other order: windows are cut only into windows that cover their whole range again, at a
  window's first page (one page lost) and later only for a share of work many times the pages
  it lost. A page in `updatedAt` order still shows where a window is and how dense it is; a
  page in no order (shuffled) is a sample of its window, cut at the sample's quantiles. A page
  in `updatedAt` order whose `createdAt` values crowd far closer together than its `updatedAt`
  values (a bulk-import day) samples that band: the window is cut at the band's quantiles
  (`toolkit.snapshot.cuts`), as soon as a page shows it and the window would end last.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from toolkit.client.http import Page
from toolkit.client.ratelimit import TokenBucket
from toolkit.snapshot.cuts import MAX_TARGET, PAGE_ITEMS, Cutting, Family, ListedWindow
from toolkit.snapshot.order import (
    CREATED_ASC,
    CREATED_DESC,
    KEYS,
    consistent_keys,
    describe,
    ms,
    value_of,
)
from toolkit.snapshot.ranges import Window, floor_of, split_window

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

__all__ = ["WindowedListing", "split_window"]  # split_window: where callers have found it

log = logging.getLogger(__name__)

CATCH_UP_MARGIN_MS = 60_000  # the catch-up starts this long before Lever's clock at the start
CATCH_UP_ROUNDS = 3


EDGE_PAGES = 3  # along updatedAt, a window's first pages are its edge: too few to size it
# Pages asked for, each further back, to find one null updatedAt the filters match (10,000
# `uniform` newest updatedAt first: the first two held none, the third five)
NULL_PAGE_ASKS = 3


def ready_priority(window: ListedWindow) -> tuple[float, float]:
    """Which ready window gets the next free slot (the largest first; one not sized yet before
    any: along `updatedAt` a first page sits where the window thins out, and its density says
    a few pages where there are 15: ranked by it, the window waited 6 s and ended last)."""
    if window.pages_done == 0:
        return (math.inf, math.inf)
    if window.key is not None and window.key[0] == "updatedAt" and window.pages_done < EDGE_PAGES:
        return (math.inf, -window.pages_done)
    if window.left is None:
        return (math.inf, -window.pages_done)
    return (window.left, 0)


class WindowedListing(Cutting):
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
        self.families: list[Family] = []
        self.stats = {
            "pages": 0,
            "windows": 0,
            "cuts": 0,
            "handed_on": 0,
            "relisted": 0,
            "catch_up_pages": 0,
        }
        self._active: list[ListedWindow] = []
        self._futures: dict[Future, ListedWindow] = {}
        self._ready: list[ListedWindow] = []  # windows waiting for a free slot for their next page
        self._pool: ThreadPoolExecutor | None = None
        limiter = getattr(client, "limiter", None)  # a client without one: pages queue for it
        self._limiter = limiter if isinstance(limiter, TokenBucket) else None

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
                    family = Family(dict(filters), (lo, hi))
                    self.families.append(family)
                    self._start(ListedWindow(family, lo, hi))
                while self._futures or self._ready or self._asking():
                    token_in = self._pump()
                    waiting = [*self._futures, *self._asking()]
                    if not waiting:  # every window waits for the limiter's next token
                        time.sleep(token_in or 0.0)
                        continue
                    done, _ = wait(waiting, timeout=token_in, return_when=FIRST_COMPLETED)
                    for future in done:
                        if future in self._futures:
                            self._on_page(self._futures.pop(future), future.result())
                    for family in self.families:  # an answer that came beside the pages
                        self._settle_null_probe(family)
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

    def _catch_up(self, family: Family, since: int) -> None:
        """List what was updated since `since` again (point 3 of the invariant)."""
        for _ in range(CATCH_UP_ROUNDS):
            params = ListedWindow(family, *family.root).params()
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

    def _start(self, window: ListedWindow) -> None:
        window.pages = self.client.iter_opportunity_pages(**window.params())
        self._active.append(window)
        self.stats["windows"] += 1
        self._submit(window)

    def _submit(self, window: ListedWindow) -> None:
        self._ready.append(window)

    def _pump(self) -> float | None:
        """Ask for next pages, `slots` at most at once, the most work left first (unknown: a
        first page, or pages in no order, first of all; among windows in no order, the one
        that has listed least: cut alike, they are alike, and the last to end sets the end).

        Each page goes out with a token taken from the limiter the moment one is free, so the
        window with the most work left gets the next token, rather than the window that asked
        first (a limiter serves its queue in order: the longest window would wait behind the
        others on every page and end alone, one page a latency apart). Returns the seconds
        until the limiter has a token again when windows wait for one, else None.
        """
        assert self._pool is not None
        while self._ready and len(self._futures) < self.slots:
            paid = self._limiter is not None
            if self._limiter is not None:
                token_in = self._limiter.try_acquire()
                if token_in > 0:
                    return token_in
            window = max(self._ready, key=ready_priority)
            self._ready.remove(window)
            self._futures[self._pool.submit(self._next_page, window, paid)] = window
        return None

    def _next_page(self, window: ListedWindow, paid: bool) -> tuple[Page | None, float]:
        started = time.monotonic()
        with self._limiter.prepaid() if paid and self._limiter else nullcontext():
            page = next(window.pages, None)  # type: ignore[arg-type]
        return page, time.monotonic() - started

    def _finish(self, window: ListedWindow) -> None:
        log.debug("window %s..%s ends after %d pages", window.lo, window.hi, window.pages_done)
        self._active.remove(window)
        if window.pages is not None:
            window.pages.close()  # type: ignore[attr-defined]

    def _on_page(self, window: ListedWindow, result: tuple[Page | None, float]) -> None:
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
        for lo, hi, since, until in parts:
            self._start(ListedWindow(window.family, lo, hi, since, until))

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

    def _observe(self, window: ListedWindow, page: Page) -> None:
        """Feed the order evidence; track the window's position, density and work left."""
        items = [item for item in page.items if isinstance(item, dict)]
        created = (ms(item.get("createdAt")) for item in items)
        window.page_created = [c for c in created if c is not None]
        window.sample.extend(window.page_created)
        family = window.family
        for item in items:
            c, u = ms(item.get("createdAt")), ms(item.get("updatedAt"))
            if c is not None and u is not None:
                family.lag = max(family.lag, u - c)
        family.evidence.see(window.last, items)
        sequence = ([window.last] if window.last is not None else []) + items
        window.local = consistent_keys(sequence, window.local, family.evidence.nulls)
        self._settle_null_probe(family)
        if (
            family.null_filter is None
            and "null" not in family.null_asked
            and any(
                key in family.evidence.left and "created" in places
                for key, places in family.evidence.nulls.items()
            )
        ):
            self._ask_null_filter(window, items)
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
        # along updatedAt, a null one says nothing of where the listing is (its place is not
        # known until the pages show it)
        values = [value_of(item, key[0]) for item in items]
        if key[0] == "updatedAt":
            values = [ms(i.get("updatedAt")) for i in items if ms(i.get("updatedAt")) is not None]
        first = window.position if window.key == key and window.position is not None else None
        first = first if first is not None else (values[0] if values else None)
        if not values or values[-1] == first:  # no span to measure a density on: no estimate
            window.key = window.position = window.density = window.left = None
            return
        window.key, window.position = key, values[-1]
        window.page_span = abs(values[-1] - values[0])  # type: ignore[operator]
        last = values[-1]
        window.density = len(values) / max(1, abs(last - first))  # type: ignore[operator]
        if key[1] > 0:
            end = window.hi if window.hi is not None else max(self.now_ms, last + 1)  # type: ignore[operator]
            if key[0] == "updatedAt":  # the window's updatedAt reach past its createdAt end
                end += family.lag
                end = end if window.until is None else min(end, window.until)
            span = end - last  # type: ignore[operator]
        else:
            start = window.lo if window.lo is not None else floor_of(last)  # type: ignore[arg-type]
            if key[0] == "updatedAt" and window.since is not None:
                start = max(start, window.since)
            span = last - start  # type: ignore[operator]
        window.left = window.density * max(0, span) / PAGE_ITEMS

    def _ask_null_filter(self, window: ListedWindow, items: list[dict]) -> None:
        """Ask (one request, beside the pages) whether the `updated_at` filters match an
        opportunity whose `updatedAt` is null as its `createdAt`: a hand-on along `updatedAt`
        bounds the rest with them, so it is safe only if every null one left is matched (or,
        by its place in the order, already listed).

        The request lists one page with both `updated_at` bounds: for a null one on the page,
        `created_at` and `updated_at` both its `createdAt`; else `created_at` up to the page's
        earliest and `updated_at` from 1 to it (a null one, if any, is among what it lists). A
        null one in the answer shows that both bounds match it by its `createdAt`. An answer
        without one asks again further back (`NULL_PAGE_ASKS` in all), and once a page holds a
        null one, with it."""
        family = window.family
        null = next(
            (i for i in items if i.get("updatedAt") is None and ms(i.get("createdAt")) is not None),
            None,
        )
        created = [c for c in (ms(i.get("createdAt")) for i in items) if c is not None]
        if self._pool is None or not self.trust_order or not created:
            return
        if family.null_probe is not None:  # asked, not answered yet
            return
        if null is not None and "null" not in family.null_asked:
            at = ms(null.get("createdAt"))
            family.null_asked.add("null")
            self._ask(family, ListedWindow(family, at, at, at, at))
        elif family.null_pages == 0:
            self._ask_page(family, min(created))

    def _ask_page(self, family: Family, end: int) -> None:
        """One page of what was created and updated up to `end` (see `_ask_null_filter`)."""
        family.null_pages += 1
        self._ask(family, ListedWindow(family, None, end, 1, end))

    def _ask(self, family: Family, window: ListedWindow) -> None:
        assert self._pool is not None
        family.null_probe = self._pool.submit(self._null_page, window)
        log.debug("asked how updated_at filters treat a null updatedAt: %s", window.params())

    def _asking(self) -> list[Future]:
        """The `_ask_null_filter` requests not answered yet (the run waits for them: their page
        is evidence of the order, and may withdraw a trust that claims rely on)."""
        return [f.null_probe for f in self.families if f.null_probe is not None]

    def _null_page(self, window: ListedWindow) -> list[dict]:
        page = next(iter(self.client.iter_opportunity_pages(**window.params())), None)
        return [i for i in page.items if isinstance(i, dict)] if page is not None else []

    def _settle_null_probe(self, family: Family) -> None:
        """The answer to `_ask_null_filter`, once it came: whether it listed a null one, and its
        page as evidence of the order (a listing of the family like any other: where its null
        ones stand among the rest shows their place)."""
        probe = family.null_probe
        if probe is None or not probe.done():
            return
        family.null_probe = None
        items = probe.result() if probe.exception() is None else []
        family.evidence.see(None, items)
        found = any("updatedAt" in i and i["updatedAt"] is None for i in items)
        family.null_filter = True if found else family.null_filter
        log.debug("the updated_at filters matched a null updatedAt: %s", found)
        if family.claim_key is not None and family.claim_key not in family.evidence.left:
            self._distrust(family)
        created = [c for c in (ms(i.get("createdAt")) for i in items) if c is not None]
        further = not found and created and 0 < family.null_pages < NULL_PAGE_ASKS
        if further and "null" not in family.null_asked and self._pool is not None:
            self._ask_page(family, min(created) - 1)

    def _distrust(self, family: Family) -> None:
        """A page contradicted the order the claims rely on: list every claim again in full."""
        log.info("a page contradicts the listing order: ranges closed early are listed again")
        family.trusted = False
        family.claim_key = None
        claims, family.claims = family.claims, []
        for lo, hi, since, until in claims:
            self.stats["relisted"] += 1
            self._start(ListedWindow(family, lo, hi, since, until))

    @property
    def order_trusted(self) -> bool:
        """Whether every listing's order was proven (`createdAt`, or `updatedAt` with its nulls
        placed: see `Cutting._trusted`) and never contradicted: hand-ons relied on it."""
        return bool(self.families) and all(self._trusted(f) for f in self.families)

    @property
    def order_seen(self) -> str:
        """The order the first listing's pages showed, in words."""
        return describe(self.families[0].evidence.left) if self.families else "no listing"
