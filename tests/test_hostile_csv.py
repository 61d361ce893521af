"""Issue 20, finding 1: no CSV of the toolkit starts a cell or a row with a formula, in any reader.

A tag, name or email holding a bare CR (`Senior\\r=2+5`), a `;` (`Go;=1+1`), NEL or U+2028 was
written unquoted: the csv module reads a bare CR as a line end, and a spreadsheet whose list
separator is `;` starts a new cell at the `;`. Every CSV the toolkit writes (the audit's, the
plan and its skipped rows, verify's residual rows, a journal export, a batch's runs.csv) is
written here from the `--hostile` sandbox and read back three ways: the csv module, the csv
module with a `;` dialect, and a naive reader that splits at every line break and separator.
"""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from lever_sandbox import Sandbox
from lever_sandbox.data import HOSTILE_EMAILS, HOSTILE_NAMES, HOSTILE_TAGS, hostile_dataset
from toolkit import csvout
from toolkit.cli import main
from toolkit.files import write_csv_atomic
from toolkit.notebook.batch import write_runs_csv
from toolkit.notebook.execute import RunResult
from toolkit.remediate.journal_views import journal_frame
from toolkit.remediate.planfile import load_plan
from toolkit.sanitize import FORMULA_STARTS, SEPARATORS, csv_cell, csv_uncell, tag_problem

UNSAFE_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Hostile tags the toolkit may write (a `;` in a tag is allowed; a CR is not).
PLAN_TAGS = ["Go;=1+1", HOSTILE_TAGS[3], HOSTILE_TAGS[4], "'=1+1"]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _unsafe(cells: list[str]) -> list[str]:
    return [c for c in cells if c.startswith(UNSAFE_STARTS) and not _is_number(c.strip())]


def _cells_three_ways(path: Path) -> dict[str, list[str]]:
    text = path.read_bytes().decode("utf-8")
    comma = [c for row in csv.reader(io.StringIO(text, newline="")) for c in row]
    semicolon = [c for row in csv.reader(io.StringIO(text, newline=""), delimiter=";") for c in row]
    naive = [c for line in text.splitlines() for c in re.split(r"[,;\t]", line)]
    return {"csv": comma, "csv ;": semicolon, "naive": naive}


@pytest.fixture(scope="module")
def hostile_env():
    sb = Sandbox(dataset=hostile_dataset(seed=7, contacts=200), rate=1000, burst=1000)
    sb.start()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sb.env().items():
            mp.setenv(key, value)
        mp.delenv("LEVER_ACCESS_TOKEN", raising=False)
        yield sb
    sb.stop()


@pytest.fixture(scope="module")
def every_csv(hostile_env, tmp_path_factory):
    """Every CSV the toolkit writes, from hostile data: {name: path}."""
    root = tmp_path_factory.mktemp("hostile-csv")
    codes = {}
    codes["audit"] = main(["audit", "--out", str(root / "audit"), "--with-names"])
    plan = root / "plan.csv"
    argv = ["plan", "--out", str(plan)]
    for tag in PLAN_TAGS:
        argv += ["--tag", tag]
    codes["plan"] = main(argv)
    residual = root / "residual.csv"
    codes["verify-before"] = main(["verify", str(plan), "--out", str(residual)])
    journal = root / "j.sqlite"
    codes["apply"] = main(["apply", str(plan), "--yes", "--journal", str(journal)])
    codes["verify-after"] = main(["verify", str(plan), "--journal", str(journal)])
    write_csv_atomic(root / "journal.csv", journal_frame(journal))  # a journal export
    bad = RunResult(
        name="Senior\r=2+5",
        notebook=Path("01-explore.ipynb"),
        folder=root,
        status="failed",
        error_message="KeyError: 'Go;=1+1'\u2028@SUM(1)",
    )
    write_runs_csv([bad], root / "runs.csv")
    assert codes == {"audit": 0, "plan": 0, "verify-before": 1, "apply": 0, "verify-after": 0}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.csv"))}


def test_every_csv_is_formula_safe_in_every_reader(every_csv):
    expected = {
        "audit/split_pairs.csv",
        "audit/missing_assignments.csv",
        "audit/tag_statistics.csv",
        "audit/evidence.csv",
        "plan.csv",
        "plan.skipped.csv",
        "residual.csv",
        "journal.csv",
        "runs.csv",
    }
    assert expected <= set(every_csv), sorted(every_csv)
    seen = ""
    for name, path in every_csv.items():
        seen += path.read_bytes().decode("utf-8")
        for reader, cells in _cells_three_ways(path).items():
            assert _unsafe(cells) == [], (name, reader)
    # the hostile strings are there (escaped), not left out
    for text in ("Senior\r'=2+5", "Go;'=1+1", "Ada\r'=2+5 Lovelace", "ada;'=1+1@example.com"):
        assert text in seen, text


def test_each_cell_holding_a_separator_is_quoted(every_csv):
    text = every_csv["audit/split_pairs.csv"].read_bytes().decode("utf-8")
    assert '"Senior\r\'=2+5"' in text and '"Go;\'=1+1"' in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    tags = {csv_uncell(r["tag"]) for r in rows}
    assert set(HOSTILE_TAGS) <= tags  # read back exactly, CR and all


def test_names_and_emails_read_back_exactly(every_csv):
    with every_csv["audit/split_pairs.csv"].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = {csv_uncell(r.get("name", "")) for r in rows}
    emails = {csv_uncell(r.get("email", "")) for r in rows}
    assert set(HOSTILE_NAMES) & names and set(HOSTILE_EMAILS) & emails


def test_the_plan_reads_back_and_applies_exactly(every_csv):
    plan = load_plan(every_csv["plan.csv"])
    assert set(plan.rows["tag"]) == set(PLAN_TAGS)  # `Go;'=1+1` read back as `Go;=1+1`


def test_csv_cell_escapes_after_every_separator_and_round_trips():
    rng = random.Random(20)
    pieces = [*SEPARATORS, *FORMULA_STARTS, "'", "a", "\r\n", " "]
    for _ in range(20_000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 9)))
        cell = csv_cell(value)
        assert csv_uncell(cell) == value, repr(value)
        for part in re.split(f"[{re.escape(SEPARATORS)}]", cell):
            assert not part.startswith(("=", "+", "-", "@")), (repr(value), repr(cell))


@pytest.mark.parametrize("text_dtype", ["object", "str", "category"])
def test_both_writers_quote_a_cell_with_any_separator_alike(text_dtype):
    values = [f"a{sep}b" for sep in SEPARATORS] + ["plain"]
    frame = pd.DataFrame({"tag": values, "n": range(len(values))}).astype({"tag": text_dtype})
    out = io.StringIO()
    csvout.write_csv(out, frame)
    lines = out.getvalue().split("\n")[1:-1]
    joined = "\n".join(lines)
    for value in values[:-1]:
        assert '"' + value.replace('"', '""') + '"' in joined, repr(value)
    assert joined.endswith("plain," + str(len(values) - 1))
    assert list(csv.reader(io.StringIO(out.getvalue(), newline="")))[1:] == [
        [v, str(i)] for i, v in enumerate(values)
    ]


def test_no_hostile_plan_tag_is_refused_by_the_tag_rule():
    assert [t for t in PLAN_TAGS if tag_problem(t)] == []
