"""Which order a listing comes in, from its pages alone (Lever's order is undocumented).

Recorded listings of Lever disagree (lever-api.md, "Lists and pagination"): `createdAt`
ascending, newest first, `updatedAt` ascending. The model this module rests on: Lever sorts a
query by one timestamp of the opportunity, ascending or descending (its invalid-offset message
says a token is "invalid for sort"; recorded tokens hold `[key, id]`). `OrderEvidence` starts
with the four sort keys of that model that the toolkit can tell apart (`createdAt` and
`updatedAt`, each way) and drops every key a page contradicts: within a page, and from one page
of a listing to its next. A key is *proven* once it is the only one left; an order outside the
model (shuffled, or one that mimics a sort on some pages only) leaves none, the moment a page
shows it.

Where an opportunity whose `updatedAt` is null (old records that never changed) stands in an
`updatedAt` order is undocumented too. Each `updatedAt` key carries the places still possible
(`NULL_PLACES`): as its `createdAt`, below every `updatedAt` (first ascending, last descending)
or above every one; a page drops the places it contradicts, and the key goes when none is
left. A missing `createdAt` drops both `createdAt` keys (and the `created` place of a null).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

Key = tuple[str, int]  # (field, +1 ascending | -1 descending)
CREATED_ASC: Key = ("createdAt", 1)
CREATED_DESC: Key = ("createdAt", -1)
UPDATED_ASC: Key = ("updatedAt", 1)
UPDATED_DESC: Key = ("updatedAt", -1)
KEYS: tuple[Key, ...] = (CREATED_ASC, CREATED_DESC, UPDATED_ASC, UPDATED_DESC)

NAMES = {
    CREATED_ASC: "createdAt ascending",
    CREATED_DESC: "newest first (createdAt descending)",
    UPDATED_ASC: "updatedAt ascending",
    UPDATED_DESC: "updatedAt descending",
}


def ms(value: Any) -> int | None:
    """A millisecond timestamp, or None for anything else (bools are not numbers here).

    Example:
        >>> ms(12.0), ms(True), ms("12")
        (12, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


# Where a null updatedAt may stand in an updatedAt order: as its createdAt, below every
# updatedAt, above every one (a database's null sorts first or last).
NULL_PLACES = ("created", "smallest", "largest")


def value_of(item: dict, field: str) -> int | None:
    """The item's `field` as ms; a null `updatedAt` is its `createdAt`.

    Example:
        >>> value_of({"createdAt": 5, "updatedAt": None}, "updatedAt")
        5
    """
    if field == "updatedAt":
        updated = ms(item.get("updatedAt"))
        return updated if updated is not None else ms(item.get("createdAt"))
    return ms(item.get(field))


def sort_value(item: dict, field: str, null: str = "created") -> float | None:
    """The item's `field` as an `updatedAt` order with nulls in place `null` would sort it.

    Example:
        >>> item = {"createdAt": 5, "updatedAt": None}
        >>> sort_value(item, "updatedAt"), sort_value(item, "updatedAt", "largest")
        (5, inf)
    """
    if field == "updatedAt" and item.get("updatedAt") is None and null != "created":
        return -math.inf if null == "smallest" else math.inf
    return value_of(item, field)


def null_places(items: Sequence[dict], key: Key, places: Iterable[str] = NULL_PLACES) -> set[str]:
    """The places among `places` where a null `updatedAt` may stand so that `items` are in
    `key`'s order (every place, or none, when no item's `updatedAt` is null).

    Example:
        >>> items = [{"createdAt": 9, "updatedAt": None}, {"createdAt": 1, "updatedAt": 3}]
        >>> sorted(null_places(items, ("updatedAt", 1)))
        ['smallest']
    """
    out = set()
    for place in places:
        values = [sort_value(item, key[0], place) for item in items]
        if any(v is None for v in values):
            continue
        if all((a <= b) if key[1] > 0 else (a >= b) for a, b in pairwise(values)):  # type: ignore[operator]
            out.add(place)
    return out


def consistent_keys(
    items: Sequence[dict],
    keys: Iterable[Key] = KEYS,
    nulls: Mapping[Key, set[str]] | None = None,
) -> set[Key]:
    """The sort keys among `keys` that the sequence `items` does not contradict (an `updatedAt`
    key: with a null `updatedAt` in one of its places still possible, `nulls`, default all).

    Example:
        >>> items = [{"createdAt": 1, "updatedAt": 9}, {"createdAt": 2, "updatedAt": 3}]
        >>> sorted(consistent_keys(items))
        [('createdAt', 1), ('updatedAt', -1)]
    """
    out = set()
    for key in keys:
        places = ("created",) if key[0] != "updatedAt" else (nulls or {}).get(key, NULL_PLACES)
        if null_places(items, key, places):
            out.add(key)
    return out


class OrderEvidence:
    """The sort keys still consistent with every page of one family of listings.

    A family: the listings of one filter set, whatever their `created_at` bounds (the bounds
    narrow a query; the model assumes they do not change its sort).

    Example:
        >>> evidence = OrderEvidence()
        >>> evidence.see(None, [{"createdAt": 3, "updatedAt": 4}, {"createdAt": 2, "updatedAt": 5}])
        >>> evidence.proven is None, describe(evidence.left)
        (True, 'undetermined: newest first (createdAt descending) or updatedAt ascending')
        >>> evidence.see({"createdAt": 2, "updatedAt": 5}, [{"createdAt": 1, "updatedAt": 9}])
        >>> evidence.proven is None
        True
        >>> page = [{"createdAt": 9, "updatedAt": 10}, {"createdAt": 1, "updatedAt": 2}]
        >>> evidence.see(None, page)
        >>> evidence.proven
        ('createdAt', -1)
    """

    def __init__(self) -> None:
        self.left: set[Key] = set(KEYS)
        self.nulls: dict[Key, set[str]] = {k: set(NULL_PLACES) for k in KEYS if k[0] == "updatedAt"}
        self.pages = 0

    def see(self, previous: dict | None, items: Sequence[dict]) -> None:
        """One page of a listing; `previous` is the last item of that listing's page before."""
        self.pages += 1
        if not items:
            return
        sequence = [previous, *items] if previous is not None else list(items)
        for key in self.nulls:
            self.nulls[key] = (
                null_places(sequence, key, self.nulls[key]) if key in self.left else set()
            )
        self.left &= consistent_keys(sequence, self.left, self.nulls)

    def nulls_listed(self, key: Key, filter_matches_null: bool | None) -> bool:
        """Whether, along `key` (an `updatedAt` key), every opportunity with a null `updatedAt`
        is listed before a listing's position or matched by an `updated_at` filter bounding
        the rest: never at the far end (the place that sorts after every `updatedAt` is ruled
        out), and in its `createdAt` place only if a filter compares it by its `createdAt`
        (`filter_matches_null`, from a request of `WindowedListing`; None: not known).

        Example:
            >>> evidence = OrderEvidence()
            >>> evidence.nulls[UPDATED_ASC] = {"created", "smallest"}
            >>> evidence.nulls_listed(UPDATED_ASC, None), evidence.nulls_listed(UPDATED_ASC, True)
            (False, True)
        """
        places = self.nulls.get(key, set())
        far_end = "largest" if key[1] > 0 else "smallest"
        if not places or far_end in places:
            return False
        return "created" not in places or bool(filter_matches_null)

    @property
    def proven(self) -> Key | None:
        """The one key left, or None (several left, or none: no single-field order)."""
        return next(iter(self.left)) if len(self.left) == 1 else None


def describe(keys: set[Key]) -> str:
    """The observed order in words (what `lever-tags doctor` prints).

    Example:
        >>> describe({CREATED_ASC}), describe(set())
        ('createdAt ascending', 'by no single timestamp (shuffled?)')
    """
    if not keys:
        return "by no single timestamp (shuffled?)"
    if len(keys) == 1:
        return NAMES[next(iter(keys))]
    if len(keys) == len(KEYS):
        return "undetermined (too few opportunities to tell)"
    return "undetermined: " + " or ".join(NAMES[k] for k in KEYS if k in keys)


def describe_nulls(key: Key, places: set[str]) -> str:
    """Where a null `updatedAt` stands along `key`, in words, as far as the pages showed it.

    Example:
        >>> describe_nulls(UPDATED_DESC, {"smallest"})
        'a null updatedAt is listed last'
        >>> describe_nulls(UPDATED_ASC, {"created", "largest"})
        'where a null updatedAt is listed is not shown yet'
    """
    if len(places) != 1:
        return "where a null updatedAt is listed is not shown yet"
    place = next(iter(places))
    if place == "created":
        return "a null updatedAt is listed as its createdAt"
    first = (place == "smallest") == (key[1] > 0)
    return f"a null updatedAt is listed {'first' if first else 'last'}"
