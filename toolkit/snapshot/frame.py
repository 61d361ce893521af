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

COLUMNS = [
    "opportunity_id",
    "contact_id",
    "tags",
    "archived",
    "archived_at",
    "confidential",
    "anonymized",
    "created_at",
    "updated_at",
]


PERSONAL_COLUMNS = ["name", "email"]


REFRESH_OVERLAP_MS = 60_000  # a margin before the watermark: writes in flight, coarse clocks


@dataclass
class Snapshot:
    """A fetched set of opportunities (`frame`) and what is known about the fetch (`meta`)."""

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))


def to_ms(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return None


def _archived_at(opp: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Both shapes: the `archived` object, or legacy top-level `archivedAt` / `archiveReason`."""
    archived = opp.get("archived")
    if isinstance(archived, Mapping):
        return True, to_ms(archived.get("archivedAt"))
    legacy = opp.get("archivedAt")
    if legacy is not None:
        return True, to_ms(legacy)
    return False, None


def string_tags(value: Any) -> list[str]:
    """The tags of a Lever `tags` field: its strings, in order; anything else is no tag.

    The one filter for tags read from Lever (snapshot parsing, drift reads, verify): data from
    Lever is untrusted, so a non-list field or a non-string element is dropped, never an error.

    Example:
        >>> string_tags(["Python", 3, None, "Go"]), string_tags("Python")
        (['Python', 'Go'], [])
    """
    if not isinstance(value, list):
        return []
    return [t for t in value if isinstance(t, str)]


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
        One row per opportunity with the columns in `COLUMNS` (and `PERSONAL_COLUMNS`).

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "contact": "c1", "tags": ["Python"]}])
        >>> frame.loc[0, "tags"]
        ['Python']
    """
    rows: dict[str, list] = {c: [] for c in COLUMNS + (PERSONAL_COLUMNS if with_personal else [])}
    for opp in opportunities:
        opp_id = opp.get("id")
        if not isinstance(opp_id, str) or not opp_id:
            continue
        contact = opp.get("contact")
        if isinstance(contact, Mapping):  # expand=contact
            contact = contact.get("id")
        archived, archived_at = _archived_at(opp)
        rows["opportunity_id"].append(opp_id)
        rows["contact_id"].append(contact if isinstance(contact, str) and contact else None)
        rows["tags"].append(string_tags(opp.get("tags")))
        rows["archived"].append(archived)
        rows["archived_at"].append(archived_at)
        rows["confidential"].append(opp.get("confidentiality") == "confidential")
        rows["anonymized"].append(bool(opp.get("isAnonymized")))
        rows["created_at"].append(to_ms(opp.get("createdAt")))
        rows["updated_at"].append(to_ms(opp.get("updatedAt")))
        if with_personal:
            name = opp.get("name")
            emails = opp.get("emails")
            rows["name"].append(name if isinstance(name, str) else None)
            first = emails[0] if isinstance(emails, list) and emails else None
            rows["email"].append(first if isinstance(first, str) else None)
    return typed_frame(pd.DataFrame(rows))


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
        frame[column] = pd.array(frame[column], dtype="Int64")
    for column in PERSONAL_COLUMNS:
        if column in frame:
            frame[column] = frame[column].astype("string")
    return frame.reset_index(drop=True)


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
