"""Charts from hand-built frames of the audit/plan shapes: sorted, titled, long names readable."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from matplotlib.figure import Figure

from toolkit.notebook import charts

LONG = "Senior Software Engineer, Platform Infrastructure (Remote - EMEA)"
LONG2 = "Senior Software Engineer, Platform Infrastructure (Remote - Americas)"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _ytick_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_split_contacts_bar_sorted_descending_and_top_n():
    stats = pd.DataFrame(
        {"tag": ["a", "b", "c", "d", "zero"], "split_contacts": [3, 9, 9, 1, 0]},
    )
    fig = charts.split_contacts_bar(stats, top=3)
    assert _ytick_labels(fig) == ["b", "c", "a"]  # ties by name, zero never shown
    assert fig.axes[0].get_title(loc="left").startswith("Tags with the most split contacts")
    assert _png(fig).startswith(b"\x89PNG")


def test_long_tag_names_are_shortened_and_kept_distinct():
    stats = pd.DataFrame({"tag": [LONG, LONG2], "split_contacts": [2, 1]})
    labels = _ytick_labels(charts.split_contacts_bar(stats))
    assert all(len(label) <= charts.LABEL_WIDTH + 4 for label in labels)
    assert len(set(labels)) == 2
    assert labels[0].endswith("…")


def test_empty_inputs_give_a_titled_figure_not_an_error():
    empty_stats = pd.DataFrame({"tag": pd.Series([], dtype=str), "split_contacts": []})
    for fig in (
        charts.split_contacts_bar(empty_stats),
        charts.opportunities_per_contact_hist(
            pd.DataFrame({"opportunity_id": [], "contact_id": []})
        ),
        charts.coverage_heatmap(
            pd.DataFrame(columns=["contact_id", "tag", "with_tag", "opportunities"])
        ),
        charts.plan_counts_bar(pd.DataFrame(columns=["opportunity_id", "contact_id", "op", "tag"])),
        charts.before_after_bar({}, {}),
    ):
        assert fig.axes[0].get_title(loc="left")
        assert _png(fig).startswith(b"\x89PNG")


def test_opportunities_histogram_counts_missing_contact_as_its_own():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5"],
            "contact_id": ["a", "a", "a", None, None],
        }
    )
    fig = charts.opportunities_per_contact_hist(frame)
    heights = [int(p.get_height()) for p in fig.axes[0].patches]
    assert heights == [2, 0, 1]  # two lone opportunities, one contact with three


def test_histogram_caps_the_long_tail():
    frame = pd.DataFrame(
        {"opportunity_id": [f"o{i}" for i in range(15)], "contact_id": ["a"] * 12 + ["b"] * 3}
    )
    fig = charts.opportunities_per_contact_hist(frame, cap=5)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == "5+"


def test_coverage_matrix_picks_most_affected_contacts_and_labels():
    cov = pd.DataFrame(
        {
            "contact_id": ["a", "a", "b", "c", "c"],
            "tag": ["x", "y", "x", "x", "y"],
            "with_tag": [1, 1, 2, 1, 3],
            "opportunities": [2, 2, 2, 3, 3],
        }
    )
    grid = charts.coverage_matrix(cov, labels={"a": "Person-aaa"})
    assert list(grid.index) == ["Person-aaa", "c"]  # b has no gap; a has two split tags
    assert list(grid.columns) == ["x", "y"]
    assert grid.loc["c", "y"] == 1.0
    fig = charts.coverage_heatmap(cov)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"1/2", "1/3"} <= texts  # the gaps are labelled with counts


def test_plan_counts_bar_stacks_add_and_remove():
    rows = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4"],
            "contact_id": ["a", "a", "b", "b"],
            "op": ["add", "add", "remove", "add"],
            "tag": ["x", "x", "y", "y"],
        }
    )

    class FakePlan:
        pass

    plan = FakePlan()
    plan.rows = rows
    fig = charts.plan_counts_bar(plan)
    assert _ytick_labels(fig) == ["x", "y"]
    assert "4 in total" in fig.axes[0].get_title(loc="left")
    with pytest.raises(TypeError):
        charts.plan_counts_bar(object())


def test_before_after_from_summaries_and_from_tag_statistics():
    fig = charts.before_after_bar(
        {"split_pairs": 10, "split_contacts": 4, "missing_assignments": 12},
        {"split_pairs": 0, "split_contacts": 0, "missing_assignments": 0},
    )
    heights = [int(p.get_height()) for p in fig.axes[0].patches]
    assert heights == [10, 4, 12, 0, 0, 0]
    before = pd.DataFrame({"tag": ["x", "y"], "split_contacts": [1, 5]})
    after = pd.DataFrame({"tag": ["x"], "split_contacts": [0]})
    fig = charts.before_after_bar(before, after)
    assert _ytick_labels(fig) == ["y", "x"]


def test_palette_is_okabe_ito():
    assert charts.PALETTE[0] == "#0072B2"
    assert charts.HEATMAP_CMAP == "cividis"


def test_save_figure(tmp_path):
    fig = charts.split_contacts_bar(pd.DataFrame({"tag": ["x"], "split_contacts": [1]}))
    path = charts.save_figure(fig, tmp_path / "sub" / "x.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_coverage_heatmap_accepts_a_ready_grid():
    grid = pd.DataFrame(
        {"x": [0.5, 1.0], "y": [float("nan"), 1 / 3]},
        index=pd.Index(["a", "b"], name="contact_id"),
    )
    fig = charts.coverage_heatmap(grid, labels={"a": "Person-1"})
    assert _ytick_labels(fig) == ["Person-1", "b"]
    assert {"50%", "33%"} <= {t.get_text() for t in fig.axes[0].texts}


def _plan_rows(counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """Plan rows with `adds, removes` per tag."""
    out = []
    for tag, (adds, removes) in counts.items():
        out += [(f"a-{tag}-{i}", "c", "add", tag) for i in range(adds)]
        out += [(f"r-{tag}-{i}", "c", "remove", tag) for i in range(removes)]
    return pd.DataFrame(out, columns=["opportunity_id", "contact_id", "op", "tag"])


def _labels_inside(fig: Figure) -> list[tuple[str, float]]:
    """Each value label with how far (pixels) it reaches past the axes' right or top edge."""
    fig.draw_without_rendering()
    ax = fig.axes[0]
    box = ax.get_window_extent()
    return [
        (t.get_text(), max(t.get_window_extent().x1 - box.x1, t.get_window_extent().y1 - box.y1))
        for t in ax.texts
    ]


@pytest.mark.parametrize(
    "counts",
    [
        {"Python": (1234, 0)},  # one tag: its label was clipped by 36 px
        {LONG: (12345, 0), "Go": (3, 0)},
        {"a": (5, 0)},
        {"a": (5, 3), "b": (9, 0)},  # the largest total has no removes
        {"python": (0, 75)},
    ],
)
def test_plan_counts_bar_value_labels_inside_the_axes(counts):
    fig = charts.plan_counts_bar(_plan_rows(counts))
    reach = _labels_inside(fig)
    assert len(reach) == len(counts)
    assert all(over <= 0 for _, over in reach), reach
    # ... also in the PNG the report embeds (another dpi, layout redone)
    assert _png(fig).startswith(b"\x89PNG")
    assert all(over <= 0 for _, over in _labels_inside(fig))


def test_other_bar_charts_keep_their_value_labels_inside():
    for fig in (
        charts.split_contacts_bar(pd.DataFrame({"tag": ["x"], "split_contacts": [123456]})),
        charts.before_after_bar({"split_pairs": 98765}, {"split_pairs": 0}),
        charts.before_after_bar(
            pd.DataFrame({"tag": [LONG], "split_contacts": [54321]}),
            pd.DataFrame({"tag": [LONG], "split_contacts": [0]}),
        ),
    ):
        reach = _labels_inside(fig)
        assert reach and all(over <= 0 for _, over in reach), reach


@pytest.mark.parametrize(
    ("counts", "legend"),
    [
        ({"x": (3, 0), "y": (1, 0)}, ["add"]),
        ({"x": (0, 2)}, ["remove"]),
        ({"x": (3, 0), "y": (0, 2)}, ["add", "remove"]),
    ],
)
def test_plan_counts_bar_legend_lists_only_ops_present(counts, legend):
    fig = charts.plan_counts_bar(_plan_rows(counts))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == legend
