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

A null `updatedAt` (old records that never changed) is compared as its `createdAt`, as the
sandbox's `updated_at_start` does; a missing `createdAt` drops both `createdAt` keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def consistent_keys(items: Sequence[dict], keys: Iterable[Key] = KEYS) -> set[Key]:
    """The sort keys among `keys` that the sequence `items` does not contradict.

    Example:
        >>> items = [{"createdAt": 1, "updatedAt": 9}, {"createdAt": 2, "updatedAt": 3}]
        >>> sorted(consistent_keys(items))
        [('createdAt', 1), ('updatedAt', -1)]
    """
    out = set()
    for field, direction in keys:
        values = [value_of(item, field) for item in items]
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            continue
        if all((b - a) * direction >= 0 for a, b in pairwise(known)):
            out.add((field, direction))
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
        self.pages = 0

    def see(self, previous: dict | None, items: Sequence[dict]) -> None:
        """One page of a listing; `previous` is the last item of that listing's page before."""
        self.pages += 1
        if not items:
            return
        sequence = [previous, *items] if previous is not None else list(items)
        self.left &= consistent_keys(sequence, self.left)

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
