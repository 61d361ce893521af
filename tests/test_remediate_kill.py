"""kill -9 in the middle of `lever-tags apply`, then resume: the end state is right and no
finished call is sent again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from toolkit.client import LeverClient
from toolkit.journal import journal_frame, journal_summary
from toolkit.plan import load_plan, make_plan
from toolkit.snapshot import fetch_snapshot

TAGS = ["Python", "Do not contact", "Boomerang", "Go"]


def write_log(sb) -> Counter:
    """Effective tag writes per (opportunity, op), counted inside the sandbox (test-side hook)."""
    log: Counter = Counter()
    state = sb.engine.state
    original = state.change_tags

    def change_tags(opp_id, add=(), remove=()):
        result = original(opp_id, add=add, remove=remove)
        log[(opp_id, "add" if add else "remove")] += 1
        return result

    state.change_tags = change_tags
    return log


def wait_for(condition, timeout: float, what: str):
    """Poll a condition (not a sleep for luck): return its first truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


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
    plan.save(tmp_path / "plan.csv")
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

    # A second apply on the same journal resumes it.
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "(resumed)" in rerun.stdout
    summary = journal_summary(journal)
    assert summary["status"] == "finished" and summary["calls_by_state"] == {"done": groups}

    expected = {k: set(v) for k, v in before.items()}
    for opp, op, tag in plan.rows[["opportunity_id", "op", "tag"]].itertuples(index=False):
        (expected[opp].add if op == "add" else expected[opp].discard)(tag)
    assert {o["id"]: set(o["tags"]) for o in sb.opportunities()} == expected
    # every (opportunity, op) reached Lever exactly once; finished ones were not called again
    assert len(log) == groups and set(log.values()) == {1}
    assert all(log[key] == 1 for key in finished)
