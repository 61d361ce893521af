"""What changed between two audits, pure: split pairs new, resolved and reappeared; tags and
variants new and gone; per-tag deltas. Frames in, frames out; no I/O (`toolkit.workflows.diff`
reads snapshots and audit folders).

A side of the comparison is an `AuditSide`: its split pairs, the pairs that were consistent (the
contact carried the tag on every one of its 2+ opportunities: known from a snapshot, not from an
audit folder's CSVs), its per-tag counts, its variants and, when allowed, the people's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from toolkit.audit.result import AuditResult

PAIR = ["contact_id", "tag"]
CHANGE_COLUMNS = ["kind", "change", "tag", "contact_id", "name"]
PER_TAG_COLUMNS = [
    "tag",
    "opportunities_before",
    "opportunities_now",
    "opportunities_delta",
    "split_contacts_before",
    "split_contacts_now",
    "split_contacts_delta",
]
# the order changes are listed in (and counted in `AuditDiff.counts`)
CHANGE_ORDER = [
    ("split pair", "new"),
    ("split pair", "reappeared"),
    ("split pair", "resolved"),
    ("tag", "new"),
    ("tag", "gone"),
    ("variant", "new"),
    ("variant", "gone"),
]


@dataclass
class AuditSide:
    """One side of a comparison (see the module docstring).

    Attributes:
        split: DataFrame[contact_id, tag] (str).
        tags: DataFrame[tag, opportunities, split_contacts].
        variants: the non-canonical spellings of variant groups (tags).
        consistent: DataFrame[contact_id, tag] of pairs on every opportunity, or None (unknown).
        names: {contact_id: name} (empty: no names, or not allowed).
    """

    split: pd.DataFrame
    tags: pd.DataFrame
    variants: set[str] = field(default_factory=set)
    consistent: pd.DataFrame | None = None
    names: dict[str, str] = field(default_factory=dict)


def _pairs(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame({c: pd.Series([], dtype=str) for c in PAIR})
    return pd.DataFrame({c: frame[c].astype(str).to_numpy() for c in PAIR}).drop_duplicates()


def side_from_audit(result: AuditResult, names: dict[str, str] | None = None) -> AuditSide:
    """A side from an audit of a snapshot (consistent pairs known from its coverage).

    Example:
        >>> from toolkit.audit import run_audit
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["a", "b"], ["a"]]})
        >>> side = side_from_audit(run_audit(f))
        >>> side.split.values.tolist(), side.consistent.values.tolist()
        ([['c', 'b']], [['c', 'a']])
    """
    coverage = result.coverage
    full = coverage[
        (coverage["with_tag"] == coverage["opportunities"]) & (coverage["opportunities"] >= 2)
    ]
    return AuditSide(
        split=_pairs(result.split_pairs),
        tags=tag_counts(result.tag_statistics),
        variants=variant_spellings(result.variants),
        consistent=_pairs(full),
        names=dict(names or {}),
    )


def tag_counts(statistics: pd.DataFrame) -> pd.DataFrame:
    """DataFrame[tag, opportunities, split_contacts] from a tag-statistics table."""
    if statistics.empty:
        return pd.DataFrame({"tag": [], "opportunities": [], "split_contacts": []})
    return pd.DataFrame(
        {
            "tag": statistics["tag"].astype(str).to_numpy(),
            "opportunities": pd.to_numeric(statistics["opportunities"]).to_numpy(),
            "split_contacts": pd.to_numeric(statistics["split_contacts"]).to_numpy(),
        }
    )


def variant_spellings(variants: pd.DataFrame) -> set[str]:
    """The spellings of variant groups that are not the group's canonical one."""
    if variants.empty:
        return set()
    canonical = variants["is_canonical"].astype(str).str.lower().isin(["true", "1"])
    return set(variants.loc[~canonical, "tag"].astype(str))


@dataclass
class AuditDiff:
    """What changed from one side to the other.

    Attributes:
        changes: DataFrame[kind, change, tag, contact_id, name]: one row per change (split pair
            new / reappeared / resolved; tag new / gone; variant new / gone).
        per_tag: DataFrame (`PER_TAG_COLUMNS`): the tags whose counts moved.
        reappeared_known: whether the old side knew its consistent pairs (else a pair split
            again is counted as new).
    """

    changes: pd.DataFrame
    per_tag: pd.DataFrame
    reappeared_known: bool = True

    @property
    def empty(self) -> bool:
        return self.changes.empty and self.per_tag.empty

    def counts(self) -> dict[str, int]:
        """{"split pairs new": n, ...} for every kind of change, zeros included."""
        out = {}
        for kind, change in CHANGE_ORDER:
            mask = (self.changes["kind"] == kind) & (self.changes["change"] == change)
            out[f"{kind}s {change}"] = int(mask.sum())
        return out

    def headline(self) -> str:
        """One line, e.g. "3 new split pairs, 1 resolved, 0 reappeared; 1 new tag"."""
        c = self.counts()
        if self.empty:
            return "nothing changed"
        new = c["split pairs new"]
        parts = [
            f"{new} new split {'pair' if new == 1 else 'pairs'}, {c['split pairs resolved']} "
            f"resolved, {c['split pairs reappeared']} reappeared"
        ]
        extra = [
            f"{c[k]} {one if c[k] == 1 else many}"
            for k, one, many in (
                ("tags new", "new tag", "new tags"),
                ("tags gone", "tag gone", "tags gone"),
                ("variants new", "new variant", "new variants"),
                ("variants gone", "variant gone", "variants gone"),
            )
            if c[k]
        ]
        return "; ".join([*parts, ", ".join(extra)] if extra else parts)


def diff_sides(old: AuditSide, new: AuditSide) -> AuditDiff:
    """Compare two sides: what is new, resolved, reappeared or gone, and per-tag deltas.

    A split pair of `new` not split in `old` is *reappeared* when the contact carried the tag
    on every one of its opportunities in `old` (it had been consistent, e.g. after a
    remediation), else *new*. Names come from `new` (else `old`) when the sides hold them.

    Example:
        >>> def side(split, tags):
        ...     return AuditSide(split=pd.DataFrame(split, columns=PAIR),
        ...                      tags=pd.DataFrame(tags, columns=["tag", "opportunities",
        ...                                                       "split_contacts"]))
        >>> d = diff_sides(side([["c1", "Go"]], [["Go", 3, 1]]),
        ...                side([["c2", "Go"]], [["Go", 3, 1], ["Rust", 1, 0]]))
        >>> d.changes[["kind", "change", "tag", "contact_id"]].values.tolist()
        [['split pair', 'new', 'Go', 'c2'], ['split pair', 'resolved', 'Go', 'c1'], ['tag', 'new', 'Rust', '']]
    """  # noqa: E501
    names = {**old.names, **new.names}
    merged = _pairs(old.split).merge(_pairs(new.split), how="outer", on=PAIR, indicator=True)
    appeared = merged[merged["_merge"] == "right_only"][PAIR]
    resolved = merged[merged["_merge"] == "left_only"][PAIR]
    was_consistent = pd.Series(False, index=appeared.index)
    if old.consistent is not None and len(appeared):
        keys = set(zip(old.consistent["contact_id"], old.consistent["tag"], strict=True))
        was_consistent = pd.Series(
            [k in keys for k in zip(appeared["contact_id"], appeared["tag"], strict=True)],
            index=appeared.index,
        )
    parts = [
        appeared[~was_consistent].assign(kind="split pair", change="new"),
        appeared[was_consistent].assign(kind="split pair", change="reappeared"),
        resolved.assign(kind="split pair", change="resolved"),
    ]
    old_tags, new_tags = set(old.tags["tag"]), set(new.tags["tag"])
    for kind, before, now in (("tag", old_tags, new_tags), ("variant", old.variants, new.variants)):
        for change, tags in (("new", now - before), ("gone", before - now)):
            parts.append(
                pd.DataFrame(
                    {"tag": sorted(tags), "contact_id": "", "kind": kind, "change": change}
                )
            )
    changes = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=CHANGE_COLUMNS)])
    changes["name"] = changes["contact_id"].map(names).fillna("") if names else ""
    order = {key: i for i, key in enumerate(CHANGE_ORDER)}
    changes["_order"] = [order[k] for k in zip(changes["kind"], changes["change"], strict=True)]
    changes = changes.sort_values(["_order", "tag", "contact_id"], kind="stable")
    return AuditDiff(
        changes=changes[CHANGE_COLUMNS].reset_index(drop=True),
        per_tag=per_tag_deltas(old.tags, new.tags),
        reappeared_known=old.consistent is not None,
    )


def per_tag_deltas(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The tags whose opportunity or split-contact counts moved, biggest change first.

    Example:
        >>> cols = ["tag", "opportunities", "split_contacts"]
        >>> per_tag_deltas(pd.DataFrame([["Go", 3, 1]], columns=cols),
        ...                pd.DataFrame([["Go", 4, 0]], columns=cols)).values.tolist()
        [['Go', 3, 4, 1, 1, 0, -1]]
    """
    merged = old.merge(new, how="outer", on="tag", suffixes=("_before", "_now")).fillna(0)
    out = pd.DataFrame({"tag": merged["tag"].astype(str)})
    for what in ("opportunities", "split_contacts"):
        before = merged[f"{what}_before"].astype(int)
        now = merged[f"{what}_now"].astype(int)
        out[f"{what}_before"], out[f"{what}_now"], out[f"{what}_delta"] = before, now, now - before
    moved = out[(out["opportunities_delta"] != 0) | (out["split_contacts_delta"] != 0)]
    size = moved["split_contacts_delta"].abs() + moved["opportunities_delta"].abs()
    moved = moved.assign(_size=size).sort_values(["_size", "tag"], ascending=[False, True])
    return moved[PER_TAG_COLUMNS].reset_index(drop=True)


def diff_summary(diff: AuditDiff) -> dict[str, Any]:
    """The counts and the headline, for `since_last_run.json` and the batch index."""
    return {
        **diff.counts(),
        "tags_moved": len(diff.per_tag),
        "reappeared_known": diff.reappeared_known,
        "headline": diff.headline(),
    }
