"""Reading the current state of opportunities from Lever for drift, checks and verify."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from toolkit.errors import RETRYABLE_STATUSES, NotFoundError, PermissionDeniedError
from toolkit.remediate.plan import Plan
from toolkit.snapshot.frame import string_tags

DEFAULT_WORKERS = 8


def _list_opportunities(client: Any, plan: Plan, **filters: Any) -> list[dict]:
    """A listing with confidential opportunities included when the key may read them."""
    access = (plan.meta.get("snapshot") or {}).get("confidential_access")
    if access is False:
        return list(client.iter_opportunities(**filters))
    try:
        return list(client.iter_opportunities(confidentiality="all", **filters))
    except PermissionDeniedError:
        return list(client.iter_opportunities(**filters))


def _read_each(client: Any, ids: Iterable[str], workers: int) -> tuple[dict[str, dict], list[str]]:
    """get_opportunity for each id, concurrently; returns (found, not found)."""
    found: dict[str, dict] = {}
    missing: list[str] = []

    def one(opp_id: str) -> tuple[str, dict | None]:
        try:
            return opp_id, client.get_opportunity(opp_id)
        except NotFoundError:
            return opp_id, None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for opp_id, opp in pool.map(one, list(ids)):
            if opp is None:
                missing.append(opp_id)
            else:
                found[opp_id] = opp
    return found, missing


def _transient(status: int | None) -> bool:
    """A failure that may or may not have reached Lever (retries exhausted, connection lost)."""
    return status is None or status in RETRYABLE_STATUSES


def _status(value: Any) -> int | None:
    """An HTTP status from a frame cell (None, NaN, NA, float or int) as int or None."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def _clean_tags(tags: Any) -> list[str] | None:
    return string_tags(tags) if isinstance(tags, list) else None  # None: not known


def _tags_of(opp: dict) -> list[str]:
    return string_tags(opp.get("tags"))
