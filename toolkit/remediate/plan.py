"""The remediation plan, the model: rows to write, rows skipped, metadata, assumed tags (pure).

A plan is one row per ``(opportunity_id, contact_id, op, tag)`` with ``op`` in ``add|remove``,
plus the rows it chose not to write (``skipped``, each with a reason), plus metadata: the mode,
the tags, the snapshot's fingerprint and watermark, and for every opportunity it looked at, the
tag set it assumed (``before``). Drift checks and rollback read ``before``.

Making one is `toolkit.remediate.planner` (pure); files are `toolkit.remediate.planfile`.

Modes:
    propagate  add every missing assignment of the chosen tags (contact-level tags);
    remove     take the chosen tags off every opportunity that has them;
    rename     replace a variant by its canonical spelling: add the canonical, remove the variant;
    add        put the chosen tags on every opportunity of a list of people (``--contacts``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.enums import MODES
from toolkit.errors import PlanError  # PlanError: re-exported
from toolkit.remediate.planmeta import PlanMeta
from toolkit.sanitize import TAG_RULE, first_tag_problem

PLAN_COLUMNS = ["opportunity_id", "contact_id", "op", "tag"]
SKIPPED_COLUMNS = [*PLAN_COLUMNS, "reason"]
OPS = ("add", "remove")
PLAN_VERSION = 1

REASON_ANONYMIZED = "anonymized"
REASON_ARCHIVED = "archived (excluded)"
REASON_ARCHIVED_SOURCE = "tag only on archived opportunities of the contact (excluded)"
REASON_NEVER_TOUCH = "policy: never_touch"
REASON_DRIFT_PRESENT = "drift: tag already present"
REASON_DRIFT_ABSENT = "drift: tag already absent"
REASON_DRIFT_SOURCE = "drift: tag no longer on any other opportunity of the contact"
REASON_DRIFT_VARIANT = "drift: variant no longer present"


def empty_rows(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def rows_frame(records: Iterable[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    records = list(records)
    if not records:
        return empty_rows(columns)
    return pd.DataFrame.from_records(records, columns=columns).astype(object)


def sorted_rows(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if rows.empty:
        return empty_rows(columns)
    rows = rows[columns].astype(object).drop_duplicates()
    keys = ["contact_id", "opportunity_id", "op", "tag"]
    return rows.sort_values(keys, kind="stable").reset_index(drop=True)


def rows_digest(rows: pd.DataFrame) -> str:
    """SHA-256 of the rows in canonical order: the identity of a plan for its journal.

    Example:
        >>> rows_digest(empty_rows(PLAN_COLUMNS))[:8]
        'd826debe'
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PLAN_COLUMNS)
    if not rows.empty:
        ordered = rows[PLAN_COLUMNS].astype(str).sort_values(PLAN_COLUMNS, kind="stable")
        writer.writerows(ordered.itertuples(index=False, name=None))
    return hashlib.sha256(buffer.getvalue().encode()).hexdigest()


@dataclass
class Plan:
    """A remediation plan: rows to write, rows skipped (with reason), metadata, assumed tags.

    Attributes:
        rows: DataFrame[opportunity_id, contact_id, op, tag]; contact_id is "" when unknown.
        skipped: DataFrame[opportunity_id, contact_id, op, tag, reason].
        meta: mode, tags, renames, policy, include_archived, snapshot (fingerprint, watermark,
            fetched_at, host), created_at, counts: the dict the planner fills and
            `save_plan` writes; readers use `info`, the same typed (`PlanMeta`).
        before: {opportunity_id: {"contact_id": str, "tags": [..]}} the tag sets the plan
            assumed, for every opportunity of every contact it touches.
    """

    rows: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: empty_rows(SKIPPED_COLUMNS))
    meta: dict[str, Any] = field(default_factory=dict)
    before: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def sha256(self) -> str:
        return rows_digest(self.rows)

    @property
    def info(self) -> PlanMeta:
        """The metadata as a `PlanMeta` (a frozen copy: write to `meta`)."""
        return PlanMeta.from_dict(self.meta)

    @property
    def mode(self) -> str | None:
        return self.info.mode

    @property
    def watermark(self) -> int | None:
        mark = self.info.snapshot_ref.watermark
        return int(mark) if mark is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def opportunity_ids(self) -> list[str]:
        return list(dict.fromkeys(self.rows["opportunity_id"].tolist()))

    def calls(self) -> pd.DataFrame:
        """The write calls the plan needs: one per (opportunity, op), all its tags together.

        Returns:
            DataFrame[opportunity_id, contact_id, op, tags (list), changes], adds before removes.
        """
        return calls_from_rows(self.rows)

    def changes_by_tag(self) -> pd.DataFrame:
        """How many opportunities each (op, tag) touches: what a dry run shows."""
        if self.rows.empty:
            return pd.DataFrame({"op": [], "tag": [], "opportunities": []})
        counts = self.rows.groupby(["op", "tag"], sort=True).size().rename("opportunities")
        return counts.reset_index()

    def counts(self) -> dict[str, int]:
        rows = self.rows
        return {
            "rows": len(rows),
            "add": int((rows["op"] == "add").sum()) if len(rows) else 0,
            "remove": int((rows["op"] == "remove").sum()) if len(rows) else 0,
            "opportunities": int(rows["opportunity_id"].nunique()) if len(rows) else 0,
            "calls": len(self.calls()),
            "skipped": len(self.skipped),
        }


def nothing_planned(mode: str = "propagate") -> Plan:
    """The plan of a run that chose no tags: no rows, and a note saying why (a notebook run with
    its defaults previews nothing instead of failing; its headline says "nothing to do").

    Example:
        >>> nothing_planned().info.note, len(nothing_planned().rows)
        ('no tags chosen', 0)
    """
    return Plan(
        rows=empty_rows(PLAN_COLUMNS), meta={"mode": mode, "tags": [], "note": "no tags chosen"}
    )


def calls_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Group plan rows into write calls: one per (opportunity_id, op) with all its tags.

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o1"], "contact_id": ["c", "c"],
        ...                      "op": ["add", "add"], "tag": ["a", "b"]})
        >>> calls_from_rows(rows)[["opportunity_id", "op", "tags"]].values.tolist()
        [['o1', 'add', ['a', 'b']]]
    """
    columns = ["opportunity_id", "contact_id", "op", "tags", "changes"]
    if rows.empty:
        return empty_rows(columns)
    records = []
    for (opp, op), group in rows.groupby(["opportunity_id", "op"], sort=True):
        tags = list(dict.fromkeys(group["tag"].tolist()))
        records.append((opp, group["contact_id"].iloc[0], op, tags, len(tags)))
    return rows_frame(records, columns)


# -- making a plan ------------------------------------------------------------------------------


# -- re-planning after drift --------------------------------------------------------------------


# -- reading a plan -----------------------------------------------------------------------------


__all__ = [
    "MODES",
    "OPS",
    "PLAN_COLUMNS",
    "SKIPPED_COLUMNS",
    "Plan",
    "PlanError",
    "calls_from_rows",
    "rows_digest",
]


def check_plan_tags(tags: Iterable[Any], where: str = "") -> None:
    """One PlanError line for the first tag Lever should not get (`sanitize.tag_problem`)."""
    if problem := first_tag_problem(tags):
        raise PlanError(f"{where}{problem}: {TAG_RULE}")
