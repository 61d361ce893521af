"""Stable pseudonyms for personal data in reports.

The same name or email gives the same pseudonym on every machine and in every run (a SHA-256 of
the value under a fixed project salt), so two redacted reports can still be compared row by row.
This is pseudonymisation for sharing reports inside a team, not anonymisation: anyone who can
guess a value can hash it and compare.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

SALT = b"lever-tag-toolkit/redact/v1"
PERSONAL_COLUMNS = ("name", "email")
_PREFIX = {"name": "Person", "email": "email"}

__all__ = ["SALT", "pseudonym", "redact_frame"]


def pseudonym(value: Any, kind: str = "name") -> Any:
    """The stable pseudonym of `value`; missing values stay missing.

    Args:
        value: a name or an email (compared exactly after stripping surrounding spaces; emails
            also case-insensitively).
        kind: `"name"` gives `Person-xxxxxx`, `"email"` gives `person-xxxxxx@redacted.invalid`.

    Example:
        >>> pseudonym("Ada Lovelace")
        'Person-02dc1f'
        >>> pseudonym("Ada@Example.com", "email") == pseudonym("ada@example.com", "email")
        True
        >>> pseudonym(None) is None
        True
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value
    text = str(value).strip()
    if kind == "email":
        text = text.lower()
    digest = hashlib.sha256(SALT + b"\x00" + kind.encode() + b"\x00" + text.encode()).hexdigest()
    if kind == "email":
        return f"person-{digest[:6]}@redacted.invalid"
    return f"{_PREFIX.get(kind, kind.title())}-{digest[:6]}"


def redact_frame(frame: pd.DataFrame, columns: tuple[str, ...] = PERSONAL_COLUMNS) -> pd.DataFrame:
    """A copy of `frame` with the personal columns replaced by stable pseudonyms.

    Columns that are absent are ignored, so any frame (snapshot, evidence, explorer table) can be
    passed. Ids and tags are left as they are.

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1"], "name": ["Ada Lovelace"],
        ...                   "email": ["ada@example.com"]})
        >>> redact_frame(f).iloc[0].tolist()
        ['c1', 'Person-02dc1f', 'person-6d027e@redacted.invalid']
    """
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            kind = "email" if column == "email" else "name"
            values = [pseudonym(v, kind) for v in out[column].tolist()]
            out[column] = pd.Series(values, index=out.index, dtype=out[column].dtype)
    return out
