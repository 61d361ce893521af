"""Where a propagated tag comes from: the ledger names the opportunities it was copied from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def propagation_sources(
    rows: pd.DataFrame, before: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, list[str]]]:
    """For each added (opportunity, tag): the contact's opportunities it is copied from (pure).

    The ledger records them beside each write (``copied_from``).

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o2"], "contact_id": ["c"], "op": ["add"],
        ...                      "tag": ["Go"]})
        >>> before = {"o1": {"contact_id": "c", "tags": ["Go"]}, "o2": {"contact_id": "c",
        ...           "tags": []}, "o3": {"contact_id": "d", "tags": ["Go"]}}
        >>> propagation_sources(rows, before)
        {'o2': {'Go': ['o1']}}
    """
    adds = rows[rows["op"] == "add"] if len(rows) else rows
    if adds.empty:
        return {}
    wanted = set(adds["tag"])
    holders: dict[tuple[str, str], list[str]] = {}
    for opp, entry in before.items():
        contact = (entry or {}).get("contact_id") or ""
        for tag in (entry or {}).get("tags") or []:
            if contact and tag in wanted:
                holders.setdefault((contact, tag), []).append(opp)
    sources: dict[str, dict[str, list[str]]] = {}
    for opp, contact, tag in adds[["opportunity_id", "contact_id", "tag"]].itertuples(
        index=False, name=None
    ):
        found = sorted(o for o in holders.get((contact, tag), []) if o != opp)
        if found:
            sources.setdefault(opp, {})[tag] = found
    return sources
