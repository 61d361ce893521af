"""The run journal's vocabulary: call states, the SQLite schema, the `Call` row, and the small
conversions between SQLite and Python (see `toolkit.remediate.journal`).

Tables:
    run       one row: kind (apply|rollback), plan digest, plan meta, parameters, status, times
    sessions  one row per invocation (the first run and each resume): pid, times, status, stats
    plan_rows the plan as loaded: (opportunity_id, contact_id, op, tag)
    calls     one row per (opportunity_id, op): tags, before/after tags, state, status, attempts,
              Lever code and message, times
    dropped   plan rows not written and why (drift re-plan, anonymized at apply time)
    drift     the opportunities found changed since the snapshot, with their tags then and now
    events    what each session was run with (perform_as, retry_failed, ...) and what it did to
              the journal beyond calls: a changed perform_as, each failed call retried
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from toolkit.enums import CallState
from toolkit.errors import JournalError  # also re-exported: its home before errors.py

SCHEMA_VERSION = 1


# Call states: `toolkit.enums.CallState` (short names for the journal's modules).
PENDING, INTENT, DONE = CallState.PENDING, CallState.INTENT, CallState.DONE
NOOP, FAILED, NOT_FOUND = CallState.NOOP, CallState.FAILED, CallState.NOT_FOUND


SCHEMA = """
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    plan_sha256 TEXT NOT NULL,
    plan_path TEXT,
    plan_meta TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    message TEXT,
    writes INTEGER NOT NULL DEFAULT 0,
    stats TEXT
);
CREATE TABLE IF NOT EXISTS plan_rows (
    opportunity_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    op TEXT NOT NULL,
    tag TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    opportunity_id TEXT NOT NULL,
    contact_id TEXT NOT NULL DEFAULT '',
    op TEXT NOT NULL,
    planned_tags TEXT NOT NULL,
    tags TEXT NOT NULL,
    before_tags TEXT,
    after_tags TEXT,
    state TEXT NOT NULL,
    status INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    writes INTEGER NOT NULL DEFAULT 0,
    code TEXT,
    message TEXT,
    started_at TEXT,
    finished_at TEXT,
    session INTEGER,
    UNIQUE (opportunity_id, op)
);
CREATE TABLE IF NOT EXISTS dropped (
    opportunity_id TEXT NOT NULL,
    contact_id TEXT NOT NULL DEFAULT '',
    op TEXT NOT NULL,
    tag TEXT NOT NULL,
    reason TEXT NOT NULL,
    session INTEGER
);
CREATE TABLE IF NOT EXISTS drift (
    opportunity_id TEXT NOT NULL,
    before_tags TEXT,
    current_tags TEXT,
    updated_at INTEGER,
    session INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
"""


CALL_COLUMNS = [
    "id",
    "opportunity_id",
    "contact_id",
    "op",
    "planned_tags",
    "tags",
    "before_tags",
    "after_tags",
    "state",
    "status",
    "attempts",
    "writes",
    "code",
    "message",
    "started_at",
    "finished_at",
    "session",
]


JSON_COLUMNS = ("planned_tags", "tags", "before_tags", "after_tags")


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def sql_int(value: Any) -> int | None:
    """An int for SQLite from a Python/numpy number; None for missing values."""
    if value is None or value is pd.NA:
        return None
    try:
        return None if value != value else int(value)  # NaN != NaN
    except (TypeError, ValueError):
        return None


def rowid_of(cursor: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just added (sqlite3 types `lastrowid` as optional)."""
    rowid = cursor.lastrowid
    if rowid is None:
        raise JournalError("the journal's INSERT returned no row id")
    return rowid


def load_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else None


@dataclass
class Call:
    """One planned write: all the tags of one operation on one opportunity."""

    id: int
    opportunity_id: str
    contact_id: str
    op: str
    tags: list[str]
    planned_tags: list[str]
    before_tags: list[str] | None
    state: str
    status: int | None = None
    attempts: int = 0
    writes: int = 0
    message: str | None = None
    after_tags: list[str] | None = None
