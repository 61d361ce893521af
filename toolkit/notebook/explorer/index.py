"""The explorer's index, built once per frame: contacts and tags as integer codes, the distinct
(contact, tag) pairs with their coverage, and the lower-cased search text (numpy and pyarrow)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import audit
from toolkit.audit.arrays import (
    factorize_sorted,
    flatten_tags,
    sorted_distinct,
    stable_argsort,
)
from toolkit.audit.engine import tag_sums

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import PolicySource


def _codes(values: Any) -> tuple[np.ndarray, pa.Array]:
    """int64 codes into the sorted distinct strings, and those strings as a pyarrow array."""
    codes, labels = factorize_sorted(pa.array(values, type=pa.large_string(), from_pandas=True))
    return codes.astype(np.int64), pa.array(labels.array, type=pa.large_string())


def _flat_tags(tags: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """(row of each tag occurrence, tag code, sorted distinct tags); a repeat counts once."""
    lengths, codes, labels = flatten_tags(tags)
    rows = np.repeat(np.arange(len(tags), dtype=np.int64), lengths)
    present = codes >= 0
    rows, codes = rows[present], codes[present].astype(np.int64)
    n = max(len(labels), 1)
    key = sorted_distinct(rows * n + codes, in_place=True)  # one (row, tag) per occurrence kept
    return key // n, key % n, labels


def _text_array(frame: pd.DataFrame, name: str) -> pa.Array:
    """A text column as a pyarrow large_string array (missing values stay null)."""
    try:
        array = pa.array(frame[name], from_pandas=True)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            return array.cast(pa.large_string())
        if pa.types.is_null(array.type):
            return pa.nulls(len(array), pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    values = [
        None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        for v in frame[name].astype("object")
    ]
    return pa.array(values, type=pa.large_string())


def _strings(frame: pd.DataFrame, name: str) -> pa.Array:
    """A text column as a pyarrow large_string array, missing values as ""."""
    return pc.fill_null(_text_array(frame, name), "")


def _contact_keys(frame: pd.DataFrame) -> pa.Array:
    """contact_id, or ``opp:<opportunity_id>`` for an opportunity without a contact."""
    contact = _text_array(frame, "contact_id")
    if not contact.null_count:
        return contact
    missing = pc.is_null(contact)  # a few rows: their keys only are built
    ids = _strings(frame, "opportunity_id").filter(missing)
    prefix = pa.scalar("opp:", pa.large_string())
    own = pc.binary_join_element_wise(prefix, ids, pa.scalar("", pa.large_string()))
    return pc.replace_with_mask(contact, missing, own)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[name].astype("boolean").fillna(False).to_numpy(dtype=bool)


class ExplorerIndex:
    """Integer view of a snapshot frame for the explorer; built once, read by every redraw.

    Attributes:
        contact: contact code per row (contactless opportunities are contacts of their own).
        contacts: the contact key per code (contact_id, or ``opp:<id>``), sorted.
        tags: the distinct tags, sorted; a tag's code is its position.
        archived, anonymized: booleans per row.
        pair_contact, pair_tag: the distinct (contact, tag) pairs, sorted by tag then contact;
            ``tag_start[t]:tag_start[t + 1]`` are tag t's pairs.
        pair_with: opportunities of the contact carrying the tag, ``[all, without archived]``.
        opportunities: opportunities per contact, ``[all, without archived]``.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.reset_index(drop=True)
        self.frame = frame
        n = len(frame)
        contact_keys = _contact_keys(frame)
        self.contact, self.contacts = _codes(contact_keys)
        n_contacts = len(self.contacts)
        self.archived = _column(frame, "archived")
        self.anonymized = _column(frame, "anonymized")
        self.opportunities = [
            np.bincount(self.contact, minlength=n_contacts),
            np.bincount(self.contact[~self.archived], minlength=n_contacts),
        ]
        self.flat_row, self.flat_tag, self.tag_labels = _flat_tags(frame["tags"])
        self.tags = np.asarray(self.tag_labels, dtype=object)
        self.tag_code = {str(t): i for i, t in enumerate(self.tags)}
        n_tags = max(1, len(self.tags))
        # (contact, tag) pairs, ordered by tag then contact; how many opportunities carry it. The
        # order that sorts the occurrences by pair also groups them by tag (`occ`).
        keys = self.flat_tag * n_contacts + self.contact[self.flat_row]
        self.occ = stable_argsort(keys)
        ordered = keys[self.occ]
        del keys
        first = np.empty(len(ordered), dtype=bool)
        first[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        pairs = ordered[first]
        del ordered
        kind = np.int32 if len(first) < 2**31 - 1 else np.int64
        inverse = np.empty(len(first), dtype=kind)
        inverse[self.occ] = np.cumsum(first, dtype=kind) - 1
        del first
        self.flat_pair = inverse  # the pair of each occurrence
        self.pair_tag = pairs // n_contacts
        self.pair_contact = pairs % n_contacts
        active = ~self.archived[self.flat_row]
        anonymous = self.anonymized[self.flat_row]
        n_pairs = len(pairs)
        self.pair_with = [
            np.bincount(inverse, minlength=n_pairs),
            np.bincount(inverse[active], minlength=n_pairs),
        ]
        # anonymized opportunities (skipped by a plan): per pair, per contact; [all, live]
        self.pair_anonymized = [
            np.bincount(inverse[anonymous], minlength=n_pairs),
            np.bincount(inverse[anonymous & active], minlength=n_pairs),
        ]
        self.anonymized_opportunities = [
            np.bincount(self.contact[self.anonymized], minlength=n_contacts),
            np.bincount(self.contact[self.anonymized & ~self.archived], minlength=n_contacts),
        ]
        del active, anonymous
        self.tag_start = np.searchsorted(self.pair_tag, np.arange(n_tags + 1))
        # flat occurrences by tag: tag t is on rows flat_row[occ[t0:t1]]
        self.occ_start = np.searchsorted(self.flat_tag[self.occ], np.arange(n_tags + 1))
        # rows by contact: contact c's rows are by_contact[row_start[c]:row_start[c + 1]]
        self.by_contact = stable_argsort(self.contact)
        self.row_start = np.zeros(n_contacts + 1, dtype=np.int64)
        np.cumsum(self.opportunities[0], out=self.row_start[1:])
        self.first_row = np.full(n_contacts, -1, dtype=np.int64)
        self.first_row[self.contact[::-1]] = np.arange(n - 1, -1, -1)
        # the search text (name, email, contact id): one per contact (its first row's), plus the
        # rows whose text differs from their contact's first row (rare), lower-cased
        parts = [_strings(frame, c) for c in ("name", "email") if c in frame.columns]
        parts.append(contact_keys)
        text = pc.binary_join_element_wise(*parts, pa.scalar("\n", type=pa.large_string()))
        first = pa.array(self.first_row)
        same = np.asarray(
            pc.equal(text, text.take(pa.array(self.first_row[self.contact]))).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        self.contact_text = pc.utf8_lower(text.take(first))
        self.extra_rows = np.flatnonzero(~same)
        self.extra_text = pc.utf8_lower(text.take(pa.array(self.extra_rows)))
        self.first_text_active = np.zeros(n_contacts, dtype=bool)  # that text on a live row
        self.first_text_active[self.contact[same & ~self.archived]] = True
        self.names = _text_array(frame, "name") if "name" in frame.columns else None

    @cached_property
    def per_tag_counts(self) -> dict[str, np.ndarray]:
        """Per tag code, over every opportunity: the sums behind the audit's statistics and
        evidence (`toolkit.audit.engine.tag_sums`), from this index's pairs (no second audit)."""
        return tag_sums(
            self.pair_tag,
            self.pair_with[0],
            self.opportunities[0][self.pair_contact],
            np.bincount(self.flat_tag, minlength=len(self.tags)),
            self.opportunities[0],
        )

    def search(self, needle: str, include_archived: bool) -> np.ndarray:
        """Contacts with an opportunity whose name, email or contact id contains `needle`
        (lower-case); without archived ones, only live opportunities count."""
        hit = np.asarray(
            pc.match_substring(self.contact_text, needle).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        if not include_archived:
            hit &= self.first_text_active
        if len(self.extra_rows):
            found = np.asarray(
                pc.match_substring(self.extra_text, needle).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
            rows = self.extra_rows[found]
            if not include_archived:
                rows = rows[~self.archived[rows]]
            hit[self.contact[rows]] = True
        return hit

    def contact_key(self, contact: int) -> str:
        """The contact's key: its contact_id, or ``opp:<id>`` for one without a contact."""
        return str(self.contacts[contact].as_py())

    def rows_with(self, tag: int) -> np.ndarray:
        """The rows carrying a tag code."""
        return self.flat_row[self.occ[self.occ_start[tag] : self.occ_start[tag + 1]]]

    def rows_of(self, contacts: np.ndarray) -> np.ndarray:
        """Every row of the given contact codes (one gather, no Python loop)."""
        starts = self.row_start[contacts]
        sizes = self.row_start[contacts + 1] - starts
        if not len(sizes) or not sizes.sum():
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
        return self.by_contact[offsets + np.arange(int(sizes.sum()))]

    def pairs_of(self, tags: Iterable[int]) -> np.ndarray:
        """Pair positions of the given tag codes."""
        parts = [np.arange(self.tag_start[t], self.tag_start[t + 1]) for t in tags]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def label(self, contact: int) -> str:
        """'Name (first 8 of the id)' when names are known, else the contact key."""
        key = self.contact_key(contact)
        row = self.first_row[contact]
        if self.names is not None and row >= 0:
            name = self.names[int(row)].as_py()
            if isinstance(name, str) and name:
                return f"{name} ({key[:8]})"
        return key


@dataclass
class Selection:
    """What the filters keep: per row, per contact, per pair (numpy masks and counts)."""

    rows: np.ndarray  # bool per row
    contacts: np.ndarray  # bool per contact
    opportunities: np.ndarray  # kept opportunities per contact
    pair_with: np.ndarray  # per pair, opportunities carrying the tag (archived per the filter)
    pair_kept: np.ndarray  # bool per pair: kept contact and the tag on a kept opportunity

    def pair_split(self, opps: np.ndarray, pair_contact: np.ndarray) -> np.ndarray:
        n = opps[pair_contact]
        return self.pair_kept & (n >= 2) & (self.pair_with < n)


def apply_filters(
    ix: ExplorerIndex, search: str, min_opportunities: int, include_archived: bool
) -> Selection:
    which = 0 if include_archived else 1
    opps = ix.opportunities[which]
    keep = opps >= max(1, int(min_opportunities))
    needle = (search or "").strip().lower()
    if needle:
        keep &= ix.search(needle, include_archived)
    rows = keep[ix.contact]
    if not include_archived:
        rows &= ~ix.archived
    pair_with = ix.pair_with[which]
    pair_kept = keep[ix.pair_contact] & (pair_with > 0)
    return Selection(rows, keep, np.where(keep, opps, 0), pair_with, pair_kept)


def policy_rules(policy: PolicySource | None) -> tuple[set[str], bool]:
    """(never_touch tags, skip_anonymized) of a Policy or a mapping, as `make_plan` reads them."""
    if policy is None:
        return set(), True
    if isinstance(policy, dict):
        return set(policy.get("never_touch", []) or []), bool(policy.get("skip_anonymized", True))
    return set(getattr(policy, "never_touch", ()) or ()), bool(
        getattr(policy, "skip_anonymized", True)
    )


def visible_label(tag: str) -> str:
    """A tag as a label: quoted when it has surrounding spaces ("python " is not "python")."""
    return f'"{tag}"' if tag != tag.strip() or not tag else tag


DEFAULT_TAGS = 5


DEBOUNCE_S = 0.2  # search and tag filter: redraw this long after the last keystroke


TAG_CHOICES = 40  # tag checkboxes listed at once (chosen ones first, then the best matches)


STATS_ROWS = 25  # statistics rows rendered when no tag is chosen (every tag)


STATS_COLUMNS = audit.TAG_STATISTICS_COLUMNS
