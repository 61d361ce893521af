"""Verify: re-read the opportunities of a plan and list the rows that do not hold."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd

from toolkit import failpoints
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import NOOP, JournalError
from toolkit.remediate.plan import PLAN_COLUMNS, REASON_ANONYMIZED, Plan
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.reads import (
    DEFAULT_WORKERS,
    list_many,
    read_each,
    tags_of,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

VERIFY_COLUMNS = [*PLAN_COLUMNS, "reason"]


# Reasons of rows the apply did not write on purpose (from its journal): they do not fail verify.
REASON_DROPPED_DRIFT = "dropped (drift)"


REASON_DROPPED_ANONYMIZED = "dropped (anonymized)"


REASON_NOOP_DRIFT = "no-op (drift)"


REASON_NOOP_ANONYMIZED = "no-op (anonymized)"


ON_PURPOSE_REASONS = (
    REASON_DROPPED_DRIFT,
    REASON_DROPPED_ANONYMIZED,
    REASON_NOOP_DRIFT,
    REASON_NOOP_ANONYMIZED,
)
# Why each of them was not written, as a word a front end can count and show.
ON_PURPOSE_KIND = {
    REASON_DROPPED_DRIFT: "drift",
    REASON_DROPPED_ANONYMIZED: "anonymized",
    REASON_NOOP_DRIFT: "drift",
    REASON_NOOP_ANONYMIZED: "anonymized",
}


def on_purpose_counts(on_purpose: pd.DataFrame) -> dict[str, int]:
    """How many rows were not written on purpose, by kind (most first).

    Example:
        >>> rows = pd.DataFrame({"reason": ["dropped (drift)", "no-op (drift)",
        ...                                 "dropped (anonymized)"]})
        >>> on_purpose_counts(rows)
        {'drift': 2, 'anonymized': 1}
    """
    counts = on_purpose["reason"].map(ON_PURPOSE_KIND).value_counts()
    return {str(kind): int(n) for kind, n in counts.items()}


def verify_on_purpose(bad: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `verify_plan` answer the apply did not write on purpose (drift, anonymized).

    Example:
        >>> bad = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                     "op": ["add", "add"], "tag": ["T", "T"],
        ...                     "reason": ["missing", "dropped (drift)"]})
        >>> verify_on_purpose(bad)["opportunity_id"].tolist()
        ['o2']
    """
    return bad[bad["reason"].isin(ON_PURPOSE_REASONS)].reset_index(drop=True)


def verify_failures(bad: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `verify_plan` answer that should hold and do not (verify fails on these).

    Example:
        >>> bad = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                     "op": ["add", "add"], "tag": ["T", "T"],
        ...                     "reason": ["missing", "dropped (drift)"]})
        >>> verify_failures(bad)["opportunity_id"].tolist()
        ['o1']
    """
    return bad[~bad["reason"].isin(ON_PURPOSE_REASONS)].reset_index(drop=True)


def _not_written_on_purpose(
    plan: Plan, journal_path: str | os.PathLike
) -> dict[tuple[str, str, str], str]:
    """{(opportunity_id, op, tag): reason} of the plan rows its apply journal chose not to write.

    Rows the drift re-plan dropped (journal table ``dropped``), calls found with nothing left to
    write (``noop``), and tags narrowed out of a call because they were already in place.
    """
    with Journal(journal_path, lock=False, create=False) as journal:
        run = journal.run()
        if run is None:
            return {}
        if run["kind"] != "apply" or run["plan_sha256"] != plan.sha256:
            raise JournalError(
                f"the journal {journal_path} belongs to another plan or to a {run['kind']} run "
                f"(plan {run['plan_sha256'][:12]}, this plan {plan.sha256[:12]}); "
                "give the journal of this plan's apply"
            )
        dropped = journal.table("dropped")
        calls = journal.calls()
    out: dict[tuple[str, str, str], str] = {}
    for row in dropped.to_dict("records"):
        anonymized = row["reason"] == REASON_ANONYMIZED
        reason = REASON_DROPPED_ANONYMIZED if anonymized else REASON_DROPPED_DRIFT
        out[(row["opportunity_id"], row["op"], row["tag"])] = reason
    for call in calls:
        if call.state == NOOP:
            anonymized = "anonymized" in (call.message or "")
            reason = REASON_NOOP_ANONYMIZED if anonymized else REASON_NOOP_DRIFT
            untouched = call.planned_tags
        else:
            reason = REASON_NOOP_DRIFT
            untouched = [t for t in call.planned_tags if t not in set(call.tags)]
        for tag in untouched:
            out.setdefault((call.opportunity_id, call.op, tag), reason)
    return out


def verify_plan(
    client: OpportunityReader,
    plan: Plan | str | os.PathLike,
    journal_path: str | os.PathLike | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
    by: str = "auto",
    batch: int = 50,
) -> pd.DataFrame:
    """Re-read every opportunity the plan touches; return the rows that do not hold.

    Reads by ``contact_id`` listings, ``batch`` contacts per listing (one call covers many
    opportunities), or by id; ``auto`` uses listings when the rows carry contact ids and falls
    back to reading by id for the rest.

    With the apply's journal, rows it did not write on purpose (dropped by the drift re-plan,
    nothing left to write, anonymized since the plan) keep their own reason; tell them apart
    with `verify_failures` (should hold and do not) and `verify_on_purpose`.

    Args:
        client: a `LeverClient`.
        plan: a `Plan` or a plan CSV path.
        journal_path: the journal of this plan's apply (None: none is read; the CLI defaults
            to ``<plan>.journal.sqlite`` when it exists).
        workers: concurrent reads.
        by: ``auto``, ``contact`` or ``id``.
        batch: contact ids per listing.

    Returns:
        DataFrame[opportunity_id, contact_id, op, tag, reason]; empty when every row holds.
        Reasons: ``missing`` (an add not there), ``still present`` (a remove still there),
        ``not found`` (the opportunity is gone); with a journal, for rows not written on
        purpose: ``dropped (drift)``, ``dropped (anonymized)``, ``no-op (drift)``,
        ``no-op (anonymized)``.

    Raises:
        JournalError: the journal is missing or belongs to another plan.

    Example:
        >>> verify_plan(client, "plan.csv").empty  # doctest: +SKIP
        True
        >>> bad = verify_plan(client, "plan.csv", "plan.journal.sqlite")  # doctest: +SKIP
        >>> verify_failures(bad).empty  # doctest: +SKIP
        True
    """
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    rows = plan.rows
    on_purpose = _not_written_on_purpose(plan, journal_path) if journal_path is not None else {}
    if rows.empty:
        return pd.DataFrame(columns=VERIFY_COLUMNS)
    wanted = set(rows["opportunity_id"])
    current: dict[str, list[str]] = {}
    if by in ("auto", "contact"):
        contacts = sorted({c for c in rows["contact_id"] if c})
        chunks = [contacts[i : i + batch] for i in range(0, len(contacts), batch)]
        listed = list_many(
            client,
            plan,
            [{"contact_id": chunk} for chunk in chunks],
            on_items=lambda _new: failpoints.hit("verify_midway"),
        )
        for opp in listed:
            if opp.get("id") in wanted:
                current[opp["id"]] = tags_of(opp)
    elif by != "id":
        raise ValueError(f"by must be auto, contact or id (got {by!r})")
    rest = sorted(wanted - set(current))
    found, _missing = read_each(client, rest, workers)
    current.update({k: tags_of(v) for k, v in found.items()})
    reasons = []
    for opp, op, tag in rows[["opportunity_id", "op", "tag"]].itertuples(index=False, name=None):
        if opp not in current:
            reason = "not found"
        elif op == "add" and tag not in current[opp]:
            reason = "missing"
        elif op == "remove" and tag in current[opp]:
            reason = "still present"
        else:
            reason = ""
        reasons.append(on_purpose.get((opp, op, tag), reason) if reason else "")
    column = pd.Series(reasons, index=rows.index, dtype=object)
    bad = rows[column != ""].assign(reason=column[column != ""])
    return bad[VERIFY_COLUMNS].reset_index(drop=True)
