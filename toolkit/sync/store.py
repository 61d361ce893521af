"""The sync journal: a durable event queue and the record of every decision, in one SQLite file.

`SyncJournal` extends the run journal (`remediate.journal.Journal`): the same lock file (one service
per journal; the kernel frees it when the process dies), WAL, one committed transaction per
change, the ``run``/``sessions``/``events`` tables (kind ``sync``). It adds the ``sync_*``
tables of `toolkit.sync.store_schema`: the inbox (the queue), the writes, what was seen and held,
the poll state and the signed tokens of stored webhooks.

Times are epoch milliseconds. A row is committed before the webhook is answered 2xx, so a crash
after that loses nothing: `recover` puts rows a dead process was processing back in the queue.
The webhook secret and the API key are never stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import JournalError, rowid_of
from toolkit.sync.registration import RegisteredWebhooks
from toolkit.sync.store_schema import (  # the states, imported from here by the sync side
    CAPPED_STATES,
    DONE,
    FAILED,
    PROCESSING,
    QUEUED,
    SCHEMA,
    SYNC_TABLES,
    W_DONE,
    W_DRY_RUN,
    W_FAILED,
    W_INTENT,
    W_INTERRUPTED,
    W_NOT_FOUND,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def contact_key(contact_id: str | None, opportunity_id: str | None) -> str:
    """The queue's grouping key: the contact, or the opportunity when the contact is unknown."""
    return contact_id if contact_id else f"opportunity:{opportunity_id}"


@dataclass
class Claim:
    """The queued rows of one contact taken by a worker (events for a contact coalesce)."""

    key: str
    contact_id: str | None
    opportunity_ids: list[str]
    row_ids: list[int]
    events: list[str]
    first_at: int  # the earliest triggeredAt (or received_at) among the rows, ms
    attempts: int  # tries that failed (the backoff grows with them)
    strikes: int = 0  # failures that count against the limit (see `toolkit.sync.retry`)


class SyncJournal(Journal, RegisteredWebhooks):
    """The sync service's journal (see the module doc). Thread-safe.

    Example:
        >>> with SyncJournal("sync.sqlite") as journal:  # doctest: +SKIP
        ...     journal.enqueue_contact("c1", source="poll")
    """

    def __init__(self, path: str | os.PathLike, *, lock: bool = True, create: bool = True) -> None:
        super().__init__(path, lock=lock, create=create)
        try:
            with self._mutex:
                # A 2xx promises the event is kept: FULL survives a power loss too, not only a
                # killed process (the run journal's NORMAL); webhooks come a few per second.
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(SCHEMA)
                columns = {r[1] for r in self._db.execute("PRAGMA table_info(sync_inbox)")}
                if "strikes" not in columns:  # a journal from before strikes were counted
                    self._db.execute(
                        "ALTER TABLE sync_inbox ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0"
                    )
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JournalError(f"{self.path} is not a sync journal ({exc})") from None
        if create:
            os.chmod(self.path, 0o600)  # opportunity and contact ids: personal data

    # -- the run --------------------------------------------------------------------------------

    def open_sync_run(self, params: dict[str, Any]) -> None:
        """Record the service's run (first start) or check the journal is a sync journal."""
        run = self.run()
        if run is None:
            self.init_run(
                kind="sync",
                plan_sha256="",
                plan_meta={},
                params=params,
                plan_rows=pd.DataFrame(columns=["opportunity_id", "contact_id", "op", "tag"]),
            )
        elif run["kind"] != "sync":
            raise JournalError(
                f"the journal {self.path} belongs to an {run['kind']} run; give sync its own "
                "--journal"
            )
        else:
            self.update_params(**params)

    def recover(self) -> tuple[int, int]:
        """At start: rows a dead process was processing go back to the queue, its write intents
        become ``interrupted`` (the contact's next check reads before it writes), and rows
        waiting out a backoff are due at once (a restart retries them now).

        Returns (rows requeued, intents interrupted).
        """
        with self._tx() as db:
            rows = db.execute(
                "UPDATE sync_inbox SET state = 'queued' WHERE state = 'processing'"
            ).rowcount
            db.execute("UPDATE sync_inbox SET not_before = 0 WHERE state = 'queued'")
            intents = db.execute(
                "UPDATE sync_writes SET state = 'interrupted', finished_at = ?, message ="
                " 'the process stopped before the answer; checked again by the next check'"
                " WHERE state = 'intent'",
                (now_ms(),),
            ).rowcount
        return rows, intents

    # -- the queue ------------------------------------------------------------------------------

    def enqueue_webhook(
        self,
        webhook_id: str | None,
        event: str,
        triggered_at: int,
        contact_id: str | None,
        opportunity_id: str | None,
        *,
        token: str | None = None,
    ) -> bool:
        """Store an accepted webhook (committed on return). False: its signed ``token`` or its
        ``id`` was already stored (a redelivery, or a replay of a captured body)."""
        with self._tx() as db:
            if token is not None:
                fresh = db.execute(
                    "INSERT OR IGNORE INTO sync_tokens (token, received_at) VALUES (?, ?)",
                    (token, now_ms()),
                ).rowcount
                if not fresh:
                    return False
            cursor = db.execute(
                "INSERT OR IGNORE INTO sync_inbox (source, webhook_id, event, contact_key,"
                " contact_id, opportunity_id, triggered_at, received_at, state)"
                " VALUES ('webhook', ?, ?, ?, ?, ?, ?, ?, 'queued')",
                (
                    webhook_id,
                    event,
                    contact_key(contact_id, opportunity_id),
                    contact_id,
                    opportunity_id,
                    triggered_at,
                    now_ms(),
                ),
            )
            return cursor.rowcount == 1

    def enqueue_contact(
        self, contact_id: str, *, source: str = "poll", opportunity_id: str | None = None
    ) -> bool:
        """Queue a check of a contact, unless one is already queued (they would coalesce)."""
        key = contact_key(contact_id, opportunity_id)
        with self._tx() as db:
            waiting = db.execute(
                "SELECT 1 FROM sync_inbox WHERE contact_key = ? AND state = 'queued' LIMIT 1",
                (key,),
            ).fetchone()
            if waiting:
                return False
            db.execute(
                "INSERT INTO sync_inbox (source, event, contact_key, contact_id, opportunity_id,"
                " received_at, state) VALUES (?, ?, ?, ?, ?, ?, 'queued')",
                (source, source, key, contact_id, opportunity_id, now_ms()),
            )
            return True

    def claim(self, now: int | None = None) -> Claim | None:
        """Take every queued row of the contact due longest (a new event before a retry that is
        due again, so retries in an outage never starve new events) not being processed."""
        now = now_ms() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT contact_key FROM sync_inbox WHERE state = 'queued' AND not_before <= ?"
                " AND contact_key NOT IN (SELECT contact_key FROM sync_inbox"
                " WHERE state = 'processing') ORDER BY not_before, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            key = row[0]
            rows = db.execute(
                "SELECT id, contact_id, opportunity_id, event, COALESCE(triggered_at,"
                " received_at), attempts, strikes FROM sync_inbox WHERE contact_key = ? AND state ="
                " 'queued' ORDER BY id",
                (key,),
            ).fetchall()
            ids = [r[0] for r in rows]
            marks = ",".join("?" * len(ids))
            db.execute(f"UPDATE sync_inbox SET state = 'processing' WHERE id IN ({marks})", ids)
        contact = next((r[1] for r in rows if r[1]), None)
        opps = list(dict.fromkeys(r[2] for r in rows if r[2]))
        return Claim(
            key=key,
            contact_id=contact,
            opportunity_ids=opps,
            row_ids=ids,
            events=[r[3] for r in rows],
            first_at=min(r[4] for r in rows),
            attempts=max(r[5] for r in rows),
            strikes=max(r[6] for r in rows),
        )

    def _set_rows(self, ids: list[int], sql: str, args: tuple = ()) -> None:
        with self._tx() as db:
            db.execute(f"{sql} WHERE id IN ({','.join('?' * len(ids))})", (*args, *ids))

    def finish(self, claim: Claim, message: str = "") -> None:
        """The contact was checked: its rows are done."""
        self._set_rows(
            claim.row_ids,
            "UPDATE sync_inbox SET state = 'done', finished_at = ?, message = ?",
            (now_ms(), message or None),
        )

    def release(
        self,
        claim: Claim,
        *,
        not_before: int = 0,
        failed: bool = False,
        message: str = "",
        strike: bool = False,
    ) -> None:
        """Put the rows back in the queue (stopping, cap, a failure to retry), or fail them.

        A ``not_before`` (a backoff) counts an attempt; ``strike`` counts a strike too.
        """
        strikes = 1 if strike else 0
        if failed:
            self._set_rows(
                claim.row_ids,
                "UPDATE sync_inbox SET state = 'failed', finished_at = ?, message = ?,"
                " attempts = attempts + 1, strikes = strikes + ?",
                (now_ms(), message or None, strikes),
            )
            return
        bump = 1 if not_before else 0
        self._set_rows(
            claim.row_ids,
            "UPDATE sync_inbox SET state = 'queued', not_before = ?, message = ?,"
            " attempts = attempts + ?, strikes = strikes + ?",
            (not_before, message or None, bump, strikes),
        )

    def forget_tokens(self, before_ms: int) -> int:
        """Drop the webhook tokens stored before then; returns how many."""
        with self._tx() as db:
            return db.execute(
                "DELETE FROM sync_tokens WHERE received_at < ?", (before_ms,)
            ).rowcount

    def queue_depth(self) -> tuple[int, int]:
        """(queued rows, distinct queued contacts), processing ones included."""
        rows = self._query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT contact_key) AS c FROM sync_inbox"
            " WHERE state IN ('queued', 'processing')"
        )[0]
        return int(rows["n"]), int(rows["c"])

    def due_contacts(self, now: int | None = None) -> int:
        """Contacts with an event due now or in process; rows waiting out a backoff or the
        change cap do not count (the webhook 503 cap: a contact's events coalesce, so a flood
        for one contact, or events kept through an outage, never shut the door on the rest)."""
        rows = self._query(
            "SELECT COUNT(DISTINCT contact_key) AS c FROM sync_inbox WHERE state = 'processing'"
            " OR (state = 'queued' AND not_before <= ?)",
            (now_ms() if now is None else now,),
        )
        return int(rows[0]["c"])

    def oldest_queued_ms(self) -> int | None:
        row = self._query(
            "SELECT MIN(COALESCE(triggered_at, received_at)) AS t FROM sync_inbox"
            " WHERE state IN ('queued', 'processing')"
        )[0]
        return None if row["t"] is None else int(row["t"])

    # -- writes ---------------------------------------------------------------------------------

    def write_intent(
        self,
        contact_id: str,
        opportunity_id: str,
        op: str,
        tags: list[str],
        before_tags: list[str] | None,
        *,
        trigger: str,
        session: int | None,
        dry_run: bool = False,
    ) -> int:
        """Committed before the request leaves (a dry run records what it would have sent)."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO sync_writes (contact_id, opportunity_id, op, tags, before_tags,"
                " state, trigger, started_at, finished_at, session)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    contact_id,
                    opportunity_id,
                    op,
                    json.dumps(list(tags), ensure_ascii=False),
                    None if before_tags is None else json.dumps(before_tags, ensure_ascii=False),
                    W_DRY_RUN if dry_run else W_INTENT,
                    trigger,
                    now_ms(),
                    now_ms() if dry_run else None,
                    session,
                ),
            )
            return rowid_of(cursor)

    def write_outcome(
        self,
        write_id: int,
        state: str,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        after_tags: list[str] | None = None,
    ) -> None:
        """Committed after the answer (or the final error)."""
        with self._tx() as db:
            db.execute(
                "UPDATE sync_writes SET state = ?, status = ?, code = ?, message = ?,"
                " after_tags = ?, finished_at = ? WHERE id = ?",
                (
                    state,
                    status,
                    code,
                    message,
                    None if after_tags is None else json.dumps(after_tags, ensure_ascii=False),
                    now_ms(),
                    write_id,
                ),
            )

    def recent_changes(self, since_ms: int) -> list[tuple[int, int]]:
        """(started_at, number of tags) of the writes since then that count against the cap."""
        marks = ",".join("?" * len(CAPPED_STATES))
        rows = self._query(
            "SELECT started_at, json_array_length(tags) AS n FROM sync_writes"
            f" WHERE started_at >= ? AND state IN ({marks}) ORDER BY started_at",
            (since_ms, *CAPPED_STATES),
        )
        return [(int(r["started_at"]), int(r["n"])) for r in rows]

    # -- what was seen --------------------------------------------------------------------------

    def seen(self, opportunity_ids: list[str]) -> dict[str, tuple[list[str], str, str | None]]:
        """{opportunity_id: (contact-level tags last seen, flags, contact)} for those seen."""
        if not opportunity_ids:
            return {}
        out: dict[str, tuple[list[str], str, str | None]] = {}
        for start in range(0, len(opportunity_ids), 500):
            chunk = opportunity_ids[start : start + 500]
            for r in self._query(
                "SELECT opportunity_id, tags, flags, contact_id FROM sync_seen"
                f" WHERE opportunity_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[r["opportunity_id"]] = (json.loads(r["tags"]), r["flags"], r["contact_id"])
        return out

    def remember(self, records: list[tuple[str, str | None, list[str], str]]) -> None:
        """Store (opportunity_id, contact_id, contact-level tags, flags) as last seen."""
        if not records:
            return
        at = now_ms()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO sync_seen (opportunity_id, contact_id, tags, flags, seen_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (opportunity_id) DO UPDATE SET"
                " contact_id = excluded.contact_id, tags = excluded.tags,"
                " flags = excluded.flags, seen_at = excluded.seen_at",
                [
                    (o, c, json.dumps(sorted(t), ensure_ascii=False), f, at)
                    for o, c, t, f in records
                ],
            )

    def held(self, contact_id: str) -> dict[str, str | None]:
        """{tag: opportunity it was removed from} of the removals held for this contact."""
        rows = self._query(
            "SELECT tag, opportunity_id FROM sync_held WHERE contact_id = ?", (contact_id,)
        )
        return {r["tag"]: r["opportunity_id"] for r in rows}

    def hold(self, contact_id: str, tag: str, opportunity_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sync_held (contact_id, tag, opportunity_id, at)"
                " VALUES (?, ?, ?, ?)",
                (contact_id, tag, opportunity_id, now_ms()),
            )

    def unhold(self, contact_id: str, tags: list[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM sync_held WHERE contact_id = ? AND tag = ?",
                [(contact_id, t) for t in tags],
            )

    # -- small state ----------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM sync_state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, **values: Any) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)",
                [(k, None if v is None else str(v)) for k, v in values.items()],
            )

    # -- reading --------------------------------------------------------------------------------

    def sync_table(self, name: str) -> pd.DataFrame:
        """One of the sync tables as a DataFrame (JSON tag columns decoded)."""
        if name not in SYNC_TABLES:
            raise ValueError(f"unknown sync table {name!r}")
        frame = pd.DataFrame(self._query(f"SELECT * FROM {name} ORDER BY rowid"))
        for column in ("tags", "before_tags", "after_tags"):
            if column in frame.columns:
                frame[column] = pd.Series(
                    [json.loads(v) if isinstance(v, str) else None for v in frame[column]],
                    index=frame.index,
                    dtype=object,
                )
        return frame


__all__ = [
    "CAPPED_STATES",
    "DONE",
    "FAILED",
    "PROCESSING",
    "QUEUED",
    "SYNC_TABLES",
    "W_DONE",
    "W_DRY_RUN",
    "W_FAILED",
    "W_INTENT",
    "W_INTERRUPTED",
    "W_NOT_FOUND",
    "Claim",
    "SyncJournal",
    "contact_key",
]
