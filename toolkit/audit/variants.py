"""Near-duplicate tag spellings (case, spaces, punctuation): reported with a suggested canonical
spelling, never merged silently."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

from toolkit.audit.arrays import as_text
from toolkit.audit.engine import VARIANT_COLUMNS, AuditCore

_SPACE = re.compile(r"\s+")


# punctuation (and spaces) between two letters or digits: "do-not-contact", "Skill:Python",
# "relocation_ok", "Relocation / OK". A symbol that makes a word ("C++", "C#", ".NET") stays.
_JOINERS = re.compile(r"(?<=\w)[\s\-\u2010-\u2015_.,:;/|\\·•'’]+(?=\w)")


def normalize_tag(tag: str) -> str:
    """The near-duplicate key of a tag: Unicode NFKC, casefold, strip, punctuation between words
    read as a space, inner whitespace collapsed.

    Only used to *group* spellings for review; tag identity stays the exact string.

    Example:
        >>> normalize_tag("  Python\u00a0 3 ")
        'python 3'
        >>> normalize_tag("ＰＹＴＨＯＮ")
        'python'
        >>> normalize_tag("do-not-contact"), normalize_tag("Skill:Go"), normalize_tag("C++")
        ('do not contact', 'skill go', 'c++')
    """
    text = unicodedata.normalize("NFKC", str(tag)).casefold()
    text = _JOINERS.sub(" ", " ".join(text.split()))
    return " ".join(text.split())


def _is_clean(tag: str) -> bool:
    return tag == " ".join(tag.split())


def variants_from_counts(labels: Sequence[str], counts: Sequence[int] | np.ndarray) -> pd.DataFrame:
    rows = [
        (normalize_tag(tag), str(tag), int(count))
        for tag, count in zip(labels, counts, strict=True)
    ]
    table = pd.DataFrame(rows, columns=["group", "tag", "opportunities"])
    if table.empty:
        return _empty_variants()
    spellings = table.groupby("group")["tag"].transform("nunique")
    table = table.loc[spellings >= 2].copy()
    if table.empty:
        return _empty_variants()
    table["_unclean"] = [not _is_clean(t) for t in table["tag"]]
    # canonical: most used, then already stripped/collapsed, then lexicographic
    ranked = table.sort_values(
        ["group", "opportunities", "_unclean", "tag"], ascending=[True, False, True, True]
    )
    canonical = ranked.groupby("group", sort=False)["tag"].first()
    ranked["canonical"] = ranked["group"].map(canonical)
    ranked["is_canonical"] = ranked["tag"] == ranked["canonical"]
    out = ranked.loc[:, VARIANT_COLUMNS].reset_index(drop=True)
    out["opportunities"] = out["opportunities"].astype(np.int64)
    out["is_canonical"] = out["is_canonical"].astype(bool)
    return out


def _empty_variants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": as_text([]),
            "tag": as_text([]),
            "opportunities": np.zeros(0, dtype=np.int64),
            "canonical": as_text([]),
            "is_canonical": np.zeros(0, dtype=bool),
        },
        columns=VARIANT_COLUMNS,
    )


def tag_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Groups of near-duplicate tag spellings (``normalize_tag`` equal, strings different): they
    differ by case, spaces or punctuation between words.

    Near-duplicates are reported, never merged: they are distinct tags for the audit. Only groups
    with two or more distinct spellings are listed. The suggested ``canonical`` spelling is the
    most used one (by opportunities), ties broken by a spelling that is already stripped and
    collapsed, then lexicographically.

    Args:
        frame: a snapshot frame of considered opportunities.

    Returns:
        DataFrame[group, tag, opportunities, canonical, is_canonical], sorted by group, then
        opportunities descending.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "d", "e"],
        ...                   "tags": [["Python"], ["python", "Go"], ["Python "]]})
        >>> tag_variants(f)[["tag", "opportunities", "canonical"]].values.tolist()
        [['Python', 1, 'Python'], ['python', 1, 'Python'], ['Python ', 1, 'Python']]
    """
    core = AuditCore.build(frame)
    return variants_from_counts(list(core.all_tag_labels), core.all_tag_opportunities)
