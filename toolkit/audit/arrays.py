"""The array helpers of the audit engine and of the explorer's index: tags flattened by pyarrow,
values factorized into sorted integer codes, text sorted by code point, sorted-distinct keys and
their inverse, a radix stable argsort, group offsets, and label lookups (numpy and pyarrow, no
Python loop per opportunity).

Both indexes are built from these; they differ in what they keep: the audit orders its
(contact, tag) pairs by contact and builds result tables, the explorer orders them by tag and
keeps per-row masks for its filters.
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

# The dtype pandas gives a column of Python strings: "str" on pandas 3, object on pandas 2.
# (Any: a dtype chosen at run time, which pandas-stubs cannot name.)
TEXT_DTYPE: Any = pd.Series(["x"]).dtype


def as_text(values: Any) -> Any:
    """An array of strings in pandas' default string dtype."""
    return pd.array(list(values) if not isinstance(values, list) else values, dtype=TEXT_DTYPE)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
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
    if pd.api.types.is_object_dtype(TEXT_DTYPE):
        return pd.array(array.to_pylist(), dtype=object)
    return pd.array(array, dtype=TEXT_DTYPE)


def argsort_text(text: pa.Array) -> np.ndarray:
    """Indices that sort a pyarrow string array by code point (as Python sorts), stable.

    Ids of one width (Lever's UUIDs) are sorted by numpy as fixed-width bytes, a view of the
    array's own buffer: about twice as fast as pyarrow's string sort on a million ids. UTF-8
    bytes compare in code point order, so both give the same order. Anything else (nulls,
    mixed widths, a slice) goes to pyarrow.

    Example:
        >>> argsort_text(pa.array(["b2", "a9", "b1"])).tolist()
        [1, 2, 0]
        >>> argsort_text(pa.chunked_array([["b", None], ["ab"]])).tolist()
        [2, 0, 1]
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    n = len(text)
    if n > 1 and not text.null_count and text.offset == 0:
        offsets = np.frombuffer(
            text.buffers()[1], dtype=np.int64 if pa.types.is_large_string(text.type) else np.int32
        )[: n + 1]
        width = int(offsets[1] - offsets[0])
        fixed_width = 0 < width <= 64 and offsets[0] == 0 and int(offsets[n]) == width * n
        if fixed_width and (np.diff(offsets) == width).all():
            fixed = np.frombuffer(text.buffers()[2], dtype=f"S{width}", count=n)
            return np.argsort(fixed, kind="stable")
    indices: np.ndarray = pc.array_sort_indices(text).to_numpy()
    return indices


def factorize_sorted(values: Any) -> tuple[np.ndarray, pd.Index]:
    """Codes (int32 when they fit, -1 where missing) into the sorted distinct values.

    Strings go through pyarrow's dictionary encoding (sorted by code point, as Python sorts);
    anything else falls back to ``pd.factorize(sort=True)``. One array of codes is made: the
    dictionary's indices are mapped through a small table of ranks whose last slot, -1, is where
    a missing value (index -1) lands.

    Example:
        >>> codes, labels = factorize_sorted(pd.Series(["b", None, "a", "b"]))
        >>> codes.tolist(), list(labels)
        ([1, -1, 0, 1], ['a', 'b'])
    """
    try:
        array = pa.array(values, from_pandas=True)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_null(array.type):  # empty, or nothing but missing values
            return np.full(len(array), -1, dtype=np.int32), pd.Index(as_text([]))
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            raise TypeError("not strings")
        encoded = pc.dictionary_encode(array)
        del array
        order = argsort_text(encoded.dictionary)
        kind = index_dtype(len(order) + 1)
        rank: np.ndarray = np.empty(len(order) + 1, dtype=kind)
        rank[order] = np.arange(len(order), dtype=kind)
        rank[-1] = -1
        indices = encoded.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        codes = rank[indices.to_numpy(zero_copy_only=False)]
        return codes, pd.Index(_text_from_arrow(encoded.dictionary.take(order)))
    except _ARROW_ERRORS:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        return codes.astype(index_dtype(len(uniques) + 1)), pd.Index(uniques)


def flatten_tags(tags: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Tags per row, and the flat tag codes (-1 for a missing tag) into sorted distinct tags.

    Lists (the snapshot's format), tuples and numpy arrays (a Parquet round trip) go through
    pyarrow in one conversion (32-bit offsets unless the text needs more); other cells (a bare
    string, None, NaN) through ``_as_list``.

    Example:
        >>> lengths, codes, labels = flatten_tags(pd.Series([["b", "a"], None, "b"]))
        >>> lengths.tolist(), codes.tolist(), list(labels)
        ([2, 0, 1], [1, 0, 1], ['a', 'b'])
    """
    # pandas accepts na_value=None with dtype=object; pandas-stubs' overloads do not
    values = tags.to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]
    kinds = {*map(type, values)}
    if kinds <= {list, tuple, np.ndarray, type(None)}:
        for kind in (pa.list_(pa.string()), pa.large_list(pa.large_string())):
            try:
                lists = pa.array(values, type=kind)
            except pa.ArrowCapacityError:
                continue
            except _ARROW_ERRORS:
                break
            if isinstance(lists, pa.ChunkedArray):  # over 2 GiB of text: 64-bit offsets
                continue
            lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
            flat = lists.flatten()
            del lists
            codes, uniques = factorize_sorted(flat)
            return lengths, codes, uniques
    if not kinds <= {list}:
        values = [_as_list(v) for v in values]
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    flat = list(chain.from_iterable(values))
    if not flat:
        return lengths, np.zeros(0, dtype=np.int32), pd.Index(as_text([]))
    codes, uniques = factorize_sorted(np.array(flat, dtype=object))
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


def sorted_distinct(keys: np.ndarray, in_place: bool = False) -> np.ndarray:
    """The sorted distinct values of `keys` (sort-based: faster than hash ``np.unique`` here).

    With `in_place`, `keys` is sorted where it is instead of copied.

    Example:
        >>> sorted_distinct(np.array([3, 1, 3, 2])).tolist()
        [1, 2, 3]
    """
    if not len(keys):
        return keys.copy()
    ordered = keys if in_place else keys.copy()
    ordered.sort(kind="stable")  # timsort: fast on the nearly sorted keys it gets
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """A stable argsort of integer keys: numpy's radix sort on 16-bit digits when the keys are
    non-negative and fit in 32 bits (several times faster than a comparison sort on millions),
    else numpy's stable sort. Either way the order is the one stable order.

    Example:
        >>> stable_argsort(np.array([70000, 3, 70000, 3, 1])).tolist()
        [4, 1, 3, 0, 2]
    """
    if not len(keys) or int(keys.max()) >= 1 << 32 or int(keys.min()) < 0:
        return np.argsort(keys, kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if int(keys.max()) >= 1 << 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def sorted_unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct values, their counts (int64), and the index of each key's distinct value.

    The index has the smallest integer type that holds it; temporaries are dropped as soon as
    they are used (this runs on one key per (opportunity, tag)).

    Example:
        >>> distinct, counts, inverse = sorted_unique_inverse(np.array([3, 1, 3, 2]))
        >>> distinct.tolist(), counts.tolist(), inverse.tolist()
        ([1, 2, 3], [1, 1, 2], [2, 0, 2, 1])
    """
    if not len(keys):
        empty = np.zeros(0, dtype=np.int64)
        return keys.copy(), empty, empty
    order = stable_argsort(keys)
    ordered = keys[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct = ordered[first]
    del ordered
    kind = index_dtype(len(keys))
    group: np.ndarray = np.cumsum(first, dtype=kind)
    del first
    group -= 1
    inverse: np.ndarray = np.empty(len(keys), dtype=kind)
    inverse[order] = group
    del order, group
    counts = np.bincount(inverse, minlength=len(distinct)).astype(np.int64, copy=False)
    return distinct, counts, inverse


def index_dtype(largest: int) -> type:
    """int32 when every value up to `largest` fits in it, else int64."""
    return np.int32 if largest < 2**31 - 1 else np.int64


def group_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start offset of each group given group sizes."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1], out=starts[1:])
    return starts


@dataclass(frozen=True)
class SortedLabels:
    """Labels made ready for categoricals: sorted, with each old code's new code (`rank`)."""

    labels: pd.Index  # sorted (code point order)
    rank: np.ndarray | None  # old code -> sorted code; None when already sorted
    unique: bool

    @classmethod
    def of(cls, labels: pd.Index) -> SortedLabels:
        kind = index_dtype(len(labels))
        rank: np.ndarray | None = None
        try:  # pyarrow compares and sorts the strings without making Python objects of them
            text = pa.array(labels.array, from_pandas=True)
            ordered = pc.less_equal(text.slice(0, len(text) - 1), text.slice(1))
            if len(text) > 1 and not pc.all(ordered).as_py():
                sorter = argsort_text(text)
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
        kind = index_dtype(len(self.labels))
        if self.rank is not None:
            if reuse and codes.dtype == kind:  # no second array of codes: map it in blocks
                for start in range(0, len(codes), 1 << 20):
                    block = codes[start : start + (1 << 20)]
                    block[:] = self.rank[block]
            else:
                codes = self.rank[codes]
        if not self.unique:
            return self.labels.take(codes).array
        codes = codes if codes.dtype == kind else codes.astype(kind)
        # Known sorted and unique: skip the dtype's own check, which hashes every label into a
        # table the categories would keep (about 100 MB for a million ids).
        fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
        labels = self.labels
        dtype = fastpath(labels, False) if fastpath is not None else pd.CategoricalDtype(labels)
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def listify(tags: Iterable[str] | str) -> list[str]:
    return [tags] if isinstance(tags, str) else list(tags)
