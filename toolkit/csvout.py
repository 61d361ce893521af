"""A frame written as CSV exactly as pandas' ``to_csv(index=False)`` writes it, fast for the
audit's big tables.

The missing-assignments table of a million-opportunity account has 7 million rows of three
categorical columns (ids and tags). pandas turns every cell back into a Python string on the way
out (about 25 s there). Here each category is rendered once, as the ``csv`` module would quote
it, and the rows are put together by pyarrow in blocks (about 2 s). Only frames of categorical
text columns and plain integer columns, two or more of them, take this path; anything else
(floats, booleans, nullable integers, text that is not categorical) goes to pandas, so the
output never depends on which path wrote it (`tests/test_csvout.py` compares them byte for
byte).

Quoting goes further than the ``csv`` module's: a field is quoted when it holds the separator, a
quote, or any character a reader might take for a line break or another dialect's separator
(`toolkit.sanitize.SEPARATORS`: a bare CR, `;`, tab, NEL, U+2028...), where the ``csv`` module
quotes only the characters of its own line terminator. Otherwise the output is pandas' to the
byte: pandas writes the values, and only a table holding such a character is re-quoted
(`render_row`, the one quoting rule of both paths).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.sanitize import SEPARATORS

BLOCK_ROWS = 1 << 16  # rows put together at once: a few MB of text
# A field holding one of these is quoted: the quote character, and every separator or line
# break of any reader (the comma, CR and LF among them).
QUOTED = '"' + SEPARATORS
_SPECIAL_RE = re.compile("[" + re.escape(QUOTED) + "]")
_SPECIAL = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in QUOTED) + "]"  # the same, for pyarrow
# What pandas (the csv module, lineterminator "\n") leaves unquoted although it is in QUOTED.
_UNQUOTED_BY_PANDAS = re.compile(
    "[" + re.escape(SEPARATORS.replace(",", "").replace("\n", "")) + "]"
)


def write_csv(handle: IO[str], frame: pd.DataFrame) -> None:
    r"""Write `frame` to the text `handle` as ``frame.to_csv(handle, index=False)`` would.

    Example:
        >>> f = pd.DataFrame({"tag": pd.Categorical(["a,b", "c"]), "n": [1, 2]})
        >>> out = io.StringIO()
        >>> write_csv(out, f)
        >>> out.getvalue()
        'tag,n\n"a,b",1\nc,2\n'
        >>> out.getvalue() == f.to_csv(index=False)
        True
    """
    columns = _fast_columns(frame)
    if columns is None:
        handle.write(_pandas_csv(frame))
        return
    handle.write(render_row([str(c) for c in frame.columns]))
    raw = getattr(handle, "buffer", None)  # a text file's bytes: the UTF-8 lines go as they are
    if (
        raw is not None
        and (getattr(handle, "encoding", "") or "").lower().replace("-", "") != "utf8"
    ):
        raw = None
    if raw is not None:
        handle.flush()
    for lines in _blocks(columns, len(frame)):
        if raw is not None:
            raw.write(_data(lines))
        else:
            handle.write(_data(lines).tobytes().decode("utf-8"))


def _fast_columns(frame: pd.DataFrame) -> list[tuple[np.ndarray | None, pa.Array]] | None:
    """Per column, (category codes or None, rendered values), or None when pandas must write it."""
    if frame.shape[1] < 2 or not frame.columns.is_unique:
        return None  # one column: pandas quotes an empty field that is alone on its line
    columns: list[tuple[np.ndarray | None, pa.Array]] = []
    for _, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if dtype.categories.inferred_type != "string":
                return None
            rendered = _render_values(_arrow_text(dtype.categories))
            empty = pa.array([""], pa.large_string())  # a missing value (code -1): empty field
            columns.append((column.cat.codes.to_numpy(), pa.concat_arrays([rendered, empty])))
        elif isinstance(dtype, np.dtype) and dtype.kind in "iu":
            columns.append((None, pc.cast(pa.array(column.to_numpy()), pa.large_string())))
        else:
            return None
    return columns


def _arrow_text(values: pd.Index) -> pa.Array:
    """Text labels as one pyarrow large_string array (no Python strings for arrow-backed ones)."""
    array = pa.array(values.array, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _render_values(values: pa.Array) -> pa.Array:
    """Each value as one CSV field: as it is, or quoted by the csv module when it needs it."""
    special = pc.match_substring_regex(values, _SPECIAL).to_numpy(zero_copy_only=False)
    if not special.any():
        return values
    out = np.asarray(values.to_pylist(), dtype=object)
    for i in np.flatnonzero(special):
        out[i] = _render_field(out[i])
    return pa.array(out, pa.large_string())


def _render_field(value: str) -> str:
    """One text field: quoted (quotes doubled) when it holds any of `QUOTED`, else as it is."""
    if _SPECIAL_RE.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_row(fields: Sequence[object]) -> str:
    r"""One CSV line as the ``csv`` module writes it, with `QUOTED`'s wider quoting.

    Values as ``csv.writer`` turns them into text (None is empty, a float its ``repr``); a line
    of one empty field is ``""``, as the ``csv`` module writes it.

    Example:
        >>> render_row(["a,b", "Senior\r'=2", "x;y", 3, None])
        '"a,b","Senior\r\'=2","x;y",3,\n'
        >>> render_row([""])
        '""\n'
    """
    texts = ["" if f is None else f if isinstance(f, str) else _text(f) for f in fields]
    if len(texts) == 1 and texts[0] == "":
        return '""\n'
    return ",".join(_render_field(t) for t in texts) + "\n"


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _pandas_csv(frame: pd.DataFrame) -> str:
    """pandas' CSV of `frame`, re-quoted by `render_row` when a value holds what pandas leaves
    unquoted (pandas still renders every value: floats, booleans, missing values)."""
    text = frame.to_csv(index=False, lineterminator="\n")
    if not _UNQUOTED_BY_PANDAS.search(text):
        return text
    every = frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_ALL)
    if csv.field_size_limit() < len(every):
        csv.field_size_limit(len(every))  # a huge cell is data here, not a broken file
    rows = csv.reader(io.StringIO(every, newline=""))
    return "".join(render_row(row) for row in rows)


def _blocks(columns: list[tuple[np.ndarray | None, pa.Array]], rows: int) -> Iterator[pa.Array]:
    """The data lines, BLOCK_ROWS at a time (the categories' codes are mapped block by block)."""
    comma = pa.scalar(",", pa.large_string())
    newline = pa.scalar("\n", pa.large_string())
    nothing = pa.scalar("", pa.large_string())
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(rows, start + BLOCK_ROWS)
        cells = []
        for codes, values in columns:
            if codes is None:
                cells.append(values.slice(start, stop - start))
                continue
            block = codes[start:stop]
            if len(block) and block.min() < 0:
                block = np.where(block < 0, len(values) - 1, block)
            cells.append(values.take(pa.array(block)))
        lines = pc.binary_join_element_wise(*cells, comma)
        yield pc.binary_join_element_wise(lines, nothing, newline)


def _data(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of a large_string array without nulls, one after the other (no copy)."""
    if not len(lines):
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    start, stop = int(offsets[0]), int(offsets[len(lines)])
    return memoryview(lines.buffers()[2])[start:stop]
