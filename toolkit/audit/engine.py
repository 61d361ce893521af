"""The audit: pure pandas functions over a snapshot frame (frames in, new frames out, no I/O).

Every public function takes the snapshot frame first, so they chain with ``DataFrame.pipe`` in the
style of pyjanitor (``frame.pipe(considered, include_archived=False).pipe(split_pairs)``). None of
them mutates its input.

The words are those of ``docs/architecture.md``:

* **considered opportunities**: the rows of the frame (``considered`` drops archived ones on
  request).
* **split pair** ``(contact, tag)``: the contact has two or more considered opportunities and the
  tag is on at least one of them and not on all of them. Tag identity is the exact string; a tag
  repeated in one opportunity's list counts once.
* **missing assignment** ``(opportunity, tag)``: the opportunity's contact has the split pair
  ``(contact, tag)`` and the opportunity lacks the tag.
* An opportunity without a contact is a contact of its own (its key is its ``opportunity_id``) and
  can never be split.

How it is fast: the ``tags`` lists are converted once by pyarrow into a flat array, contacts and
tags are dictionary-encoded into sorted integer codes, and every count is a sort, a ``bincount``
or a gather over integer arrays (no Python loop per opportunity or per contact). Strings are only
touched when the result frames are built. ``run_audit`` prepares once and derives every table
from that; the single-table functions each prepare on their own. ``benchmarks/bench_audit.py``
measures a million opportunities (numbers in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SUMMARY_KEYS = (
    "opportunities",
    "contacts",
    "multi_opportunity_contacts",
    "split_contacts",
    "split_pairs",
    "missing_assignments",
)
EXPLODED_COLUMNS = ["opportunity_id", "contact_id", "tag"]
COVERAGE_COLUMNS = ["contact_id", "tag", "with_tag", "opportunities"]
SPLIT_COLUMNS = COVERAGE_COLUMNS
MISSING_COLUMNS = ["opportunity_id", "contact_id", "tag"]
TAG_STATISTICS_COLUMNS = [
    "tag",
    "opportunities",
    "contacts",
    "multi_opportunity_contacts",
    "split_contacts",
    "split_rate",
    "missing_assignments",
]
VARIANT_COLUMNS = ["group", "tag", "opportunities", "canonical", "is_canonical"]
EVIDENCE_COLUMNS = [
    "tag",
    "opportunities",
    "contacts_with_tag",
    "full_coverage_contacts",
    "full_coverage_rate",
    "split_contacts",
    "split_rate",
    "mean_coverage",
    "expected_coverage",
    "clustering",
    "looks_posting_derived",
    "posting_reason",
    "suggestion",
    "policy",
]

# The dtype pandas gives a column of Python strings: "str" on pandas 3, object on pandas 2.
_TEXT_DTYPE = pd.Series(["x"]).dtype


def _text(values: Any) -> Any:
    """An array of strings in pandas' default string dtype."""
    return pd.array(list(values) if not isinstance(values, list) else values, dtype=_TEXT_DTYPE)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} needs a snapshot frame with column(s) {', '.join(missing)}; "
            f"got columns {list(frame.columns)}"
        )


_ARROW_ERRORS = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    TypeError,
    ValueError,
    OverflowError,
)


def _text_from_arrow(array: pa.Array) -> Any:
    """A pyarrow string array as pandas' default string dtype."""
    if pd.api.types.is_object_dtype(_TEXT_DTYPE):
        return pd.array(array.to_pylist(), dtype=object)
    return pd.array(array, dtype=_TEXT_DTYPE)


def _factorize_sorted(values: Any) -> tuple[np.ndarray, pd.Index]:
    """Codes (int64, -1 where missing) into the sorted distinct values.

    Strings go through pyarrow's dictionary encoding (sorted by code point, as Python sorts);
    anything else falls back to ``pd.factorize(sort=True)``.
    """
    try:
        array = pa.array(values, from_pandas=True)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_null(array.type):  # empty, or nothing but missing values
            return np.full(len(array), -1, dtype=np.int64), pd.Index(_text([]))
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            raise TypeError("not strings")
        encoded = pc.dictionary_encode(array)
        order = pc.array_sort_indices(encoded.dictionary).to_numpy()
        index = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        index = index.astype(np.int64)
        codes = np.full(len(index), -1, dtype=np.int64)
        if len(order):
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order), dtype=np.int64)
            present = index >= 0
            codes[present] = rank[index[present]]
        return codes, pd.Index(_text_from_arrow(encoded.dictionary.take(order)))
    except _ARROW_ERRORS:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        return codes.astype(np.int64), pd.Index(uniques)


def _flatten_tags(tags: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Tags per row, and the flat tag codes (-1 for a missing tag) into sorted distinct tags.

    Lists (the snapshot's format), tuples and numpy arrays (a Parquet round trip) go through
    pyarrow in one conversion; other cells (a bare string, None, NaN) through ``_as_list``.
    """
    values = tags.to_numpy(dtype=object, na_value=None)
    kinds = {*map(type, values)}
    if kinds <= {list, tuple, np.ndarray, type(None)}:
        try:
            lists = pa.array(values, type=pa.large_list(pa.large_string()))
            lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
            codes, uniques = _factorize_sorted(lists.flatten())
            return lengths.astype(np.int64), codes, uniques
        except _ARROW_ERRORS:
            pass
    if not kinds <= {list}:
        values = [_as_list(v) for v in values]
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    flat = list(chain.from_iterable(values))
    if not flat:
        return lengths, np.zeros(0, dtype=np.int64), pd.Index(_text([]))
    codes, uniques = _factorize_sorted(np.array(flat, dtype=object))
    return lengths, codes, uniques


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):  # a bare string is one tag, not a list of characters
        return [value]
    if isinstance(value, (list, tuple, np.ndarray, pd.api.extensions.ExtensionArray)):
        return list(value)
    if isinstance(value, float) and np.isnan(value):
        return []
    try:
        return list(value)
    except TypeError:
        return [value]


def _sorted_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (sort-based: faster than hash ``np.unique`` here)."""
    if not len(keys):
        return keys.copy(), np.zeros(0, dtype=np.int64)
    ordered = np.sort(keys)
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
    return ordered[starts], counts


def _sorted_unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``_sorted_unique``, plus the index of each key's distinct value."""
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return keys.copy(), empty, empty
    order = np.argsort(keys)
    ordered = keys[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[starts], counts, inverse


def _group_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start offset of each group given group sizes."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], out=starts[1:])
    return starts


@dataclass(frozen=True)
class _Core:
    """Integer view of the considered opportunities (built once, read by every table)."""

    opp_ids: Any  # ExtensionArray of opportunity_id, one per row
    contact_codes: np.ndarray  # int64 per row; contactless rows get codes of their own
    contact_labels: pd.Index  # label per contact code (contact_id, or opportunity_id if none)
    opps_per_contact: np.ndarray  # int64 per contact code
    tag_labels: pd.Index  # sorted; codes index into it
    pair_opp: np.ndarray  # deduplicated (opportunity row, tag code), sorted by row then tag
    pair_tag: np.ndarray
    cov_contact: np.ndarray  # distinct (contact, tag) sorted, with the count of opps carrying it
    cov_tag: np.ndarray
    cov_with: np.ndarray
    pair_cov: np.ndarray  # per pair: index of its (contact, tag) in the cov_* arrays
    all_tag_labels: pd.Index  # every tag of the considered opps (before a `tags` subset)
    all_tag_opportunities: np.ndarray

    @property
    def n_opps(self) -> int:
        return len(self.contact_codes)

    @property
    def n_tags(self) -> int:
        return len(self.tag_labels)

    @property
    def cov_opps(self) -> np.ndarray:
        return self.opps_per_contact[self.cov_contact]

    @property
    def split_mask(self) -> np.ndarray:
        opps = self.cov_opps
        return (opps >= 2) & (self.cov_with < opps)

    @classmethod
    def build(cls, frame: pd.DataFrame, tags: Iterable[str] | None = None) -> _Core:
        _require(frame, ["opportunity_id", "contact_id", "tags"], "the audit")
        n = len(frame)
        opp_ids = frame["opportunity_id"].array

        # contacts: sorted codes for real contacts, then one code per contactless opportunity
        codes, uniques = _factorize_sorted(frame["contact_id"])
        no_contact = codes < 0
        n_real = len(uniques)
        n_none = int(no_contact.sum())
        if n_none:
            codes[no_contact] = n_real + np.arange(n_none, dtype=np.int64)
            own = pd.Series(opp_ids[no_contact])
            labels = pd.concat([pd.Series(uniques), own], ignore_index=True)
            if labels.dtype != _TEXT_DTYPE:
                labels = labels.astype(_TEXT_DTYPE)
            contact_labels = pd.Index(labels)
        else:
            contact_labels = pd.Index(uniques)
        opps_per_contact = np.bincount(codes, minlength=n_real + n_none).astype(np.int64)

        # tags: flatten, factorize (sorted), deduplicate (opportunity, tag)
        lengths, tag_codes, all_labels = _flatten_tags(frame["tags"])
        n_all = len(all_labels)
        if n_all:
            rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
            keep = tag_codes >= 0
            if not keep.all():
                rows, tag_codes = rows[keep], tag_codes[keep]
            key, _ = _sorted_unique(rows * n_all + tag_codes)
            pair_opp, pair_tag = key // n_all, key % n_all
        else:
            pair_opp = pair_tag = np.zeros(0, dtype=np.int64)
        all_counts = np.bincount(pair_tag, minlength=n_all).astype(np.int64)

        if tags is not None:
            wanted = sorted({str(t) for t in _listify(tags)})
            position = {t: i for i, t in enumerate(wanted)}
            remap = np.array([position.get(t, -1) for t in all_labels], dtype=np.int64)
            new_tag = remap[pair_tag] if len(pair_tag) else pair_tag
            keep = new_tag >= 0
            pair_opp, pair_tag = pair_opp[keep], new_tag[keep]
            tag_labels = pd.Index(_text(wanted))
        else:
            tag_labels = all_labels
        n_tags = len(tag_labels)

        if len(pair_opp):
            ckey, cov_with, pair_cov = _sorted_unique_inverse(codes[pair_opp] * n_tags + pair_tag)
            cov_contact, cov_tag = ckey // n_tags, ckey % n_tags
        else:
            cov_contact = cov_tag = cov_with = pair_cov = np.zeros(0, dtype=np.int64)

        return cls(
            opp_ids=opp_ids,
            contact_codes=codes,
            contact_labels=contact_labels,
            opps_per_contact=opps_per_contact,
            tag_labels=tag_labels,
            pair_opp=pair_opp,
            pair_tag=pair_tag,
            cov_contact=cov_contact,
            cov_tag=cov_tag,
            cov_with=cov_with,
            pair_cov=pair_cov,
            all_tag_labels=all_labels,
            all_tag_opportunities=all_counts,
        )

    # ---- tables ---------------------------------------------------------------------------

    def _contact_text(self, codes: np.ndarray) -> Any:
        return self.contact_labels.take(codes).array

    def _tag_text(self, codes: np.ndarray) -> Any:
        return self.tag_labels.take(codes).array

    def exploded(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "opportunity_id": self.opp_ids.take(self.pair_opp),
                "contact_id": self._contact_text(self.contact_codes[self.pair_opp]),
                "tag": self._tag_text(self.pair_tag),
            },
            columns=EXPLODED_COLUMNS,
        )

    def _pairs_frame(self, mask: np.ndarray | None) -> pd.DataFrame:
        cc, ct, cw = self.cov_contact, self.cov_tag, self.cov_with
        if mask is not None:
            cc, ct, cw = cc[mask], ct[mask], cw[mask]
        return pd.DataFrame(
            {
                "contact_id": self._contact_text(cc),
                "tag": self._tag_text(ct),
                "with_tag": cw,
                "opportunities": self.opps_per_contact[cc],
            },
            columns=COVERAGE_COLUMNS,
        )

    def coverage(self) -> pd.DataFrame:
        return self._pairs_frame(None)

    def split_pairs(self) -> pd.DataFrame:
        return self._pairs_frame(self.split_mask)

    def _missing_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, contact code, tag code) of every missing assignment, by contact, tag, row."""
        mask = self.split_mask
        sc, st = self.cov_contact[mask], self.cov_tag[mask]
        if not len(sc):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        n = self.n_opps
        sizes = self.opps_per_contact[sc]
        total = int(sizes.sum())
        small = np.int32 if max(n, total, len(mask)) < 2**31 - 1 else np.int64
        # the rows of each contact, contiguous; and each row's rank among its contact's rows
        order = np.argsort(self.contact_codes, kind="stable").astype(small)
        starts = _group_offsets(self.opps_per_contact)
        rank = np.empty(n, dtype=small)
        rank[order] = np.arange(n, dtype=np.int64) - starts[self.contact_codes[order]]
        # candidates: every row of the contact, for every split pair of it (positions only);
        # strike those that carry the tag, i.e. the pairs of a split (contact, tag)
        offsets = _group_offsets(sizes)
        split_index = np.full(len(mask), -1, dtype=small)
        split_index[mask] = np.arange(len(sc), dtype=small)
        hit_split = split_index[self.pair_cov]
        hit = hit_split >= 0
        lacking = np.ones(total, dtype=bool)
        lacking[offsets[hit_split[hit]] + rank[self.pair_opp[hit]]] = False
        del hit_split, hit, rank, split_index
        which = np.repeat(np.arange(len(sc), dtype=small), sizes)[lacking]
        position = np.flatnonzero(lacking)
        del lacking
        position += (starts[sc] - offsets)[which]
        rows = order[position]
        del position, order
        return rows, sc.astype(small)[which], st.astype(small)[which]

    def missing(self) -> pd.DataFrame:
        rows, contacts, tags = self._missing_arrays()
        # one string column at a time, dropping each index array once used (peak memory)
        opportunity = self.opp_ids.take(rows)
        del rows
        contact = self._contact_text(contacts)
        del contacts
        return pd.DataFrame(
            {"opportunity_id": opportunity, "contact_id": contact, "tag": self._tag_text(tags)},
            columns=MISSING_COLUMNS,
        )

    def summary(self) -> dict[str, int]:
        mask = self.split_mask
        split_contacts = len(_sorted_unique(self.cov_contact[mask])[0])
        missing = int((self.cov_opps[mask] - self.cov_with[mask]).sum())
        return {
            "opportunities": int(self.n_opps),
            "contacts": len(self.opps_per_contact),
            "multi_opportunity_contacts": int((self.opps_per_contact >= 2).sum()),
            "split_contacts": int(split_contacts),
            "split_pairs": int(mask.sum()),
            "missing_assignments": missing,
        }

    def _per_tag(self) -> dict[str, np.ndarray]:
        t = self.n_tags
        opps = self.cov_opps
        multi = opps >= 2
        split = self.split_mask
        full = multi & (self.cov_with == opps)
        share = np.divide(self.cov_with, opps, out=np.zeros(len(opps)), where=opps > 0)
        return {
            "opportunities": np.bincount(self.pair_tag, minlength=t),
            "contacts": np.bincount(self.cov_tag, minlength=t),
            "multi": np.bincount(self.cov_tag[multi], minlength=t),
            "split": np.bincount(self.cov_tag[split], minlength=t),
            "full": np.bincount(self.cov_tag[full], minlength=t),
            "missing": np.bincount(
                self.cov_tag[split], weights=(opps - self.cov_with)[split], minlength=t
            ),
            "share_sum": np.bincount(self.cov_tag[multi], weights=share[multi], minlength=t),
            "expected_sum": self._expected_share_sum(multi),
        }

    def _expected_share_sum(self, multi: np.ndarray) -> np.ndarray:
        """Per tag, the summed share a tag would have if scattered over opportunities at random.

        With ``p`` the tag's share of the opportunities of multi-opportunity contacts, a contact
        with ``m`` opportunities that carries it on ``k >= 1`` of them has, in expectation,
        ``E[k/m | k >= 1] = p / (1 - (1 - p) ** m)`` of them covered.
        """
        t = self.n_tags
        per_contact = self.opps_per_contact
        total = float(per_contact[per_contact >= 2].sum())
        tags = self.cov_tag[multi]
        if not total or not len(tags):
            return np.zeros(t)
        p = np.bincount(tags, weights=self.cov_with[multi], minlength=t) / total
        p_row = p[tags]
        expected = p_row / (1.0 - (1.0 - p_row) ** self.cov_opps[multi])
        return np.bincount(tags, weights=expected, minlength=t)

    def tag_statistics(self) -> pd.DataFrame:
        per = self._per_tag()
        multi = per["multi"].astype(np.int64)
        split = per["split"].astype(np.int64)
        rate = np.divide(split, multi, out=np.zeros(len(multi)), where=multi > 0)
        out = pd.DataFrame(
            {
                "tag": self.tag_labels.array,
                "opportunities": per["opportunities"].astype(np.int64),
                "contacts": per["contacts"].astype(np.int64),
                "multi_opportunity_contacts": multi,
                "split_contacts": split,
                "split_rate": rate.astype(np.float64),
                "missing_assignments": per["missing"].round().astype(np.int64),
            },
            columns=TAG_STATISTICS_COLUMNS,
        )
        # tags are sorted already: a stable sort on split_contacts desc keeps tag order in ties
        order = np.argsort(-split, kind="stable")
        return out.take(order).reset_index(drop=True)


def _listify(tags: Iterable[str] | str) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags)


# --------------------------------------------------------------------------------------------
# contact-level evidence
# --------------------------------------------------------------------------------------------
