"""Clean stops: SIGTERM or SIGINT in the middle of `lever-tags apply` finishes the calls in flight,
prints how far it got and the exact command that resumes it; the resume writes each call once."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys

import pytest
from polling import wait_for
from reference import write_log

from toolkit.client import LeverClient
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.journal_views import journal_frame, journal_summary
from toolkit.remediate.outcome import rollback_resume_command
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planner import make_plan
from toolkit.remediate.rollback import rollback
from toolkit.remediate.stops import StopRequest
from toolkit.snapshot.fetch import fetch_snapshot

TAGS = ["Python", "Do not contact", "Boomerang", "Go"]
STOPPED = re.compile(r"stopped after (\d+) of (\d+) calls; journal (.+?); resume with: (.+)$")


def finished_calls(path) -> int:
    if not path.exists():
        return 0
    try:
        return journal_summary(path)["calls_by_state"].get("done", 0)
    except Exception:  # the journal is being created
        return 0


def posts(sb) -> int:
    return sum(sum(v.values()) for k, v in sb.stats()["by_route"].items() if k.startswith("POST"))


def cli(command: str) -> list[str]:
    """The printed `lever-tags ...` command as this interpreter runs it."""
    words = shlex.split(command)
    assert words[0] == "lever-tags"
    return [sys.executable, "-m", "toolkit.cli", *words[1:]]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_apply_stops_cleanly_and_the_printed_command_resumes(
    fresh_sandbox, tmp_path, sig, code
):
    sb = fresh_sandbox(latency_ms=60)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    save_plan(make_plan(fetch_snapshot(client, progress=False), tags=TAGS), tmp_path / "plan.csv")
    groups = len(load_plan(tmp_path / "plan.csv").calls())
    assert groups >= 40
    journal = tmp_path / "j.sqlite"
    argv = [sys.executable, "-m", "toolkit.cli", "apply", str(tmp_path / "plan.csv"), "--yes"]
    argv += ["--journal", str(journal), "--workers", "2", "--no-progress"]
    env = dict(os.environ, **sb.env())
    log = write_log(sb)
    sb.reset_stats()

    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: finished_calls(journal) >= 5, 60, "5 finished calls in the journal")
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    match = STOPPED.search(last)
    assert match, err
    done, total, printed_journal, command = match.groups()
    frame = journal_frame(journal)
    states = frame["state"].value_counts().to_dict()
    assert int(total) == groups == len(frame)
    assert "intent" not in states  # the calls in flight finished and were journaled
    assert int(done) == states.get("done", 0) and 5 <= int(done) < groups
    assert printed_journal == str(journal)
    assert journal_summary(journal)["status"] == "stopped"
    assert posts(sb) == int(done)  # what Lever received is what the journal says was done

    resumed = subprocess.run(cli(command), env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout
    assert journal_summary(journal)["calls_by_state"] == {"done": groups}
    # every (opportunity, op) reached Lever exactly once over both runs
    assert len(log) == groups and set(log.values()) == {1}
    assert posts(sb) == groups


def test_a_rollback_stopped_before_its_first_call_leaves_everything_pending(
    fresh_sandbox, tmp_path
):
    sb = fresh_sandbox(contacts=60)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=TAGS)
    save_plan(plan, tmp_path / "plan.csv")
    apply_plan(client, load_plan(tmp_path / "plan.csv"), dry_run=False, journal_path=tmp_path / "j")
    stop = StopRequest()
    stop.request(signal.SIGTERM)
    sb.reset_stats()
    result = rollback(client, tmp_path / "j", dry_run=False, stop=stop)
    assert result.stopped and not result.ok and posts(sb) == 0
    assert result.calls_progress == (0, len(plan.calls()))
    command = rollback_resume_command(result, tmp_path / "j")
    assert command.endswith(f"--rollback-journal {tmp_path / 'j.rollback.sqlite'}")
    assert journal_summary(tmp_path / "j.rollback.sqlite")["status"] == "stopped"
    again = rollback(client, tmp_path / "j", dry_run=False)  # what the printed command runs
    assert again.ok and not again.stopped and posts(sb) == len(plan.calls())
