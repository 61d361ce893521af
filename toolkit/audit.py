"""The audit: pure pandas functions over a snapshot frame (frames in, new frames out, no I/O).

Every public function takes the snapshot frame first, so they chain with ``DataFrame.pipe`` in the
style of pyjanitor (``frame.pipe(considered, include_archived=False).pipe(split_pairs)``). None of
them mutates its input.

The words are those of ``DESIGN.md``:

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

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain, pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # pragma: no cover
    from toolkit.policy import Policy

__all__ = [
    "COVERAGE_COLUMNS",
    "EVIDENCE_COLUMNS",
    "MISSING_COLUMNS",
    "SPLIT_COLUMNS",
    "SUMMARY_KEYS",
    "TAG_STATISTICS_COLUMNS",
    "VARIANT_COLUMNS",
    "AuditResult",
    "considered",
    "contact_level_evidence",
    "coverage_grid",
    "explode_tags",
    "looks_posting_derived",
    "missing_assignments",
    "normalize_tag",
    "run_audit",
    "split_pairs",
    "summarize",
    "tag_coverage",
    "tag_statistics",
    "tag_variants",
]

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


# --------------------------------------------------------------------------------------------
# considered opportunities
# --------------------------------------------------------------------------------------------


def considered(snapshot_frame: pd.DataFrame, include_archived: bool = True) -> pd.DataFrame:
    """The considered opportunities of a snapshot frame.

    Confidential opportunities are always considered (the snapshot already holds what the key can
    read); archived ones unless ``include_archived`` is false. Anonymized opportunities stay: they
    are part of the picture, only writes skip them.

    Args:
        snapshot_frame: the snapshot frame (needs ``archived`` when archived ones are dropped).
        include_archived: keep archived opportunities (the default, as in DESIGN.md).

    Returns:
        A new frame with the considered rows, index reset.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["a"], []], "archived": [False, True]})
        >>> considered(f, include_archived=False)["opportunity_id"].tolist()
        ['o1']
        >>> len(considered(f))
        2
    """
    if include_archived:
        return snapshot_frame.reset_index(drop=True)
    _require(snapshot_frame, ["archived"], "considered(include_archived=False)")
    column = snapshot_frame["archived"]
    if column.dtype == bool:
        archived = column.to_numpy()
    else:  # nullable or object booleans: missing counts as not archived
        archived = pd.array(column, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    return snapshot_frame.loc[~archived].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# the integer core
# --------------------------------------------------------------------------------------------


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


MISSING_BLOCK = 1 << 19  # candidate cells per block when listing missing assignments


def _index_dtype(largest: int) -> type:
    """int32 when every value up to `largest` fits in it, else int64."""
    return np.int32 if largest < 2**31 - 1 else np.int64


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
            # int32 keys when they fit: half the memory and faster sorts
            kind = _index_dtype(n * n_all)
            rows = np.repeat(np.arange(n, dtype=kind), lengths)
            keep = tag_codes >= 0
            if not keep.all():
                rows, tag_codes = rows[keep], tag_codes[keep]
            rows *= n_all
            rows += tag_codes.astype(kind)
            del tag_codes, keep
            key, _ = _sorted_unique(rows)
            del rows
            pair_opp, pair_tag = key // n_all, key % n_all
            del key
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
            kind = _index_dtype(len(opps_per_contact) * max(n_tags, 1))
            ckey = codes.astype(kind)[pair_opp]
            ckey *= n_tags
            ckey += pair_tag.astype(kind)
            ckey, cov_with, pair_cov = _sorted_unique_inverse(ckey)
            pair_cov = pair_cov.astype(_index_dtype(len(ckey)))
            cov_contact, cov_tag = ckey // n_tags, ckey % n_tags
            del ckey
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

    @cached_property
    def _contacts(self) -> _Labels:
        return _Labels.of(self.contact_labels)

    @cached_property
    def _opportunities(self) -> _Labels:
        return _Labels.of(pd.Index(self.opp_ids))

    def _contact_text(self, codes: np.ndarray) -> Any:
        return self._contacts.at(codes)

    def _tag_text(self, codes: np.ndarray) -> Any:
        return _Labels(self.tag_labels, None, True).at(codes)  # sorted distinct already

    def _opportunity_text(self, rows: np.ndarray, reuse: bool = False) -> Any:
        """Categorical opportunity ids at `rows` (with `reuse`, `rows` may be overwritten)."""
        return self._opportunities.at(rows, reuse=reuse)

    def exploded(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "opportunity_id": self._opportunity_text(self.pair_opp),
                "contact_id": self._contact_text(self.contact_codes[self.pair_opp]),
                "tag": self._tag_text(self.pair_tag),
            },
            columns=EXPLODED_COLUMNS,
            copy=False,
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
            copy=False,
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
        # strike those that carry the tag, i.e. the pairs of a split (contact, tag). Done in
        # blocks of split pairs, so the temporaries stay small whatever the account's size.
        split_index = np.full(len(mask), -1, dtype=small)
        split_index[mask] = np.arange(len(sc), dtype=small)
        hit_split = split_index[self.pair_cov]
        del split_index
        hit = np.flatnonzero(hit_split >= 0)
        hit = hit[np.argsort(hit_split[hit], kind="stable")]
        hit_pair = hit_split[hit]  # the split pair of each tagged row, ascending
        hit_rank = rank[self.pair_opp[hit]]
        del hit_split, hit, rank
        lacks = sizes - self.cov_with[mask]
        count = int(lacks.sum())
        rows = np.empty(count, dtype=small)
        contacts = np.empty(count, dtype=small)
        tags = np.empty(count, dtype=small)
        bounds = np.searchsorted(
            np.cumsum(sizes), np.arange(1, total // MISSING_BLOCK + 1) * MISSING_BLOCK
        )
        edges = np.unique(np.concatenate([[0], bounds + 1, [len(sc)]]).clip(0, len(sc)))
        cursor = 0
        for p0, p1 in pairwise(edges.tolist()):
            part = sizes[p0:p1]
            offsets = _group_offsets(part)
            lacking = np.ones(int(part.sum()), dtype=bool)
            h0, h1 = np.searchsorted(hit_pair, [p0, p1])
            lacking[offsets[hit_pair[h0:h1] - p0] + hit_rank[h0:h1]] = False
            which = np.repeat(np.arange(p0, p1, dtype=small), part)[lacking]
            position = np.flatnonzero(lacking)
            del lacking
            position += (starts[sc[p0:p1]] - offsets)[which - p0]
            end = cursor + len(which)
            rows[cursor:end] = order[position]
            contacts[cursor:end] = sc[which]
            tags[cursor:end] = st[which]
            cursor = end
        return rows, contacts, tags

    def missing(self) -> pd.DataFrame:
        rows, contacts, tags = self._missing_arrays()
        # one column at a time, dropping each index array once used (peak memory)
        opportunity = self._opportunity_text(rows, reuse=True)
        del rows
        contact = self._contact_text(contacts)
        del contacts
        return pd.DataFrame(
            {"opportunity_id": opportunity, "contact_id": contact, "tag": self._tag_text(tags)},
            columns=MISSING_COLUMNS,
            copy=False,  # the columns are new arrays: no second copy of 7 million codes each
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


@dataclass(frozen=True)
class _Labels:
    """Labels made ready for categoricals: sorted, with each old code's new code (`rank`)."""

    labels: pd.Index  # sorted (code point order)
    rank: np.ndarray | None  # old code -> sorted code; None when already sorted
    unique: bool

    @classmethod
    def of(cls, labels: pd.Index) -> _Labels:
        kind = _index_dtype(len(labels))
        rank = None
        try:  # pyarrow compares and sorts the strings without making Python objects of them
            text = pa.array(labels.array, from_pandas=True)
            ordered = pc.less_equal(text.slice(0, len(text) - 1), text.slice(1))
            if len(text) > 1 and not pc.all(ordered).as_py():
                sorter = pc.array_sort_indices(text).to_numpy()
                rank = np.empty(len(sorter), dtype=kind)
                rank[sorter] = np.arange(len(sorter), dtype=kind)
                text = text.take(sorter)  # one sorted copy, shared by the categories
                labels = pd.Index(_text_from_arrow(text))
            same = len(text) > 1 and pc.any(pc.equal(text.slice(0, len(text) - 1), text.slice(1)))
            unique = not (same and same.as_py())
        except _ARROW_ERRORS:
            if not labels.is_monotonic_increasing:
                sorter = np.asarray(labels.argsort())
                rank = np.empty(len(sorter), dtype=kind)
                rank[sorter] = np.arange(len(sorter), dtype=kind)
                labels = labels.take(sorter)
            unique = labels.is_unique
        return cls(labels, rank, unique)

    def at(self, codes: np.ndarray, reuse: bool = False) -> Any:
        """The labels at `codes` as a categorical (integer codes, no string copies).

        A table of millions of rows (missing assignments) then holds 4 bytes per cell instead
        of a copy of a 36-character id. The categories are the labels sorted (code point order,
        as Python sorts strings), so sorting by the column sorts by the text; the values,
        `.str`, `isin`, comparisons and CSV output are those of the strings. Labels that are
        not unique (a contactless opportunity whose id is also a contact's) give text. With
        `reuse`, `codes` may be overwritten.
        """
        kind = _index_dtype(len(self.labels))
        if self.rank is not None:
            in_place = reuse and codes.dtype == kind  # no second array of codes
            codes = np.take(self.rank, codes, out=codes) if in_place else self.rank[codes]
        if not self.unique:
            return self.labels.take(codes).array
        codes = codes if codes.dtype == kind else codes.astype(kind)
        # Known sorted and unique: skip the dtype's own check, which hashes every label into a
        # table the categories would keep (about 100 MB for a million ids).
        fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
        labels = self.labels
        dtype = fastpath(labels, False) if fastpath is not None else pd.CategoricalDtype(labels)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _listify(tags: Iterable[str] | str) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags)


# --------------------------------------------------------------------------------------------
# public tables
# --------------------------------------------------------------------------------------------


def explode_tags(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per distinct (opportunity, tag) of the frame.

    A tag repeated in one opportunity's list gives one row. An opportunity without a contact gets
    its own ``opportunity_id`` as contact key. Opportunities without tags give no rows.

    Args:
        frame: a snapshot frame (``opportunity_id``, ``contact_id``, ``tags``).
        tags: optional subset of tags (exact strings) to keep.

    Returns:
        DataFrame[opportunity_id, contact_id, tag], ordered by frame row, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", None],
        ...                   "tags": [["b", "a", "b"], ["a"]]})
        >>> explode_tags(f).values.tolist()
        [['o1', 'c', 'a'], ['o1', 'c', 'b'], ['o2', 'o2', 'a']]
    """
    return _Core.build(frame, tags=tags).exploded()


def tag_coverage(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """For every (contact, tag) present: on how many of the contact's opportunities it is.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[contact_id, tag, with_tag, opportunities] sorted by contact_id then tag
        (contactless opportunities, keyed by their opportunity_id, come last).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["a"], ["a", "b"]]})
        >>> tag_coverage(f).values.tolist()
        [['c', 'a', 2, 2], ['c', 'b', 1, 2]]
    """
    return _Core.build(frame, tags=tags).coverage()


def split_pairs(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """The split pairs: a contact with 2+ opportunities and a tag on some but not all of them.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[contact_id, tag, with_tag, opportunities] sorted by contact_id then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> split_pairs(f).values.tolist()
        [['c', 'b', 1, 2]]
    """
    return _Core.build(frame, tags=tags).split_pairs()


def missing_assignments(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """The (opportunity, tag) pairs that propagating every split tag would add.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[opportunity_id, contact_id, tag] sorted by contact_id, tag, then frame order.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "c"],
        ...                   "tags": [["a", "b"], ["a"], []]})
        >>> missing_assignments(f).values.tolist()
        [['o3', 'c', 'a'], ['o2', 'c', 'b'], ['o3', 'c', 'b']]
    """
    return _Core.build(frame, tags=tags).missing()


def summarize(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> dict[str, int]:
    """The headline numbers of the audit.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        ``{"opportunities", "contacts", "multi_opportunity_contacts", "split_contacts",
        "split_pairs", "missing_assignments"}``, all ints.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3", "o4"],
        ...                   "contact_id": ["c", "c", "d", None],
        ...                   "tags": [["a", "b"], ["a"], ["b"], ["z"]]})
        >>> summarize(f)  # doctest: +NORMALIZE_WHITESPACE
        {'opportunities': 4, 'contacts': 3, 'multi_opportunity_contacts': 1,
         'split_contacts': 1, 'split_pairs': 1, 'missing_assignments': 1}
    """
    return _Core.build(frame, tags=tags).summary()


def tag_statistics(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-tag statistics: how widely each tag is used and how often it is split.

    Columns: ``opportunities`` (opportunities carrying it), ``contacts`` (contacts carrying it on
    at least one opportunity), ``multi_opportunity_contacts`` (those with 2+ opportunities),
    ``split_contacts``, ``split_rate`` (split_contacts / multi_opportunity_contacts, 0 when there
    are none), ``missing_assignments``.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        One row per tag, sorted by split_contacts descending, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> tag_statistics(f)[["tag", "contacts", "split_contacts", "split_rate"]].values.tolist()
        [['b', 2, 1, 1.0], ['a', 1, 0, 0.0]]
    """
    return _Core.build(frame, tags=tags).tag_statistics()


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalize_tag(tag: str) -> str:
    """The near-duplicate key of a tag: Unicode NFKC, casefold, strip, inner whitespace collapsed.

    Only used to *group* spellings for review; tag identity stays the exact string.

    Example:
        >>> normalize_tag("  Python\u00a0 3 ")
        'python 3'
        >>> normalize_tag("ＰＹＴＨＯＮ")
        'python'
    """
    text = unicodedata.normalize("NFKC", str(tag)).casefold()
    return " ".join(text.split())


def _is_clean(tag: str) -> bool:
    return tag == " ".join(tag.split())


def _variants_from_counts(labels: Sequence[str], counts: Sequence[int]) -> pd.DataFrame:
    rows = [
        (normalize_tag(tag), str(tag), int(count))
        for tag, count in zip(labels, counts, strict=True)
    ]
    table = pd.DataFrame(rows, columns=["group", "tag", "opportunities"])
    if table.empty:
        return _empty_variants()
    spellings = table.groupby("group")["tag"].transform("nunique")
    table = table.loc[spellings >= 2].copy()
    if table.empty:
        return _empty_variants()
    table["_unclean"] = [not _is_clean(t) for t in table["tag"]]
    # canonical: most used, then already stripped/collapsed, then lexicographic
    ranked = table.sort_values(
        ["group", "opportunities", "_unclean", "tag"], ascending=[True, False, True, True]
    )
    canonical = ranked.groupby("group", sort=False)["tag"].first()
    ranked["canonical"] = ranked["group"].map(canonical)
    ranked["is_canonical"] = ranked["tag"] == ranked["canonical"]
    out = ranked.loc[:, VARIANT_COLUMNS].reset_index(drop=True)
    out["opportunities"] = out["opportunities"].astype(np.int64)
    out["is_canonical"] = out["is_canonical"].astype(bool)
    return out


def _empty_variants() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": _text([]),
            "tag": _text([]),
            "opportunities": np.zeros(0, dtype=np.int64),
            "canonical": _text([]),
            "is_canonical": np.zeros(0, dtype=bool),
        },
        columns=VARIANT_COLUMNS,
    )


def tag_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Groups of near-duplicate tag spellings (``normalize_tag`` equal, strings different).

    Near-duplicates are reported, never merged: they are distinct tags for the audit. Only groups
    with two or more distinct spellings are listed. The suggested ``canonical`` spelling is the
    most used one (by opportunities), ties broken by a spelling that is already stripped and
    collapsed, then lexicographically.

    Args:
        frame: a snapshot frame of considered opportunities.

    Returns:
        DataFrame[group, tag, opportunities, canonical, is_canonical], sorted by group, then
        opportunities descending.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "d", "e"],
        ...                   "tags": [["Python"], ["python", "Go"], ["Python "]]})
        >>> tag_variants(f)[["tag", "opportunities", "canonical"]].values.tolist()
        [['Python', 1, 'Python'], ['python', 1, 'Python'], ['Python ', 1, 'Python']]
    """
    core = _Core.build(frame)
    return _variants_from_counts(list(core.all_tag_labels), core.all_tag_opportunities)


# --------------------------------------------------------------------------------------------
# contact-level evidence
# --------------------------------------------------------------------------------------------

_COMMITMENTS = frozenset(
    {
        "full time",
        "fulltime",
        "part time",
        "parttime",
        "intern",
        "internship",
        "contract",
        "contractor",
        "contract to hire",
        "temp to hire",
        "temporary",
        "temp",
        "freelance",
        "seasonal",
        "permanent",
        "fixed term",
        "per diem",
        "co op",
    }
)
_WORK_MODES = frozenset({"remote", "hybrid", "on site", "onsite", "in office", "anywhere"})
# "Austin, TX" / "San Francisco, CA" / "St. Louis, MO": a city, a comma, a two-letter region code
_CITY_STATE = re.compile(r"^[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?,\s*[A-Z]{2}$")


def looks_posting_derived(tag: str) -> str:
    """Why a tag's *name* looks like posting data, or "" when it does not.

    Lever copies a posting's commitment and location onto the opportunity; such tags are meant to
    differ between a person's opportunities. Heuristic, for evidence only:

    * ``"commitment"``: Full-time, Part-time, Intern(ship), Contract(or), Temporary, Freelance, ...
    * ``"location"``: "City, ST" (two capital letters after a comma), or a work mode
      ("Remote", "Hybrid", "On-site", "Remote - US", "London (Remote)").

    Example:
        >>> [looks_posting_derived(t) for t in ["Full-time", "Austin, TX", "Remote - EU", "Python"]]
        ['commitment', 'location', 'location', '']
    """
    key = normalize_tag(tag).replace("-", " ").replace("_", " ")
    key = " ".join(key.split())
    if key in _COMMITMENTS:
        return "commitment"
    words = set(re.findall(r"[^\W\d_]+(?: site| office)?", key))
    if key in _WORK_MODES or "remote" in words:
        return "location"
    if _CITY_STATE.match(" ".join(str(tag).split())):
        return "location"
    return ""


def contact_level_evidence(
    frame: pd.DataFrame,
    *,
    min_contacts: int = 5,
    scattered_below: float = 0.1,
    clustered_above: float = 0.2,
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Evidence, per tag, on whether it describes the person or the opportunity.

    Counted among the multi-opportunity contacts carrying the tag (``contacts_with_tag``):
    ``full_coverage_contacts`` have it on all their opportunities, ``split_contacts`` on some;
    ``full_coverage_rate`` and ``split_rate`` are their shares (0 when ``contacts_with_tag`` is 0;
    they add up to 1 otherwise); ``mean_coverage`` is the mean share of a carrying contact's
    opportunities that have it.

    ``expected_coverage`` is that mean share if the tag were scattered over opportunities at random
    with its overall frequency ``p`` (a contact with ``m`` opportunities that has it at least once
    would have ``p / (1 - (1 - p) ** m)`` of them covered), and ``clustering`` rescales the gap:
    ``(mean_coverage - expected_coverage) / (1 - expected_coverage)``, 0 for a tag that follows
    opportunities (a posting, team, location or stage), up to 1 for one that follows the person.
    It is 0 when undefined (no multi-opportunity contact, or a tag on nearly every opportunity).
    Why not the full coverage rate alone: after the migration, person tags are themselves split
    on most contacts (new opportunities lack them), so their full coverage is low too; their
    clustering still stands out (on the sandbox's data: 0.29 to 0.79 for person tags, -0.06 to
    0.04 for posting and stage tags).

    ``looks_posting_derived`` (with ``posting_reason``), a documented heuristic, is true when the
    name looks like a commitment or a location (``"commitment"``, ``"location"``: see
    ``looks_posting_derived``), or ``"scattered"``: at least ``min_contacts`` contacts carry it and
    its clustering is below ``scattered_below``.

    ``suggestion`` puts the evidence in words: ``"likely opportunity-level"`` when it looks posting
    derived; ``"likely contact-level"`` when at least ``min_contacts`` contacts carry it and its
    clustering is at least ``clustered_above`` or it is on all opportunities of 90% of them;
    ``"unclear"`` otherwise. It is evidence only: the decision is the user's, in the policy file
    (shown in ``policy``: "contact_level", "never_touch" or "").

    Args:
        frame: a snapshot frame of considered opportunities.
        min_contacts: carrying multi-opportunity contacts needed before coverage counts.
        scattered_below: clustering under which a tag looks opportunity-level.
        clustered_above: clustering from which a tag looks contact-level.
        policy: optional policy whose decisions fill the ``policy`` column.

    Returns:
        One row per tag, sorted by contacts_with_tag descending, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python", "Full-time"], ["Python"]]})
        >>> e = contact_level_evidence(f, min_contacts=1)
        >>> e[["tag", "full_coverage_rate", "posting_reason", "suggestion"]].values.tolist()
        [['Full-time', 0.0, 'commitment', 'likely opportunity-level'], ['Python', 1.0, '', 'likely contact-level']]
    """  # noqa: E501
    return _evidence(_Core.build(frame), min_contacts, scattered_below, clustered_above, policy)


def _evidence(
    core: _Core,
    min_contacts: int,
    scattered_below: float,
    clustered_above: float,
    policy: Policy | None,
) -> pd.DataFrame:
    per = core._per_tag()
    multi = per["multi"].astype(np.int64)
    full = per["full"].astype(np.int64)
    split = per["split"].astype(np.int64)
    has = multi > 0
    full_rate = np.divide(full, multi, out=np.zeros(len(multi)), where=has)
    split_rate = np.divide(split, multi, out=np.zeros(len(multi)), where=has)
    mean_cov = np.divide(per["share_sum"], multi, out=np.zeros(len(multi)), where=has)
    expected = np.divide(per["expected_sum"], multi, out=np.zeros(len(multi)), where=has)
    defined = has & (expected < 0.95)
    clustering = np.divide(
        mean_cov - expected, 1.0 - expected, out=np.zeros(len(multi)), where=defined
    )
    labels = [str(t) for t in core.tag_labels]
    enough = multi >= min_contacts
    scattered = enough & defined & (clustering < scattered_below)
    reasons = [
        looks_posting_derived(t) or ("scattered" if sc else "")
        for t, sc in zip(labels, scattered, strict=True)
    ]
    posting = np.array([bool(r) for r in reasons], dtype=bool)
    person = enough & ((defined & (clustering >= clustered_above)) | (full_rate >= 0.9))
    suggestion = np.where(
        posting,
        "likely opportunity-level",
        np.where(person, "likely contact-level", "unclear"),
    )
    contact_level = set(policy.contact_level) if policy is not None else set()
    never = set(policy.never_touch) if policy is not None else set()
    decided = [
        "contact_level" if t in contact_level else "never_touch" if t in never else ""
        for t in labels
    ]
    out = pd.DataFrame(
        {
            "tag": core.tag_labels.array,
            "opportunities": per["opportunities"].astype(np.int64),
            "contacts_with_tag": multi,
            "full_coverage_contacts": full,
            "full_coverage_rate": full_rate.astype(np.float64),
            "split_contacts": split,
            "split_rate": split_rate.astype(np.float64),
            "mean_coverage": mean_cov.astype(np.float64),
            "expected_coverage": expected.astype(np.float64),
            "clustering": clustering.astype(np.float64),
            "looks_posting_derived": posting,
            "posting_reason": _text(reasons),
            "suggestion": _text(suggestion.tolist()),
            "policy": _text(decided),
        },
        columns=EVIDENCE_COLUMNS,
    )
    order = np.argsort(-multi, kind="stable")
    return out.take(order).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# coverage grid (explorer / heatmap)
# --------------------------------------------------------------------------------------------


def coverage_grid(
    frame: pd.DataFrame,
    contacts: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    max_contacts: int | None = 50,
    max_tags: int | None = 40,
) -> pd.DataFrame:
    """A contact x tag matrix: the share of the contact's opportunities that carry the tag.

    Values are ``with_tag / opportunities`` in 0..1 and NaN where the contact has the tag on
    none of its opportunities, so a heatmap shows split cells (strictly between 0 and 1) at a
    glance.

    Without ``contacts``, the contacts with the most split pairs are shown (then the most
    opportunities, then contact_id), at most ``max_contacts``. Without ``tags``, the tags carried by
    the shown contacts, the most often split among them first, at most ``max_tags``. Given
    ``contacts`` or ``tags`` are kept in the given order (unknown ones give all-NaN rows/columns).

    Args:
        frame: a snapshot frame of considered opportunities.
        contacts: contact ids to show (None: pick as above).
        tags: tags to show (None: pick as above).
        max_contacts: cap on the picked contacts (None: no cap).
        max_tags: cap on the picked tags (None: no cap).

    Returns:
        DataFrame indexed by ``contact_id``, one float column per tag (columns named ``tag``).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> coverage_grid(f).to_dict("index")
        {'c': {'b': 0.5, 'a': 1.0}, 'd': {'b': 1.0, 'a': nan}}
    """
    core = _Core.build(frame)
    cov = core.coverage()
    cov["fraction"] = cov["with_tag"] / cov["opportunities"]
    cov["split"] = (cov["opportunities"] >= 2) & (cov["with_tag"] < cov["opportunities"])
    if contacts is None:
        per_contact = (
            cov.groupby("contact_id", sort=False)
            .agg(split=("split", "sum"), opportunities=("opportunities", "first"))
            .reset_index()
        )
        per_contact = per_contact.sort_values(
            ["split", "opportunities", "contact_id"], ascending=[False, False, True]
        )
        if tags is not None:
            wanted_tags = set(_listify(tags))
            has = cov.loc[cov["tag"].isin(wanted_tags), "contact_id"].unique()
            per_contact = per_contact.loc[per_contact["contact_id"].isin(has)]
        picked = per_contact["contact_id"].tolist()
        if max_contacts is not None:
            picked = picked[:max_contacts]
    else:
        picked = list(dict.fromkeys(_listify(contacts)))
    shown = cov.loc[cov["contact_id"].isin(set(picked))]
    if tags is None:
        per_tag = (
            shown.groupby("tag", sort=False)
            .agg(split=("split", "sum"), contacts=("contact_id", "size"))
            .reset_index()
            .sort_values(["split", "contacts", "tag"], ascending=[False, False, True])
        )
        tag_list = per_tag["tag"].tolist()
        if max_tags is not None:
            tag_list = tag_list[:max_tags]
    else:
        tag_list = list(dict.fromkeys(_listify(tags)))
    grid = shown.pivot(index="contact_id", columns="tag", values="fraction") if len(shown) else None
    index = pd.Index(_text(picked), name="contact_id")
    columns = pd.Index(_text(tag_list), name="tag")
    if grid is None:
        return pd.DataFrame(np.nan, index=index, columns=columns, dtype=np.float64)
    out = grid.reindex(index=index, columns=columns).astype(np.float64)
    out.index.name, out.columns.name = "contact_id", "tag"
    return out


# --------------------------------------------------------------------------------------------
# run_audit
# --------------------------------------------------------------------------------------------


@dataclass
class AuditResult:
    """Everything the audit found, as plain dicts and DataFrames.

    Attributes:
        summary: the ``summarize`` numbers (ints).
        coverage: ``tag_coverage`` of the considered opportunities.
        split_pairs: ``split_pairs``.
        missing_assignments: ``missing_assignments``.
        tag_statistics: ``tag_statistics``.
        variants: ``tag_variants``.
        evidence: ``contact_level_evidence``.
        options: how the audit was run (include_archived, tags, policy source).
    """

    summary: dict[str, int]
    coverage: pd.DataFrame
    split_pairs: pd.DataFrame
    missing_assignments: pd.DataFrame
    tag_statistics: pd.DataFrame
    variants: pd.DataFrame
    evidence: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)


def run_audit(
    frame: pd.DataFrame,
    include_archived: bool = True,
    tags: Iterable[str] | None = None,
    *,
    policy: Policy | None = None,
) -> AuditResult:
    """Run the whole audit on a snapshot frame (one preparation, every table).

    Args:
        frame: the snapshot frame (all opportunities the key can read).
        include_archived: consider archived opportunities (default true).
        tags: optional subset of tags to audit (exact strings). The opportunity and contact counts
            stay those of the whole account; split pairs, missing assignments, statistics and
            evidence cover these tags only (a requested tag absent from the account gets a row of
            zeros in the statistics); variants keep the groups containing one of them.
        policy: optional ``toolkit.policy.Policy``; its ``include_archived`` overrides the argument
            and its decisions fill the evidence ``policy`` column.

    Returns:
        An ``AuditResult``.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "c"],
        ...                   "tags": [["a"], ["a"], []],
        ...                   "archived": [False, False, True]})
        >>> run_audit(f).summary["missing_assignments"]
        1
        >>> run_audit(f, include_archived=False).summary["split_pairs"]
        0
    """
    if policy is not None:
        include_archived = bool(policy.include_archived)
    wanted = None if tags is None else list(dict.fromkeys(_listify(tags)))
    frame = considered(frame, include_archived=include_archived)
    core = _Core.build(frame, tags=wanted)
    variants = _variants_from_counts(list(core.all_tag_labels), core.all_tag_opportunities)
    if wanted is not None and len(variants):
        groups = {normalize_tag(t) for t in wanted}
        variants = variants.loc[variants["group"].isin(groups)].reset_index(drop=True)
    return AuditResult(
        summary=core.summary(),
        coverage=core.coverage(),
        split_pairs=core.split_pairs(),
        missing_assignments=core.missing(),
        tag_statistics=core.tag_statistics(),
        variants=variants,
        evidence=_evidence(core, 5, 0.1, 0.2, policy),
        options={
            "include_archived": include_archived,
            "tags": wanted,
            "policy": getattr(policy, "source", None) if policy is not None else None,
        },
    )
