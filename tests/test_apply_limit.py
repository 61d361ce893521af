"""`lever-tags apply --limit N`: a staged run the same command resumes, each call written once."""

from __future__ import annotations

from toolkit.cli import main
from toolkit.config import NOTEBOOKS_DIR
from toolkit.remediate.journal import Journal
from toolkit.remediate.planfile import load_plan


def write_calls(sb) -> int:
    """addTags and removeTags requests the sandbox answered 200."""
    routes = sb.stats()["by_route"]
    return sum(n for route, by in routes.items() if route.endswith("Tags") for s, n in by.items()
               if s == "200")  # fmt: skip


def test_limit_50_then_the_same_command_writes_each_call_once(env, capsys):
    sb = env
    policy = str(NOTEBOOKS_DIR / "demo-policy.yaml")  # adds and (normalize) removes
    assert main(["plan", "--policy", policy, "--out", "plan.csv"]) == 0
    plan = load_plan("plan.csv")
    calls = len(plan.calls())
    assert calls > 100
    capsys.readouterr()

    assert main(["apply", "plan.csv", "--limit", "50"]) == 0  # a dry run says what --yes does
    assert f"the first 50 of {calls} calls" in capsys.readouterr().out
    sb.reset_stats()
    argv = ["apply", "plan.csv", "--yes", "--max-changes", "1000"]
    assert main([*argv, "--limit", "50"]) == 0  # stops cleanly: exit 0
    out = capsys.readouterr().out
    assert "stopped after --limit 50 calls as asked" in out
    assert f"{calls - 50} calls" in out and "run the same command without --limit" in out
    assert sb.stats()["writes"] == 50 == write_calls(sb)
    with Journal("plan.journal.sqlite", lock=False, create=False) as journal:
        assert journal.run()["status"] == "limited"

    assert main(argv) == 0  # the same command without --limit resumes
    out = capsys.readouterr().out
    assert "(resumed)" in out and "stopped after" not in out
    assert sb.stats()["writes"] == calls == write_calls(sb)  # each call written once
    with Journal("plan.journal.sqlite", lock=False, create=False) as journal:
        assert journal.run()["status"] == "finished"
        frame = journal.calls_frame()
    assert (frame["state"] == "done").sum() == calls and (frame["attempts"] == 1).all()
    assert main(["verify", "plan.csv"]) == 0
    assert main(argv) == 0  # once more: nothing left to write
    assert sb.stats()["writes"] == calls


def test_limit_bad_input_and_max_changes(env, capsys):
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    rows = len(load_plan("plan.csv").rows)
    assert main(["apply", "plan.csv", "--yes", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
    # a plan over --max-changes can be staged: N calls within it are allowed
    assert main(["apply", "plan.csv", "--yes", "--max-changes", str(rows - 1)]) == 2
    assert "stage it with --limit N" in capsys.readouterr().err
    env.reset_stats()
    assert main(["apply", "plan.csv", "--yes", "--max-changes", "2", "--limit", "2"]) == 0
    assert env.stats()["writes"] == 2
    assert main(["apply", "plan.csv", "--yes", "--max-changes", "1", "--limit", "2"]) == 2
    assert "lower --limit" in capsys.readouterr().err
