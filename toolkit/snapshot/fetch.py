"""Every considered opportunity, fetched fast, as a DataFrame; Parquet snapshots; refresh.

A single paginated listing is serial (each page needs the previous token), so `fetch_snapshot`
splits the listing into `created_at` windows listed in parallel under the client's one shared
rate limiter. Windows partition the whole timeline (the first and last are open-ended), so the
result is complete whatever the boundaries; the boundaries only decide the speed. A window whose
first page says more follows is split further while workers are idle; a split happens only at a
window's first page, so no assumption about the order Lever lists in is needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from tqdm.auto import tqdm

from toolkit.client import LeverClient
from toolkit.client.http import deleted_ids
from toolkit.errors import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
from toolkit.progress import progress_bar
from toolkit.snapshot.frame import (
    Snapshot,
    fingerprint,
    frame_counts,
    frame_from_opportunities,
    safe_watermark,
    to_ms,
    typed_frame,
)

log = logging.getLogger(__name__)

FULL_FETCH_DUE_DAYS = 7
SPLIT_FLOOR_MS = 946_684_800_000  # 2000-01-01: where an open-started window is split from

Window = tuple[int | None, int | None]  # inclusive created_at bounds in ms; None = open


# -- fetching ---------------------------------------------------------------------------------


def _progress_bar(progress: bool | None, desc: str) -> tqdm:
    return progress_bar(progress, desc=desc, unit=" opp")


def _split(window: Window, lo: int, hi: int, parts: int) -> list[Window]:
    """Split an inclusive window into `parts` contiguous windows (open ends stay open)."""
    start = window[0] if window[0] is not None else lo
    end = window[1] if window[1] is not None else hi
    if end - start < parts:
        return [window]
    step = (end - start + 1) // parts
    bounds = [start + i * step for i in range(parts)] + [end + 1]
    out: list[Window] = []
    for i in range(parts):
        a = window[0] if i == 0 else bounds[i]
        b = window[1] if i == parts - 1 else bounds[i + 1] - 1
        out.append((a, b))
    return out


class _WindowedFetch:
    """Parallel listing of created_at windows; collects opportunities by id."""

    def __init__(
        self,
        client: LeverClient,
        filters: dict[str, Any],
        workers: int,
        bar: tqdm,
        span: tuple[int, int],
    ) -> None:
        self.client = client
        self.filters = filters
        self.workers = workers
        # Two threads more than workers: the open-ended edge windows are usually empty and must
        # not keep a real window waiting in the queue.
        self.threads = workers + 2
        self.bar = bar
        self.lo, self.hi = span
        self.items: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.pages = 0
        # Each window costs about one extra request (a partial last page, or a refetched first
        # page when it splits), so the number of windows is capped to bound that overhead.
        self.windows_left = 4 * workers

    def _keep(self, items: list[dict]) -> None:
        with self.lock:
            new = 0
            for item in items:
                opp_id = item.get("id")
                if isinstance(opp_id, str) and opp_id not in self.items:
                    self.items[opp_id] = item
                    new += 1
            self.pages += 1
        self.bar.update(new)

    def _parts_for_idle(self) -> int:
        """How many parts a window may split into now: one per idle worker, within the cap."""
        with self.lock:
            parts = min(self.threads - self.in_flight, self.windows_left) + 1
            if parts > 1:
                self.windows_left -= parts - 1
            return parts

    def _give_back(self, unused: int) -> None:
        with self.lock:
            self.windows_left += unused

    def list_window(self, window: Window) -> list[Window]:
        """List one window; after its first page, split it instead when workers are idle.

        A split happens only at the first page, and the parts refetch the whole window, so the
        result is complete whatever order Lever lists in (the order is undocumented; handing
        off "the rest" of a listing would assume one).
        """
        params = dict(self.filters)
        if window[0] is not None:
            params["created_at_start"] = window[0]
        if window[1] is not None:
            params["created_at_end"] = window[1]
        first = True
        for page in self.client.iter_opportunity_pages(**params):
            self._keep(page.items)
            if first and page.has_next and (allowed := self._parts_for_idle()) > 1:
                parts = _split(window, self.lo, self.hi, allowed)
                self._give_back(allowed - len(parts))
                if len(parts) > 1:
                    return parts
            first = False
        return []

    def run(self, windows: list[Window]) -> None:
        with ThreadPoolExecutor(self.threads, thread_name_prefix="snapshot") as pool:
            pending: set[Future] = set()

            def submit(window: Window) -> None:
                with self.lock:
                    self.in_flight += 1
                pending.add(pool.submit(self.list_window, window))

            for window in windows:
                submit(window)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    with self.lock:
                        self.in_flight -= 1
                    for sub in future.result():  # re-raises the window's error
                        submit(sub)


def _probe(client: LeverClient, filters: dict[str, Any]) -> tuple[dict[str, Any], list[str], Any]:
    """First page with confidentiality=all; fall back to non-confidential on 403."""
    warnings_: list[str] = []
    try:
        first = next(iter(client.iter_opportunity_pages(**filters)))
        return filters, warnings_, first
    except PermissionDeniedError:
        message = (
            "this key has no access to confidential opportunities: the snapshot holds "
            "non-confidential opportunities only (ask a Lever admin for a key with "
            "confidential access for a complete audit)"
        )
        log.warning(message)
        warnings_.append(message)
        fallback = {k: v for k, v in filters.items() if k != "confidentiality"}
        first = next(iter(client.iter_opportunity_pages(**fallback)))
        return fallback, warnings_, first


def fetch_snapshot(
    client: LeverClient,
    *,
    include_archived: bool = True,
    with_personal: bool = False,
    workers: int = 8,
    progress: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Fetch every considered opportunity into a `Snapshot`.

    Considered: confidential ones included (`confidentiality=all`; without confidential access
    the fetch continues on non-confidential data and says so in `meta["warnings"]`), archived
    ones included unless `include_archived` is False.

    Args:
        client: the client; its rate limiter paces every window's requests together.
        include_archived: keep archived opportunities.
        with_personal: keep names and emails (personal data: only when a report needs them).
        workers: windows listed at once.
        progress: show a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        clock: seconds since the epoch (tests).
    """
    started = time.monotonic()
    filters: dict[str, Any] = {"confidentiality": "all"}
    if not include_archived:
        filters["archived"] = False
    stats_before = client.stats.as_dict()
    now_ms = int(clock() * 1000)
    filters, warnings_, first = _probe(client, filters)
    started_ms = client.server_time_ms or now_ms  # Lever's clock when it answered the probe
    bar = _progress_bar(progress, "opportunities")
    created = [c for c in (to_ms(o.get("createdAt")) for o in first.items) if c is not None]
    lo = min(created) if created else 0
    fetch = _WindowedFetch(client, filters, workers, bar, (min(lo, SPLIT_FLOOR_MS), now_ms))
    fetch._keep(first.items)
    if first.has_next:
        # The first page proved there is more. Open-ended edges keep the partition complete.
        inner = _split((lo, now_ms), lo, now_ms, workers)
        windows: list[Window] = [(None, lo - 1), *inner, (now_ms + 1, None)]
        fetch.run(windows)
    bar.close()
    frame = frame_from_opportunities(fetch.items.values(), with_personal=with_personal)
    access = confidential_access_seen(filters, warnings_, frame)
    if access is None:
        log.warning(UNKNOWN_ACCESS_WARNING)
        warnings_.append(UNKNOWN_ACCESS_WARNING)
    stats_after = client.stats.as_dict()
    elapsed = time.monotonic() - started
    fetched_at = datetime.fromtimestamp(clock(), UTC)
    meta = {
        "fetched_at": fetched_at.isoformat(timespec="seconds"),
        "full_fetch_at": fetched_at.isoformat(timespec="seconds"),
        "host": urlsplit(client.base_url).netloc,
        "filters": dict(filters),
        "include_archived": include_archived,
        "with_personal": with_personal,
        "confidential_access": access,
        "warnings": warnings_,
        "counts": frame_counts(frame),
        "fingerprint": fingerprint(frame),
        "watermark": safe_watermark(frame, started_ms),
        "fetch": {
            "seconds": round(elapsed, 3),
            "pages": fetch.pages,
            "requests": stats_after["requests"] - stats_before["requests"],
            "retries": stats_after["retries"] - stats_before["retries"],
            "rate_limited": stats_after["rate_limited"] - stats_before["rate_limited"],
            "opportunities_per_second": round(len(frame) / elapsed, 1) if elapsed else None,
        },
    }
    return Snapshot(frame, meta)


UNKNOWN_ACCESS_WARNING = (
    "confidentiality=all returned no confidential opportunity: either the account has none, or "
    "this key has no confidential access and Lever left them out silently, and the audit is "
    "then incomplete; confidential_access is unknown. Check the key in Lever (Settings > "
    "Integrations and API > API Credentials: the key's confidential access) or run "
    "`lever-tags doctor`"
)


def confidential_access_seen(
    filters: Mapping[str, Any], warnings_: list[str], frame: pd.DataFrame
) -> bool | None:
    """Whether the key reads confidential data: True, False (403), or None (unknown).

    Lever may answer a key without confidential access with a 403 or by leaving confidential
    opportunities out [guess: both reported]. A `confidentiality=all` fetch that holds none at
    all cannot tell a restricted key from an account without confidential data.

    Example:
        >>> from toolkit.snapshot.frame import empty_frame
        >>> confidential_access_seen({"confidentiality": "all"}, [], empty_frame()) is None
        True
    """
    if filters.get("confidentiality") != "all":
        return False
    if frame.empty or not bool(frame["confidential"].any()):
        return None
    return True


def refresh_snapshot(
    client: LeverClient,
    snapshot: Snapshot,
    *,
    written: Iterable[str] = (),
    progress: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Fetch only what changed since `snapshot` and merge it in.

    Cheap listings: opportunities updated since the watermark, those created since it (new ones
    whose `updatedAt` is still null), and Lever's "List deleted opportunities" since it (dropped
    from the result). Lever does not promise that a tag write moves `updatedAt`, so the
    opportunities a run of this toolkit wrote (`written`, from its journals: see
    `journal_written_ids`) are re-read too, by contact in batches. When the deleted listing
    is not available, `meta` says that deletions were not detected and when a full fetch is
    due (`FULL_FETCH_DUE_DAYS` after the last one).

    Args:
        client: the client.
        snapshot: the snapshot to bring up to date.
        written: opportunity ids the toolkit wrote since the snapshot.
        progress: a tqdm bar; None = in a terminal or Jupyter.
        clock: seconds since the epoch (tests).
    """
    mark = snapshot.meta.get("watermark")
    if mark is None:
        mark = safe_watermark(snapshot.frame)
    if mark is None:
        return fetch_snapshot(
            client,
            include_archived=snapshot.meta.get("include_archived", True),
            with_personal=snapshot.meta.get("with_personal", False),
            progress=progress,
            clock=clock,
        )
    started = time.monotonic()
    stats_before = client.stats.as_dict()
    include_archived = bool(snapshot.meta.get("include_archived", True))
    # Without the archived filter: an opportunity archived since the snapshot must be seen (and
    # dropped below when archived ones are excluded), not kept as it was.
    filters = {
        k: v
        for k, v in (snapshot.meta.get("filters") or {"confidentiality": "all"}).items()
        if k != "archived"
    }
    since = int(mark)
    changed: dict[str, dict] = {}
    bar = _progress_bar(progress, "changed opportunities")
    for key in ("updated_at_start", "created_at_start"):
        for opp in client.iter_opportunities(**filters, **{key: since}):
            if isinstance(opp.get("id"), str):
                changed[opp["id"]] = opp
                bar.update(1)
    for opp in _reread_written(client, snapshot.frame, filters, set(written) - set(changed)):
        changed[opp["id"]] = opp
        bar.update(1)
    bar.close()
    deleted, deleted_note = _deleted_since(client, since)
    started_ms = client.server_time_ms or int(clock() * 1000)
    with_personal = bool(snapshot.meta.get("with_personal", False))
    fresh = frame_from_opportunities(changed.values(), with_personal=with_personal)
    old = snapshot.frame[~snapshot.frame["opportunity_id"].isin(fresh["opportunity_id"])]
    if not include_archived:
        fresh = fresh[~fresh["archived"]]
    merged = typed_frame(pd.concat([old, fresh], ignore_index=True)) if len(fresh) else old.copy()
    dropped_deleted = int(merged["opportunity_id"].isin(deleted).sum())
    merged = merged[~merged["opportunity_id"].isin(deleted)]
    merged = merged.sort_values("opportunity_id", kind="stable").reset_index(drop=True)
    meta = dict(snapshot.meta)
    now = datetime.fromtimestamp(clock(), UTC)
    full_at = datetime.fromisoformat(meta.get("full_fetch_at") or meta.get("fetched_at"))
    due = full_at + timedelta(days=FULL_FETCH_DUE_DAYS)
    notes = [w for w in meta.get("warnings", []) if not w.startswith("incremental refresh")]
    if deleted_note:
        notes.append(
            f"incremental refresh: deleted opportunities are not detected ({deleted_note}); "
            f"a full fetch is due by {due.date().isoformat()}"
        )
    stats_after = client.stats.as_dict()
    elapsed = time.monotonic() - started
    meta.update(
        refreshed_at=now.isoformat(timespec="seconds"),
        refreshed_since=since,
        refreshed_changed=len(changed),
        refreshed_written=len(set(written)),
        refreshed_deleted=dropped_deleted,
        full_fetch_due=now >= due,
        warnings=notes,
        counts=frame_counts(merged),
        fingerprint=fingerprint(merged),
        watermark=safe_watermark(merged, started_ms),
        fetch={
            "kind": "refresh",
            "seconds": round(elapsed, 3),
            "requests": stats_after["requests"] - stats_before["requests"],
            "retries": stats_after["retries"] - stats_before["retries"],
            "rate_limited": stats_after["rate_limited"] - stats_before["rate_limited"],
        },
    )
    return Snapshot(merged, meta)


def _reread_written(
    client: LeverClient,
    frame: pd.DataFrame,
    filters: Mapping[str, Any],
    ids: set[str],
    batch: int = 50,
) -> list[dict]:
    """The opportunities in `ids` as they are now: by their contacts in batches, else by id."""
    if not ids:
        return []
    known = frame[frame["opportunity_id"].isin(ids)]
    contacts = sorted({c for c in known["contact_id"].dropna().astype(str) if c})
    found: dict[str, dict] = {}
    for i in range(0, len(contacts), batch):
        for opp in client.iter_opportunities(**filters, contact_id=contacts[i : i + batch]):
            if isinstance(opp.get("id"), str) and opp["id"] in ids:
                found[opp["id"]] = opp
    for opp_id in sorted(ids - set(found)):
        try:
            found[opp_id] = client.get_opportunity(opp_id)
        except NotFoundError:
            continue  # deleted: the deleted listing (or the next full fetch) drops it
    return list(found.values())


def _deleted_since(client: LeverClient, since: int) -> tuple[set[str], str | None]:
    """Ids from "List deleted opportunities" since `since`; (ids, None) or (empty, why not)."""
    try:
        items = list(client.iter_deleted_opportunities(deleted_at_start=since))
    except (NotFoundError, PermissionDeniedError, BadRequestError) as exc:
        return set(), f"GET /opportunities/deleted answered {exc.status}"
    except UnexpectedResponseError as exc:
        return set(), f"GET /opportunities/deleted: {exc.message}"
    return set(deleted_ids(items)), None


# -- files ------------------------------------------------------------------------------------
