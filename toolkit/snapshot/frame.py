"""The snapshot frame, pure: Lever's opportunity JSON parsed into one row per opportunity, and
what identifies a snapshot (fingerprint, watermark). No I/O, no client (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toolkit.snapshot import rows as _rows
from toolkit.snapshot.meta import SnapshotMeta
from toolkit.snapshot.rows import CONTEXT_COLUMNS, columns, opportunity_row

# Re-exported: the frame's columns and the parse of Lever's fields live in `rows` (no pandas).
COLUMNS, PERSONAL_COLUMNS = _rows.COLUMNS, _rows.PERSONAL_COLUMNS
string_tags, to_ms = _rows.string_tags, _rows.to_ms

REFRESH_OVERLAP_MS = 60_000  # a margin before the watermark: writes in flight, coarse clocks


@dataclass
class Snapshot:
    """A fetched set of opportunities (`frame`) and what is known about the fetch (`meta`).

    `meta` is the dict the writers fill and `store` saves; readers use `info`, the same
    metadata typed (`SnapshotMeta`, read-only).
    """

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> SnapshotMeta:
        """The metadata as a `SnapshotMeta` (a frozen copy: write to `meta`)."""
        return SnapshotMeta.from_dict(self.meta)

    @property
    def warnings(self) -> list[str]:
        return list(self.info.warnings)


def frame_from_opportunities(
    opportunities: Iterable[Mapping[str, Any]], with_personal: bool = False
) -> pd.DataFrame:
    """Parse Lever opportunity objects into the snapshot frame, defensively.

    Every field may be missing; unknown fields are ignored. An opportunity whose `contact` is
    absent keeps a missing `contact_id` (the audit treats it as a contact of its own).

    Args:
        opportunities: opportunity objects as Lever returns them.
        with_personal: add `name` and `email` (first email) columns.

    Returns:
        One row per opportunity with the columns in `COLUMNS` and `CONTEXT_COLUMNS` (and
        `PERSONAL_COLUMNS`). `stage`, `owner` and `applications` may be ids or, fetched with
        `expand`, objects: either way their ids are kept, and their texts when given.

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "contact": "c1", "tags": ["Python"]}])
        >>> frame.loc[0, "tags"]
        ['Python']
    """
    rows = (opportunity_row(opp, with_personal) for opp in opportunities)
    return frame_from_rows([r for r in rows if r is not None], with_personal)


def frame_from_rows(rows: Iterable[tuple], with_personal: bool = False) -> pd.DataFrame:
    """The snapshot frame from rows of `rows.opportunity_row` (already parsed).

    Example:
        >>> frame_from_rows([opportunity_row({"id": "o1"})]).loc[0, "opportunity_id"]
        'o1'
    """
    names = columns(with_personal)
    values = list(zip(*rows, strict=True)) or [()] * len(names)
    return typed_frame(pd.DataFrame({n: list(v) for n, v in zip(names, values, strict=True)}))


def typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The snapshot dtypes, whatever the frame came from (a parse, Parquet, a concat)."""
    frame = frame.copy()
    frame["opportunity_id"] = frame["opportunity_id"].astype("string")
    frame["contact_id"] = frame["contact_id"].astype("string")
    frame["tags"] = pd.Series(
        [list(t) if t is not None else [] for t in frame["tags"]], index=frame.index, dtype=object
    )
    for column in ("archived", "confidential", "anonymized"):
        frame[column] = frame[column].astype(bool)
    for column in ("archived_at", "created_at", "updated_at"):
        frame[column] = frame[column].astype("Int64")
    for column in [*CONTEXT_COLUMNS, "owner_name", "owner_email"]:
        # few distinct values over many rows: one small code per row (Parquet keeps them so:
        # only their categories, a few hundred, are made strings again)
        if column not in frame:
            continue
        values = frame[column]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            frame[column] = values.astype("string").astype("category")
        elif values.cat.categories.dtype != "string":
            categories = values.cat.categories.astype("string")
            # an Index keeps the string dtype (a list would not); pandas-stubs wants a Sequence
            frame[column] = values.cat.rename_categories(categories)  # type: ignore[arg-type]
    for column in ("name", "email"):
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame.reset_index(drop=True)


def label_context(
    frame: pd.DataFrame,
    postings: Mapping[str, str] | None = None,
    reasons: Mapping[str, str] | None = None,
    stages: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Fill the texts of the context ids from the account's catalogs (id -> text), pure.

    A text already known (from `expand`) is kept; an id the catalog does not know keeps no text.

    Example:
        >>> f = frame_from_opportunities([{"id": "o1", "archived": {"reason": "r1"},
        ...                                "applications": [{"posting": "p1"}]}])
        >>> f = label_context(f, postings={"p1": "Data Engineer"}, reasons={"r1": "Hired"})
        >>> f.loc[0, "posting"], f.loc[0, "archived_reason"]
        ('Data Engineer', 'Hired')
    """
    out = frame.copy()
    for text, ids, catalog in (
        ("posting", "posting_id", postings),
        ("archived_reason", "archived_reason_id", reasons),
        ("stage", "stage_id", stages),
    ):
        if not catalog or ids not in out:
            continue
        known = out[ids].astype("string").map(dict(catalog))
        current = out[text].astype("string") if text in out else known
        out[text] = current.fillna(known).astype("string").astype("category")
    return out


def empty_frame(with_personal: bool = False) -> pd.DataFrame:
    """A snapshot frame with no rows and the right columns and dtypes."""
    return frame_from_opportunities([], with_personal=with_personal)


def fingerprint(frame: pd.DataFrame) -> str:
    """A short hash of every (id, tags, updatedAt): equal fingerprints, equal tag state.

    Example:
        >>> fingerprint(empty_frame())[:8]
        'e3b0c442'
    """
    if frame.empty:
        return hashlib.sha256(b"").hexdigest()
    keyed = pd.DataFrame(
        {
            "id": frame["opportunity_id"].astype(str),
            "tags": ["\x1f".join(sorted(set(t))) for t in frame["tags"]],
            "updated": frame["updated_at"].astype("Int64").astype(str),
        }
    )
    hashes = np.sort(pd.util.hash_pandas_object(keyed, index=False).to_numpy())
    return hashlib.sha256(hashes.tobytes()).hexdigest()


def watermark(frame: pd.DataFrame) -> int | None:
    """The latest change the snapshot saw (max of updatedAt and createdAt), in ms."""
    if frame.empty:
        return None
    values = pd.concat([frame["updated_at"], frame["created_at"]]).dropna()
    return int(values.max()) if len(values) else None


def safe_watermark(frame: pd.DataFrame, started_ms: int | None = None) -> int | None:
    """From when on changes may be missing from a snapshot, in ms (Lever's clock).

    A fetch takes time: an opportunity read early and changed later is in the snapshot as it
    was. Everything changed since the fetch began (`started_ms`, by the server's clock) or
    since the latest change the snapshot saw, whichever is earlier, minus a margin for writes
    in flight, must be re-read before anything relies on it (drift check, refresh).

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "updatedAt": 200_000}])
        >>> safe_watermark(frame, started_ms=500_000)
        140000
    """
    seen = watermark(frame)
    marks = [m for m in (seen, started_ms) if m is not None]
    return min(marks) - REFRESH_OVERLAP_MS if marks else None


def frame_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {
        "opportunities": len(frame),
        "confidential": int(frame["confidential"].sum()),
        "archived": int(frame["archived"].sum()),
        "anonymized": int(frame["anonymized"].sum()),
        "without_contact": int(frame["contact_id"].isna().sum()),
    }


def known_tags(frame: pd.DataFrame) -> set[str]:
    """Every tag string on any opportunity of the frame (exact strings).

    Example:
        >>> sorted(known_tags(pd.DataFrame({"tags": [["b", "a"], [], ["a"]]})))
        ['a', 'b']
    """
    return {t for tags in frame["tags"] for t in tags if isinstance(t, str)}
