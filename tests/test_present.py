"""What a person sees in a report: headline, tables for people, visible tags, fonts, batch index.

Unit tests of `toolkit.notebook.present`, `toolkit.notebook.charts` (fonts, labels, alt text) and
`toolkit.notebook.batch_index`; the notebooks' HTML in a browser is
`tests/browser/test_reports_browser.py`.
"""

from __future__ import annotations

import io
import json
import re
import tomllib
import warnings
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest

from toolkit.audit import run_audit
from toolkit.audit.report import focus_summary
from toolkit.notebook import batch as batch_files
from toolkit.notebook import batch_index, charts, execute, helpers, present
from toolkit.remediate.plan import nothing_planned
from toolkit.remediate.planner import make_plan

ROOT = Path(__file__).resolve().parents[1]
POLICY = SimpleNamespace(
    contact_level=["Python", "数据科学"], never_touch=[], source="p.yaml", include_archived=True
)


def _frame() -> pd.DataFrame:
    """Ana (Python, Berlin split), Bo (数据科学 split), Cy (Full-time split), Dee (one opp)."""
    return pd.DataFrame(
        {
            "opportunity_id": ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "d1"],
            "contact_id": ["ana", "ana", "ana", "bo", "bo", "cy", "cy", "dee"],
            "tags": [
                ["Python", "Berlin"],
                ["Berlin"],
                [" python"],
                ["数据科学", "Full-time"],
                [],
                ["Full-time"],
                [],
                ["python"],
            ],
            "archived": [False] * 8,
            "updated_at": [1_700_000_000_000] * 8,
            "created_at": [1_600_000_000_000 + i for i in range(8)],
        }
    )


def _html(obj) -> str:
    return obj.to_html() if hasattr(obj, "to_html") else obj._repr_html_()


# -- tags made visible ---------------------------------------------------------------------------


def test_variants_python_and_space_python_look_different():
    result = run_audit(_frame())
    page = _html(present.variants_table(result.variants))
    rows = re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)
    texts = [re.sub(r"<[^>]+>", "", r).split("\n") for r in rows[1:]]
    first_cells = [next(t for t in row if t.strip()).strip() for row in texts]
    assert len(first_cells) == len(set(first_cells)) == 3  # Python, ␣python, python: all distinct
    assert "␣python" in re.sub(r"<[^>]+>", "", page) and "leading space" in page
    assert present.visible_tag("a\u200bb") == "a⟨U+200B⟩b"
    assert present.visible_tag("x\u00a0y") == "x⍽y"


def test_tables_for_people_no_index_separators_percentages_escape():
    stats = pd.DataFrame(
        {"tag": ["<script>x</script>", "Go"], "contacts": [1234567, 3], "split_rate": [0.653061, 1]}
    )
    page = _html(present.table(stats))
    assert "row_heading" not in page and "blank" not in page  # no pandas index
    assert "1,234,567" in page and "65.3%" in page and "100.0%" in page
    assert "0.653061" not in page
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "split rate" in page  # column names in words


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: present.drift_table(pd.DataFrame(columns=["opportunity_id", "changed"])), "none"),
        (lambda: present.skipped_table(SimpleNamespace(skipped=pd.DataFrame())), "none"),
        (lambda: present.verify_table(pd.DataFrame(), SimpleNamespace(dry_run=False)), "none"),
        (lambda: present.verify_table(pd.DataFrame(), SimpleNamespace(dry_run=True)), "none"),
        (lambda: present.split_pairs_table(run_audit(_frame().iloc[:0])), "none"),
    ],
)
def test_empty_tables_say_none(call, word):
    shown = call()
    assert isinstance(shown, present.Note)
    assert shown.text.startswith(word) and "<table" not in shown._repr_html_()


def test_evidence_table_keeps_the_deciding_columns_and_wraps():
    result = run_audit(_frame(), policy=POLICY)
    styler = present.evidence_table(result.evidence)
    assert list(styler.data.columns) == [
        "tag",
        "contacts",
        "split rate",
        "full coverage rate",
        "clustering",
        "looks like",
        "suggestion",
        "policy",
    ]
    assert "white-space: normal" in styler.to_html()


# -- headline: policy-aware, one answer ----------------------------------------------------------


def test_headline_with_a_policy_counts_the_contact_level_tags_like_the_heatmap():
    result = run_audit(_frame(), policy=POLICY)
    block = present.headline_audit(result, POLICY)
    text = block.parts[0].text
    all_split = result.summary["split_contacts"]
    focus = focus_summary(result, POLICY)
    heat = helpers.focus_coverage(result.coverage, POLICY)
    heat_contacts = heat.loc[
        (heat["with_tag"] > 0) & (heat["with_tag"] < heat["opportunities"]), "contact_id"
    ].nunique()
    assert focus["split_contacts"] == heat_contacts == 2  # ana (Python), bo (数据科学)
    assert all_split == 3  # cy is split on Full-time only (posting-derived); dee has one opp
    assert text.startswith(f"{all_split} people of ")
    assert f"{focus['split_contacts']} of them" in text
    numbers = block.parts[1].data
    assert list(numbers.columns) == ["", "contact-level tags (policy)", "all tags"]
    # the "most split" chart counts the same tags
    fig = charts.split_contacts_bar(present.focus_statistics(result.tag_statistics, POLICY))
    shown = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert shown == {"Python", "数据科学"}


def test_headline_without_a_policy_says_every_tag_counts():
    result = run_audit(_frame())
    text = present.headline_audit(result).parts[0].text
    assert "No policy: every tag counts" in text
    assert list(present.headline_audit(result).parts[1].data.columns) == ["", "all tags"]


# -- remediation: whole lines, nothing to do -----------------------------------------------------


def test_run_lines_are_whole_not_cut_at_50_characters():
    line = "dry run (apply): 290 changes in 290 calls would be written; nothing was written"
    note = present.run_lines(SimpleNamespace(summary_lines=lambda: [line]))
    assert line in note.text and "woul…" not in note._repr_html_()
    assert len(line) > 50 and line in note._repr_html_()


def test_empty_plan_says_nothing_to_do_and_draws_no_chart(tmp_path):
    plan = nothing_planned()  # no tags, no policy: the notebook's defaults
    head = present.headline_remediation(plan, None, {}, {})
    assert head.parts[0].text.startswith("Nothing to do")
    shown = present.plan_chart(plan, tmp_path)
    assert isinstance(shown, present.Note) and "Nothing to do" in shown.text
    assert not (tmp_path / "charts").exists()
    summary = run_audit(_frame()).summary
    assert isinstance(
        present.before_after_chart(plan, summary, summary, "x", tmp_path), present.Note
    )
    stats = run_audit(_frame()).tag_statistics
    assert present.before_after_chart(plan, stats, stats, "y", tmp_path) is None  # said once


def test_before_after_of_zeros_is_a_message_not_an_axis_of_zeros():
    fig = charts.before_after_bar({"split_pairs": 0}, {"split_pairs": 0})
    ax = fig.axes[0]
    assert not ax.axison and "Nothing split" in ax.texts[0].get_text()


def test_headline_of_a_real_plan(tmp_path):
    frame = _frame()
    plan = make_plan(frame, tags=["Python"])
    result = SimpleNamespace(
        dry_run=True,
        planned_changes=len(plan.rows),
        planned_calls=len(plan.rows),
        applied=0,
        failed=0,
        not_found=0,
        summary_lines=lambda: ["dry run (apply): 2 changes in 2 calls would be written"],
    )
    block = present.headline_remediation(plan, result, {"split_pairs": 1}, {"split_pairs": 0})
    assert "Dry run: nothing was written" in block.parts[0].text
    assert "from 1 split pairs to 0" in block.parts[0].text
    page = block._repr_html_()
    assert "planned changes" in page and "row_heading" not in page


# -- charts: labels, alt text, fonts -------------------------------------------------------------


def test_heatmap_cell_labels_are_readable(tmp_path):
    cov = pd.DataFrame(
        {
            "contact_id": [f"c{i}" for i in range(20) for _ in range(15)],
            "tag": [f"tag {j}" for _ in range(20) for j in range(15)],
            "with_tag": [1] * 300,
            "opportunities": [3] * 300,
        }
    )
    fig = charts.coverage_heatmap(cov, top_contacts=20, top_tags=15)
    assert fig.get_figwidth() <= 10.0  # shown at (nearly) its size in a report, not shrunk
    labels = [t for t in fig.axes[0].texts if t.get_text() == "1/3"]
    assert labels and all(t.get_fontsize() >= 10 for t in labels)
    path = charts.save_figure(fig, tmp_path / "h.png")
    dpi = 110
    fig.set_dpi(dpi)
    fig.draw_without_rendering()
    heights = [t.get_window_extent().height for t in labels]
    assert min(heights) >= 12  # pixels in the PNG (was ~7 px at fontsize 7, shrunk)
    assert path.stat().st_size > 0


def test_chart_alt_text_says_what_the_chart_shows(tmp_path):
    stats = pd.DataFrame({"tag": ["Python", "Go"], "split_contacts": [7, 3]})
    image = helpers.keep_figure(charts.split_contacts_bar(stats), "x", tmp_path)
    assert image.alt.startswith("Tags with the most split contacts")
    assert "Python: 7" in image.alt and "Go: 3" in image.alt
    empty = charts.plan_counts_bar(pd.DataFrame(columns=["opportunity_id", "op", "tag"]))
    assert "Nothing to change" in charts.describe_figure(empty)
    both = charts.before_after_bar(stats, stats.assign(split_contacts=[0, 0]))
    assert "Python: before 7, after 0; Go: before 3, after 0" in charts.describe_figure(both)


def _render(tag: str, families: list[str]) -> list[str]:
    """Draw a chart with `tag` using `families`; return matplotlib's glyph warnings."""
    with (
        matplotlib.rc_context({"font.family": families}),
        warnings.catch_warnings(record=True) as w,
    ):
        warnings.simplefilter("always")
        fig = charts.split_contacts_bar(pd.DataFrame({"tag": [tag], "split_contacts": [3]}))
        fig.savefig(io.BytesIO(), format="png")  # not save_figure: it reports them instead
    return [str(x.message) for x in w if "missing from" in str(x.message)]


def test_cjk_tags_draw_with_the_fallback_fonts_or_are_reported():
    families = charts.font_families()
    assert families[0] == "DejaVu Sans"
    assert matplotlib.rcParams["font.family"] == families
    # without a CJK font: boxes, and the report says so
    assert _render("数据科学", ["DejaVu Sans"])  # matplotlib itself sees the missing glyphs
    assert charts.missing_glyphs(["数据科学", "Python"], ["DejaVu Sans"]) == set("数据科学")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(charts.base, "font_families", lambda *a: ["DejaVu Sans"])
        note = present.glyph_notice(["数据科学", "Python"])
    assert note is not None and note.kind == "warning"
    assert "数据科学" in note.text and "fonts-noto-cjk" in note.text
    if not any("CJK" in f for f in families):
        pytest.skip("no Noto CJK font installed here (apt-get install fonts-noto-cjk)")
    # with the fallback list: every glyph drawn, nothing to report
    assert _render("数据科学", families) == []
    assert charts.missing_glyphs(["数据科学", "日本語", "한국어"]) == set()
    assert present.glyph_notice(["数据科学"]) is None


def test_save_figure_reports_glyphs_instead_of_warning(tmp_path):
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig = charts.split_contacts_bar(pd.DataFrame({"tag": ["数据"], "split_contacts": [1]}))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            charts.save_figure(fig, tmp_path / "x.png")


# -- batch index: key numbers and trend ----------------------------------------------------------


def _run(tmp_path: Path, name: str, notebook: str, data: dict, kind: str) -> execute.RunResult:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / f"{kind}.json").write_text(json.dumps(data))
    return execute.RunResult(name=name, notebook=Path(notebook), folder=folder)


def test_batch_index_shows_key_numbers_and_the_trend(tmp_path):
    audit_nb, fix_nb = "02-audit-report.ipynb", "03-remediate.ipynb"
    policy = {"contact_level_split_pairs": 74}
    batch = tmp_path / "20260101T000000Z-batch-demo"
    results = [
        _run(batch, "audit-before", audit_nb, {"split_pairs": 1002, "policy": policy}, "summary"),
        _run(
            batch,
            "apply",
            fix_nb,
            {"dry_run": False, "plan": {"rows": 128}, "apply": {"applied": 126, "failed": 2}},
            "remediation",
        ),
        _run(
            batch,
            "audit-after",
            audit_nb,
            {"split_pairs": 930, "policy": {"contact_level_split_pairs": 0}},
            "summary",
        ),
    ]
    batch_files.write_runs_csv(results, batch / "runs.csv")
    rows = pd.read_csv(batch / "runs.csv", keep_default_na=False, dtype=str)
    assert rows["contact_level_split_pairs"].tolist() == ["74", "", "0"]
    assert rows["written"].tolist() == ["", "126", ""]
    assert rows["failed_writes"].tolist() == ["", "2", ""]
    page = batch_files.write_index_html(results, batch / "index.html").read_text()
    assert "74 (contact-level)" in page and "126 of 128" in page
    assert "this batch: 02-audit-report.ipynb" in page
    assert "audit-before: 74 → audit-after: 0" in page and "▼ 74" in page
    assert 'class="spark" src="data:image/svg+xml' in page
    # a second batch of the same file: the earlier runs are part of the series
    later = tmp_path / "20260102T000000Z-batch-demo"
    again = [_run(later, "audit-before", audit_nb, {"split_pairs": 5, "policy": policy}, "summary")]
    history = batch_index.batch_history(later, "batch-demo")
    assert {r["name"] for r in history} == {"audit-before", "apply", "audit-after"}
    page = batch_files.write_index_html(again, later / "index.html", history=history).read_text()
    assert "audit-before over batches" in page
    assert "20260101T000000Z: 74 → this batch: 74" in page and "no change" in page


def test_batch_history_ignores_other_batch_files(tmp_path):
    for name in ("20260101T000000Z-batch-demo", "20260101T000000Z-batch-demo-other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "runs.csv").write_text("name,notebook,status\nx,a.ipynb,succeeded\n")
    current = tmp_path / "20260102T000000Z-batch-demo"
    current.mkdir()
    rows = batch_index.batch_history(current, "batch-demo")
    assert [r["batch"] for r in rows] == ["20260101T000000Z-batch-demo"]


# -- first contact -------------------------------------------------------------------------------


def test_pyproject_license_is_an_spdx_string_and_playwright_is_a_dev_extra():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"
    requires = data["build-system"]["requires"]
    setuptools_req = next(r for r in requires if r.startswith("setuptools"))
    assert setuptools_req == "setuptools>=77"
    assert any(d.startswith("playwright") for d in data["project"]["optional-dependencies"]["dev"])


def test_numbers_in_tables_keep_their_sign():
    page = _html(present.table(pd.DataFrame({"metric": ["x"], "change": np.array([-1500])})))
    assert "-1,500" in page


@pytest.mark.notebook
def test_run_kernels_log_only_critical_so_shutdown_noise_stays_out(tmp_path):
    nb = tmp_path / "level.ipynb"
    nb.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "id": "params",
                        "cell_type": "code",
                        "metadata": {"tags": ["parameters"]},
                        "source": "x: int = 1",
                        "outputs": [],
                        "execution_count": None,
                    },
                    {
                        "id": "level",
                        "cell_type": "code",
                        "metadata": {},
                        "source": "from ipykernel.kernelapp import IPKernelApp\n"
                        "print('level', IPKernelApp.instance().log_level)",
                        "outputs": [],
                        "execution_count": None,
                    },
                ],
                "metadata": {
                    "kernelspec": {
                        "name": "python3",
                        "display_name": "Python 3",
                        "language": "python",
                    },
                    "language_info": {"name": "python"},
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    result = execute.run_notebook(nb, {}, tmp_path / "out")
    assert result.ok, result.error_message
    assert "level 50" in result.executed_path.read_text(encoding="utf-8")  # logging.CRITICAL
