"""Drift: the plan's opportunities re-read now, compared with the tags the plan assumed.

One rule for the first run, a resume and a dry run: re-read, compare, re-plan
(`toolkit.remediate.planner.replan`); never write blindly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.remediate.plan import SKIPPED_COLUMNS, Plan
from toolkit.remediate.planner import replan
from toolkit.remediate.reads import (
    DEFAULT_WORKERS,
    DRIFT_BATCH,
    read_by_contacts,
    read_each,
    tags_of,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

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


def own_writes(calls: Iterable[Any]) -> dict[str, set[str]]:
    """The tags a run itself wrote (or may have written), per opportunity, from journal calls.

    A drift check of a resumed run (or of a rollback right after its run) leaves them out:
    the run's own writes are not somebody else's change.

    Example:
        >>> from types import SimpleNamespace as C
        >>> own = own_writes([C(opportunity_id="o1", tags=["a"]), C(opportunity_id="o1", tags=[])])
        >>> own
        {'o1': {'a'}}
    """
    own: dict[str, set[str]] = {}
    for call in calls:
        own.setdefault(call.opportunity_id, set()).update(call.tags or [])
    return own


def differs(before: Iterable[str] | None, current: Iterable[str], own: Iterable[str] = ()) -> bool:
    """Whether tags changed since `before`, leaving out the tags the run itself wrote (`own`).

    Example:
        >>> differs(["a"], ["a", "b"]), differs(["a"], ["a", "b"], own={"b"}), differs(None, [])
        (True, False, True)
    """
    if before is None:
        return True
    mine = set(own)
    return set(before) - mine != set(current) - mine


def check_drift(
    client: OpportunityReader,
    plan: Plan,
    *,
    workers: int = DEFAULT_WORKERS,
    batch: int = DRIFT_BATCH,
    own: Mapping[str, set[str]] | None = None,
) -> pd.DataFrame:
    """The current tags of the plan's opportunities and of their contacts' other ones.

    The one drift rule of apply (first run, resume, dry run): re-read, compare the tags, re-plan
    (`replan_from_drift`). Reads by ``contact_id`` in batches (every opportunity of every contact
    the plan touches: the propagate re-plan needs the sources too); the plan's opportunities not
    found that way (no contact in the plan, moved) are read by id. ``updatedAt`` is never
    trusted: Lever does not promise that a tag write moves it.

    Args:
        client: a `LeverClient`.
        plan: the plan (its ``before`` and rows are used).
        workers: concurrent reads when reading by id.
        batch: contact ids per listing.
        own: {opportunity_id: tags} this run already wrote (`own_writes` of its journal): left
            out of ``changed`` (a resume does not count its own writes as drift).

    Returns:
        DataFrame[opportunity_id, contact_id, updated_at, before_tags, current_tags, anonymized,
        archived, changed]: one row per re-read opportunity; ``changed`` when the tag set differs
        from what the plan assumed (or the plan assumed nothing). ``attrs["reads"]`` says what
        the read cost: ``{"calls", "opportunities", "contacts"}``.

    Example:
        >>> drift = check_drift(client, plan)  # doctest: +SKIP
        >>> drift[drift["changed"]], drift.attrs["reads"]["calls"]  # doctest: +SKIP
    """
    planned = set(plan.opportunity_ids())
    if not planned:
        return _drift_frame([], {"calls": 0, "opportunities": 0, "contacts": 0})
    before_calls = client.stats.requests
    # the contacts the rows touch (not every contact the plan's before-state knows)
    contacts = set(plan.rows["contact_id"].astype(str))
    contacts |= {(plan.before.get(o) or {}).get("contact_id") or "" for o in planned}
    contacts.discard("")
    wanted = planned | {
        o for o, e in plan.before.items() if ((e or {}).get("contact_id") or "") in contacts
    }
    found: dict[str, dict] = {}
    for opp in read_by_contacts(client, plan, contacts, batch=batch, workers=workers):
        if isinstance(opp.get("id"), str) and opp["id"] in wanted:
            found[opp["id"]] = opp
    rest = sorted(planned - set(found))
    if rest:
        by_id, _missing = read_each(client, rest, workers, forbidden_unread=True)
        found.update(by_id)  # unreadable or gone: the write (or its 404 check) finds out
    records = []
    for opp_id, opp in found.items():
        entry = plan.before.get(opp_id)
        before = entry.get("tags") if entry else None
        current = tags_of(opp)
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
                differs(before, current, (own or {}).get(opp_id, ())),
            )
        )
    reads = {
        "calls": client.stats.requests - before_calls,
        "opportunities": len(found),
        "contacts": len(contacts),
    }
    return _drift_frame(records, reads)


def _drift_frame(records: list[tuple], reads: dict[str, int]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=DRIFT_COLUMNS)
    frame.attrs["reads"] = reads
    return frame


def replan_from_drift(plan: Plan, drift: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's rows re-planned against a drift read: (rows kept, rows dropped with reason).

    Example:
        >>> kept, dropped = replan_from_drift(plan, check_drift(client, plan))  # doctest: +SKIP
    """
    if drift.empty:
        return plan.rows.copy(), pd.DataFrame(columns=SKIPPED_COLUMNS)
    current = dict(zip(drift["opportunity_id"], drift["current_tags"], strict=True))
    anonymized = set(drift.loc[drift["anonymized"].astype(bool), "opportunity_id"])
    return replan(plan, current, anonymized)


def drift_line(drift: pd.DataFrame, since: str = "the plan") -> str | None:
    """One line on what the drift read cost and found, or None when none was made.

    `since`: what the tags are compared with ("the plan"; "the run" for a rollback, whose
    assumed tags are what the run it undoes left).
    """
    reads = drift.attrs.get("reads")
    if not reads:
        return None
    changed = int(drift["changed"].astype(bool).sum()) if len(drift) else 0
    return (
        f"drift check: re-read {reads['opportunities']} opportunities of {reads['contacts']} "
        f"contacts in {reads['calls']} calls; {changed} changed since {since}"
    )
