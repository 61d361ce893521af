"""`lever-tags plan / apply / verify / rollback` end to end on a sandbox, and their exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_views import journal_summary
from toolkit.remediate.planfile import load_plan


@pytest.fixture
def env(fresh_sandbox, monkeypatch, tmp_path, point_at):
    sb = fresh_sandbox()
    point_at(sb)
    monkeypatch.chdir(tmp_path)
    return sb


def tag_sets(sb):
    return {o["id"]: set(o.get("tags") or []) for o in sb.opportunities()}


def split_pairs_for(tag: str) -> int:
    assert main(["audit", "--out", "audit"]) == 0
    with open("audit/split_pairs.csv") as handle:
        return sum(1 for row in csv.DictReader(handle) if row["tag"] == tag)


def test_the_issue_walkthrough(env, capsys):
    sb = env
    before = tag_sets(sb)
    assert split_pairs_for("Python") > 0
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    out = capsys.readouterr().out
    assert "plan.csv:" in out and "changes" in out
    with open("plan.meta.json") as handle:
        meta = json.load(handle)
    assert meta["snapshot"]["path"] == "plan.snapshot.parquet"
    assert meta["snapshot"]["watermark"] and meta["snapshot"]["fingerprint"]

    sb.reset_stats()
    assert main(["apply", "plan.csv"]) == 0  # dry run
    assert "nothing was written" in capsys.readouterr().out
    assert sb.stats()["writes"] == 0

    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0
    out = capsys.readouterr().out
    n = len(load_plan("plan.csv").rows)
    assert f"apply: {n} applied, 0 failed" in out
    assert main(["verify", "plan.csv"]) == 0
    assert f"all {n} rows hold" in capsys.readouterr().out
    assert split_pairs_for("Python") == 0

    assert main(["rollback", "--journal", "j.sqlite"]) == 0  # dry run
    assert tag_sets(sb) != before
    assert main(["rollback", "--journal", "j.sqlite", "--yes"]) == 0
    assert tag_sets(sb) == before
    assert main(["verify", "plan.csv"]) == 1
    assert "do not hold" in capsys.readouterr().out


def test_plan_modes_and_policy(env, tmp_path, capsys):
    assert main(["snapshot", "--out", "snap.parquet"]) == 0
    assert main(["plan", "--mode", "remove", "--tag", "Go", "--snapshot", "snap.parquet",
                 "--out", "remove.csv"]) == 0  # fmt: skip
    assert set(load_plan("remove.csv").rows["op"]) == {"remove"}
    assert main(["plan", "--mode", "rename", "--rename", "python=Python", "--snapshot",
                 "snap.parquet", "--out", "rename.csv"]) == 0  # fmt: skip
    rename = load_plan("rename.csv")
    assert set(rename.rows["op"]) == {"add", "remove"}
    assert not (tmp_path / "rename.snapshot.parquet").exists()  # planned offline
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ncontact_level: [Python]\nnever_touch: [Boomerang]\n")
    assert main(["plan", "--policy", str(policy), "--snapshot", "snap.parquet",
                 "--out", "policy.csv"]) == 0  # fmt: skip
    assert set(load_plan("policy.csv").rows["tag"]) == {"Python"}
    # explicit tags with a policy: its never_touch list still guards them
    assert main(["plan", "--tag", "Python", "--tag", "Boomerang", "--policy", str(policy),
                 "--snapshot", "snap.parquet", "--out", "policy.csv"]) == 0  # fmt: skip
    plan = load_plan("policy.csv")
    assert set(plan.rows["tag"]) == {"Python"}
    assert "policy: never_touch" in set(plan.skipped["reason"])
    assert "skipped:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--out", "p.csv"],
        ["plan", "--rename", "a=b", "--out", "p.csv"],
        ["plan", "--mode", "rename", "--rename", "ab", "--out", "p.csv"],
        ["apply", "missing.csv"],
        ["apply", "bad.csv", "--yes"],
        ["apply", "plan.csv", "--yes", "--max-changes", "1"],
        ["apply", "plan.csv", "--workers", "0"],
        ["rollback", "--journal", "missing.sqlite", "--yes"],
    ],
)
def test_bad_input_exits_2_with_one_line(env, capsys, argv):
    sb = env
    tmp = Path.cwd()
    (tmp / "bad.csv").write_text("opportunity_id,contact_id,op,tag\no1,c,merge,x\n")
    (tmp / "plan.csv").write_text("opportunity_id,contact_id,op,tag\no1,c,add,x\no2,c,add,x\n")
    sb.reset_stats()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lever-tags: error:") and "\n" not in err
    assert sb.stats()["writes"] == 0


def test_locked_journal_exits_2(env, capsys):
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    with Journal("j.sqlite"):
        assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 2
    assert "another run holds the journal" in capsys.readouterr().err
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0


def test_failed_changes_exit_1_and_wrong_key_exits_2(env, monkeypatch, capsys):
    sb = env
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    gone = load_plan("plan.csv").rows.iloc[0]["opportunity_id"]
    sb.delete_opportunity(gone)
    assert main(["apply", "plan.csv", "--yes"]) == 1  # default journal beside the plan
    out = capsys.readouterr().out
    assert "1 not found" in out and gone in out
    assert journal_summary("plan.journal.sqlite")["not_found"] == 1
    assert main(["verify", "plan.csv"]) == 1
    assert "not found" in capsys.readouterr().out

    monkeypatch.setenv("LEVER_API_KEY", "wrong-key")
    assert main(["apply", "plan.csv", "--yes", "--journal", "other.sqlite"]) == 2
    err = capsys.readouterr().err
    assert "401" in err and "wrong-key" not in err


def test_max_changes_dry_run_exits_0_and_says_the_real_run_would_be_refused(env, capsys):
    sb = env
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    capsys.readouterr()
    sb.reset_stats()
    assert main(["apply", "plan.csv", "--max-changes", "1"]) == 0
    out = capsys.readouterr().out
    assert "nothing was written" in out
    assert "a real run would be refused by --max-changes 1" in out
    assert main(["apply", "plan.csv", "--yes", "--max-changes", "1"]) == 2
    assert "--max-changes 1" in capsys.readouterr().err
    assert sb.stats()["writes"] == 0 and not Path("plan.journal.sqlite").exists()


def test_retry_failed_after_a_bad_perform_as(env, capsys):
    sb = env
    nobody = sb.users[1]["id"]  # deactivated: GET /users/{id} finds it, the writes refuse it
    sb.deactivate_user(nobody)
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    n = len(load_plan("plan.csv").rows)
    user = sb.engine.state.users[0]["id"]
    assert main(["apply", "plan.csv", "--yes", "--perform-as", nobody]) == 1
    out = capsys.readouterr().out
    assert f"0 applied, {n} failed" in out and "--retry-failed" in out
    assert main(["apply", "plan.csv", "--yes", "--perform-as", user]) == 1
    out = capsys.readouterr().out
    assert "0 write calls" in out and "--retry-failed" in out and user in out
    assert main(["apply", "plan.csv", "--yes", "--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert f"{n} applied, 0 failed" in out and "retried" in out
    assert journal_summary("plan.journal.sqlite")["params"]["perform_as"] == user
    assert main(["verify", "plan.csv"]) == 0


def test_verify_after_rows_dropped_for_drift_exits_0_and_says_why(env, capsys):
    sb = env
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    plan = load_plan("plan.csv")
    rows = plan.rows
    by_contact: dict[str, list[str]] = {}
    for opp, entry in plan.before.items():
        by_contact.setdefault(entry["contact_id"], []).append(opp)
    # the only source of the tag of one contact loses it: its add is dropped on purpose
    row = next(
        r
        for r in rows.itertuples(index=False)
        if sum("Python" in plan.before[o]["tags"] for o in by_contact[r.contact_id]) == 1
        and (rows["contact_id"] == r.contact_id).sum() == 1
    )
    source = next(o for o in by_contact[row.contact_id] if "Python" in plan.before[o]["tags"])
    sb.set_tags(source, [t for t in plan.before[source]["tags"] if t != "Python"])
    assert main(["apply", "plan.csv", "--yes"]) == 0
    capsys.readouterr()
    assert main(["verify", "plan.csv"]) == 0  # the default journal beside the plan
    out = capsys.readouterr().out
    assert "not written on purpose: 1 (drift)" in out
    assert main(["verify", "plan.csv", "--journal", "plan.journal.sqlite", "--out", "v.csv"]) == 0
    with open("v.csv") as handle:
        assert [r["reason"] for r in csv.DictReader(handle)] == ["dropped (drift)"]
    # a written row that no longer holds still fails
    other = rows[rows["opportunity_id"] != row.opportunity_id].iloc[0]["opportunity_id"]
    sb.set_tags(other, [t for t in tag_sets(sb)[other] if t != "Python"])
    assert main(["verify", "plan.csv"]) == 1
    out = capsys.readouterr().out
    assert "1 of" in out and "do not hold" in out and "not written on purpose: 1 (drift)" in out
    assert main(["verify", "plan.csv", "--journal", "missing.sqlite"]) == 2
