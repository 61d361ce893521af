"""Work lists, pure: plan rows (or an audit's missing assignments) as one row per person and
opportunity that a recruiter can read and act on: who, which posting, which stage, whose, a link
that opens the opportunity in Lever, where the tag is now, and what will change.

No I/O, no client (`toolkit.remediate.worklistfile` writes and reads the sheets).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pandas as pd

from toolkit.config import is_loopback

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.remediate.plan import Plan

# Column names as a person reads them; the last three let `apply` read an edited sheet back.
PERSON = "Person"
EMAIL = "Email"
POSTING = "Posting"
STAGE = "Stage"
OWNER = "Owner"
LINK = "Open in Lever"
CHANGE = "What will change"
TAG_ON = "Where the tag is now"
OPPORTUNITY_ID = "opportunity_id"
CONTACT_ID = "contact_id"
PLAN = "plan"
ACCOUNT = "account"
WORKLIST_COLUMNS = [
    PERSON,
    EMAIL,
    POSTING,
    STAGE,
    OWNER,
    LINK,
    CHANGE,
    TAG_ON,
    OPPORTUNITY_ID,
    CONTACT_ID,
    PLAN,
    ACCOUNT,
]


def lever_web_base(host: str | None) -> str:
    """Where Lever's web app of an account lives, from its API host (`host[:port]`).

    Lever's API hosts are ``api.<region>lever.co`` and its app ``hire.<region>lever.co``
    (US, EU, Lever's sandbox); any other host (the local sandbox) is its own web base.

    Example:
        >>> [lever_web_base(h) for h in ("api.lever.co", "api.eu.lever.co",
        ...                              "api.sandbox.lever.co", "127.0.0.1:8765")]
        ['https://hire.lever.co', 'https://hire.eu.lever.co', 'https://hire.sandbox.lever.co', 'http://127.0.0.1:8765']
    """
    if not host:
        return ""
    name = (urlsplit(f"//{host}").hostname or "").lower()
    if name.startswith("api.") and (name == "api.lever.co" or name.endswith(".lever.co")):
        return "https://hire." + name[len("api.") :]
    return f"{'http' if is_loopback(name) else 'https'}://{host}"


def opportunity_url(host: str | None, opportunity_id: str) -> str:
    """The page of one opportunity in Lever (``<app>/candidates/<id>``); "" without a host.

    Example:
        >>> opportunity_url("api.eu.lever.co", "250d8f03-738a-4bba-a671-8a3d73477145")
        'https://hire.eu.lever.co/candidates/250d8f03-738a-4bba-a671-8a3d73477145'
    """
    base = lever_web_base(host)
    return f"{base}/candidates/{quote(str(opportunity_id), safe='')}" if base else ""


def _text(value: Any) -> str:
    return "" if value is None or value is pd.NA or value != value else str(value)


def _label(row: Any) -> str:
    """An opportunity as a person names it: its posting (and stage), else its id."""
    posting, stage = _text(row.get("posting")), _text(row.get("stage"))
    if posting and stage:
        return f"{posting} ({stage})"
    return posting or stage or f"opportunity {_text(row.get('opportunity_id'))[:8]}"


def worklist_frame(
    changes: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    host: str | None = None,
    plan_sha256: str = "",
    verb: str = "add",
) -> pd.DataFrame:
    """One row per person and opportunity of `changes`, with what a person needs to act on it.

    Args:
        changes: DataFrame[opportunity_id, contact_id, tag] and ``op`` (plan rows); without
            ``op`` every row is a missing assignment (`verb` says what it is).
        frame: the snapshot frame the changes were made from (names, posting, stage, owner and
            tags of every opportunity of the contacts concerned).
        host: the account's API host (the snapshot's ``host``): the links open it in Lever.
        plan_sha256: the plan's digest, so an edited sheet is applied only with its plan.
        verb: the word for a change without ``op`` ("missing" for an audit's work list).

    Returns:
        DataFrame with `WORKLIST_COLUMNS`, sorted by owner, person and posting. "Where the tag
        is now" names, for each tag to add, the person's other opportunities that carry it.

    Example:
        >>> snap = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...     "tags": [["Python"], []], "posting": ["Data Engineer", "Analyst"],
        ...     "stage": ["Offer", "New lead"], "name": ["Ada", "Ada"]})
        >>> rows = pd.DataFrame({"opportunity_id": ["o2"], "contact_id": ["c"], "op": ["add"],
        ...                      "tag": ["Python"]})
        >>> w = worklist_frame(rows, snap, host="api.lever.co")
        >>> w.loc[0, ["Person", "Posting", "What will change", "Where the tag is now"]].tolist()
        ['Ada', 'Analyst', 'add Python', 'Python: on Data Engineer (Offer)']
    """
    if changes.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in WORKLIST_COLUMNS})
    ops = changes["op"] if "op" in changes else pd.Series(verb, index=changes.index)
    contacts = set(changes["contact_id"].astype(str))
    mine = frame[frame["contact_id"].astype("string").isin(contacts)]
    context = {r["opportunity_id"]: r for r in mine.to_dict("records")}
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)  # (contact, tag) -> opps
    columns = (mine["opportunity_id"], mine["contact_id"], mine["tags"])
    for opp, contact, tags in zip(*columns, strict=True):
        for tag in tags:
            holders[(str(contact), tag)].append(opp)
    by_opp: dict[str, dict[str, Any]] = {}
    for opp, contact, op, tag in zip(
        changes["opportunity_id"], changes["contact_id"], ops, changes["tag"], strict=True
    ):
        entry = by_opp.setdefault(opp, {"contact": str(contact), "ops": defaultdict(list)})
        entry["ops"][op].append(tag)
    records = []
    for opp, entry in by_opp.items():
        row = context.get(opp, {"opportunity_id": opp})
        change = "; ".join(f"{op} {', '.join(tags)}" for op, tags in sorted(entry["ops"].items()))
        where = []
        for tag in dict.fromkeys([*entry["ops"].get("add", []), *entry["ops"].get(verb, [])]):
            others = [o for o in holders.get((entry["contact"], tag), []) if o != opp]
            labels = [_label(context[o]) for o in others if o in context]
            if labels:
                where.append(f"{tag}: on {', '.join(labels)}")
        owner = _text(row.get("owner_name")) or _text(row.get("owner_id"))
        records.append(
            {
                PERSON: _text(row.get("name")),
                EMAIL: _text(row.get("email")),
                POSTING: _text(row.get("posting")),
                STAGE: _text(row.get("stage")),
                OWNER: owner,
                LINK: opportunity_url(host, opp),
                CHANGE: change,
                TAG_ON: "; ".join(where),
                OPPORTUNITY_ID: opp,
                CONTACT_ID: entry["contact"],
                PLAN: plan_sha256,
                ACCOUNT: host or "",
            }
        )
    out = pd.DataFrame.from_records(records, columns=WORKLIST_COLUMNS)
    out = out.sort_values([OWNER, PERSON, CONTACT_ID, POSTING, OPPORTUNITY_ID], kind="stable")
    return out.reset_index(drop=True)


def keep_opportunities(plan: Plan, opportunity_ids: set[str]) -> pd.DataFrame:
    """The plan's rows of the opportunities a sheet still lists (rows deleted: not written).

    Example:
        >>> from types import SimpleNamespace
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                      "op": ["add", "add"], "tag": ["T", "T"]})
        >>> keep_opportunities(SimpleNamespace(rows=rows), {"o2"})["opportunity_id"].tolist()
        ['o2']
    """
    rows = plan.rows
    return rows[rows["opportunity_id"].isin(opportunity_ids)].reset_index(drop=True)
