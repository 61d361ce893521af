"""Stable pseudonyms for personal data in reports.

A pseudonym is 12 hex characters (48 bits) of a keyed SHA-256 of the value, so even an account of
a million contacts has practically no two people under one pseudonym (the chance of any collision
among 300,000 distinct names is about 0.02%).

Which key:

- `LEVER_REDACT_SALT` set in the environment (a secret of at least 16 characters, kept in the
  same secret store as the API key): pseudonyms are an HMAC-SHA256 under that secret. They are
  stable for everyone who shares the secret (two reports can still be compared row by row) and
  cannot be reversed by hashing a list of candidate names without it.
- unset: a fixed public project salt. Pseudonyms are stable on every machine, but anyone who can
  guess a name can hash it and compare: pseudonymisation for sharing inside a team, not
  anonymisation.

The salt itself is never written anywhere: reports record only which kind was used
(`salt_kind()`), and `toolkit.notebook.helpers` scans every produced file for it as for the API key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import pandas as pd

from toolkit.errors import ConfigurationError

SALT = b"lever-tag-toolkit/redact/v1"
SALT_ENV = "LEVER_REDACT_SALT"
MIN_SALT_LENGTH = 16
DIGITS = 12  # hex characters of a pseudonym: 48 bits
PERSONAL_COLUMNS = ("name", "email", "owner_name", "owner_email")
_PREFIX = {"name": "Person", "email": "email"}

__all__ = [
    "DIGITS",
    "SALT",
    "SALT_ENV",
    "pseudonym",
    "redact_frame",
    "redaction_salt",
    "salt_kind",
]


def redaction_salt(environ: Any = None) -> bytes | None:
    """The secret salt from `LEVER_REDACT_SALT`, or None when it is unset (project salt).

    Raises:
        ConfigurationError: the variable is set but shorter than 16 characters (a short secret
            can be found by trying them all against one known name). The value is never echoed.

    Example:
        >>> redaction_salt({}) is None
        True
        >>> redaction_salt({"LEVER_REDACT_SALT": "correct horse battery staple"})
        b'correct horse battery staple'
    """
    env = os.environ if environ is None else environ
    value = (env.get(SALT_ENV) or "").strip()
    if not value:
        return None
    if len(value) < MIN_SALT_LENGTH:
        raise ConfigurationError(
            f"{SALT_ENV} must be at least {MIN_SALT_LENGTH} characters (it is a secret: "
            "e.g. `python -c 'import secrets; print(secrets.token_hex(16))'`), or unset it"
        )
    return value.encode()


def salt_kind(environ: Any = None) -> str:
    """Which salt pseudonyms use now, in words (safe to write into a report: not the salt).

    Example:
        >>> salt_kind({})
        'project salt (public: pseudonyms can be checked against guessed names)'
    """
    if redaction_salt(environ) is None:
        return "project salt (public: pseudonyms can be checked against guessed names)"
    return f"secret salt ({SALT_ENV})"


def _digest(text: str, kind: str, secret: bytes | None) -> str:
    message = kind.encode() + b"\x00" + text.encode()
    if secret is None:
        return hashlib.sha256(SALT + b"\x00" + message).hexdigest()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


_FROM_ENV = object()


def pseudonym(value: Any, kind: str = "name", *, salt: Any = _FROM_ENV) -> Any:
    """The stable pseudonym of `value`; missing values stay missing.

    Args:
        value: a name or an email (compared exactly after stripping surrounding spaces; emails
            also case-insensitively).
        kind: `"name"` gives `Person-xxxxxxxxxxxx`, `"email"` gives
            `person-xxxxxxxxxxxx@redacted.invalid` (12 hex characters).
        salt: the secret (bytes), None for the project salt; default: `redaction_salt()`.

    Example:
        >>> pseudonym("Ada Lovelace", salt=None)
        'Person-02dc1f35464b'
        >>> pseudonym("Ada@Example.com", "email") == pseudonym("ada@example.com", "email")
        True
        >>> pseudonym("Ada Lovelace", salt=b"a secret of sixteen+") != pseudonym("Ada Lovelace",
        ...                                                                      salt=None)
        True
        >>> pseudonym(None) is None
        True
    """
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return value
    secret = redaction_salt() if salt is _FROM_ENV else salt
    text = str(value).strip()
    if kind == "email":
        text = text.lower()
    digest = _digest(text, kind, secret)[:DIGITS]
    if kind == "email":
        return f"person-{digest}@redacted.invalid"
    return f"{_PREFIX.get(kind, kind.title())}-{digest}"


def redact_frame(
    frame: pd.DataFrame, columns: tuple[str, ...] = PERSONAL_COLUMNS, *, salt: Any = _FROM_ENV
) -> pd.DataFrame:
    """A copy of `frame` with the personal columns replaced by stable pseudonyms.

    Columns that are absent are ignored, so any frame (snapshot, evidence, explorer table) can be
    passed. Ids and tags are left as they are. `salt` as in `pseudonym` (read once per call).

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1"], "name": ["Ada Lovelace"],
        ...                   "email": ["ada@example.com"]})
        >>> redact_frame(f, salt=None).iloc[0].tolist()
        ['c1', 'Person-02dc1f35464b', 'person-6d027e4c1e2f@redacted.invalid']
    """
    secret = redaction_salt() if salt is _FROM_ENV else salt
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            kind = "email" if column.endswith("email") else "name"
            if isinstance(out[column].dtype, pd.CategoricalDtype):  # one pseudonym per value
                codes = {v: pseudonym(v, kind, salt=secret) for v in out[column].cat.categories}
                out[column] = out[column].map(codes).astype("string").astype("category")
                continue
            values = [pseudonym(v, kind, salt=secret) for v in out[column].tolist()]
            out[column] = pd.Series(values, index=out.index, dtype=out[column].dtype)
    return out
