"""Reading the current state of opportunities from Lever for drift, checks and verify."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.errors import RETRYABLE_STATUSES, NotFoundError, PermissionDeniedError
from toolkit.remediate.plan import Plan
from toolkit.snapshot.frame import string_tags
from toolkit.snapshot.windows import WindowedListing

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

DEFAULT_WORKERS = 8


def _list_opportunities(client: OpportunityReader, plan: Plan, **filters: Any) -> list[dict]:
    """A listing with confidential opportunities included when the key may read them."""
    return list_many(client, plan, [filters])


def list_many(
    client: OpportunityReader,
    plan: Plan,
    filter_sets: list[dict[str, Any]],
    on_items: Callable[[int], None] | None = None,
) -> list[dict]:
    """Several listings (one per filter set, e.g. a batch of contact ids) listed at once under
    the client's rate limiter, a long one cut into `created_at` windows (`snapshot.windows`);
    confidential opportunities included when the key may read them. Each opportunity once."""
    access = plan.info.snapshot_ref.confidential_access

    def run(extra: dict[str, Any]) -> list[dict]:
        listing = WindowedListing(client, on_items=on_items)
        return list(listing.run([({**extra, **f}, (None, None)) for f in filter_sets]).values())

    if access is False:
        return run({})
    try:
        return run({"confidentiality": "all"})
    except PermissionDeniedError:
        return run({})


def read_each(
    client: OpportunityReader, ids: Iterable[str], workers: int, forbidden_unread: bool = False
) -> tuple[dict[str, dict], list[str]]:
    """get_opportunity for each id, concurrently; returns (found, not found).

    With `forbidden_unread`, an id the key may not read (403) is left out of both.
    """
    found: dict[str, dict] = {}
    missing: list[str] = []
    unread = object()

    def one(opp_id: str) -> tuple[str, Any]:
        try:
            return opp_id, client.get_opportunity(opp_id)
        except NotFoundError:
            return opp_id, None
        except PermissionDeniedError:
            if not forbidden_unread:
                raise
            return opp_id, unread

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for opp_id, opp in pool.map(one, list(ids)):
            if opp is unread:
                continue
            if opp is None:
                missing.append(opp_id)
            else:
                found[opp_id] = opp
    return found, missing


def is_transient(status: int | None) -> bool:
    """A failure that may or may not have reached Lever (retries exhausted, connection lost)."""
    return status is None or status in RETRYABLE_STATUSES


def http_status(value: Any) -> int | None:
    """An HTTP status from a frame cell (None, NaN, NA, float or int) as int or None."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def clean_tags(tags: Any) -> list[str] | None:
    return string_tags(tags) if isinstance(tags, list) else None  # None: not known


def tags_of(opp: dict) -> list[str]:
    return string_tags(opp.get("tags"))


DRIFT_BATCH = 50  # contact ids per listing of the drift read


def read_by_contacts(
    client: OpportunityReader,
    plan: Plan,
    contact_ids: Iterable[str],
    *,
    batch: int = DRIFT_BATCH,
    workers: int = DEFAULT_WORKERS,
) -> list[dict]:
    """Every opportunity of these contacts, now: ``GET /opportunities?contact_id=..``, in batches.

    One listing per ``batch`` contact ids (repeated keys: Lever answers their union), with
    confidential opportunities included when the key may read them; up to ``workers`` listings
    at once (the client's one limiter paces them).
    """
    contacts = sorted(set(contact_ids))
    chunks = [contacts[i : i + batch] for i in range(0, len(contacts), batch)]
    if not chunks:
        return []
    with ThreadPoolExecutor(max(1, min(workers, len(chunks)))) as pool:
        pages = pool.map(lambda chunk: _list_opportunities(client, plan, contact_id=chunk), chunks)
        return [opp for page in pages for opp in page]
