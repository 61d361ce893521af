"""A batch run twice says what changed "since the last run" (issue 23): each audit run keeps its
snapshot under its name, the next batch compares with it, in the report and in the index."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from toolkit.cli import main

pytestmark = pytest.mark.notebook


@pytest.fixture
def env(fresh_sandbox, point_at, monkeypatch, tmp_path):
    sb = point_at(fresh_sandbox(contacts=60))
    return sb


def _batch(runs: Path, out: Path, capsys) -> Path:
    assert main(["batch", str(runs), "--out-root", str(out)]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_batch_run_twice_shows_since_the_last_run(env, tmp_path, capsys):
    runs = tmp_path / "runs.yaml"
    runs.write_text("runs:\n  - {name: weekly, notebook: audit}\n", encoding="utf-8")
    out = tmp_path / "out"
    first = _batch(runs, out, capsys)
    assert (out / "last-snapshots" / "weekly.parquet").is_file()
    report = next(first.parent.glob("*-weekly/02-audit-report.html")).read_text(encoding="utf-8")
    assert "No earlier run to compare with" in report

    opp = next(o for o in env.opportunities() if o.get("contact"))
    env.set_tags(opp["id"], [*opp["tags"], "Brand new tag"])
    second = _batch(runs, out, capsys)
    folder = next(second.parent.glob("*-weekly"))
    report = (folder / "02-audit-report.html").read_text(encoding="utf-8")
    assert "Since the last run:" in report and "1 new tag" in report
    index = second.read_text(encoding="utf-8")
    assert "since the last run" in index and "1 new tag" in index
    table = pd.read_csv(second.parent / "runs.csv", keep_default_na=False)
    assert "1 new tag" in table.loc[0, "since_last_run"]
    changes = pd.read_csv(folder / "changes.csv")
    assert ["tag", "new", "Brand new tag"] in changes[["kind", "change", "tag"]].values.tolist()
