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

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from toolkit.audit.arrays import (
    TEXT_DTYPE,
    SortedLabels,
    as_text,
    factorize_sorted,
    flatten_tags,
    group_offsets,
    index_dtype,
    listify,
    require_columns,
    sorted_distinct,
    sorted_unique_inverse,
    stable_argsort,
)

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


MISSING_BLOCK = 1 << 19  # candidate cells per block when listing missing assignments


@dataclass(frozen=True)
class AuditCore:
    """Integer view of the considered opportunities (built once, read by every table)."""

    opp_ids: Any  # ExtensionArray of opportunity_id, one per row
    contact_codes: np.ndarray  # int32 per row; contactless rows get codes of their own
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
        opps: np.ndarray = self.opps_per_contact[self.cov_contact]
        return opps

    @property
    def split_mask(self) -> np.ndarray:
        opps = self.cov_opps
        return (opps >= 2) & (self.cov_with < opps)

    @classmethod
    def build(cls, frame: pd.DataFrame, tags: Iterable[str] | None = None) -> AuditCore:
        require_columns(frame, ["opportunity_id", "contact_id", "tags"], "the audit")
        n = len(frame)
        opp_ids = frame["opportunity_id"].array

        # contacts: sorted codes for real contacts, then one code per contactless opportunity
        codes, uniques = factorize_sorted(frame["contact_id"])
        codes = codes.astype(index_dtype(n + 1), copy=False)  # room for the contactless
        no_contact = codes < 0
        n_real = len(uniques)
        n_none = int(no_contact.sum())
        if n_none:
            codes[no_contact] = np.arange(n_real, n_real + n_none, dtype=codes.dtype)
            own = pd.Series(opp_ids[no_contact])
            labels = pd.concat([pd.Series(uniques), own], ignore_index=True)
            if labels.dtype != TEXT_DTYPE:
                labels = labels.astype(TEXT_DTYPE)
            contact_labels = pd.Index(labels)
        else:
            contact_labels = pd.Index(uniques)
        opps_per_contact = np.bincount(codes, minlength=n_real + n_none).astype(np.int64)

        # tags: flatten, factorize (sorted), deduplicate (opportunity, tag)
        lengths, tag_codes, all_labels = flatten_tags(frame["tags"])
        n_all = len(all_labels)
        if n_all:
            # int32 keys when they fit: half the memory and faster sorts
            kind = index_dtype(n * n_all)
            rows: np.ndarray = np.repeat(np.arange(n, dtype=kind), lengths)
            del lengths
            if tag_codes.min() < 0:  # a missing tag inside a list
                keep = tag_codes >= 0
                rows, tag_codes = rows[keep], tag_codes[keep]
                del keep
            rows *= n_all
            rows += tag_codes
            del tag_codes
            pair_opp, pair_tag = np.divmod(sorted_distinct(rows, in_place=True), n_all)
            del rows
        else:
            pair_opp = pair_tag = np.zeros(0, dtype=np.int32)
        all_counts = np.bincount(pair_tag, minlength=n_all).astype(np.int64)

        if tags is not None:
            wanted = sorted({str(t) for t in listify(tags)})
            position = {t: i for i, t in enumerate(wanted)}
            remap = np.array([position.get(t, -1) for t in all_labels], dtype=np.int64)
            new_tag = remap[pair_tag] if len(pair_tag) else pair_tag
            keep = new_tag >= 0
            pair_opp, pair_tag = pair_opp[keep], new_tag[keep]
            tag_labels = pd.Index(as_text(wanted))
        else:
            tag_labels = all_labels
        n_tags = len(tag_labels)

        if len(pair_opp):
            kind = index_dtype(len(opps_per_contact) * max(n_tags, 1))
            ckey: np.ndarray = codes[pair_opp].astype(kind, copy=False)
            ckey *= n_tags
            ckey += pair_tag
            ckey, cov_with, pair_cov = sorted_unique_inverse(ckey)
            cov_contact, cov_tag = np.divmod(ckey, n_tags)
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
    def _contacts(self) -> SortedLabels:
        return SortedLabels.of(self.contact_labels)

    @cached_property
    def _opportunities(self) -> SortedLabels:
        return SortedLabels.of(pd.Index(self.opp_ids))

    def _contact_text(self, codes: np.ndarray, reuse: bool = False) -> Any:
        """Categorical contact ids at `codes` (with `reuse`, `codes` may be overwritten)."""
        return self._contacts.at(codes, reuse=reuse)

    def _tag_text(self, codes: np.ndarray) -> Any:
        return SortedLabels(self.tag_labels, None, True).at(codes)  # sorted distinct already

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
        sizes = sizes.astype(small)
        # the rows of each contact, contiguous; and each row's rank among its contact's rows
        order = stable_argsort(self.contact_codes).astype(small)
        starts = group_offsets(self.opps_per_contact)
        rank = np.empty(n, dtype=small)
        rank[order] = np.arange(n, dtype=np.int64) - starts[self.contact_codes[order]]
        # candidates: every row of the contact, for every split pair of it (positions only);
        # strike those that carry the tag, i.e. the pairs of a split (contact, tag). Done in
        # blocks of split pairs, so the temporaries stay small whatever the account's size.
        split_index = np.full(len(mask), -1, dtype=small)
        split_index[mask] = np.arange(len(sc), dtype=small)
        hit_split = split_index[self.pair_cov]
        del split_index
        hit = np.flatnonzero(hit_split >= 0).astype(small)
        hit_pair = hit_split[hit]
        del hit_split
        by_pair = stable_argsort(hit_pair)
        hit = hit[by_pair]
        hit_pair = hit_pair[by_pair]  # the split pair of each tagged row, ascending
        del by_pair
        hit_rank = rank[self.pair_opp[hit]]
        del hit, rank
        count = total - int(self.cov_with[mask].sum())
        rows = np.empty(count, dtype=small)
        contacts = np.empty(count, dtype=small)
        # the tag column's categorical keeps int8/int16 codes for a few hundred tags: make them so
        tags = np.empty(count, dtype=np.int16 if self.n_tags < 2**15 - 1 else small)
        bounds = np.searchsorted(
            np.cumsum(sizes), np.arange(1, total // MISSING_BLOCK + 1) * MISSING_BLOCK
        )
        edges = np.unique(np.concatenate([[0], bounds + 1, [len(sc)]]).clip(0, len(sc)))
        cursor = 0
        for p0, p1 in pairwise(edges.tolist()):
            part = sizes[p0:p1]
            offsets = group_offsets(part)
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
        # the sorted labels first: sorting a million ids needs room the big arrays would crowd
        self._opportunities, self._contacts  # noqa: B018 (cached properties, computed here)
        rows, contacts, tags = self._missing_arrays()
        # one column at a time, dropping each index array once used (peak memory)
        opportunity = self._opportunity_text(rows, reuse=True)
        del rows
        contact = self._contact_text(contacts, reuse=True)
        del contacts
        return pd.DataFrame(
            {"opportunity_id": opportunity, "contact_id": contact, "tag": self._tag_text(tags)},
            columns=MISSING_COLUMNS,
            copy=False,  # the columns are new arrays: no second copy of 7 million codes each
        )

    def summary(self) -> dict[str, int]:
        mask = self.split_mask
        split_contacts = len(sorted_distinct(self.cov_contact[mask], in_place=True))
        missing = int((self.cov_opps[mask] - self.cov_with[mask]).sum())
        return {
            "opportunities": int(self.n_opps),
            "contacts": len(self.opps_per_contact),
            "multi_opportunity_contacts": int((self.opps_per_contact >= 2).sum()),
            "split_contacts": int(split_contacts),
            "split_pairs": int(mask.sum()),
            "missing_assignments": missing,
        }

    @cached_property
    def per_tag_counts(self) -> dict[str, np.ndarray]:
        """Per tag code: the sums behind the statistics and the evidence (computed once;
        `tag_sums` over this core's (contact, tag) rows)."""
        return tag_sums(
            self.cov_tag,
            self.cov_with,
            self.cov_opps,
            np.bincount(self.pair_tag, minlength=self.n_tags),
            self.opps_per_contact,
        )

    def tag_statistics(self) -> pd.DataFrame:
        per = self.per_tag_counts
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


# --------------------------------------------------------------------------------------------
# contact-level evidence
# --------------------------------------------------------------------------------------------


def tag_sums(
    tag: np.ndarray,
    with_tag: np.ndarray,
    opps: np.ndarray,
    opportunities: np.ndarray,
    opps_per_contact: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per tag code: the sums behind the statistics and the evidence, from one row per
    (contact, tag): its tag code, the contact's opportunities carrying it and all the contact's
    opportunities. Shared by the audit (`AuditCore.per_tag_counts`) and the explorer's index.

    Args:
        tag, with_tag, opps: per (contact, tag) row (`opps` is not modified).
        opportunities: opportunities carrying each tag (its length is the number of tags).
        opps_per_contact: every contact's opportunities (for the tag frequency ``p``).

    Each temporary is dropped once summed, and the expected share is computed in place (a
    million opportunities give ~1.7 million rows). The expected share is what a tag would have
    if scattered over opportunities at random: with ``p`` the tag's share of the opportunities of
    multi-opportunity contacts, a contact with ``m`` opportunities that carries it on ``k >= 1``
    of them has, in expectation, ``E[k/m | k >= 1] = p / (1 - (1 - p) ** m)`` of them covered.

    Example:
        >>> s = tag_sums(np.array([0, 0]), np.array([2, 1]), np.array([2, 3]),
        ...              np.array([3]), np.array([2, 3]))
        >>> int(s["multi"][0]), int(s["full"][0]), int(s["split"][0]), float(s["missing"][0])
        (2, 1, 1, 2.0)
    """
    t = len(opportunities)
    multi = opps >= 2
    split = multi & (with_tag < opps)
    full = multi & (with_tag == opps)
    out = {
        "opportunities": np.asarray(opportunities),
        "contacts": np.bincount(tag, minlength=t),
        "multi": np.bincount(tag[multi], minlength=t),
        "split": np.bincount(tag[split], minlength=t),
        "full": np.bincount(tag[full], minlength=t),
    }
    del full
    lack = opps - with_tag
    out["missing"] = np.bincount(tag[split], weights=lack[split], minlength=t)
    del lack, split
    m_tag, m_opps, m_with = tag[multi], opps[multi], with_tag[multi]
    del multi
    share = m_with / m_opps  # m_opps >= 2
    out["share_sum"] = np.bincount(m_tag, weights=share, minlength=t)
    del share
    total = float(opps_per_contact[opps_per_contact >= 2].sum())
    if not total or not len(m_tag):
        out["expected_sum"] = np.zeros(t)
        return out
    p = np.bincount(m_tag, weights=m_with, minlength=t) / total
    expected = (1.0 - p)[m_tag]
    np.power(expected, m_opps, out=expected)
    np.subtract(1.0, expected, out=expected)
    np.divide(p[m_tag], expected, out=expected)
    out["expected_sum"] = np.bincount(m_tag, weights=expected, minlength=t)
    return out
