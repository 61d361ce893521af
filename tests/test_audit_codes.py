"""The audit's integer-coded tables (categorical ids and tags, missing assignments in blocks) hold
the same rows, in the same order, as the plain-string tables they replace, on random frames."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from reference import reference_tables

from toolkit import audit
from toolkit.audit import arrays, engine


def random_frame(seed: int, n: int = 2500) -> pd.DataFrame:
    rng = random.Random(seed)
    contacts = [f"c{rng.getrandbits(40):010x}" for _ in range(n // 4)]
    tags = [f"t{i:02d}" for i in range(30)] + ["Python", "python", "Python ", "É", "z"]
    rows = []
    for i in range(n):
        contact = None if rng.random() < 0.03 else rng.choice(contacts)
        picked = [rng.choice(tags) for _ in range(rng.randrange(0, 6))]  # repeats on purpose
        rows.append(
            {
                "opportunity_id": f"o{rng.getrandbits(48):012x}-{i}",
                "contact_id": contact,
                "tags": picked,
                "archived": rng.random() < 0.3,
            }
        )
    frame = pd.DataFrame(rows)
    frame["opportunity_id"] = frame["opportunity_id"].astype("string")
    frame["contact_id"] = frame["contact_id"].astype("string")
    return frame


def expected_tables(frame: pd.DataFrame) -> tuple[list[tuple], list[tuple]]:
    """Split pairs and missing assignments by the reference loops (tests/reference.py), in the
    audit's documented order: split pairs by (contact, tag); missing by (contact, tag, row)."""
    rows = [
        (opp, contact if pd.notna(contact) else None, tags)
        for opp, contact, tags in frame[["opportunity_id", "contact_id", "tags"]].itertuples(
            index=False
        )
    ]
    pairs, missing, _ = reference_tables(rows)
    row_of = {opp: i for i, (opp, _, _) in enumerate(rows)}
    return (
        sorted(pairs, key=lambda p: (p[0], p[1])),
        sorted(missing, key=lambda m: (m[1], m[2], row_of[m[0]])),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("block", [7, 1 << 21])
def test_coded_tables_equal_the_plain_tables(seed, block, monkeypatch):
    monkeypatch.setattr(engine, "MISSING_BLOCK", block)  # many small blocks, and one
    frame = random_frame(seed)
    result = audit.run_audit(frame)
    pairs, missing = expected_tables(frame)
    got_missing = result.missing_assignments
    assert [tuple(r) for r in got_missing.astype(object).itertuples(index=False)] == missing
    assert [tuple(r) for r in result.split_pairs.astype(object).itertuples(index=False)] == pairs
    for column in ("opportunity_id", "contact_id", "tag"):
        assert isinstance(got_missing[column].dtype, pd.CategoricalDtype)
        categories = got_missing[column].cat.categories
        assert categories.is_monotonic_increasing and categories.is_unique
    # sorting by a coded column sorts by its text, as it did with strings
    by_id = got_missing.sort_values("opportunity_id", kind="stable")["opportunity_id"]
    assert by_id.astype(str).tolist() == sorted(got_missing["opportunity_id"].astype(str))
    assert result.summary["missing_assignments"] == len(missing) == len(got_missing)
    assert result.summary["split_pairs"] == len(pairs)


def test_coverage_and_exploded_keep_the_plain_values():
    frame = random_frame(4, n=800)
    result = audit.run_audit(frame)
    plain = frame.assign(contact_id=frame["contact_id"].fillna(frame["opportunity_id"]))
    exploded = (
        plain.explode("tags").dropna(subset=["tags"]).drop_duplicates(["opportunity_id", "tags"])
    )
    counts = exploded.groupby(["contact_id", "tags"]).size()
    coverage = result.coverage.astype({"contact_id": str, "tag": str})
    got = coverage.set_index(["contact_id", "tag"])["with_tag"]
    assert got.sort_index().to_dict() == counts.sort_index().to_dict()
    flat = audit.explode_tags(frame)
    assert len(flat) == len(exploded)
    assert set(
        zip(flat["opportunity_id"].astype(str), flat["tag"].astype(str), strict=True)
    ) == set(zip(exploded["opportunity_id"], exploded["tags"], strict=True))


def test_a_contactless_id_equal_to_a_contact_id_falls_back_to_text():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["x", "o2", "o3"],
            "contact_id": [None, "x", "x"],
            "tags": [["a"], ["a"], []],
        }
    )
    cov = audit.tag_coverage(frame)
    assert sorted(zip(cov["contact_id"], cov["tag"], cov["with_tag"], strict=True)) == [
        ("x", "a", 1),
        ("x", "a", 1),
    ]
    assert audit.missing_assignments(frame).values.tolist() == [["o3", "x", "a"]]


def test_fixed_width_ids_sort_as_python_sorts_them():
    """Ids of one byte width are sorted by numpy as fixed-width bytes: the order must be Python's
    code point order, also for non-ASCII text, NUL bytes and a chunked array."""
    rng = random.Random(11)
    alphabet = ["a", "Z", "0", "\x00", "\x7f"]  # one byte each in UTF-8
    wide = ["é", "ß"]  # two bytes each in UTF-8
    for width in (1, 3, 8, 36):
        for _ in range(40):
            values = []
            for _ in range(rng.randrange(2, 60)):
                text = "".join(rng.choice(alphabet) for _ in range(width))
                if width >= 2 and rng.random() < 0.5:  # same byte width, other code points
                    text = rng.choice(wide) + text[2:]
                values.append(text)
            assert len({len(v.encode()) for v in values}) == 1
            order = arrays.argsort_text(pa.array(values))
            assert [values[i] for i in order] == sorted(values)
            half = len(values) // 2
            chunked = pa.chunked_array([values[:half], values[half:]])
            assert [values[i] for i in arrays.argsort_text(chunked)] == sorted(values)
    mixed = ["b", "ab", "abc", None, "é"]
    order = arrays.argsort_text(pa.array(mixed))
    assert [mixed[i] for i in order] == ["ab", "abc", "b", "é", None]


@pytest.mark.parametrize("seed", [5, 6])
def test_uuid_shaped_ids_give_the_plain_tables(seed):
    """Lever's ids are UUIDs (one width): the fast sort path must give the same tables."""
    frame = random_frame(seed, n=1500)
    rng = random.Random(seed)
    frame["opportunity_id"] = pd.array(
        [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(len(frame))],
        dtype="string",
    )
    contacts = {
        c: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for c in frame["contact_id"].dropna()
    }
    frame["contact_id"] = frame["contact_id"].map(contacts).astype("string")
    result = audit.run_audit(frame)
    pairs, missing = expected_tables(frame)
    got = result.missing_assignments.astype(object).itertuples(index=False)
    assert [tuple(r) for r in got] == missing
    assert [tuple(r) for r in result.split_pairs.astype(object).itertuples(index=False)] == pairs


def test_sorted_unique_helpers():
    keys = np.array([5, 3, 5, 9, 3, 3], dtype=np.int32)
    distinct, counts, inverse = arrays.sorted_unique_inverse(keys)
    assert distinct.tolist() == [3, 5, 9] and counts.tolist() == [3, 2, 1]
    assert distinct[inverse].tolist() == keys.tolist() and inverse.dtype == np.int32
    assert arrays.sorted_distinct(keys).tolist() == [3, 5, 9]
    assert keys.tolist() == [5, 3, 5, 9, 3, 3]  # not in place: untouched
    codes, labels = arrays.factorize_sorted(pd.Series(["b", None, "a", "b"], dtype="string"))
    assert (
        codes.tolist() == [1, -1, 0, 1] and codes.dtype == np.int32 and list(labels) == ["a", "b"]
    )
