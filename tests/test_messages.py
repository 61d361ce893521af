"""Messages that tell the truth (issue 23): drift lines leave out the run's own writes, a
rollback says what it removed and re-added, and the CLI's small promises hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from toolkit.cli import build_parser, main
from toolkit.client import LeverClient
from toolkit.config import PROJECT_ROOT
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.fetch import fetch_snapshot


def test_rollback_right_after_apply_counts_no_drift_and_says_removed(env, capsys):
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    n = len(load_plan("plan.csv").rows)
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0
    capsys.readouterr()

    assert main(["rollback", "--journal", "j.sqlite"]) == 0  # dry run
    out = capsys.readouterr().out
    assert "0 changed since the run" in out, out
    assert f"({n} to remove, 0 to re-add)" in out

    env.set_tags(load_plan("plan.csv").rows["opportunity_id"].iloc[0], ["someone else"])
    assert main(["rollback", "--journal", "j.sqlite"]) == 0
    assert "1 changed since the run" in capsys.readouterr().out  # a real change still shows

    assert main(["rollback", "--journal", "j.sqlite", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "rollback: " in out and " removed, 0 re-added, 0 failed" in out
    assert "applied" not in out


def test_rollback_of_a_remove_says_re_added(env, capsys):
    assert main(["plan", "--mode", "remove", "--tag", "Go", "--out", "rm.csv"]) == 0
    n = len(load_plan("rm.csv").rows)
    assert n > 0
    assert main(["apply", "rm.csv", "--yes", "--journal", "j.sqlite"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--journal", "j.sqlite", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"rollback: 0 removed, {n} re-added, 0 failed" in out
    assert "0 changed since the run" in out


def test_a_resumed_apply_does_not_count_its_own_writes_as_drift(fresh_sandbox, tmp_path):
    sb = fresh_sandbox()
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=["Python", "Go"])
    save_plan(plan, tmp_path / "plan.csv")
    argv = [sys.executable, "-m", "toolkit.cli", "apply", str(tmp_path / "plan.csv"), "--yes"]
    argv += ["--journal", str(tmp_path / "j.sqlite"), "--workers", "1", "--no-progress"]
    env = dict(os.environ, **sb.env())
    crashed = subprocess.run(
        argv, env=dict(env, LEVER_TOOLKIT_FAILPOINTS="after_write=6"), capture_output=True
    )
    assert crashed.returncode == -signal.SIGKILL
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "(resumed)" in rerun.stdout
    assert "; 0 changed since the plan" in rerun.stdout, rerun.stdout


def test_report_without_a_credential_exits_2_before_any_kernel(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("LEVER_API_KEY", raising=False)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    out_root = tmp_path / "reports"
    for notebook in ("audit", "remediate", "explore"):
        assert main(["report", notebook, "--out-root", str(out_root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no Lever credential: set LEVER_API_KEY" in err
    assert not out_root.exists()  # no run folder left behind


def test_sync_docs_report_example_parses():
    """docs/sync.md's `lever-tags report sync-activity -p ...` example is a valid command line."""
    text = (PROJECT_ROOT / "docs/sync.md").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if "lever-tags report sync-activity -p" in x)
    command = line.split("`")[1].split()
    args = build_parser().parse_args(command[1:])
    assert args.parameter == [["journal_path", "lever-sync.sqlite"]]


def test_docs_describe_the_drift_check_as_a_read_by_contact():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    guide = (PROJECT_ROOT / "docs/guide.md").read_text(encoding="utf-8")  # the README's details
    notebook = (PROJECT_ROOT / "notebooks/03-remediate.ipynb").read_text(encoding="utf-8")
    assert "updated_at_start` listing" not in readme
    for text in (guide, notebook):
        assert "updated_at_start` listing" not in text
        assert "by `contact_id`" in text
    assert "`lever-api.md`" not in readme  # not in the repository


def test_users_lists_ids_for_perform_as(env, capsys):
    users = env.users
    assert main(["users"]) == 0
    out = capsys.readouterr().out
    for user in users:
        assert user["id"] in out and user["email"] in out
    assert main(["users", "--email", users[1]["email"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith(users[1]["id"] + "\t" + users[1]["name"])
    assert main(["users", "--email", "nobody@example.com"]) == 0
    assert "no user with email nobody@example.com" in capsys.readouterr().out


def test_users_without_a_credential_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("LEVER_API_KEY", raising=False)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    assert main(["users"]) == 2
    assert "no Lever credential" in capsys.readouterr().err
