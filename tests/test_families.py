"""Tag families in the policy: aliases, normalize, patterns; in the audit, plan, sync and apply."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from lever_sandbox.data import INTEGRATION_ALIASES
from toolkit.audit import missing_assignments, run_audit, tag_variants
from toolkit.audit.families import TagFamily, family_changes
from toolkit.audit.report import focus_summary
from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError
from toolkit.policy import Policy
from toolkit.remediate.outcome import project_plan
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.planner import make_plan
from toolkit.sync.contact import ContactChecker
from toolkit.sync.store import SyncJournal

DNC = {"tag": "Do not contact", "aliases": ["DNC", "Do Not Contact"]}


def frame(rows):
    return pd.DataFrame(
        {
            "opportunity_id": [r[0] for r in rows],
            "contact_id": [r[1] for r in rows],
            "tags": [list(r[2]) for r in rows],
            "archived": False,
            "anonymized": False,
            "created_at": 1,
            "updated_at": 2,
        }
    )


ACCOUNT = frame(
    [
        ("a1", "ann", ["DNC"]),  # ann carries only an alias
        ("a2", "ann", []),
        ("b1", "bob", ["Do Not Contact"]),  # bob: only an alias, on his single opportunity
        ("c1", "cat", ["Do not contact", "DNC"]),
        ("c2", "cat", ["Do not contact"]),
        ("d1", "dan", ["Skill: Go"]),
        ("d2", "dan", ["Skill: Rust", "Skill: Go"]),
        ("e1", "eve", ["Python"]),
        ("e2", "eve", []),
    ]
)


def tags_after(plan, account=ACCOUNT):
    projected = project_plan(account, plan)
    return dict(zip(projected["opportunity_id"], map(set, projected["tags"]), strict=True))


def policy(*entries, **extra):
    return Policy.from_dict({"version": 1, "contact_level": list(entries), **extra})


def test_a_family_closes_the_gaps_of_a_person_carrying_only_an_alias():
    plan = make_plan(ACCOUNT, policy=policy(DNC))
    after = tags_after(plan)
    for opp in ("a1", "a2", "b1", "c1", "c2"):
        assert "Do not contact" in after[opp]
    assert after["a1"] >= {"DNC"}  # without normalize the alias stays
    assert plan.meta["families"] == [{**DNC, "normalize": False}]
    # the plan's rows are exactly what the family function resolves
    changes = family_changes(ACCOUNT, [TagFamily("Do not contact", ("DNC", "Do Not Contact"))])
    columns = ["opportunity_id", "op", "tag"]
    assert sorted(plan.rows[columns].values.tolist()) == sorted(changes[columns].values.tolist())


def test_normalize_leaves_only_the_canonical_spelling_adds_before_removes():
    plan = make_plan(ACCOUNT, policy=policy({**DNC, "normalize": True}))
    after = tags_after(plan)
    members = {"DNC", "Do Not Contact", "Do not contact"}
    for opp in ("a1", "a2", "b1", "c1", "c2"):
        assert after[opp] & members == {"Do not contact"}
    calls = plan.calls()
    a1 = calls[calls["opportunity_id"] == "a1"]["op"].tolist()
    assert a1 == ["add", "remove"]  # one plan; on each opportunity the add comes first
    # the audit counts families: after the plan nothing is left to fill
    pol = policy({**DNC, "normalize": True})
    before = focus_summary(run_audit(ACCOUNT, policy=pol), pol)
    assert before["split_pairs"] == 3  # ann, bob (only aliases), cat (an alias to remove)
    done = project_plan(ACCOUNT, plan)
    assert focus_summary(run_audit(done, policy=pol), pol)["split_pairs"] == 0


def test_a_plain_tag_is_a_family_of_one_with_the_old_numbers():
    pol = policy("Python", "Do not contact")
    result = run_audit(ACCOUNT, policy=pol)
    missing = missing_assignments(ACCOUNT)
    wanted = missing[missing["tag"].isin(["Python", "Do not contact"])]
    assert focus_summary(result, pol)["missing_assignments"] == len(wanted) == 1  # e2 only
    assert "b1" not in set(make_plan(ACCOUNT, policy=pol).rows["opportunity_id"])


def test_pattern_families_each_tag_on_its_own():
    pol = policy({"pattern": "Skill: *"}, never_touch=["Skill: Rust"])
    plan = make_plan(ACCOUNT, policy=pol)
    assert plan.meta["tags"] == ["Skill: Go"]  # Skill: Rust is never_touch
    assert plan.rows.values.tolist() == []  # dan has Skill: Go on both
    pol = policy({"pattern": "Skill: *"})
    plan = make_plan(ACCOUNT, policy=pol)
    rows = plan.rows[["opportunity_id", "op", "tag"]].values.tolist()
    assert rows == [["d1", "add", "Skill: Rust"]]
    assert pol.decision("Skill: Anything") == "contact_level" and "Skill: Go" in pol
    assert "skill: go" not in pol  # exact strings: patterns are case sensitive
    result = run_audit(ACCOUNT, policy=pol)
    assert result.options["contact_level"] == ["Skill: Go", "Skill: Rust"]
    assert focus_summary(result, pol)["split_pairs"] == 1
    with pytest.raises(ConfigurationError, match="patterns match no tag"):
        make_plan(ACCOUNT, policy=policy({"pattern": "Team: *"}))


def test_policy_round_trip_and_bad_families():
    pol = policy({**DNC, "normalize": True}, "Go", {"pattern": "Skill: *"})
    assert Policy.from_dict(pol.to_dict()) == pol
    assert pol.contact_level == ("Do not contact", "Go") and pol.patterns == ("Skill: *",)
    bad = [
        ([{"tag": "A", "aliases": ["B"]}, "B"], "alias of 'A' and also its own tag"),
        ([{"tag": "A", "aliases": ["C"]}, {"tag": "B", "aliases": ["C"]}], "stands for 'A'"),
        ([{"tag": "A"}, {"tag": "A", "aliases": ["x"]}], "given twice"),
        ([{"tag": "A", "alias": ["x"]}], "must be a tag string, a family"),
        ([{"pattern": " "}], "must be a tag string, a family"),
    ]
    for entries, message in bad:
        with pytest.raises(ConfigurationError, match=message):
            policy(*entries)
    with pytest.raises(ConfigurationError, match="both 'contact_level' and 'never_touch'"):
        policy(DNC, never_touch=["DNC"])


def test_variants_fold_punctuation():
    account = frame([("o1", "a", ["Do not contact"]), ("o2", "b", ["do-not-contact"]),
                     ("o3", "c", ["C++"]), ("o4", "d", ["C"])])  # fmt: skip
    groups = tag_variants(account).groupby("group")["tag"].apply(sorted).to_dict()
    assert groups == {"do not contact": ["Do not contact", "do-not-contact"]}


# -- on the sandbox -------------------------------------------------------------------------------


def alias_only_people(sb):
    only, _ = INTEGRATION_ALIASES["Do not contact"]
    by_contact = {}
    for opp in sb.opportunities():
        by_contact.setdefault(opp.get("contact"), []).append(set(opp["tags"]))
    return {
        c
        for c, tags in by_contact.items()
        if c and any(only in t for t in tags) and not any("Do not contact" in t for t in tags)
    }


def test_sandbox_plan_apply_verify_with_a_normalizing_family(env, tmp_path, capsys):
    sb = env
    people = alias_only_people(sb)
    assert people  # the sandbox plants people who carry only "DNC"
    (tmp_path / "policy.yaml").write_text(
        "version: 1\ncontact_level:\n  - tag: Do not contact\n"
        "    aliases: [DNC, do-not-contact, Do Not Contact]\n    normalize: true\n"
    )
    assert main(["audit", "--policy", "policy.yaml", "--out", "before"]) == 0
    with open("before/summary.json") as handle:
        assert json.load(handle)["policy"]["contact_level_split_pairs"] > 0
    with open("before/policy_gaps.csv", newline="") as handle:
        gap_people = {row["contact_id"] for row in csv.DictReader(handle)}
    assert people <= gap_people  # a person with only an alias counts as split
    assert main(["plan", "--policy", "policy.yaml", "--out", "plan.csv"]) == 0
    plan = load_plan("plan.csv")
    assert set(plan.rows["op"]) == {"add", "remove"}
    assert main(["apply", "plan.csv", "--yes"]) == 0
    assert main(["verify", "plan.csv"]) == 0
    for opp in sb.opportunities():
        tags = set(opp["tags"])
        if opp.get("contact") in people and not opp.get("isAnonymized"):
            assert "Do not contact" in tags
        if not opp.get("isAnonymized"):
            assert not tags & {"DNC", "do-not-contact", "Do Not Contact"}
    capsys.readouterr()
    assert main(["audit", "--policy", "policy.yaml", "--out", "after"]) == 0
    with open("after/summary.json") as handle:
        section = json.load(handle)["policy"]
    assert section["contact_level_alias_removals"] == 0
    # what remains is only what the plan may not touch (anonymized opportunities)
    assert section["contact_level_split_pairs"] == len(
        {c for c, t in zip(plan.skipped["contact_id"], plan.skipped["tag"], strict=True) if t}
    )


def test_sync_fills_a_family(env, tmp_path):
    sb = env
    person = sorted(alias_only_people(sb))[0]
    opps = [o["id"] for o in sb.opportunities() if o.get("contact") == person]
    pol = policy({**DNC, "aliases": ["DNC"], "normalize": True})
    with SyncJournal(tmp_path / "sync.sqlite") as journal:
        checker = ContactChecker(LeverClient.from_env(), pol, journal, dry_run=False)
        checker.check(person)
    for opp in opps:
        tags = set(sb.opportunity(opp)["tags"])
        assert "Do not contact" in tags and "DNC" not in tags


def test_explorer_preview_follows_a_family():
    from toolkit.notebook.explorer import TagExplorer  # ipywidgets: only this test needs it

    pol = policy({**DNC, "normalize": True})
    people = ACCOUNT.assign(name="x", email="x@example.com")
    ex = TagExplorer(people, policy=pol, min_opportunities=1)  # bob has one opportunity
    assert ex.selected_tags == ["Do not contact"]
    table = ex.plan_table()
    plan = make_plan(ACCOUNT, policy=pol)
    expected = plan.rows.groupby(["op", "tag"]).size().to_dict()
    assert {(r["op"], r["tag"]): r["opportunities"] for r in table.to_dict("records")} == expected
    assert ex.preview()["counts"]["remove"] == 3  # a1, b1, c1 lose their alias
