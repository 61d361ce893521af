"""The run journal: intents and outcomes, the lock, summaries, no secrets."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, INTENT, PENDING, JournalError
from toolkit.remediate.journal_views import journal_frame, journal_summary

ROWS = pd.DataFrame(
    {
        "opportunity_id": ["o1", "o1", "o2"],
        "contact_id": ["c", "c", "c"],
        "op": ["add", "add", "remove"],
        "tag": ["a", "b", "x"],
    }
)


def new_journal(path) -> Journal:
    journal = Journal(path)
    journal.init_run(
        kind="apply",
        plan_sha256="abc",
        plan_meta={"mode": "propagate"},
        params={"perform_as": "u1", "workers": 2},
        plan_rows=ROWS,
        plan_path="plan.csv",
    )
    journal.record_planning(
        [
            {"opportunity_id": "o1", "contact_id": "c", "op": "add", "tags": ["a", "b"]},
            {
                "opportunity_id": "o2",
                "contact_id": "c",
                "op": "remove",
                "tags": ["x"],
                "before_tags": ["x", "y"],
            },
        ],
        dropped=[{"opportunity_id": "o3", "op": "add", "tag": "a", "reason": "drift"}],
        drift=[{"opportunity_id": "o3", "before_tags": [], "current_tags": ["a"]}],
    )
    return journal


def test_intent_then_outcome_and_summary(tmp_path):
    path = tmp_path / "j.sqlite"
    with new_journal(path) as journal:
        session = journal.start_session()
        first, second = journal.calls()
        assert (first.state, second.state) == (PENDING, PENDING)
        assert second.before_tags == ["x", "y"] and first.before_tags is None
        journal.mark_intent(first.id, session)
        assert journal.calls([INTENT])[0].id == first.id
        journal.mark_outcome(
            first.id, DONE, status=200, attempts=2, wrote=True, after_tags=["a", "b"]
        )
        journal.mark_intent(second.id, session)
        journal.mark_outcome(
            second.id, FAILED, status=403, attempts=1, wrote=True, code="Forbidden", message="no"
        )
        journal.finish_session(session, "finished", writes=2, stats={"requests": 3})
        journal.finish_run("finished")
    summary = journal_summary(path)
    assert summary["calls_by_state"] == {"done": 1, "failed": 1}
    assert (summary["applied"], summary["failed"], summary["pending"]) == (2, 1, 0)
    assert (summary["writes"], summary["attempts"], summary["dropped"]) == (2, 3, 1)
    assert summary["status"] == "finished" and summary["mode"] == "propagate"
    frame = journal_frame(path)
    assert frame.loc[0, "after_tags"] == ["a", "b"]
    assert frame.loc[1, ["status", "code", "message"]].tolist() == [403, "Forbidden", "no"]
    assert frame.loc[0, "started_at"] <= frame.loc[0, "finished_at"]


def test_outcome_is_committed_and_visible_to_another_connection(tmp_path):
    path = tmp_path / "j.sqlite"
    with new_journal(path) as journal:
        call = journal.calls()[0]
        journal.mark_intent(call.id, journal.start_session())
        other = sqlite3.connect(path)
        assert other.execute("SELECT state FROM calls WHERE id = ?", (call.id,)).fetchone() == (
            "intent",
        )
        other.close()


def test_second_run_on_the_same_journal_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    with new_journal(path):
        with pytest.raises(JournalError, match="another run holds the journal"):
            Journal(path)
        # reading without the lock is fine while a run goes on
        assert journal_summary(path)["calls"] == 2
    with Journal(path) as again:  # released on close
        assert again.run()["plan_sha256"] == "abc"


def test_lock_is_released_when_the_holder_dies(tmp_path):
    path = tmp_path / "j.sqlite"
    code = (
        "import os, sys; from toolkit.remediate.journal import Journal; "
        f"j = Journal({str(path)!r}); print('locked', flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "locked" in out.stdout
    with Journal(path) as journal:
        assert journal.run() is None


def test_lock_held_by_another_process_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    code = (
        "import sys; from toolkit.remediate.journal import Journal; "
        f"j = Journal({str(path)!r}); print('locked', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(JournalError, match="another run"):
            Journal(path)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def test_not_a_journal(tmp_path):
    path = tmp_path / "j.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a run journal"):
        Journal(path)
    with pytest.raises(JournalError, match="not found"):
        journal_summary(tmp_path / "missing.sqlite")


def test_replan_only_touches_pending_calls(tmp_path):
    with new_journal(tmp_path / "j.sqlite") as journal:
        first, second = journal.calls()
        journal.mark_intent(second.id, journal.start_session())
        journal.replan_call(first.id, ["b"], ["a"])
        journal.replan_call(second.id, [], [])
        first, second = journal.calls()
        assert (first.tags, first.planned_tags, first.before_tags) == (["b"], ["a", "b"], ["a"])
        assert second.tags == ["x"]


def test_planning_is_one_transaction(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal(path) as journal:
        journal.init_run(kind="apply", plan_sha256="s", plan_meta={}, params={}, plan_rows=ROWS)
        assert not journal.run()["planned"]
        with pytest.raises(KeyError):
            journal.record_planning([{"opportunity_id": "o1", "op": "add"}])  # no tags
        assert journal.calls() == [] and not journal.run()["planned"]


def test_a_clean_release_removes_the_lock_file(tmp_path):
    path = tmp_path / "j.sqlite"
    with new_journal(path) as journal:
        assert journal.lock_path.exists()
    assert not (tmp_path / "j.sqlite.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "j.sqlite"
    ]
    with Journal(path, lock=False):  # a reader never creates it
        pass
    assert not (tmp_path / "j.sqlite.lock").exists()


def test_a_lock_file_left_by_a_crash_is_harmless(tmp_path):
    path = tmp_path / "j.sqlite"
    code = (
        "import os; from toolkit.remediate.journal import Journal; "
        f"j = Journal({str(path)!r}); print('locked', flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "locked" in out.stdout
    assert (tmp_path / "j.sqlite.lock").exists()  # the crash left it; flock is what counts
    with Journal(path) as journal:
        assert journal.run() is None
        with pytest.raises(JournalError, match="another run holds"):
            Journal(path)
    assert not (tmp_path / "j.sqlite.lock").exists()


def test_a_lock_taken_on_a_file_just_removed_by_its_holder_is_taken_again(tmp_path, monkeypatch):
    """The holder unlinks then unlocks; a run that opened the old file just before must not
    end up holding a lock on a file nobody else can see."""
    import toolkit.remediate.journal_lock as journal_module

    path = tmp_path / "j.sqlite"
    holder = Journal(path)
    real = journal_module.fcntl
    state = {"interleaved": False}

    class Interleaving:
        LOCK_EX, LOCK_NB, LOCK_UN = real.LOCK_EX, real.LOCK_NB, real.LOCK_UN

        @staticmethod
        def flock(fd, op):
            if op & real.LOCK_EX and not state["interleaved"]:
                state["interleaved"] = True
                holder.close()  # between our open() and our flock(): unlink, then unlock
            return real.flock(fd, op)

    monkeypatch.setattr(journal_module, "fcntl", Interleaving)
    second = Journal(path)
    monkeypatch.setattr(journal_module, "fcntl", real)
    try:
        assert state["interleaved"] and second.lock_path.exists()
        with pytest.raises(JournalError, match="another run holds"):
            Journal(path)  # the second run's lock is the one everybody sees
    finally:
        second.close()
    assert not second.lock_path.exists()
