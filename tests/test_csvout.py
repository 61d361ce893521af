"""`toolkit.csvout.write_csv` writes exactly what pandas' `to_csv(index=False)` writes, byte for
byte, on the fast path (categorical text and integer columns) and on every frame it leaves to
pandas; with hostile text (separators, quotes, line ends, formulas, NUL), missing values, unused
categories and block boundaries."""

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
    assert _written(frame) == frame.to_csv(index=False)


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
    assert _written(frame) == frame.to_csv(index=False)


def test_a_nul_in_the_text_behaves_as_in_pandas():
    frame = pd.DataFrame({"tag": pd.Categorical(["a\x00b", "c"]), "n": [1, 2]})
    try:
        expected = frame.to_csv(index=False)
    except csv.Error:
        with pytest.raises(csv.Error):
            _written(frame)
    else:
        assert _written(frame) == expected


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
    assert text == csv_safe_frame(frame).to_csv(index=False)
