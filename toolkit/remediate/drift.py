"""Drift: the plan's opportunities re-read now, compared with the tags the plan assumed.

One rule for the first run, a resume and a dry run: re-read, compare, re-plan
(`toolkit.remediate.planner.replan`); never write blindly.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from toolkit.remediate.plan import Plan
from toolkit.remediate.reads import DEFAULT_WORKERS, _list_opportunities, _read_each, _tags_of

DRIFT_COLUMNS = [
    "opportunity_id",
    "contact_id",
    "updated_at",
    "before_tags",
    "current_tags",
    "anonymized",
    "archived",
    "changed",
]


def check_drift(client: Any, plan: Plan, *, workers: int = DEFAULT_WORKERS) -> pd.DataFrame:
    """The plan's opportunities (and their contacts' others) updated since the snapshot.

    One cheap listing, ``updated_at_start=<snapshot watermark>``, intersected with the
    opportunities the plan looked at. Without a watermark (a hand-made plan), each planned
    opportunity is read by id instead.

    Args:
        client: a `LeverClient`.
        plan: the plan (its ``meta.snapshot.watermark`` and ``before`` are used).
        workers: concurrent reads when reading by id.

    Returns:
        DataFrame[opportunity_id, contact_id, updated_at, before_tags, current_tags, anonymized,
        archived, changed]: one row per re-read opportunity; ``changed`` when the tag set differs
        from what the plan assumed (or the plan assumed nothing).

    Example:
        >>> drift = check_drift(client, plan)  # doctest: +SKIP
        >>> drift[drift["changed"]]  # doctest: +SKIP
    """
    wanted = set(plan.opportunity_ids()) | set(plan.before)
    if not wanted:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    mark = plan.watermark
    if mark is None:
        found, _missing = _read_each(client, sorted(set(plan.opportunity_ids())), workers)
        opps = list(found.values())
    else:
        opps = [o for o in _list_opportunities(client, plan, updated_at_start=mark)]
    records = []
    for opp in opps:
        opp_id = opp.get("id")
        if opp_id not in wanted:
            continue
        entry = plan.before.get(opp_id)
        before = entry.get("tags") if entry else None
        current = _tags_of(opp)
        contact = opp.get("contact")
        if isinstance(contact, dict):
            contact = contact.get("id")
        records.append(
            (
                opp_id,
                contact or "",
                opp.get("updatedAt"),
                before,
                current,
                bool(opp.get("isAnonymized")),
                bool(opp.get("archived") or opp.get("archivedAt")),
                before is None or set(before) != set(current),
            )
        )
    return pd.DataFrame.from_records(records, columns=DRIFT_COLUMNS)
