"""The run journal: one SQLite file per apply (or rollback) run.

Every write call is recorded twice: an *intent* committed before the request leaves, and an
*outcome* committed after it returns. A killed run therefore leaves at most one call per worker
in the ``intent`` state, and a resumed run knows exactly which calls finished (never repeated),
which never started (``pending``), and which may or may not have reached Lever (``intent``: read
the opportunity first). The journal holds the plan, the parameters and the outcomes; never the
key.

A lock file beside the journal (``<journal>.lock``, ``fcntl.flock``) keeps two runs off the same
journal; the kernel releases it when the process dies, so a killed run never leaves a stale lock.
A clean release removes the file while still holding the lock (unlink, then unlock); a crashed
run may leave the file behind, which is harmless: the flock is what counts, not the file.

The tables are described in `toolkit.remediate.journal_schema`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import pandas as pd

from toolkit import __version__
from toolkit.remediate.journal_lock import RunLock
from toolkit.remediate.journal_schema import (
    CALL_COLUMNS,
    DONE,
    FAILED,
    INTENT,
    JSON_COLUMNS,
    NOOP,
    NOT_FOUND,
    PENDING,
    SCHEMA,
    SCHEMA_VERSION,
    Call,
    JournalError,
    dump_json,
    load_json,
    now_iso,
    rowid_of,
    sql_int,
)
from toolkit.sanitize import create_private, private_dir


class Journal:
    """A run journal at `path`. Thread-safe: every statement runs under one lock.

    Use as a context manager; `lock=True` (the default) takes the run lock and raises
    `JournalError` when another process holds it.

    Example:
        >>> with Journal("run.sqlite") as journal:  # doctest: +SKIP
        ...     journal.summary()
    """

    def __init__(self, path: str | os.PathLike, *, lock: bool = True, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise JournalError(f"journal not found: {self.path}")
        self._lock = RunLock(self.path)
        if lock:
            self._lock.take()
        try:
            private_dir(self.path.parent)  # a folder made for --journal is 0700
            if create and not os.path.lexists(self.path):
                create_private(self.path)  # 0600 before SQLite writes (its -wal/-shm follow)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise JournalError(f"{self.path} is not a run journal ({exc})") from None
        self._mutex = threading.Lock()

    @property
    def lock_path(self) -> Path:
        return self._lock.path

    def _release_lock(self) -> None:
        self._lock.release()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()
        self._release_lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction, under the journal's mutex."""
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._mutex:
            cursor = self._db.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any] | None:
        """The run row (plan meta and params decoded), or None for a new journal."""
        rows = self._query("SELECT * FROM run WHERE id = 1")
        if not rows:
            return None
        run = dict(rows[0])
        run["plan_meta"] = load_json(run["plan_meta"])
        run["params"] = load_json(run["params"])
        return run

    def init_run(
        self,
        *,
        kind: str,
        plan_sha256: str,
        plan_meta: dict[str, Any],
        params: dict[str, Any],
        plan_rows: pd.DataFrame,
        plan_path: str | None = None,
    ) -> None:
        """Record a new run and its plan. The journal must be new."""
        rows = plan_rows[["opportunity_id", "contact_id", "op", "tag"]].astype(str)
        with self._tx() as db:
            db.execute(
                "INSERT INTO run (id, schema_version, kind, plan_sha256, plan_path, plan_meta,"
                " params, created_at, status) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 'running')",
                (
                    SCHEMA_VERSION,
                    kind,
                    plan_sha256,
                    plan_path,
                    json.dumps(plan_meta, default=str),
                    json.dumps({**params, "toolkit_version": __version__}, default=str),
                    now_iso(),
                ),
            )
            db.executemany(
                "INSERT INTO plan_rows VALUES (?, ?, ?, ?)",
                list(rows.itertuples(index=False, name=None)),
            )

    def finish_run(self, status: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE run SET status = ?, finished_at = ? WHERE id = 1", (status, now_iso())
            )

    def update_params(self, **params: Any) -> None:
        run = self.run() or {}
        merged = dict(run.get("params") or {}, **params)
        with self._tx() as db:
            db.execute("UPDATE run SET params = ? WHERE id = 1", (json.dumps(merged, default=str),))

    def start_session(self) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO sessions (pid, started_at, status) VALUES (?, ?, 'running')",
                (os.getpid(), now_iso()),
            )
            return rowid_of(cursor)

    def finish_session(
        self, session: int, status: str, *, writes: int, stats: dict | None, message: str = ""
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET finished_at = ?, status = ?, writes = ?, stats = ?,"
                " message = ? WHERE id = ?",
                (now_iso(), status, writes, dump_json(stats), message or None, session),
            )

    # -- calls ----------------------------------------------------------------------------------

    def record_planning(
        self,
        calls: Iterable[dict[str, Any]],
        dropped: Iterable[dict[str, Any]] = (),
        drift: Iterable[dict[str, Any]] = (),
        session: int | None = None,
    ) -> None:
        """Record the calls to make (state pending), the rows dropped and the drift seen, in one
        transaction, and mark the run planned. Each call: opportunity_id, contact_id, op, tags,
        before_tags (list or None)."""
        with self._tx() as db:
            self._insert_calls(db, calls)
            self._insert_dropped(db, dropped, session)
            self._insert_drift(db, drift, session)
            db.execute("UPDATE run SET planned = 1 WHERE id = 1")

    @staticmethod
    def _insert_calls(db: sqlite3.Connection, calls: Iterable[dict[str, Any]]) -> None:
        db.executemany(
            "INSERT INTO calls (opportunity_id, contact_id, op, planned_tags, tags,"
            " before_tags, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
            [
                (
                    c["opportunity_id"],
                    c.get("contact_id") or "",
                    c["op"],
                    dump_json(list(c["tags"])),
                    dump_json(list(c["tags"])),
                    dump_json(None if c.get("before_tags") is None else list(c["before_tags"])),
                )
                for c in calls
            ],
        )

    def calls(self, states: Iterable[str] | None = None) -> list[Call]:
        """The calls (optionally only those in `states`), in id order."""
        sql = "SELECT * FROM calls"
        args: list[Any] = []
        if states is not None:
            states = list(states)
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args = states
        rows = self._query(sql + " ORDER BY id", args)
        return [
            Call(
                id=r["id"],
                opportunity_id=r["opportunity_id"],
                contact_id=r["contact_id"],
                op=r["op"],
                tags=load_json(r["tags"]),
                planned_tags=load_json(r["planned_tags"]),
                before_tags=load_json(r["before_tags"]),
                state=r["state"],
                status=r["status"],
                attempts=r["attempts"],
                writes=r["writes"],
                message=r["message"],
                after_tags=load_json(r["after_tags"]),
            )
            for r in rows
        ]

    def replan_call(self, call_id: int, tags: list[str], before_tags: list[str] | None) -> None:
        """Narrow a pending call after a drift re-read (tags still to write, tags seen now)."""
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET tags = ?, before_tags = ? WHERE id = ? AND state = 'pending'",
                (dump_json(tags), dump_json(before_tags), call_id),
            )

    def narrow_open_call(self, call_id: int, tags: list[str]) -> None:
        """Narrow the tags of a call that may have reached Lever (intent, failed) on resume.

        Its before-tags stay: they are what rollback compares with.
        """
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET tags = ? WHERE id = ?"
                " AND state IN ('pending', 'intent', 'failed')",
                (dump_json(tags), call_id),
            )

    def mark_intent(self, call_id: int, session: int) -> None:
        """Committed before the request leaves."""
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET state = 'intent', started_at = ?, session = ?, finished_at = NULL"
                " WHERE id = ?",
                (now_iso(), session, call_id),
            )

    def mark_outcome(
        self,
        call_id: int,
        state: str,
        *,
        status: int | None = None,
        attempts: int = 0,
        wrote: bool = False,
        code: str | None = None,
        message: str | None = None,
        after_tags: list[str] | None = None,
        session: int | None = None,
    ) -> None:
        """Committed after the answer (or the final error)."""
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET state = ?, status = ?, attempts = attempts + ?,"
                " writes = writes + ?, code = ?, message = ?, after_tags = ?, finished_at = ?,"
                " session = COALESCE(?, session) WHERE id = ?",
                (
                    state,
                    status,
                    attempts,
                    1 if wrote else 0,
                    code,
                    message,
                    dump_json(after_tags),
                    now_iso(),
                    session,
                    call_id,
                ),
            )

    def reopen_failed(
        self, call_id: int, tags: list[str], before_tags: list[str], session: int
    ) -> bool:
        """Put a failed call back to pending for a retry (``--retry-failed``), in one transaction.

        The failure it replaces (status, code, message, tags) is kept as a ``retry`` event; the
        call's tags become those still to write and its before-tags the ones read just now (a
        call Lever refused wrote nothing, so what is there now is what the retry starts from).
        Returns False when the call is no longer failed.
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT opportunity_id, op, tags, status, code, message FROM calls"
                " WHERE id = ? AND state = 'failed'",
                (call_id,),
            ).fetchone()
            if row is None:
                return False
            opp, op, old_tags, status, code, message = row
            detail = {
                "call_id": call_id,
                "opportunity_id": opp,
                "op": op,
                "tags": load_json(old_tags),
                "status": status,
                "code": code,
                "message": message,
                "retry_tags": list(tags),
            }
            db.execute(
                "INSERT INTO events (session, at, kind, detail) VALUES (?, ?, 'retry', ?)",
                (session, now_iso(), json.dumps(detail, default=str)),
            )
            db.execute(
                "UPDATE calls SET state = 'pending', tags = ?, before_tags = ?, status = NULL,"
                " code = NULL, message = ? WHERE id = ?",
                (
                    dump_json(list(tags)),
                    dump_json(list(before_tags)),
                    f"retry of: {message}",
                    call_id,
                ),
            )
        return True

    def add_event(self, session: int | None, kind: str, detail: dict[str, Any]) -> None:
        """Record what a session did beyond calls (its parameters, a changed perform_as)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (session, at, kind, detail) VALUES (?, ?, ?, ?)",
                (session, now_iso(), kind, json.dumps(detail, default=str)),
            )

    def events(self) -> pd.DataFrame:
        """DataFrame[id, session, at, kind, detail (dict)] in order."""
        rows = self._query("SELECT * FROM events ORDER BY id")
        frame = pd.DataFrame(rows, columns=["id", "session", "at", "kind", "detail"])
        frame["detail"] = pd.Series([load_json(v) for v in frame["detail"]], dtype=object)
        return frame

    def reset_to_pending(self, call_id: int, message: str | None = None) -> None:
        """Put a call back (an aborted run's call that certainly did not write)."""
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET state = 'pending', message = ? WHERE id = ?", (message, call_id)
            )

    def add_dropped(self, rows: Iterable[dict[str, Any]], session: int | None = None) -> None:
        with self._tx() as db:
            self._insert_dropped(db, rows, session)

    @staticmethod
    def _insert_dropped(
        db: sqlite3.Connection, rows: Iterable[dict[str, Any]], session: int | None
    ) -> None:
        db.executemany(
            "INSERT INTO dropped VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    r["opportunity_id"],
                    r.get("contact_id") or "",
                    r["op"],
                    r["tag"],
                    r["reason"],
                    session,
                )
                for r in rows
            ],
        )

    def add_drift(self, rows: Iterable[dict[str, Any]], session: int | None = None) -> None:
        with self._tx() as db:
            self._insert_drift(db, rows, session)

    @staticmethod
    def _insert_drift(
        db: sqlite3.Connection, rows: Iterable[dict[str, Any]], session: int | None
    ) -> None:
        db.executemany(
            "INSERT INTO drift VALUES (?, ?, ?, ?, ?)",
            [
                (
                    r["opportunity_id"],
                    dump_json(r.get("before_tags")),
                    dump_json(r.get("current_tags")),
                    sql_int(r.get("updated_at")),
                    session,
                )
                for r in rows
            ],
        )

    # -- reading --------------------------------------------------------------------------------

    def calls_frame(self) -> pd.DataFrame:
        rows = self._query("SELECT * FROM calls ORDER BY id")
        frame = pd.DataFrame(rows, columns=CALL_COLUMNS)
        for column in JSON_COLUMNS:
            frame[column] = pd.Series([load_json(v) for v in frame[column]], dtype=object)
        return frame

    def table(self, name: str) -> pd.DataFrame:
        if name not in {"plan_rows", "dropped", "drift", "sessions", "events"}:
            raise ValueError(f"unknown journal table {name!r}")
        rows = self._query(f"SELECT * FROM {name}")
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """Counts per call state, changes (tags) per outcome, sessions, times."""
        run = self.run()
        if run is None:
            return {"path": str(self.path), "status": "empty"}
        states = {
            r["state"]: {"calls": r["calls"], "changes": r["changes"]}
            for r in self._query(
                "SELECT state, COUNT(*) AS calls, COALESCE(SUM(json_array_length(tags)), 0)"
                " AS changes FROM calls GROUP BY state"
            )
        }
        dropped = self._query("SELECT COUNT(*) AS n FROM dropped")[0]["n"]
        totals = self._query(
            "SELECT COALESCE(SUM(writes), 0) AS writes, COALESCE(SUM(attempts), 0) AS attempts"
            " FROM calls"
        )[0]
        sessions = self._query("SELECT * FROM sessions ORDER BY id")

        def count(state: str, what: str) -> int:
            return int(states.get(state, {}).get(what, 0))

        return {
            "path": str(self.path),
            "kind": run["kind"],
            "status": run["status"],
            "plan_sha256": run["plan_sha256"],
            "plan_path": run["plan_path"],
            "created_at": run["created_at"],
            "finished_at": run["finished_at"],
            "params": run["params"],
            "mode": (run["plan_meta"] or {}).get("mode"),
            "calls": sum(int(v["calls"]) for v in states.values()),
            "calls_by_state": {k: int(v["calls"]) for k, v in sorted(states.items())},
            "applied": count(DONE, "changes"),
            "failed": count(FAILED, "changes"),
            "not_found": count(NOT_FOUND, "changes"),
            "pending": count(PENDING, "changes") + count(INTENT, "changes"),
            "dropped": int(dropped),
            "noop_calls": count(NOOP, "calls"),
            "writes": int(totals["writes"]),
            "attempts": int(totals["attempts"]),
            "sessions": len(sessions),
            "last_session": sessions[-1]["status"] if sessions else None,
        }


__all__ = ["Journal"]
