"""The explorer's policy panel: choices per tag, the preview following, saved policy and plan."""

from __future__ import annotations

import html
import os
import stat

import pytest

from lever_sandbox.data import generate_dataset
from toolkit.cli import main
from toolkit.notebook.explorer import TagExplorer
from toolkit.notebook.explorer.panel import ALIAS, CONTACT, LEAVE, NEVER, PolicyPanel
from toolkit.policy import load_policy
from toolkit.policy_draft import draft_policy
from toolkit.remediate.planfile import load_plan
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.frame import Snapshot, frame_from_opportunities
from toolkit.snapshot.store import save_snapshot


@pytest.fixture(scope="module")
def frame():
    opps = generate_dataset(seed=7, contacts=1000).opportunities
    return frame_from_opportunities(opps, with_personal=True)


def rows_of(plan):
    return sorted(map(tuple, plan.rows[["opportunity_id", "op", "tag"]].values.tolist()))


def by_op_tag(explorer):
    return {
        (r["op"], r["tag"]): r["opportunities"] for r in explorer.plan_table().to_dict("records")
    }


def test_prefilled_from_the_draft_and_the_preview_follows(frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ex = TagExplorer(frame, min_opportunities=1)
    panel = PolicyPanel(ex, policy_path="policy.yaml", plan_path="plan.csv")
    draft = draft_policy(frame)
    assert set(panel.policy.contact_level) == set(draft.contact_level)
    assert set(ex.selected_tags) == set(draft.contact_level)

    panel.choose("Rust", NEVER)  # two choices, as the browser test makes them
    panel.choose("DNC", ALIAS + "Do not contact")
    assert "Rust" not in ex.selected_tags and "Rust" in panel.policy.never_touch
    assert panel.policy.family("Do not contact").aliases == ("DNC",)
    preview = by_op_tag(ex)
    expected = make_plan(frame, policy=panel.policy)
    counts = expected.rows.groupby(["op", "tag"]).size().to_dict()
    assert preview == counts  # the preview is the plan the policy makes
    assert ("add", "Rust") not in preview

    # an alias of a tag that is not contact-level: said, the last valid policy kept
    panel.choose("Go", LEAVE)
    panel.choose("K8s", ALIAS + "Go")
    said = html.unescape(panel.message.value)
    assert "Not a valid policy" in said and "alias of 'Go', which is not contact-level" in said
    panel.choose("K8s", LEAVE)
    assert panel.message.value == ""

    path = panel.save_policy()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    saved = load_policy(path)
    assert saved == panel.policy
    assert "lever-tags plan --policy policy.yaml" in panel.next_command.value
    plan_path = panel.save_plan()
    assert "lever-tags apply plan.csv" in panel.next_command.value
    assert rows_of(load_plan(plan_path)) == rows_of(make_plan(frame, policy=saved))

    # and the command line plans exactly what the preview showed
    save_snapshot(Snapshot(frame, {}), "snap.parquet")
    argv = ["plan", "--policy", "policy.yaml", "--snapshot", "snap.parquet", "--out", "cli.csv"]
    assert main(argv) == 0
    assert rows_of(load_plan("cli.csv")) == rows_of(load_plan(plan_path))


def test_prefilled_from_a_policy(frame, tmp_path):
    (tmp_path / "p.yaml").write_text(
        "version: 1\ncontact_level:\n  - Go\n  - tag: Python\n    aliases: [PYTHON]\n"
        "    normalize: true\nnever_touch: [interview]\n"
    )
    policy = load_policy(tmp_path / "p.yaml")
    ex = TagExplorer(frame, policy=policy, min_opportunities=1)
    panel = PolicyPanel(ex, policy=policy, policy_path=tmp_path / "out.yaml")
    assert panel.choices["PYTHON"] == ALIAS + "Python"
    panel.filter.value = "pyth"  # the filter (any case) finds any tag; a row shows its choice
    assert set(panel.shown) == {"Python", "PYTHON", "python", " python"}
    row = panel.dropdowns[panel.shown.index("PYTHON")]
    assert row.value == ALIAS + "Python"
    row.value = LEAVE  # a dropdown is a choice
    assert panel.choices["PYTHON"] == LEAVE and panel.policy.family("Python").aliases == ()
    row.value = ALIAS + "Python"
    assert panel.choices["interview"] == NEVER and panel.choices["Go"] == CONTACT
    assert panel.choices["Rust"] == LEAVE
    assert panel.policy == policy.__class__.from_dict(policy.to_dict(), source="x")
    assert ("remove", "PYTHON") in by_op_tag(ex)  # normalize kept from the given policy
