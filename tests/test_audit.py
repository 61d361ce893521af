"""The audit on small hand-built frames, numbers computed by hand (and a property test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_tables

from toolkit.audit import (
    COVERAGE_COLUMNS,
    EVIDENCE_COLUMNS,
    MISSING_COLUMNS,
    SUMMARY_KEYS,
    TAG_STATISTICS_COLUMNS,
    VARIANT_COLUMNS,
    AuditResult,
    considered,
    explode_tags,
    missing_assignments,
    normalize_tag,
    run_audit,
    split_pairs,
    summarize,
    tag_coverage,
    tag_statistics,
    tag_variants,
)
from toolkit.audit.coverage import coverage_grid
from toolkit.audit.evidence import contact_level_evidence, looks_posting_derived


def make_frame(rows: list[tuple]) -> pd.DataFrame:
    """rows: (opportunity_id, contact_id or None, tags, archived=False)."""
    records = []
    for i, row in enumerate(rows):
        opp, contact, tags, *rest = row
        archived = rest[0] if rest else False
        records.append(
            {
                "opportunity_id": opp,
                "contact_id": contact,
                "tags": list(tags),
                "archived": archived,
                "archived_at": 1_700_000_000_000 + i if archived else None,
                "confidential": False,
                "anonymized": False,
                "created_at": 1_600_000_000_000 + i,
                "updated_at": None,
            }
        )
    columns = ["opportunity_id", "contact_id", "tags", "archived", "archived_at"]
    columns += ["confidential", "anonymized", "created_at", "updated_at"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["archived"] = frame["archived"].astype(bool)
    frame["archived_at"] = frame["archived_at"].astype("Int64")
    frame["created_at"] = frame["created_at"].astype("Int64")
    frame["updated_at"] = frame["updated_at"].astype("Int64")
    return frame


# A small account, numbers by hand:
#   c1: o1 {Python, Boomerang}, o2 {Python}, o3 {} -> Python split (2/3), Boomerang split (1/3)
#   c2: o4 {Python, Full-time}, o5 {Python, Full-time, Python} -> nothing split (dup counts once)
#   c3: o6 {python} only one opportunity -> never split
#   no contact: o7 {Python}, o8 {} -> own contacts, never split
#   c4: o9 {Go} archived, o10 {} -> split only when archived are considered
ACCOUNT = [
    ("o1", "c1", ["Python", "Boomerang"]),
    ("o2", "c1", ["Python"]),
    ("o3", "c1", []),
    ("o4", "c2", ["Python", "Full-time"]),
    ("o5", "c2", ["Python", "Full-time", "Python"]),
    ("o6", "c3", ["python"]),
    ("o7", None, ["Python"]),
    ("o8", None, []),
    ("o9", "c4", ["Go"], True),
    ("o10", "c4", []),
]


@pytest.fixture
def account() -> pd.DataFrame:
    return make_frame(ACCOUNT)


def as_tuples(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.itertuples(index=False)]


# -- considered ------------------------------------------------------------------------------


def test_considered_drops_archived_only_when_asked(account):
    assert len(considered(account)) == 10
    kept = considered(account, include_archived=False)
    assert kept["opportunity_id"].tolist() == [f"o{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 10)]
    assert kept.index.tolist() == list(range(9))


def test_considered_needs_archived_column_when_filtering():
    frame = pd.DataFrame({"opportunity_id": ["o"], "contact_id": ["c"], "tags": [[]]})
    assert len(considered(frame)) == 1
    with pytest.raises(ValueError, match="archived"):
        considered(frame, include_archived=False)


# -- summarize -------------------------------------------------------------------------------


def test_summarize_exact_numbers(account):
    assert summarize(account) == {
        "opportunities": 10,
        "contacts": 6,  # c1, c2, c3, o7, o8, c4
        "multi_opportunity_contacts": 3,  # c1, c2, c4
        "split_contacts": 2,  # c1, c4
        "split_pairs": 3,  # (c1, Python), (c1, Boomerang), (c4, Go)
        "missing_assignments": 4,  # o3 Python; o2, o3 Boomerang; o10 Go
    }
    summary = summarize(account)
    assert list(summary) == list(SUMMARY_KEYS)
    assert all(type(v) is int for v in summary.values())


def test_summarize_without_archived(account):
    assert summarize(considered(account, include_archived=False)) == {
        "opportunities": 9,
        "contacts": 6,
        "multi_opportunity_contacts": 2,
        "split_contacts": 1,
        "split_pairs": 2,
        "missing_assignments": 3,
    }


def test_one_opportunity_contacts_are_never_split():
    frame = make_frame([("o1", "a", ["x"]), ("o2", "b", []), ("o3", "c", ["x", "y"])])
    assert summarize(frame)["split_pairs"] == 0
    assert summarize(frame)["multi_opportunity_contacts"] == 0
    assert split_pairs(frame).empty
    assert missing_assignments(frame).empty


def test_opportunities_without_contact_are_their_own_contacts():
    frame = make_frame([("o1", None, ["x"]), ("o2", None, []), ("o3", None, ["x"])])
    assert summarize(frame) == {
        "opportunities": 3,
        "contacts": 3,
        "multi_opportunity_contacts": 0,
        "split_contacts": 0,
        "split_pairs": 0,
        "missing_assignments": 0,
    }
    assert explode_tags(frame).values.tolist() == [["o1", "o1", "x"], ["o3", "o3", "x"]]


def test_contactless_opportunity_is_not_merged_with_a_contact_of_the_same_id():
    # a real contact whose id equals a contactless opportunity's id stays a different contact
    frame = make_frame([("o1", None, ["x"]), ("o2", "o1", []), ("o3", "o1", ["x"])])
    assert summarize(frame)["contacts"] == 2
    assert as_tuples(split_pairs(frame)) == [("o1", "x", 1, 2)]
    assert as_tuples(missing_assignments(frame)) == [("o2", "o1", "x")]


def test_tag_on_all_versus_some():
    frame = make_frame(
        [("o1", "c", ["all", "some"]), ("o2", "c", ["all"]), ("o3", "c", ["all", "some"])]
    )
    assert as_tuples(split_pairs(frame)) == [("c", "some", 2, 3)]
    assert as_tuples(missing_assignments(frame)) == [("o2", "c", "some")]


def test_duplicate_tag_in_one_list_counts_once():
    frame = make_frame([("o1", "c", ["x", "x", "x"]), ("o2", "c", ["x"])])
    assert split_pairs(frame).empty
    assert as_tuples(tag_coverage(frame)) == [("c", "x", 2, 2)]
    assert explode_tags(frame)["tag"].tolist() == ["x", "x"]
    frame2 = make_frame([("o1", "c", ["x", "x"]), ("o2", "c", [])])
    assert as_tuples(split_pairs(frame2)) == [("c", "x", 1, 2)]
    assert summarize(frame2)["missing_assignments"] == 1


def test_case_and_space_variants_are_distinct_tags():
    frame = make_frame([("o1", "c", ["Python"]), ("o2", "c", ["python"]), ("o3", "c", ["Python "])])
    pairs = as_tuples(split_pairs(frame))
    assert pairs == [("c", "Python", 1, 3), ("c", "Python ", 1, 3), ("c", "python", 1, 3)]
    assert summarize(frame)["missing_assignments"] == 6


def test_archived_excluded_or_not_in_run_audit(account):
    with_archived = run_audit(account)
    without = run_audit(account, include_archived=False)
    assert ("c4", "Go", 1, 2) in as_tuples(with_archived.split_pairs)
    assert "c4" not in without.split_pairs["contact_id"].tolist()
    assert without.summary["opportunities"] == 9


# -- tables ----------------------------------------------------------------------------------


def test_split_pairs_rows(account):
    assert as_tuples(split_pairs(account)) == [
        ("c1", "Boomerang", 1, 3),
        ("c1", "Python", 2, 3),
        ("c4", "Go", 1, 2),
    ]
    assert list(split_pairs(account).columns) == COVERAGE_COLUMNS


def test_missing_assignments_rows_exactly(account):
    assert as_tuples(missing_assignments(account)) == [
        ("o2", "c1", "Boomerang"),
        ("o3", "c1", "Boomerang"),
        ("o3", "c1", "Python"),
        ("o10", "c4", "Go"),
    ]
    assert list(missing_assignments(account).columns) == MISSING_COLUMNS


def test_tag_coverage_rows(account):
    rows = as_tuples(tag_coverage(account))
    assert rows == [
        ("c1", "Boomerang", 1, 3),
        ("c1", "Python", 2, 3),
        ("c2", "Full-time", 2, 2),
        ("c2", "Python", 2, 2),
        ("c3", "python", 1, 1),
        ("c4", "Go", 1, 2),
        ("o7", "Python", 1, 1),
    ]


def test_explode_tags(account):
    exploded = explode_tags(account)
    assert list(exploded.columns) == ["opportunity_id", "contact_id", "tag"]
    assert len(exploded) == 10  # o5's duplicate Python counted once
    assert as_tuples(exploded.loc[exploded["opportunity_id"] == "o5"]) == [
        ("o5", "c2", "Full-time"),
        ("o5", "c2", "Python"),
    ]


def test_tag_statistics_numbers(account):
    stats = tag_statistics(account)
    assert list(stats.columns) == TAG_STATISTICS_COLUMNS
    assert as_tuples(stats) == [
        # tag, opportunities, contacts, multi, split, split_rate, missing
        ("Boomerang", 1, 1, 1, 1, 1.0, 2),
        ("Go", 1, 1, 1, 1, 1.0, 1),
        ("Python", 5, 3, 2, 1, 0.5, 1),  # o1 o2 o4 o5 o7; c1 c2 o7; c1 c2 multi
        ("Full-time", 2, 1, 1, 0, 0.0, 0),
        ("python", 1, 1, 0, 0, 0.0, 0),
    ]


def test_tags_that_are_not_strings_or_not_lists_are_tolerated():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4"],
            "contact_id": ["c", "c", "c", "c"],
            "tags": [np.array(["a", "b"], dtype=object), None, ("a",), ["a", None]],
        }
    )
    assert as_tuples(split_pairs(frame)) == [("c", "a", 3, 4), ("c", "b", 1, 4)]


def test_tags_subset(account):
    result = run_audit(account, tags=["Python", "Nope"])
    assert result.summary["opportunities"] == 10
    assert result.summary["contacts"] == 6
    assert result.summary["split_pairs"] == 1
    assert result.summary["missing_assignments"] == 1
    assert as_tuples(result.missing_assignments) == [("o3", "c1", "Python")]
    assert result.tag_statistics["tag"].tolist() == ["Python", "Nope"]
    assert result.tag_statistics.set_index("tag").loc["Nope", "opportunities"] == 0
    assert set(result.variants["tag"]) == {"Python", "python"}


def test_missing_column_error_is_clear():
    with pytest.raises(ValueError, match="contact_id"):
        summarize(pd.DataFrame({"opportunity_id": ["o"], "tags": [[]]}))


# -- variants --------------------------------------------------------------------------------


def test_normalize_tag():
    assert normalize_tag("  Data   Science ") == "data science"
    assert normalize_tag("ＰＹＴＨＯＮ") == "python"  # NFKC full-width
    assert normalize_tag("Straße") == "strasse"  # casefold, not lower


def test_variants_grouping_and_canonical():
    frame = make_frame(
        [
            ("o1", "a", ["python", "Go"]),
            ("o2", "b", ["python"]),
            ("o3", "c", ["Python"]),
            ("o4", "d", [" Python"]),
            ("o5", "e", ["Data Science", "data  science"]),
            ("o6", "f", ["data science ", "Solo"]),
        ]
    )
    variants = tag_variants(frame)
    assert list(variants.columns) == VARIANT_COLUMNS
    assert as_tuples(variants) == [
        # one each: a clean spelling wins over an unclean one, then lexicographic
        ("data science", "Data Science", 1, "Data Science", True),
        ("data science", "data  science", 1, "Data Science", False),
        ("data science", "data science ", 1, "Data Science", False),
        # most used wins; rows in the same order as the canonical ranking
        ("python", "python", 2, "python", True),
        ("python", "Python", 1, "python", False),
        ("python", " Python", 1, "python", False),
    ]


def test_variants_prefer_clean_spelling_on_ties():
    frame = make_frame([("o1", "a", [" Zeta"]), ("o2", "b", ["zeta"])])
    assert tag_variants(frame)["canonical"].unique().tolist() == ["zeta"]
    frame = make_frame([("o1", "a", ["Zeta"]), ("o2", "b", ["zeta"])])
    assert tag_variants(frame)["canonical"].unique().tolist() == ["Zeta"]


def test_no_variants():
    frame = make_frame([("o1", "a", ["x", "y"])])
    variants = tag_variants(frame)
    assert variants.empty
    assert list(variants.columns) == VARIANT_COLUMNS


# -- evidence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("Full-time", "commitment"),
        ("Part time", "commitment"),
        ("Intern", "commitment"),
        ("Contract", "commitment"),
        ("Remote", "location"),
        ("Remote - US", "location"),
        ("San Francisco, CA", "location"),
        ("St. Louis, MO", "location"),
        ("Python", ""),
        ("Do not contact", ""),
        ("Boomerang", ""),
        ("Java, Scala", ""),
    ],
)
def test_posting_derived_names(tag, reason):
    assert looks_posting_derived(tag) == reason


def test_evidence_columns_and_heuristic():
    # 24 contacts with 3 opportunities each (72 opportunities), one single-opportunity contact
    rows = []
    for i in range(24):
        tags: list[list[str]] = [[], [], []]
        if i < 6:  # Python on all three
            for t in tags:
                t.append("Python")
        elif i < 12:  # Python on two of three; Mixed on the same two
            for t in tags[:2]:
                t += ["Python", "Mixed"]
        if i < 12:  # a stage-like tag on exactly one opportunity
            tags[i % 3].append("Stage X")
        if i < 3:
            tags[0].append("Austin, TX")
        if i in (20, 21):
            tags[1].append("Few")
        rows += [(f"o{i}-{k}", f"c{i}", t) for k, t in enumerate(tags)]
    rows.append(("z", "solo", ["Lonely"]))
    evidence = contact_level_evidence(make_frame(rows))
    assert list(evidence.columns) == EVIDENCE_COLUMNS
    by_tag = evidence.set_index("tag")

    def expected(p: float, m: int = 3) -> float:
        return p / (1 - (1 - p) ** m)

    python = by_tag.loc["Python"]
    assert python["contacts_with_tag"] == 12
    assert python["full_coverage_rate"] == 0.5
    assert python["mean_coverage"] == pytest.approx((6 * 1 + 6 * 2 / 3) / 12)
    assert python["expected_coverage"] == pytest.approx(expected(30 / 72))
    e = expected(30 / 72)
    assert python["clustering"] == pytest.approx((5 / 6 - e) / (1 - e))
    assert python["suggestion"] == "likely contact-level"
    assert not python["looks_posting_derived"]

    stage = by_tag.loc["Stage X"]
    e = expected(12 / 72)
    assert stage["clustering"] == pytest.approx((1 / 3 - e) / (1 - e))
    assert stage["clustering"] < 0
    assert stage["posting_reason"] == "scattered"
    assert stage["suggestion"] == "likely opportunity-level"
    assert stage["split_rate"] == 1.0

    assert by_tag.loc["Mixed", "suggestion"] == "likely contact-level"
    assert by_tag.loc["Austin, TX", "posting_reason"] == "location"
    assert by_tag.loc["Austin, TX", "suggestion"] == "likely opportunity-level"
    assert by_tag.loc["Few", "suggestion"] == "unclear"  # 2 contacts: not enough evidence
    assert by_tag.loc["Lonely", "contacts_with_tag"] == 0
    assert by_tag.loc["Lonely", "full_coverage_rate"] == 0.0
    assert by_tag.loc["Lonely", "clustering"] == 0.0
    assert by_tag.loc["Lonely", "suggestion"] == "unclear"
    assert (evidence["policy"] == "").all()
    # thresholds are parameters: with more contacts required, only names speak
    strict = contact_level_evidence(make_frame(rows), min_contacts=50).set_index("tag")
    assert strict.loc["Python", "suggestion"] == "unclear"
    assert strict.loc["Stage X", "posting_reason"] == ""
    assert strict.loc["Austin, TX", "suggestion"] == "likely opportunity-level"


def test_evidence_tag_on_every_opportunity_is_contact_level_by_full_coverage():
    rows = [(f"o{i}-{k}", f"c{i}", ["Everyone"]) for i in range(6) for k in range(2)]
    by_tag = contact_level_evidence(make_frame(rows)).set_index("tag")
    assert by_tag.loc["Everyone", "expected_coverage"] == 1.0
    assert by_tag.loc["Everyone", "clustering"] == 0.0  # undefined: nothing to compare with
    assert by_tag.loc["Everyone", "suggestion"] == "likely contact-level"


# -- coverage grid ---------------------------------------------------------------------------


def test_coverage_grid(account):
    grid = coverage_grid(account)
    assert grid.index.name == "contact_id"
    assert grid.index.tolist()[:2] == ["c1", "c4"]  # most split pairs first
    assert grid.loc["c1", "Python"] == pytest.approx(2 / 3)
    assert grid.loc["c1", "Boomerang"] == pytest.approx(1 / 3)
    assert np.isnan(grid.loc["c1", "Go"])
    assert grid.loc["c2", "Full-time"] == 1.0
    chosen = coverage_grid(account, contacts=["c2", "c1", "nobody"], tags=["Python", "Go"])
    assert chosen.index.tolist() == ["c2", "c1", "nobody"]
    assert chosen.columns.tolist() == ["Python", "Go"]
    assert chosen.loc["c2", "Python"] == 1.0
    assert chosen.loc["nobody"].isna().all()
    assert len(coverage_grid(account, max_contacts=1)) == 1
    assert coverage_grid(account, tags=["Go"]).index.tolist() == ["c4"]


def test_coverage_grid_empty():
    grid = coverage_grid(make_frame([]))
    assert grid.shape == (0, 0)


# -- run_audit, empties, purity --------------------------------------------------------------


def test_run_audit_fields(account):
    result = run_audit(account)
    assert isinstance(result, AuditResult)
    assert result.summary == summarize(account)
    pd.testing.assert_frame_equal(result.split_pairs, split_pairs(account))
    pd.testing.assert_frame_equal(result.missing_assignments, missing_assignments(account))
    pd.testing.assert_frame_equal(result.tag_statistics, tag_statistics(account))
    pd.testing.assert_frame_equal(result.coverage, tag_coverage(account))
    pd.testing.assert_frame_equal(result.variants, tag_variants(account))
    pd.testing.assert_frame_equal(result.evidence, contact_level_evidence(account))
    assert result.options["include_archived"] is True


def test_run_audit_policy_overrides_include_archived(account):
    class FakePolicy:
        include_archived = False
        contact_level = ("Python",)
        never_touch = ("Go",)
        source = "policy.yaml"

    result = run_audit(account, include_archived=True, policy=FakePolicy())
    assert result.summary["opportunities"] == 9
    policy_column = result.evidence.set_index("tag")["policy"]
    assert policy_column["Python"] == "contact_level"
    assert policy_column["Boomerang"] == ""
    assert result.options["policy"] == "policy.yaml"


def test_empty_frame_gives_zero_summary_and_empty_tables():
    empty = make_frame([])
    result = run_audit(empty)
    assert result.summary == dict.fromkeys(SUMMARY_KEYS, 0)
    assert list(result.split_pairs.columns) == COVERAGE_COLUMNS
    assert list(result.coverage.columns) == COVERAGE_COLUMNS
    assert list(result.missing_assignments.columns) == MISSING_COLUMNS
    assert list(result.tag_statistics.columns) == TAG_STATISTICS_COLUMNS
    assert list(result.variants.columns) == VARIANT_COLUMNS
    assert list(result.evidence.columns) == EVIDENCE_COLUMNS
    for table in (result.split_pairs, result.missing_assignments, result.tag_statistics):
        assert table.empty
    assert run_audit(empty, include_archived=False).summary["opportunities"] == 0
    # tagless but non-empty account
    tagless = make_frame([("o1", "c", []), ("o2", "c", [])])
    assert summarize(tagless)["multi_opportunity_contacts"] == 1
    assert split_pairs(tagless).empty


def test_inputs_are_not_mutated(account):
    before = account.copy(deep=True)
    tags_before = [list(t) for t in account["tags"]]
    run_audit(account, include_archived=False, tags=["Python"])
    for fn in (explode_tags, tag_coverage, split_pairs, missing_assignments, summarize):
        fn(account)
    tag_statistics(account)
    tag_variants(account)
    contact_level_evidence(account)
    coverage_grid(account)
    considered(account, include_archived=False)
    pd.testing.assert_frame_equal(account, before)
    assert [list(t) for t in account["tags"]] == tags_before


def test_integer_columns_are_int64(account):
    result = run_audit(account)
    for table, cols in [
        (result.split_pairs, ["with_tag", "opportunities"]),
        (result.tag_statistics, ["opportunities", "split_contacts", "missing_assignments"]),
    ]:
        for col in cols:
            assert table[col].dtype == np.int64


# -- property: vectorised == plain loop -------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2", "c3", "c4", None]),
            st.lists(st.sampled_from(["a", "A", "b", "c ", "d"]), max_size=4),
        ),
        max_size=14,
    )
)
def test_vectorised_equals_plain_loop(spec):
    rows = [(f"o{i}", contact, tags) for i, (contact, tags) in enumerate(spec)]
    frame = make_frame(rows)
    pairs, missing, sizes = reference_tables(rows)
    contacts = len(sizes)
    assert set(as_tuples(split_pairs(frame))) == pairs
    got_missing = as_tuples(missing_assignments(frame))
    assert len(got_missing) == len(set(got_missing))
    assert set(got_missing) == missing
    summary = summarize(frame)
    assert summary["contacts"] == contacts
    assert summary["split_pairs"] == len(pairs)
    assert summary["missing_assignments"] == len(missing)
    assert summary["split_contacts"] == len({p[0] for p in pairs})
    stats = tag_statistics(frame).set_index("tag")
    for tag in stats.index:
        assert stats.loc[tag, "split_contacts"] == sum(1 for p in pairs if p[1] == tag)
        assert stats.loc[tag, "missing_assignments"] == sum(1 for m in missing if m[2] == tag)


def test_tags_keyword_on_the_table_functions(account):
    assert as_tuples(missing_assignments(account, tags=["Boomerang"])) == [
        ("o2", "c1", "Boomerang"),
        ("o3", "c1", "Boomerang"),
    ]
    assert as_tuples(split_pairs(account, tags="Go")) == [("c4", "Go", 1, 2)]
    assert summarize(account, tags=["Python"])["missing_assignments"] == 1
    assert summarize(account, tags=[])["split_pairs"] == 0
    assert tag_statistics(account, tags=["Go"])["tag"].tolist() == ["Go"]
    assert set(explode_tags(account, tags=["Go"])["opportunity_id"]) == {"o9"}
    assert len(tag_coverage(account, tags=["Python", "python"])) == 4
