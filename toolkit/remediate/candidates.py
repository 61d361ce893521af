"""The rows each planning mode would write, before skips and drift (pure: frames in, frames out).

`toolkit.remediate.planner.make_plan` picks the builder for its mode (propagate, remove, add,
rename) and then applies the policy's flags, the never-touch list and the archived rule.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from toolkit.audit import considered, tag_variants
from toolkit.audit.families import TagFamily, family_changes
from toolkit.remediate.plan import (
    PLAN_COLUMNS,
    REASON_ARCHIVED,
    REASON_ARCHIVED_SOURCE,
    PlanError,
    rows_frame,
    sorted_rows,
)


def contact_text(value: Any) -> str:
    """A contact id as a string; "" when missing (None, NA, NaN)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def propagate_candidates(frame: pd.DataFrame, families: list[TagFamily]) -> pd.DataFrame:
    """What fills the families among all opportunities (flags applied later): the canonical
    tags to add, and with ``normalize`` the aliases to remove (`audit.families`)."""
    missing = family_changes(frame, families)
    contact_of = dict(
        zip(
            frame["opportunity_id"].astype(str),
            (contact_text(c) for c in frame["contact_id"]),
            strict=True,
        )
    )
    return pd.DataFrame(
        {
            "opportunity_id": missing["opportunity_id"].astype(str).to_numpy(dtype=object),
            "contact_id": [contact_of.get(str(o), "") for o in missing["opportunity_id"]],
            "op": missing["op"].to_numpy(dtype=object),
            "tag": missing["tag"].astype(str).to_numpy(dtype=object),
        }
    )


def propagate_without_archived(
    frame: pd.DataFrame, families: list[TagFamily], rows: pd.DataFrame, skipped: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """With archived ones excluded, only active opportunities count as sources and targets.

    Rows planned from the full frame are skipped when their target is archived (reason:
    archived), or when the tag is on the contact's archived opportunities only (reason: the
    source is archived), since with archived ones excluded there is nothing to propagate from.
    """
    active = considered(frame, include_archived=False)
    wanted = propagate_candidates(active, families)
    keys = set(zip(wanted["opportunity_id"], wanted["op"], wanted["tag"], strict=True))
    in_active = [
        key in keys for key in zip(rows["opportunity_id"], rows["op"], rows["tag"], strict=True)
    ]
    mask = pd.Series(in_active, index=rows.index, dtype=bool)
    archived = set(frame.loc[frame["archived"].astype(bool), "opportunity_id"].astype(str))
    extra = rows[~mask]
    reasons = [
        REASON_ARCHIVED if str(o) in archived else REASON_ARCHIVED_SOURCE
        for o in extra["opportunity_id"]
    ]
    extra = extra.assign(reason=pd.Series(reasons, index=extra.index, dtype=object))
    return sorted_rows(rows[mask], PLAN_COLUMNS), extra


def remove_candidates(
    info: pd.DataFrame, tag_lists: list[list[str]], chosen: set[str]
) -> pd.DataFrame:
    """Remove mode: one row per opportunity and chosen tag it carries (each tag once)."""
    wanted = [[tag for tag in dict.fromkeys(tags) if tag in chosen] for tags in tag_lists]
    return _op_rows(info, wanted, "remove")


def add_candidates(
    info: pd.DataFrame, tag_lists: list[list[str]], chosen: list[str]
) -> pd.DataFrame:
    """Add mode: one row per opportunity and chosen tag it lacks."""
    return _op_rows(info, [[tag for tag in chosen if tag not in tags] for tags in tag_lists], "add")


def _op_rows(info: pd.DataFrame, tags_by_row: list[list[str]], op: str) -> pd.DataFrame:
    """Plan rows `op` for each opportunity of `info` (by position) and each of its tags."""
    records = [
        (info.at[i, "opportunity_id"], info.at[i, "contact_id"], op, tag)
        for i, tags in enumerate(tags_by_row)
        for tag in tags
    ]
    return rows_frame(records, PLAN_COLUMNS)


def rename_candidates(
    info: pd.DataFrame, tag_lists: list[list[str]], renames: dict[str, str]
) -> pd.DataFrame:
    """Rename mode: add the canonical spelling where it is missing and remove the variant, each
    row with the variant it comes from (`variant` column)."""
    records = []
    for i, tags in enumerate(tag_lists):
        present = set(tags)
        for variant in dict.fromkeys(tags):
            canonical = renames.get(variant)
            if canonical is None:
                continue
            opp, contact = info.at[i, "opportunity_id"], info.at[i, "contact_id"]
            if canonical not in present:
                records.append((opp, contact, "add", canonical, variant))
            records.append((opp, contact, "remove", variant, variant))
    return rows_frame(records, [*PLAN_COLUMNS, "variant"])


def check_renames(renames: dict[str, str]) -> None:
    """Refuse a rename map with an empty spelling, a rename to itself or a chain (`PlanError`)."""
    for old, new in renames.items():
        if not old or not new:
            raise PlanError(f"a rename needs both spellings (got {old!r}={new!r})")
        if old == new:
            raise PlanError(f"rename {old!r} to itself does nothing")
        if new in renames:
            raise PlanError(f"rename chain: {old!r} -> {new!r} -> {renames[new]!r}; give the end")


def renames_from_variants(
    frame: pd.DataFrame, chosen: list[str], include_archived: bool
) -> dict[str, str]:
    """Variant -> canonical spelling for the variant groups of the chosen tags (every group when
    none is chosen), from the considered opportunities (`audit.tag_variants`)."""
    variants = tag_variants(considered(frame, include_archived=include_archived))
    if variants.empty:
        return {}
    groups = set(variants.loc[variants["tag"].isin(chosen), "group"]) if chosen else None
    out = {}
    for tag, group, canonical in zip(
        variants["tag"], variants["group"], variants["canonical"], strict=True
    ):
        if (groups is None or group in groups) and tag != canonical:
            out[str(tag)] = str(canonical)
    return out
