"""`toolkit.csvout.write_csv` writes the same bytes on the fast path (categorical text and integer
columns) and on the pandas path (every other frame): pandas' `to_csv(index=False)`, byte for
byte, except that a cell holding a separator of any reader (a bare CR, `;`, tab, NEL...) is
quoted too (`_expected`); with hostile text (separators, quotes, line ends, formulas, NUL),
missing values, unused categories and block boundaries."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pandas as pd
import pytest

from toolkit import csvout
from toolkit.files import write_csv_atomic
from toolkit.sanitize import csv_safe_frame

PIECES = [
    "a",
    "Z",
    "é",
    "数据",
    " ",
    ",",
    '"',
    "'",
    "\n",
    "\r",
    "\r\n",
    "=",
    "+",
    "-",
    "@",
    "\t",
    ";",
]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 6)))


def _frame(seed: int, rows: int, text_dtype: str) -> pd.DataFrame:
    rng = random.Random(seed)
    labels = sorted({_text(rng) for _ in range(40)} | {"", "plain", "a,b", 'say "hi"'})
    pick = [rng.choice(labels) if rng.random() > 0.05 else None for _ in range(rows)]
    categories = pd.Index([*labels, "unused"], dtype=text_dtype)
    return pd.DataFrame(
        {
            "opportunity_id": pd.Categorical(pick, categories=categories),
            "tag, with a comma": pd.Categorical(
                [rng.choice(labels) for _ in range(rows)], categories=categories
            ),
            "with_tag": np.array([rng.randrange(-5, 10**12) for _ in range(rows)], dtype=np.int64),
            "opportunities": np.array([rng.randrange(0, 300) for _ in range(rows)], dtype=np.int32),
        }
    )


def _expected(frame: pd.DataFrame) -> str:
    """pandas' CSV; where a cell holds a separator pandas leaves unquoted, the same cells
    re-quoted (the pandas path of `write_csv`)."""
    plain = frame.to_csv(index=False)
    wide = csvout._pandas_csv(frame)
    rows = lambda text: list(csv.reader(io.StringIO(text, newline="")))  # noqa: E731
    every = frame.to_csv(index=False, quoting=csv.QUOTE_ALL)  # reads back exactly
    assert rows(wide) == rows(every)  # the same cells, only quoted where needed
    if not any(c in plain for c in ";\t\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00"):
        assert wide == plain
    return wide


def _written(frame: pd.DataFrame) -> str:
    out = io.StringIO()
    csvout.write_csv(out, frame)
    return out.getvalue()


@pytest.mark.parametrize("text_dtype", ["object", "str"])
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("block", [7, 1 << 19])
def test_the_fast_path_writes_what_pandas_writes(seed, text_dtype, block, monkeypatch):
    monkeypatch.setattr(csvout, "BLOCK_ROWS", block)  # many blocks, and one
    frame = _frame(seed, 300, text_dtype)
    assert csvout._fast_columns(frame) is not None  # this frame takes the fast path
    assert _written(frame) == _expected(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"tag": pd.Categorical(["", "a"])}),  # one column: "" alone is quoted
        pd.DataFrame({"tag": pd.Categorical(["a", "b"]), "rate": [0.5, 1 / 3]}),
        pd.DataFrame({"tag": pd.Categorical(["a", "b"]), "ok": [True, False]}),
        pd.DataFrame({"tag": pd.Categorical(["a", "b"]), "n": pd.array([1, None], "Int64")}),
        pd.DataFrame({"tag": ["a,b", "c"], "n": [1, 2]}),  # text that is not categorical
        pd.DataFrame({"n": pd.Categorical([1, 2]), "m": [3, 4]}),  # categories not text
        pd.DataFrame({"tag": pd.Categorical([], categories=["a"]), "n": np.zeros(0, int)}),
    ],
    ids=["one-column", "float", "bool", "nullable-int", "object-text", "int-categories", "empty"],
)
def test_other_frames_are_written_as_pandas_writes_them(frame):
    assert _written(frame) == frame.to_csv(index=False) == _expected(frame)


def test_a_nul_in_the_text_is_quoted_on_both_paths():
    frame = pd.DataFrame({"tag": pd.Categorical(["a\x00b", "c"]), "n": [1, 2]})
    assert _written(frame) == _written(frame.astype({"tag": object})) == 'tag,n\n"a\x00b",1\nc,2\n'


def test_write_csv_atomic_takes_the_fast_path_and_stays_formula_safe(tmp_path, monkeypatch):
    frame = _frame(4, 50, "str")
    frame["tag, with a comma"] = pd.Categorical(["=HYPERLINK(1)", "ok"] * 25)
    calls = []
    real = csvout._blocks
    monkeypatch.setattr(csvout, "_blocks", lambda *a: calls.append(1) or real(*a))
    path = write_csv_atomic(tmp_path / "t.csv", frame)
    assert calls, "the audit's kind of table goes through the fast path"
    text = path.read_bytes().decode("utf-8")  # as written: no newline translation
    assert "'=HYPERLINK(1)" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    assert text == _expected(csv_safe_frame(frame))
