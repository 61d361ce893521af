"""Listings at the rate limiter's pace, whatever the spread of `createdAt`.

One paginated listing is serial: each page needs the previous page's token, so with 300 ms per
answer it gets about three pages a second while the key allows ten. `WindowedListing` keeps
enough listings running at once for the shared rate limiter to be the only pace-setter, by
cutting them into `created_at` windows, and cutting again where the pages show the data is:

- A listing starts as one window over the whole timeline; its first page is the probe.
- Whenever fewer windows run than the limiter can keep busy (`target`), the running window
  with the most work left hands on the rest of its range. Work left is estimated from the
  density of its last page (items per millisecond of `createdAt`). The new windows next to
  where it reached are sized to hold `PART_PAGES` pages at that density (a bulk-import day is
  cut into hours, a quiet year stays whole); one more window takes whatever lies beyond,
  unknown until its first page (a listing in `createdAt` order skips an empty stretch at once).

Completeness. Windows always partition the timeline (the outer ones are open-ended), every
opportunity is kept once by `id`, and no window is dropped: a window listed to its end
(`hasNext: false`) is complete whatever order Lever lists in. Handing on the rest of a range
while a window runs needs its pages so far to hold everything before where it reached; that is
so when Lever lists by `createdAt`, which is undocumented. So it is done only on evidence, with
a check that fails safe:

- only while every page of every listing of this run has come in `createdAt` order (each page
  and across pages: a shuffled, newest-first or `updatedAt` order shows on its first pages);
- each range closed that way is recorded (`claims`), and the first page anywhere out of
  `createdAt` order (or an opportunity without `createdAt`) withdraws the trust for the rest of
  the run and lists every recorded range again in full; the windows handed on start where the
  closed one reached, ties included, so nothing falls between them.

Without that trust (`trust_order=False`, or once withdrawn) nothing relies on the order: a
window is cut only into windows that cover its whole range again, the part already listed
included (listed anew; that is the proof, and it costs as many pages as the window had listed),
so cuts are made at first pages and later only when the work they share out is many times that.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from toolkit.client.http import Page
from toolkit.errors import PermissionDeniedError
from toolkit.progress import progress_bar

log = logging.getLogger(__name__)

Window = tuple[int | None, int | None]  # inclusive created_at bounds in ms; None = open
PAGE_ITEMS = 100  # a full page (Lever's maximum limit)
PART_PAGES = 10  # a new window holds about this many pages at the density that made it
MIN_PART_PAGES = 3  # below this many pages left, a window is not worth cutting
LATE_CUT_GAIN = 8  # without trust, a later cut needs this many pages left per page listed
MAX_TARGET = 32  # windows listed at once, at most (high latency)


def _ms(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def split_window(window: Window, lo: int, hi: int, parts: int) -> list[Window]:
    """Split an inclusive window into `parts` contiguous windows of equal time.

    Open ends stay open (the first part keeps an open start, the last an open end); `lo` and
    `hi` stand in for them when computing the cut points.

    Example:
        >>> split_window((None, None), 0, 99, 2)
        [(None, 49), (50, None)]
    """
    start = window[0] if window[0] is not None else lo
    end = window[1] if window[1] is not None else hi
    if end - start < parts or parts < 2:
        return [window]
    step = (end - start + 1) // parts
    bounds = [start + i * step for i in range(parts)] + [end + 1]
    out: list[Window] = []
    for i in range(parts):
        a = window[0] if i == 0 else bounds[i]
        b = window[1] if i == parts - 1 else bounds[i + 1] - 1
        out.append((a, b))
    return out


@dataclass(eq=False)
class _Window:
    """One listing of one `created_at` window, and what its pages showed."""

    filters: dict[str, Any]
    lo: int | None
    hi: int | None
    pages: Iterator[Page] | None = None
    pages_done: int = 0
    ordered: bool = True  # every createdAt it listed so far was in non-decreasing order
    position: int | None = None  # the last createdAt listed (meaningful while ordered)
    density: float | None = None  # items per ms of createdAt on its last page
    left: float | None = None  # estimated pages still to list
    earliest: int | None = None  # the smallest createdAt listed

    def params(self) -> dict[str, Any]:
        params = dict(self.filters)
        if self.lo is not None:
            params["created_at_start"] = self.lo
        if self.hi is not None:
            params["created_at_end"] = self.hi
        return params


class WindowedListing:
    """List `GET /opportunities` for one or more filter sets, as fast as the limiter allows.

    Args:
        client: a `LeverClient`; its one rate limiter paces every window.
        workers: the fewest windows to keep listing at once; more when the measured latency
            needs more to keep the limiter busy (rate x latency, with a margin).
        now_ms: the present in ms: where the timeline is cut up to (later ones stay in the
            open-ended last window).
        on_items: called with the number of new opportunities after each page (a progress bar).
        trust_order: hand on the rest of a running window while every page has come in
            `createdAt` order (see the module's docstring); False: never rely on the order.

    Example:
        >>> listing = WindowedListing(client)  # doctest: +SKIP
        >>> everything = ({"confidentiality": "all"}, (None, None))
        >>> opportunities = listing.run([everything])  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        *,
        workers: int = 8,
        now_ms: int | None = None,
        on_items: Callable[[int], None] | None = None,
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
        self.order_seen = True  # every page so far in createdAt order
        self.claims: list[tuple[dict[str, Any], int | None, int]] = []
        self.stats = {"pages": 0, "windows": 0, "cuts": 0, "handed_on": 0, "relisted": 0}
        self._active: list[_Window] = []
        self._futures: dict[Future, _Window] = {}
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

    def _threads(self) -> int:
        return MAX_TARGET + 4

    # -- running ---------------------------------------------------------------------------------

    def run(self, roots: Iterable[tuple[Mapping[str, Any], Window]]) -> dict[str, dict]:
        """List every root `(filters, window)` completely; return the opportunities by id.

        Raises:
            LeverError: a page failed after the client's retries (the whole run stops: a
                partial result is never returned as complete).
        """
        with ThreadPoolExecutor(self._threads(), thread_name_prefix="fetch") as pool:
            self._pool = pool
            try:
                for filters, (lo, hi) in roots:
                    self._start(_Window(dict(filters), lo, hi))
                while self._futures:
                    done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._on_page(self._futures.pop(future), future.result())
            finally:
                for future in self._futures:
                    future.cancel()
                self._futures.clear()
                self._pool = None
        return self.items

    def _start(self, window: _Window) -> None:
        window.pages = self.client.iter_opportunity_pages(**window.params())
        self._active.append(window)
        self.stats["windows"] += 1
        self._submit(window)

    def _submit(self, window: _Window) -> None:
        assert self._pool is not None
        self._futures[self._pool.submit(self._next_page, window)] = window

    @staticmethod
    def _next_page(window: _Window) -> tuple[Page | None, float]:
        started = time.monotonic()
        page = next(window.pages, None)  # type: ignore[arg-type]
        return page, time.monotonic() - started

    def _finish(self, window: _Window) -> None:
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
        self._keep(page.items)
        self._observe(window, page)
        if not page.has_next:
            log.debug(
                "window %s..%s done: %d pages, %d items on the last",
                window.lo,
                window.hi,
                window.pages_done,
                len(page.items),
            )
            self._finish(window)
            return
        parts = self._cut(window)
        if not parts:
            self._submit(window)
            return
        self._finish(window)
        self.stats["cuts"] += 1
        log.debug(
            "window %s..%s after %d pages (left ~%.1f, %d active): %s",
            window.lo,
            window.hi,
            window.pages_done,
            window.left or -1,
            len(self._active),
            parts,
        )
        for lo, hi in parts:
            self._start(_Window(window.filters, lo, hi))

    def _keep(self, items: list[dict]) -> None:
        new = 0
        for item in items:
            opp_id = item.get("id")
            if isinstance(opp_id, str) and opp_id not in self.items:
                self.items[opp_id] = item
                new += 1
        if self.on_items is not None and new:
            self.on_items(new)

    # -- the order check ---------------------------------------------------------------------------

    def _observe(self, window: _Window, page: Page) -> None:
        """Track the window's position and density; withdraw the trust on any disorder."""
        if not page.items:
            return
        created = [_ms(item.get("createdAt")) for item in page.items]
        known = [c for c in created if c is not None]
        if known:
            low = min(known)
            window.earliest = low if window.earliest is None else min(window.earliest, low)
        if window.ordered:
            previous = window.position
            for value in created:
                if value is None or (previous is not None and value < previous):
                    window.ordered = False
                    break
                previous = value
        if not window.ordered:
            window.density = window.left = None
            if self.order_seen:
                self._distrust()
            return
        first = window.position if window.position is not None else created[0]
        last = created[-1]
        window.position = last
        window.density = len(created) / max(1, last - first)
        hi = window.hi if window.hi is not None else max(self.now_ms, last + 1)
        window.left = window.density * max(0, hi - last) / PAGE_ITEMS

    def _distrust(self) -> None:
        """A page came out of createdAt order: list every range closed on that order again."""
        log.info("pages out of createdAt order: ranges closed early are listed again in full")
        self.order_seen = False
        claims, self.claims = self.claims, []
        for filters, lo, hi in claims:
            self.stats["relisted"] += 1
            self._start(_Window(filters, lo, hi))

    @property
    def order_trusted(self) -> bool:
        """Whether a running window may hand on the rest of its range (see the docstring)."""
        return self.trust_order and self.order_seen

    # -- cutting -----------------------------------------------------------------------------------

    def _cut(self, window: _Window) -> list[Window]:
        """The windows to hand `window`'s range (or the rest of it) to, or [] to go on."""
        deficit = self.target - len(self._active)
        if window.left is None:  # not in createdAt order: cut only at the first page
            return self._cut_whole(window, deficit) if window.pages_done == 1 else []
        if self.order_trusted:
            return self._hand_on(window, deficit) if deficit > 0 else []
        if window.pages_done == 1 and window.lo is None and window.hi is None:
            return self._relist(window, self._time_parts(window))
        worth = window.left >= 2 * PART_PAGES or (deficit > 0 and window.left >= 2 * MIN_PART_PAGES)
        if window.pages_done == 1 and worth:
            return self._relist(window, self._work_parts(window, deficit))
        # Later, a cut costs as many pages as the window listed: only for a share many times that.
        if deficit > 0 and window.left >= LATE_CUT_GAIN * window.pages_done and self._heavy(window):
            return self._relist(window, self._work_parts(window, deficit))
        return []

    def _heavy(self, window: _Window) -> bool:
        """Among the windows with the most work left (at least half the most)."""
        assert window.left is not None
        others = [w.left for w in self._active if w is not window and w.left is not None]
        return window.left >= 2 * MIN_PART_PAGES and window.left >= max(others, default=0.0) / 2

    def _hand_on(self, window: _Window, deficit: int) -> list[Window]:
        """The order is trusted: the window stops, holding `[lo, position)`; the rest goes on."""
        assert window.position is not None
        if not self._heavy(window):
            return []
        parts = self._work_parts(window, deficit)
        if len(parts) < 2:
            return []
        self.claims.append((window.filters, window.lo, window.position - 1))
        self.stats["handed_on"] += 1
        return parts

    def _relist(self, window: _Window, parts: list[Window]) -> list[Window]:
        """Parts of `[position, hi]`, with `[lo, position)` listed again: no order assumed."""
        assert window.position is not None
        if not parts:
            return []
        if window.lo is not None and window.position <= window.lo:
            return parts if len(parts) > 1 else []
        return [(window.lo, window.position - 1), *parts]

    def _time_parts(self, window: _Window) -> list[Window]:
        """`[position, hi]` in equal times, one per window the limiter can keep busy."""
        assert window.position is not None
        start = window.position
        hi = window.hi if window.hi is not None else max(self.now_ms, start + 1)
        return split_window((start, window.hi), start, hi, max(2, self.target - 1))

    def _work_parts(self, window: _Window, deficit: int) -> list[Window]:
        """`[position, hi]`: windows of `PART_PAGES` pages at the current density, then the rest.

        When the density fills the range before that, the range is cut into equal times.
        """
        assert window.left is not None and window.position is not None and window.density
        start = window.position
        hi = window.hi if window.hi is not None else max(self.now_ms, start + 1)
        width = max(1, int(PART_PAGES * PAGE_ITEMS / window.density))
        near = min(
            max(deficit, 1),
            self.target,
            (hi - start) // width,
            max(1, math.ceil(window.left / PART_PAGES)),
        )
        if near >= 1:
            bounds = [start + i * width for i in range(near + 1)]
            out: list[Window] = [(bounds[i], bounds[i + 1] - 1) for i in range(near)]
            out.append((bounds[-1], window.hi))
            return out
        parts = int(min(max(deficit, 1) + 1, window.left // MIN_PART_PAGES, self.target))
        return split_window((start, window.hi), start, hi, parts) if parts >= 2 else []

    def _cut_whole(self, window: _Window, deficit: int) -> list[Window]:
        """Split at the first page: the parts list the whole range again (no order assumed)."""
        lo = window.lo if window.lo is not None else window.earliest
        hi = window.hi if window.hi is not None else self.now_ms
        if lo is None or hi <= lo:
            return []
        parts = split_window((window.lo, window.hi), lo, hi, min(deficit + 1, self.target))
        return parts if len(parts) > 1 else []


# -- a whole account ------------------------------------------------------------------------------

NO_CONFIDENTIAL_ACCESS = (
    "this key has no access to confidential opportunities: the snapshot holds "
    "non-confidential opportunities only (ask a Lever admin for a key with "
    "confidential access for a complete audit)"
)


@dataclass
class Fetched:
    """Every opportunity of one fetch, by id, and what is known about how it was fetched."""

    items: dict[str, dict]
    filters: dict[str, Any]
    warnings: list[str]
    started: float  # time.monotonic() when the fetch began
    server_started_ms: int | None  # Lever's clock at its first answer
    stats: dict[str, Any]


def hostile_text_warning(count: int) -> str:
    """The snapshot's warning when Lever's answers held undecodable text (a lone surrogate).

    Example:
        >>> hostile_text_warning(2)[:48]
        'hostile text: 2 value(s) from Lever held undecod'
    """
    return (
        f"hostile text: {count} value(s) from Lever held undecodable characters (lone "
        "surrogates or invalid UTF-8), replaced with U+FFFD; such a tag shows as its "
        "replacement and is never written back"
    )


# The ids Lever may replace by their objects in the same listing (no extra call): the owner
# (a user: name, email), the stage (its text), the applications (their posting's id).
EXPAND = ("applications", "stage", "owner")


def fetch_opportunities(
    client: Any,
    *,
    include_archived: bool = True,
    workers: int = 8,
    progress: bool | None = None,
    now_ms: int | None = None,
    trust_order: bool = True,
) -> Fetched:
    """List every considered opportunity of the account (no pandas: a CLI can load it meanwhile).

    Confidential ones included (`confidentiality=all`; a key without that access gets the
    non-confidential ones and a warning), archived ones unless `include_archived` is False.

    Args:
        client: a `LeverClient`; its rate limiter paces every window.
        include_archived: keep archived opportunities.
        workers: the fewest windows listed at once (see `WindowedListing`).
        progress: show a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        now_ms: the present, ms since the epoch (tests).
        trust_order: see `WindowedListing`.
    """
    started = time.monotonic()
    filters: dict[str, Any] = {"confidentiality": "all", "expand": list(EXPAND)}
    if not include_archived:
        filters["archived"] = False
    before = client.stats.as_dict()
    warnings_: list[str] = []
    bar = progress_bar(progress, desc="opportunities", unit=" opp")
    options = {"workers": workers, "now_ms": now_ms, "on_items": bar.update}
    try:
        listing = WindowedListing(client, trust_order=trust_order, **options)
        items = listing.run([(filters, (None, None))])
    except PermissionDeniedError:
        log.warning(NO_CONFIDENTIAL_ACCESS)
        warnings_.append(NO_CONFIDENTIAL_ACCESS)
        filters = {k: v for k, v in filters.items() if k != "confidentiality"}
        listing = WindowedListing(client, trust_order=trust_order, **options)
        items = listing.run([(filters, (None, None))])
    finally:
        bar.close()
    after = client.stats.as_dict()
    stats = {
        "pages": listing.stats["pages"],
        "windows": listing.stats["windows"],
        "cuts": listing.stats["cuts"],
        "order_trusted": listing.order_trusted,
        **{k: after[k] - before[k] for k in ("requests", "retries", "rate_limited")},
    }
    if replaced := after["replaced_text"] - before["replaced_text"]:
        warnings_.append(hostile_text_warning(replaced))
    return Fetched(items, filters, warnings_, started, listing.server_time_ms, stats)
