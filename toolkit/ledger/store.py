"""The ledger: one append-only SQLite file of every tag write `apply`, `rollback` and `sync` made.

Where a run journal (one per run) serves resume and rollback, the ledger serves compliance: one
record across runs, commands and accounts of who wrote what, why, on whose behalf and from which
plan. Rows are never updated or deleted (SQLite triggers refuse it) and each row's ``hash`` is the
SHA-256 of its fields and the previous row's hash, so an edited, inserted or removed row breaks
the chain from there on (`Ledger.verify`). The file is 0600 in a folder created 0700.

Several processes may append at once (a scheduled apply beside the sync service): each append is
one ``BEGIN IMMEDIATE`` transaction that reads the last hash and inserts the next row, so the
chain stays one line whoever writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.config import REPORTS_DIR
from toolkit.errors import ConfigurationError
from toolkit.sanitize import create_private, private_dir

GENESIS = "0" * 64

# The fields of a row, in order; all but `seq`, `prev_hash` and `hash` are given by the writer.
FIELDS = [
    "at",
    "source",
    "operator",
    "reason",
    "host",
    "account",
    "perform_as",
    "perform_as_name",
    "toolkit_version",
    "plan_sha256",
    "journal",
    "opportunity_id",
    "contact_id",
    "op",
    "tags",
    "tags_before",
    "tags_after",
    "copied_from",
    "outcome",
    "status",
]
COLUMNS = ["seq", *FIELDS, "prev_hash", "hash"]

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    {", ".join(f"{name} TEXT NOT NULL DEFAULT ''" for name in FIELDS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""


class LedgerError(ConfigurationError):
    """The ledger cannot be opened or read (not a ledger, unwritable): CLI exit 2."""


def default_ledger_path(environ: dict[str, str] | None = None) -> Path:
    """`LEVER_LEDGER` when set, else ``ledger.sqlite`` in the reports folder.

    Example:
        >>> default_ledger_path({"LEVER_LEDGER": "/srv/audit/lever.sqlite"}).as_posix()
        '/srv/audit/lever.sqlite'
    """
    env = os.environ if environ is None else environ
    value = (env.get("LEVER_LEDGER") or "").strip()
    return Path(value).expanduser() if value else REPORTS_DIR / "ledger.sqlite"


def text(value: Any) -> str:
    """A field as the ledger stores it: strings as they are, lists and dicts as sorted JSON.

    Example:
        >>> text(["b", "a"]), text(None), text(200), text({"x": ["o1"]})
        ('["b", "a"]', '', '200', '{"x": ["o1"]}')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def row_hash(seq: int, fields: dict[str, str], prev_hash: str) -> str:
    """SHA-256 over the row number, every field (canonical JSON) and the previous hash.

    Example:
        >>> h = row_hash(1, {name: "" for name in FIELDS}, GENESIS)
        >>> len(h), h == row_hash(1, {name: "" for name in FIELDS}, GENESIS)
        (64, True)
    """
    body = json.dumps(
        {"seq": seq, **{name: fields.get(name, "") for name in FIELDS}, "prev_hash": prev_hash},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class Broken:
    """The first row that does not chain, and why."""

    seq: int
    why: str


class Ledger:
    """The ledger at `path` (created 0600 on first use). Thread-safe.

    Example:
        >>> with Ledger("ledger.sqlite") as ledger:  # doctest: +SKIP
        ...     ledger.verify()
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LedgerError(f"ledger not found: {self.path} (set LEVER_LEDGER or --ledger)")
        try:
            if create and not os.path.lexists(self.path):
                private_dir(self.path.parent)
                create_private(self.path)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise LedgerError(f"{self.path} is not a usable ledger ({exc})") from None
        self._mutex = threading.Lock()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, entry: dict[str, Any]) -> int:
        """Append one row (the `FIELDS` given; ``at`` defaults to now); returns its number."""
        fields = {name: text(entry.get(name)) for name in FIELDS}
        fields["at"] = fields["at"] or datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = row_hash(seq, fields, prev)
                self._db.execute(
                    f"INSERT INTO ledger (seq, {', '.join(FIELDS)}, prev_hash, hash)"
                    f" VALUES ({', '.join('?' * (len(FIELDS) + 3))})",
                    (seq, *(fields[name] for name in FIELDS), prev, digest),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return seq

    def _rows(self, where: str = "", args: tuple = ()) -> Iterator[dict[str, Any]]:
        with self._mutex:
            cursor = self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM ledger {where} ORDER BY seq", args
            )
            rows = cursor.fetchall()
        for row in rows:
            yield dict(zip(COLUMNS, row, strict=True))

    def frame(self, since: str | None = None) -> pd.DataFrame:
        """The rows (optionally those at or after `since`, an ISO date or time) as a frame."""
        where, args = ("WHERE at >= ?", (since,)) if since else ("", ())
        return pd.DataFrame(list(self._rows(where, args)), columns=COLUMNS)

    def verify(self) -> tuple[int, Broken | None]:
        """Walk the chain: (rows checked, the first row that does not chain or None)."""
        prev, expected, count = GENESIS, 1, 0
        for row in self._rows():
            count += 1
            if row["seq"] != expected:
                return count, Broken(row["seq"], f"row {expected} is missing before it")
            if row["prev_hash"] != prev:
                return count, Broken(row["seq"], "its prev_hash is not the previous row's hash")
            fields = {name: row[name] if row[name] is not None else "" for name in FIELDS}
            if row_hash(row["seq"], fields, row["prev_hash"]) != row["hash"]:
                return count, Broken(row["seq"], "its fields do not match its hash (edited)")
            prev, expected = row["hash"], expected + 1
        return count, None

    def head(self) -> str:
        """The last row's hash (GENESIS for an empty ledger): keep a copy elsewhere to detect a
        truncated tail."""
        rows = list(self._rows("WHERE seq = (SELECT MAX(seq) FROM ledger)"))
        return rows[0]["hash"] if rows else GENESIS


__all__ = [
    "COLUMNS",
    "FIELDS",
    "GENESIS",
    "Broken",
    "Ledger",
    "LedgerError",
    "default_ledger_path",
    "row_hash",
    "text",
]
