"""The states and modes are StrEnums (toolkit/enums.py): one definition each, and the words on
disk (journals, JSON, CSV) are the same strings as before there were enums."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd

from toolkit.enums import (
    FAILURE_STATES,
    FINAL_STATES,
    MODES,
    OPEN_STATES,
    CallState,
    InboxState,
    Mode,
    WriteState,
)
from toolkit.remediate import journal_schema
from toolkit.sync import store_schema


def test_the_words_on_disk_are_unchanged() -> None:
    # journals written before the enums hold exactly these words; renaming one breaks them
    assert [s.value for s in CallState] == [
        "pending",
        "intent",
        "done",
        "noop",
        "failed",
        "not_found",
    ]
    assert [s.value for s in InboxState] == ["queued", "processing", "done", "failed"]
    assert [s.value for s in WriteState] == [
        "intent",
        "done",
        "dry_run",
        "failed",
        "not_found",
        "interrupted",
    ]
    assert MODES == ("propagate", "remove", "rename", "add")


def test_the_short_names_are_the_enum_members() -> None:
    assert journal_schema.DONE is CallState.DONE
    assert journal_schema.NOT_FOUND is CallState.NOT_FOUND
    assert store_schema.QUEUED is InboxState.QUEUED
    assert store_schema.W_DRY_RUN is WriteState.DRY_RUN
    assert set(store_schema.CAPPED_STATES) <= set(WriteState)


def test_final_open_and_failure_states_partition_the_calls() -> None:
    assert set(CallState) == FINAL_STATES | OPEN_STATES
    assert not FINAL_STATES & OPEN_STATES
    assert {"pending", "intent"} == OPEN_STATES
    assert {"failed", "not_found"} == FAILURE_STATES and FAILURE_STATES <= FINAL_STATES
    # sync's failed writes are counted by the same set
    assert {WriteState.FAILED, WriteState.NOT_FOUND} == FAILURE_STATES


def test_a_member_is_stored_and_read_back_as_its_plain_word() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE calls (state TEXT)")
    db.executemany("INSERT INTO calls VALUES (?)", [(CallState.DONE,), ("failed",)])
    rows = db.execute("SELECT state, typeof(state) FROM calls ORDER BY rowid").fetchall()
    assert rows == [("done", "text"), ("failed", "text")]
    assert type(rows[0][0]) is str and rows[0][0] == CallState.DONE
    assert json.dumps({"state": CallState.NOT_FOUND, "mode": Mode.RENAME}) == (
        '{"state": "not_found", "mode": "rename"}'
    )
    read = pd.Series([r[0] for r in rows])  # as a journal's frame holds them: plain strings
    assert read.isin(FAILURE_STATES).tolist() == [False, True]
    assert (read == CallState.DONE).tolist() == [True, False]
