"""The explorer's counted preview (per-tag sums and one pass over the rows, issue 21) is the plan
`make_plan` builds, on random accounts with every filter; its evidence is the audit's."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import audit
from toolkit.notebook.explorer import TagExplorer, filter_frame
from toolkit.policy import Policy
from toolkit.remediate.planner import make_plan

TAGS = ["Python", "Go", "DNC", "Do not contact", "Full-time"]
CHOSEN = [t for t in TAGS if t != "DNC"]  # an alias is chosen through its family (the panel)


@st.composite
def accounts(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=40))
    rows = []
    for i in range(n):
        contact = draw(st.one_of(st.none(), st.sampled_from(["ca", "cb", "cc", "cd", "ce"])))
        tags = draw(st.lists(st.sampled_from(TAGS), max_size=4))  # repeats count once
        archived, anonymized = draw(st.booleans()), draw(st.integers(0, 4)) == 0
        rows.append((f"o{i:02d}", contact, tags, archived, anonymized, f"Name {contact}"))
    columns = ["opportunity_id", "contact_id", "tags", "archived", "anonymized", "name"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created_at"] = frame["updated_at"] = pd.array(range(1, n + 1), dtype="Int64")
    return frame


POLICIES = [
    None,
    {"version": 1, "contact_level": ["Python"], "never_touch": ["Go"]},
    {"version": 1, "contact_level": [{"tag": "Do not contact", "aliases": ["DNC"]}]},
    {
        "version": 1,
        "contact_level": ["Go", {"tag": "Do not contact", "aliases": ["DNC"], "normalize": True}],
        "skip_anonymized": False,
    },
]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=accounts(),
    chosen=st.lists(st.sampled_from(CHOSEN), unique=True, min_size=1),
    policy_at=st.integers(0, len(POLICIES) - 1),
    search=st.sampled_from(["", "ca", "name c"]),
    min_opportunities=st.integers(1, 3),
    include_archived=st.booleans(),
)
def test_the_counted_preview_is_the_plan(
    frame, chosen, policy_at, search, min_opportunities, include_archived
):
    data = POLICIES[policy_at]
    policy = None if data is None else Policy.from_dict(data, source="<test>")
    ex = TagExplorer(frame, tags=TAGS, policy=policy, min_opportunities=min_opportunities)
    ex.search.value = search
    ex.include_archived.value = include_archived
    ex.choose_tags(chosen)  # counted after the filters changed: the per-tag sums are redone
    kept = filter_frame(
        frame,
        search=search,
        min_opportunities=ex.min_opportunities.value,  # the slider stops at the most a
        include_archived=include_archived,  # contact has
    )
    chosen = ex.selected_tags  # the tags this account has
    if not chosen:
        assert ex.preview() is None
        return
    plan = make_plan(kept, tags=chosen, policy=policy, include_archived=include_archived)
    assert ex.preview()["counts"] == plan.counts()
    pd.testing.assert_frame_equal(ex.plan_table(), plan.changes_by_tag(), check_dtype=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=accounts())
def test_the_explorer_evidence_is_the_audit_evidence(frame):
    ex = TagExplorer(frame, tags=[])
    needed = frame[["opportunity_id", "contact_id", "tags"]]
    pd.testing.assert_frame_equal(ex.evidence, audit.contact_level_evidence(needed))
