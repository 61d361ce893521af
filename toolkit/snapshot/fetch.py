"""Every considered opportunity, fetched fast, as a DataFrame; and its refresh.

A single paginated listing is serial (each page needs the previous token), so `fetch_snapshot`
and `refresh_snapshot` list through `toolkit.snapshot.windows.WindowedListing`: `created_at`
windows listed in parallel under the client's one shared rate limiter, recut while they run so
the limiter stays busy whatever the spread of `createdAt`; a window's rest is handed on only
while the pages show Lever listing by `createdAt`, and every such range is listed again once
they do not. Parsing is `toolkit.snapshot.frame` (pure); files are `toolkit.snapshot.store`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd
from tqdm import tqdm

from toolkit.client.account import recorded_account
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
    frame_from_rows,
    label_context,
    safe_watermark,
    typed_frame,
)
from toolkit.snapshot.listing import (
    EXPAND,
    Fetched,
    account_catalogs,
    fetch_opportunities,
)
from toolkit.snapshot.windows import WindowedListing

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI

log = logging.getLogger(__name__)

FULL_FETCH_DUE_DAYS = 7


# -- fetching ---------------------------------------------------------------------------------


def _progress_bar(progress: bool | None, desc: str) -> tqdm[Any]:
    return progress_bar(progress, desc=desc, unit=" opp")


def fetch_snapshot(
    client: LeverAPI,
    *,
    include_archived: bool = True,
    with_personal: bool = False,
    workers: int = 8,
    progress: bool | None = None,
    clock: Callable[[], float] = time.time,
    fetched: Fetched | Future[Fetched] | None = None,
) -> Snapshot:
    """Fetch every considered opportunity into a `Snapshot`.

    Considered: confidential ones included (`confidentiality=all`; without confidential access
    the fetch continues on non-confidential data and says so in `meta["warnings"]`), archived
    ones included unless `include_archived` is False.

    Args:
        client: the client; its rate limiter paces every window's requests together.
        include_archived: keep archived opportunities.
        with_personal: keep names and emails (personal data: only when a report needs them).
        workers: the fewest windows listed at once (more when latency needs them; see
            `toolkit.snapshot.windows.WindowedListing`).
        progress: show a tqdm bar; None = in a terminal or Jupyter (see `toolkit.progress`).
        clock: seconds since the epoch (tests).
        fetched: the result of `listing.fetch_opportunities` with the same options, or the
            future of `listing.start_fetch` (the CLI lists while pandas loads); None = list now.
    """
    now_ms = int(clock() * 1000)
    if isinstance(fetched, Future):
        fetched = fetched.result()
    if fetched is None:
        fetched = fetch_opportunities(
            client,
            include_archived=include_archived,
            workers=workers,
            progress=progress,
            now_ms=now_ms,
            read_context=True,
            with_personal=with_personal,
        )
    filters, warnings_ = fetched.filters, fetched.warnings
    started_ms = fetched.server_started_ms or now_ms  # Lever's clock when it first answered
    if fetched.rows is not None and fetched.with_personal == with_personal:
        frame = frame_from_rows(fetched.rows.values(), with_personal)  # parsed as listed
    else:
        frame = frame_from_opportunities(fetched.items.values(), with_personal=with_personal)
    context = fetched.context
    if context is None:
        catalogs, account = account_catalogs(client, warnings_), recorded_account(client)
    else:
        catalogs, account = context.catalogs, context.account
        warnings_.extend(context.warnings)
    frame = label_context(frame, **catalogs)
    access = confidential_access_seen(filters, warnings_, frame)
    if access is None:
        log.warning(UNKNOWN_ACCESS_WARNING)
        warnings_.append(UNKNOWN_ACCESS_WARNING)
    elapsed = time.monotonic() - fetched.started
    fetched_at = datetime.fromtimestamp(clock(), UTC)
    meta = {
        "fetched_at": fetched_at.isoformat(timespec="seconds"),
        "full_fetch_at": fetched_at.isoformat(timespec="seconds"),
        "host": urlsplit(client.base_url).netloc,
        "account": account,
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
            **fetched.stats,
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
    client: LeverAPI,
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
    info = snapshot.info
    mark = info.watermark
    if mark is None:
        mark = safe_watermark(snapshot.frame)
    if mark is None:
        return fetch_snapshot(
            client,
            include_archived=info.include_archived,
            with_personal=info.with_personal,
            progress=progress,
            clock=clock,
        )
    started = time.monotonic()
    stats_before = client.stats.as_dict()
    include_archived = bool(info.include_archived)
    # Without the archived filter: an opportunity archived since the snapshot must be seen (and
    # dropped below when archived ones are excluded), not kept as it was.
    filters = {
        k: v for k, v in (info.filters or {"confidentiality": "all"}).items() if k != "archived"
    }
    filters["expand"] = list(EXPAND)  # a snapshot fetched before the context columns gains them
    since = int(mark)
    bar = _progress_bar(progress, "changed opportunities")
    # Both listings at once under the limiter, a long one cut into created_at windows.
    listing = WindowedListing(client, on_items=bar.update, now_ms=int(clock() * 1000))
    changed = listing.run(
        [({**filters, "updated_at_start": since}, (None, None)), (filters, (since, None))]
    )
    for opp in _reread_written(client, snapshot.frame, filters, set(written) - set(changed)):
        changed[opp["id"]] = opp
        bar.update(1)
    bar.close()
    deleted, deleted_note = _deleted_since(client, since)
    started_ms = client.server_time_ms or int(clock() * 1000)
    with_personal = bool(info.with_personal)
    fresh = frame_from_opportunities(changed.values(), with_personal=with_personal)
    old = snapshot.frame[~snapshot.frame["opportunity_id"].isin(fresh["opportunity_id"])]
    if not include_archived:
        fresh = fresh[~fresh["archived"]]
    merged = typed_frame(pd.concat([old, fresh], ignore_index=True)) if len(fresh) else old.copy()
    notes_now: list[str] = []
    merged = label_context(merged, **account_catalogs(client, notes_now))
    dropped_deleted = int(merged["opportunity_id"].isin(deleted).sum())
    merged = merged[~merged["opportunity_id"].isin(deleted)]
    merged = merged.sort_values("opportunity_id", kind="stable").reset_index(drop=True)
    meta = dict(snapshot.meta)
    now = datetime.fromtimestamp(clock(), UTC)
    full_at = datetime.fromisoformat(str(info.full_fetch_at or info.fetched_at))
    due = full_at + timedelta(days=FULL_FETCH_DUE_DAYS)
    notes = [w for w in info.warnings if not w.startswith("incremental refresh")]
    notes = [w for w in notes if " not read (" not in w] + notes_now
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
    client: LeverAPI,
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


def _deleted_since(client: LeverAPI, since: int) -> tuple[set[str], str | None]:
    """Ids from "List deleted opportunities" since `since`; (ids, None) or (empty, why not)."""
    try:
        items = list(client.iter_deleted_opportunities(deleted_at_start=since))
    except (NotFoundError, PermissionDeniedError, BadRequestError) as exc:
        return set(), f"GET /opportunities/deleted answered {exc.status}"
    except UnexpectedResponseError as exc:
        return set(), f"GET /opportunities/deleted: {exc.message}"
    return set(deleted_ids(items)), None


# -- files ------------------------------------------------------------------------------------
