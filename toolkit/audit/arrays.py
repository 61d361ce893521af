"""The audit engine's array helpers: tags flattened by pyarrow, values factorized into sorted
integer codes, sorted-unique keys, group offsets, and label lookups (numpy, no Python loop per
opportunity)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
