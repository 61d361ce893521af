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

from toolkit.snapshot.meta import SnapshotMeta

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


# What a person needs to act on a row (who owns it, where it is, what it was for, why it was
# archived): categoricals, a few hundred distinct values over a million rows. Optional in a
# loaded snapshot (older ones lack them). Ids from the opportunity; texts from `expand` or the
# account's catalogs (`label_context`).
CONTEXT_COLUMNS = [
    "owner_id",
    "stage_id",
    "stage",
    "posting_id",
    "posting",
    "origin",
    "archived_reason_id",
    "archived_reason",
]


# The contact's name and first email, and the owner's (a Lever user): personal data, only when
# asked for (`with_personal`).
PERSONAL_COLUMNS = ["name", "email", "owner_name", "owner_email"]


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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref(value: Any, *keys: str) -> tuple[str | None, ...]:
    """An id field that `expand` may have replaced by its object: (id, *the object's `keys`)."""
    if isinstance(value, Mapping):
        return (_text(value.get("id")), *(_text(value.get(k)) for k in keys))
    return (_text(value), *(None for _ in keys))


def _posting(applications: Any) -> tuple[str | None, str | None]:
    """(posting id, title) of the first application (`expand=applications`), when known."""
    if not isinstance(applications, list) or not applications:
        return None, None
    app = applications[0]
    if not isinstance(app, Mapping):
        return None, None  # an application id only: the posting is not known from here
    posting_id, title = _ref(app.get("posting"), "text")
    return posting_id, title


def _reason(opp: Mapping[str, Any]) -> str | None:
    archived = opp.get("archived")
    if isinstance(archived, Mapping):
        return _text(archived.get("reason"))
    return _text(opp.get("archiveReason"))


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
        One row per opportunity with the columns in `COLUMNS` and `CONTEXT_COLUMNS` (and
        `PERSONAL_COLUMNS`). `stage`, `owner` and `applications` may be ids or, fetched with
        `expand`, objects: either way their ids are kept, and their texts when given.

    Example:
        >>> frame = frame_from_opportunities([{"id": "o1", "contact": "c1", "tags": ["Python"]}])
        >>> frame.loc[0, "tags"]
        ['Python']
    """
    personal = PERSONAL_COLUMNS if with_personal else []
    rows: dict[str, list] = {c: [] for c in COLUMNS + CONTEXT_COLUMNS + personal}
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
        owner_id, owner_name, owner_email = _ref(opp.get("owner"), "name", "email")
        stage_id, stage = _ref(opp.get("stage"), "text")
        posting_id, posting = _posting(opp.get("applications"))
        for column, value in (
            ("owner_id", owner_id),
            ("stage_id", stage_id),
            ("stage", stage),
            ("posting_id", posting_id),
            ("posting", posting),
            ("origin", _text(opp.get("origin"))),
            ("archived_reason_id", _reason(opp) if archived else None),
            ("archived_reason", None),
        ):
            rows[column].append(value)
        if with_personal:
            name = opp.get("name")
            emails = opp.get("emails")
            rows["name"].append(name if isinstance(name, str) else None)
            first = emails[0] if isinstance(emails, list) and emails else None
            rows["email"].append(first if isinstance(first, str) else None)
            rows["owner_name"].append(owner_name)
            rows["owner_email"].append(owner_email)
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
