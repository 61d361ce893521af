"""`lever-tags policy draft`: a valid policy drafted from the evidence, on the sandbox."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lever_sandbox.data import CONTACT_LEVEL_TAGS, HOSTILE_TAGS, generate_dataset
from toolkit.cli import main
from toolkit.demo import DEMO_CONTACTS, DEMO_SEED
from toolkit.policy import load_policy
from toolkit.policy_draft import draft_policy, yaml_quote
from toolkit.snapshot.frame import frame_from_opportunities


@pytest.fixture
def account(fresh_sandbox, monkeypatch, tmp_path):
    """The sandbox's own account (`lever-tags sandbox`: seed 7, 1000 contacts)."""
    sb = fresh_sandbox(contacts=1000)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return sb


def commented_tags(text: str) -> list[str]:
    """The tags listed in comments (`#   - "tag"  # why`)."""
    return [
        yaml.safe_load(line.removeprefix("#   - ").split("  # ")[0])
        for line in text.splitlines()
        if line.startswith("#   - ")
    ]


def test_draft_names_exactly_the_sandbox_contact_level_tags(account, capsys):
    sb = account
    sb.reset_stats()
    assert main(["policy", "draft", "--out", "policy.yaml"]) == 0
    out = capsys.readouterr().out
    assert "policy.yaml: 10 contact-level tags" in out
    assert "lever-tags plan --policy policy.yaml --snapshot policy.snapshot.parquet" in out
    assert sb.stats()["writes"] == 0  # nothing written to Lever

    policy = load_policy("policy.yaml")  # a valid policy file
    assert sorted(policy.contact_level) == sorted(CONTACT_LEVEL_TAGS)
    text = Path("policy.yaml").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("  - "):  # each contact-level tag with its numbers
            assert "opportunities;" in line and "clustering" in line
    listed = commented_tags(text)
    assert "Full-time" in listed and "interview" in listed  # opportunity-level: comments only
    assert not set(listed) & set(policy.contact_level)
    python = next(line for line in text.splitlines() if line.startswith('  - "Python"'))
    assert "variants:" in python and '"PYTHON"' in python  # beside its canonical spelling
    assert "PYTHON" not in listed
    assert Path("policy.snapshot.parquet").is_file()  # fetched as plan does
    assert stat.S_IMODE(os.stat("policy.yaml").st_mode) == 0o600


def test_draft_on_the_demo_account_names_exactly_the_sandbox_contact_level_tags(
    fresh_sandbox, monkeypatch, tmp_path, capsys
):
    """`make demo`'s account (toolkit.demo's seed and size): the draft's contact_level is the
    sandbox's own list of person tags (its catalog, lever_sandbox.data), nothing more or less."""
    sb = fresh_sandbox(seed=DEMO_SEED, contacts=DEMO_CONTACTS)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["policy", "draft", "--out", "policy.yaml"]) == 0
    assert f"policy.yaml: {len(CONTACT_LEVEL_TAGS)} contact-level tags" in capsys.readouterr().out
    assert set(load_policy("policy.yaml").contact_level) == set(CONTACT_LEVEL_TAGS)


def test_a_smaller_account_weak_evidence_stays_unclear():
    """On a smaller account (300 contacts, the demo's size before) few people with several
    opportunities carry "Diversity pipeline" (3) and "Do not contact" (5, some of them under the
    integration spellings DNC and do-not-contact): the draft lists them as unclear with their
    numbers, never as contact-level, and names every other contact-level tag and nothing else.
    (Why the demo's account has 500 contacts: toolkit.demo.DEMO_CONTACTS.)"""
    frame = frame_from_opportunities(generate_dataset(seed=7, contacts=300).opportunities)
    draft = draft_policy(frame)
    weak = {"Diversity pipeline", "Do not contact"}
    assert set(draft.contact_level) == set(CONTACT_LEVEL_TAGS) - weak
    assert weak <= set(draft.unclear)
    line = next(x for x in draft.text.splitlines() if '"Diversity pipeline"' in x)
    assert line.startswith("#") and "too few contacts" in line and "clustering 0.27" in line


def test_never_overwrites_without_force(account, capsys):
    sb = account
    with open("policy.yaml", "w", encoding="utf-8") as handle:
        handle.write("version: 1\ncontact_level: [Mine]\n")
    sb.reset_stats()
    assert main(["policy", "draft", "--out", "policy.yaml"]) == 2
    err = capsys.readouterr().err
    assert "policy.yaml exists" in err and "--force" in err and len(err.splitlines()) == 1
    assert sb.stats()["requests"] == 0  # refused before any fetch
    assert load_policy("policy.yaml").contact_level == ("Mine",)
    assert main(["policy", "draft", "--out", "policy.yaml", "--force"]) == 0
    assert "Python" in load_policy("policy.yaml").contact_level


def test_offline_from_a_snapshot_and_the_audit_points_at_it(account, capsys):
    assert main(["snapshot", "--out", "snap.parquet"]) == 0
    assert main(["audit", "--snapshot", "snap.parquet", "--out", "audit"]) == 0
    out = capsys.readouterr().out
    assert "lever-tags policy draft --snapshot snap.parquet --out policy.yaml" in out
    account.reset_stats()
    assert main(["policy", "draft", "--snapshot", "snap.parquet", "--out", "policy.yaml"]) == 0
    assert account.stats()["requests"] == 0
    assert not Path("policy.snapshot.parquet").exists()
    capsys.readouterr()
    assert main(["audit", "--snapshot", "snap.parquet", "--policy", "policy.yaml",
                 "--out", "audit2"]) == 0  # fmt: skip
    assert "policy draft" not in capsys.readouterr().out  # a policy given: no pointer


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--snapshot", "missing.parquet", "--out", "p.yaml"], "missing.parquet"),
        (["--out", "nowhere/p.yaml"], "folder of --out does not exist"),
        (["--out", "."], "is a folder"),
    ],
)
def test_bad_input(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["policy", "draft", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.yaml").exists()


def test_hostile_tags_stay_inside_their_comment():
    tags = [*HOSTILE_TAGS, "a\nnever_touch: [Python]", "b\u2028contact_level: [x]", "x" * 300]
    rows = []
    for i in range(60):  # every tag on half of 6 people's opportunities: all contact-level
        contact = f"c{i // 2}"
        rows.append((f"o{i}", contact, [tags[(i // 2) % len(tags)]] if i % 2 == 0 else []))
    rows += [(f"p{i}", f"d{i // 2}", ["Python"]) for i in range(12)]
    frame = pd.DataFrame(rows, columns=["opportunity_id", "contact_id", "tags"])
    draft = draft_policy(frame)
    policy = yaml.safe_load(draft.text)
    assert set(policy) == {"version", "contact_level", "never_touch", "include_archived",
                           "skip_anonymized"}  # fmt: skip
    assert policy["never_touch"] == []
    assert policy["contact_level"] == list(draft.contact_level)
    assert "x" * 300 in draft.unwritable and "\x1b[31mred alert\x1b[0m" in draft.unwritable
    for tag in tags:
        assert yaml.safe_load(yaml_quote(tag)) == tag
