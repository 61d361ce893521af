"""The plan: pure logic against hand-built snapshot frames, and the plan file contract."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from toolkit.remediate.plan import (
    PLAN_COLUMNS,
    REASON_ANONYMIZED,
    REASON_ARCHIVED,
    REASON_ARCHIVED_SOURCE,
    REASON_DRIFT_ABSENT,
    REASON_DRIFT_PRESENT,
    REASON_DRIFT_SOURCE,
    REASON_DRIFT_VARIANT,
    REASON_NEVER_TOUCH,
    PlanError,
)
from toolkit.remediate.planfile import load_plan, meta_path, save_plan, skipped_path
from toolkit.remediate.planner import make_plan, replan
from toolkit.snapshot.frame import REFRESH_OVERLAP_MS, frame_from_opportunities


def opp(opp_id, contact, tags, *, archived=False, anonymized=False, updated=1000):
    return {
        "id": opp_id,
        "contact": contact,
        "tags": list(tags),
        "archived": {"archivedAt": 500, "reason": "r"} if archived else None,
        "isAnonymized": anonymized,
        "createdAt": 100,
        "updatedAt": updated,
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    return frame_from_opportunities(
        [
            # c1: Python on o1 only; Go everywhere; posting tag differs
            opp("o1", "c1", ["Python", "Go", "Engineer", "Do not contact"]),
            opp("o2", "c1", ["Go", "Designer"]),
            opp("o3", "c1", ["Go"], archived=True),
            # c2: Python on an archived opportunity only
            opp("o4", "c2", ["Python"], archived=True),
            opp("o5", "c2", []),
            # c3: anonymized target
            opp("o6", "c3", ["Python", "Do not contact"]),
            opp("o7", "c3", [], anonymized=True, updated=2000),
            # no contact: never split
            opp("o8", None, ["Python"]),
            # variants
            opp("o9", "c4", ["python", "Go"]),
            opp("o10", "c4", ["python", "Python"]),
        ]
    )


def rows(plan) -> list[list[str]]:
    return plan.rows[PLAN_COLUMNS].values.tolist()


def test_propagate_adds_every_missing_assignment_once(frame):
    plan = make_plan(frame, tags=["Python"])
    assert rows(plan) == [
        ["o2", "c1", "add", "Python"],
        ["o3", "c1", "add", "Python"],
        ["o5", "c2", "add", "Python"],
        ["o9", "c4", "add", "Python"],
    ]
    assert plan.skipped[["opportunity_id", "reason"]].values.tolist() == [["o7", REASON_ANONYMIZED]]
    assert plan.meta["mode"] == "propagate"
    assert plan.meta["tags"] == ["Python"]
    assert plan.meta["snapshot"]["watermark"] == 2000 - REFRESH_OVERLAP_MS  # a margin before
    assert plan.meta["snapshot"]["fingerprint"]
    assert plan.meta["counts"] == {
        "rows": 4,
        "add": 4,
        "remove": 0,
        "opportunities": 4,
        "calls": 4,
        "skipped": 1,
    }


def test_propagate_records_the_contact_tags_it_assumed(frame):
    plan = make_plan(frame, tags=["Python"])
    # Every opportunity of every touched contact (sources too), with contact and tags.
    assert plan.before["o1"] == {
        "contact_id": "c1",
        "tags": ["Python", "Go", "Engineer", "Do not contact"],
    }
    assert plan.before["o2"]["tags"] == ["Go", "Designer"]
    assert {"o1", "o2", "o3", "o4", "o5", "o9", "o10"} <= set(plan.before)
    assert "o8" not in plan.before


def test_propagate_excluding_archived_skips_and_ignores_archived_sources(frame):
    plan = make_plan(frame, tags=["Python"], include_archived=False)
    assert rows(plan) == [["o2", "c1", "add", "Python"], ["o9", "c4", "add", "Python"]]
    skipped = plan.skipped[["opportunity_id", "reason"]].values.tolist()
    # o3 is archived; o5's only source (o4) is archived: nothing to propagate among active ones
    assert ["o3", REASON_ARCHIVED] in skipped
    assert ["o5", REASON_ARCHIVED_SOURCE] in skipped  # active: its only source is archived
    assert ["o7", REASON_ANONYMIZED] in skipped


def test_one_row_per_tag_and_calls_group_by_opportunity_and_op(frame):
    plan = make_plan(frame, tags=["Python", "Go", "Do not contact"])
    calls = plan.calls()
    assert len(plan.rows) == len(plan.rows.drop_duplicates())
    o2 = calls[calls["opportunity_id"] == "o2"]
    assert o2[["op", "tags"]].values.tolist() == [["add", ["Do not contact", "Python"]]]
    assert len(calls) == plan.rows.groupby(["opportunity_id", "op"]).ngroups


def test_policy_tags_never_touch_and_anonymized_switch(frame):
    policy = {
        "contact_level": ["Python", "Do not contact"],
        "never_touch": ["Do not contact"],
        "include_archived": True,
        "skip_anonymized": True,
    }
    plan = make_plan(frame, policy=policy)
    assert set(plan.rows["tag"]) == {"Python"}
    never = plan.skipped[plan.skipped["reason"] == REASON_NEVER_TOUCH]
    assert never[["opportunity_id", "tag"]].values.tolist() == [
        ["o2", "Do not contact"],
        ["o3", "Do not contact"],
        ["o7", "Do not contact"],  # anonymized too: the policy reason comes first
    ]
    assert plan.meta["policy"]["never_touch"] == ["Do not contact"]


def test_policy_object_by_attribute(frame):
    class Policy:
        def __init__(self):
            self.contact_level = ["Python"]
            self.never_touch = []
            self.include_archived = False
            self.skip_anonymized = True

    plan = make_plan(frame, policy=Policy())
    assert plan.meta["include_archived"] is False
    assert "o3" not in set(plan.rows["opportunity_id"])


def test_remove_mode_takes_the_tag_off_every_opportunity(frame):
    plan = make_plan(frame, mode="remove", tags=["Go"], include_archived=False)
    assert rows(plan) == [
        ["o1", "c1", "remove", "Go"],
        ["o2", "c1", "remove", "Go"],
        ["o9", "c4", "remove", "Go"],
    ]
    assert plan.skipped[["opportunity_id", "reason"]].values.tolist() == [["o3", REASON_ARCHIVED]]


def test_rename_mode_adds_canonical_and_removes_variant(frame):
    plan = make_plan(frame, mode="rename", renames={"python": "Python"})
    assert rows(plan) == [
        ["o10", "c4", "remove", "python"],  # canonical already there: only the remove
        ["o9", "c4", "add", "Python"],
        ["o9", "c4", "remove", "python"],
    ]
    assert plan.meta["renames"] == {"python": "Python"}


def test_rename_from_variants_of_a_tag(frame):
    plan = make_plan(frame, mode="rename", tags=["Python"])
    assert plan.meta["renames"] == {"python": "Python"}
    assert len(plan.rows) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "merge", "tags": ["x"]}, "unknown mode"),
        ({"tags": []}, "no tags"),
        ({"mode": "rename", "renames": {"a": "a"}}, "itself"),
        ({"mode": "rename", "renames": {"a": "b", "b": "c"}}, "chain"),
    ],
)
def test_bad_arguments_raise_plan_error(frame, kwargs, message):
    with pytest.raises(PlanError, match=message):
        make_plan(frame, **kwargs)


def test_save_and_load_round_trip(frame, tmp_path):
    plan = make_plan(frame, tags=["Python"])
    path = save_plan(plan, tmp_path / "plan.csv")
    header = path.read_text().splitlines()[0]
    assert header == "opportunity_id,contact_id,op,tag"
    assert meta_path(path).name == "plan.meta.json"
    assert skipped_path(path).name == "plan.skipped.csv"
    loaded = load_plan(path)
    assert rows(loaded) == rows(plan)
    assert loaded.sha256 == plan.sha256
    assert loaded.meta["snapshot"]["watermark"] == 2000 - REFRESH_OVERLAP_MS
    assert loaded.before == plan.before
    assert loaded.skipped["reason"].tolist() == [REASON_ANONYMIZED]
    assert "edited" not in loaded.meta


def test_tags_are_exact_strings_through_the_file(tmp_path):
    frame = frame_from_opportunities([opp("o1", "c", [" Python", 'a,"b"']), opp("o2", "c", [])])
    plan = make_plan(frame, tags=[" Python", 'a,"b"'])
    loaded = load_plan(save_plan(plan, tmp_path / "p.csv"))
    assert sorted(loaded.rows["tag"]) == [" Python", 'a,"b"']


def test_load_plan_without_sidecars(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text("opportunity_id,contact_id,op,tag\no1,,add,Python\no1,,remove,Go\n")
    plan = load_plan(path)
    assert plan.meta == {}
    assert plan.watermark is None
    assert rows(plan) == [["o1", "", "add", "Python"], ["o1", "", "remove", "Go"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("opportunity_id,op,tag\no1,add,x\n", "missing column"),
        ("opportunity_id,contact_id,op,tag\no1,c,replace,x\n", "unknown op 'replace'"),
        ("opportunity_id,contact_id,op,tag\n,c,add,x\n", "empty opportunity_id"),
        ("opportunity_id,contact_id,op,tag\no1,c,add,\n", "empty tag"),
        ("opportunity_id,contact_id,op,tag\no1,c,add,x\no1,c,add,x\n", ":3: duplicate row"),
        ("opportunity_id,contact_id,op,tag\no1,c,add,x\no1,c,remove,x\n", "both added"),
        ("", "empty file"),
    ],
)
def test_load_plan_rejects_bad_files_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PlanError, match=message) as info:
        load_plan(path)
    assert "\n" not in str(info.value)


def test_load_plan_missing_file(tmp_path):
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "nope.csv")


def test_edited_plan_is_flagged_not_refused(frame, tmp_path):
    path = save_plan(make_plan(frame, tags=["Python"]), tmp_path / "plan.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    plan = load_plan(path)
    assert plan.meta["edited"] is True
    assert len(plan.rows) == 3


# -- re-planning after drift ------------------------------------------------------------------


def test_replan_propagate_drops_present_and_orphaned_adds(frame):
    plan = make_plan(frame, tags=["Python"])
    current = {
        "o2": ["Go", "Designer", "Python"],  # someone added it meanwhile
        "o1": ["Go", "Engineer"],  # the only other source of c1... o3 still lacks it
        "o4": [],  # c2's only source lost the tag: do not re-add it to o5
        "o5": [],
    }
    kept, dropped = replan(plan, current)
    # o3 stays: o2 now carries the tag, so c1 still has a source
    assert kept[["opportunity_id", "tag"]].values.tolist() == [["o3", "Python"], ["o9", "Python"]]
    reasons = dict(zip(dropped["opportunity_id"], dropped["reason"], strict=True))
    assert reasons == {"o2": REASON_DRIFT_PRESENT, "o5": REASON_DRIFT_SOURCE}


def test_replan_keeps_rows_of_unchanged_opportunities(frame):
    plan = make_plan(frame, tags=["Python"])
    kept, dropped = replan(plan, {"o2": ["Go", "Designer", "Engineer2"]})
    assert len(kept) == len(plan.rows)
    assert dropped.empty


def test_replan_remove_and_rename(frame):
    remove = make_plan(frame, mode="remove", tags=["Go"])
    kept, dropped = replan(remove, {"o1": ["Python"]})
    assert "o1" not in set(kept["opportunity_id"])
    assert dropped["reason"].tolist() == [REASON_DRIFT_ABSENT]

    rename = make_plan(frame, mode="rename", renames={"python": "Python"})
    kept, dropped = replan(rename, {"o9": ["Go"]})  # variant gone: neither add nor remove
    assert kept["opportunity_id"].tolist() == ["o10"]
    assert set(dropped["reason"]) == {REASON_DRIFT_VARIANT}


def test_replan_drops_rows_of_newly_anonymized(frame):
    plan = make_plan(frame, tags=["Python"])
    _kept, dropped = replan(plan, {"o2": ["Go"]}, anonymized={"o2"})
    assert dropped[["opportunity_id", "reason"]].values.tolist() == [["o2", REASON_ANONYMIZED]]


def test_meta_is_json(frame, tmp_path):
    path = save_plan(make_plan(frame, tags=["Python"]), tmp_path / "plan.csv")
    meta = json.loads(meta_path(path).read_text())
    assert meta["plan_sha256"] and meta["counts"]["rows"] == 4
