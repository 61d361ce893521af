"""kill -9 in the middle of `lever-tags apply`, then resume: the end state is right and no
finished call is sent again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from polling import wait_for
from reference import write_log

from toolkit.client import LeverClient
from toolkit.remediate.journal_views import journal_frame, journal_summary
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.fetch import fetch_snapshot

TAGS = ["Python", "Do not contact", "Boomerang", "Go"]


def _stopped(pid: int) -> bool:
    """Every thread of `pid` is in the stopped state ('T' in /proc/PID/task/TID/stat)."""
    states = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat", encoding="ascii") as handle:
                states.append(handle.read().rpartition(")")[2].split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
    return bool(states) and all(state in ("T", "t") for state in states)


def done_calls(path) -> int:
    if not path.exists():
        return 0
    try:
        return journal_summary(path)["calls_by_state"].get("done", 0)
    except Exception:  # the journal is being created
        return 0


@pytest.mark.slow
def test_kill_9_then_resume(fresh_sandbox, tmp_path):
    sb = fresh_sandbox(latency_ms=50)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=TAGS)
    save_plan(plan, tmp_path / "plan.csv")
    plan = load_plan(tmp_path / "plan.csv")
    groups = len(plan.calls())
    assert groups >= 40
    before = {o["id"]: set(o["tags"]) for o in sb.opportunities()}
    log = write_log(sb)
    journal = tmp_path / "j.sqlite"
    argv = [sys.executable, "-m", "toolkit.cli", "apply", str(tmp_path / "plan.csv"), "--yes"]
    argv += ["--journal", str(journal), "--workers", "2", "--no-progress"]
    env = dict(os.environ, **sb.env())

    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: done_calls(journal) >= 10, 60, "10 finished calls in the journal")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = journal_frame(journal)
    done = killed.loc[killed["state"] == "done", ["opportunity_id", "op"]]
    finished = {tuple(pair) for pair in done.values.tolist()}
    assert 10 <= len(finished) < groups
    assert journal_summary(journal)["status"] == "running"  # the killed run never finished
    lock = tmp_path / "j.sqlite.lock"
    assert lock.exists()  # left by the kill: harmless, the flock died with the process

    # A second apply on the same journal resumes it.
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "(resumed)" in rerun.stdout
    assert not lock.exists()  # the clean release of the resumed run removed it
    summary = journal_summary(journal)
    assert summary["status"] == "finished" and summary["calls_by_state"] == {"done": groups}

    expected = {k: set(v) for k, v in before.items()}
    for opp, op, tag in plan.rows[["opportunity_id", "op", "tag"]].itertuples(index=False):
        (expected[opp].add if op == "add" else expected[opp].discard)(tag)
    assert {o["id"]: set(o["tags"]) for o in sb.opportunities()} == expected
    # every (opportunity, op) reached Lever exactly once; finished ones were not called again
    assert len(log) == groups and set(log.values()) == {1}
    assert all(log[key] == 1 for key in finished)


def _expected(before: dict[str, set[str]], plan) -> dict[str, set[str]]:
    expected = {k: set(v) for k, v in before.items()}
    for opp, op, tag in plan.rows[["opportunity_id", "op", "tag"]].itertuples(index=False):
        (expected[opp].add if op == "add" else expected[opp].discard)(tag)
    return expected


@pytest.fixture
def planned(fresh_sandbox, tmp_path):
    """A sandbox with a little latency, a saved propagate plan, and the apply command line."""
    sb = fresh_sandbox(latency_ms=20)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    save_plan(make_plan(fetch_snapshot(client, progress=False), tags=TAGS), tmp_path / "plan.csv")
    plan = load_plan(tmp_path / "plan.csv")
    journal = tmp_path / "j.sqlite"
    argv = [sys.executable, "-m", "toolkit.cli", "apply", str(tmp_path / "plan.csv"), "--yes"]
    argv += ["--journal", str(journal), "--workers", "2", "--no-progress"]
    return sb, plan, journal, argv, dict(os.environ, **sb.env())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failpoint", "done_at_crash"),
    [
        ("before_first_write", 0),  # planning journaled, nothing sent
        ("after_write=1", 0),  # the first write landed, its outcome never journaled
        ("after_write=7", 6),  # the same, midway through the run
    ],
)
def test_crash_at_a_point_then_resume(planned, failpoint, done_at_crash):
    sb, plan, journal, argv, env = planned
    groups = len(plan.calls())
    before = {o["id"]: set(o["tags"]) for o in sb.opportunities()}
    log = write_log(sb)
    crashed = subprocess.run(
        argv,
        env=dict(env, LEVER_TOOLKIT_FAILPOINTS=failpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    states = journal_summary(journal)["calls_by_state"]
    assert states.get("done", 0) <= done_at_crash + 1  # the other worker may have finished one
    assert sum(states.values()) == groups  # every call was journaled before anything was sent
    landed = sum(log.values())
    if failpoint.startswith("after_write"):
        assert landed > states.get("done", 0)  # a write reached Lever, its outcome did not

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = journal_summary(journal)
    assert summary["status"] == "finished" and summary["calls_by_state"] == {"done": groups}
    assert {o["id"]: set(o["tags"]) for o in sb.opportunities()} == _expected(before, plan)
    # every (opportunity, op) reached Lever exactly once: the landed-but-unjournaled write was
    # checked by reading the opportunity on resume, not sent again
    assert len(log) == groups and set(log.values()) == {1}


@pytest.mark.slow
def test_crash_during_verify_then_verify_again(planned):
    _, plan, journal, argv, env = planned
    assert subprocess.run(argv, env=env, capture_output=True, timeout=120).returncode == 0
    verify = [sys.executable, "-m", "toolkit.cli", "verify", str(plan.path)]
    crashed = subprocess.run(
        verify, env=dict(env, LEVER_TOOLKIT_FAILPOINTS="verify_midway"), capture_output=True
    )
    assert crashed.returncode == -signal.SIGKILL
    again = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert journal_summary(journal)["calls_by_state"] == {"done": len(plan.calls())}


@pytest.mark.slow
def test_a_second_apply_on_the_same_journal_refuses_and_changes_nothing(planned):
    sb, plan, journal, argv, env = planned
    log = write_log(sb)
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: done_calls(journal) >= 3, 60, "3 finished calls")
        first.send_signal(signal.SIGSTOP)  # frozen while holding the journal's lock
        # SIGSTOP is delivered asynchronously: read the journal only once every thread of the
        # first run is stopped, or a write it was finishing could land after the snapshot.
        wait_for(lambda: _stopped(first.pid), 10, "the first run to be stopped")
        frozen = journal_frame(journal)
        # The second run is pointed at an address where nothing listens: had it sent any
        # request (a read, a write), it would fail with "cannot reach" instead.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
        second = subprocess.run(
            argv, env=dict(env, LEVER_BASE_URL=dead), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert "another run holds the journal" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert journal_frame(journal).equals(frozen)  # and changed nothing in the journal
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    assert set(log.values()) == {1} and len(log) == len(plan.calls())
