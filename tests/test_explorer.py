"""The explorer's callbacks: set widget values in Python, assert on what the views show."""

from __future__ import annotations

import ipywidgets as widgets
import pandas as pd
import pytest

from toolkit.notebook.explorer import TagExplorer, filter_frame, style_grid
from toolkit.snapshot.frame import frame_from_opportunities


def _frame() -> pd.DataFrame:
    rows = [
        # Ada: Python on 1 of 2 -> a gap; Boomerang on both.
        ("o1", "ca", ["Python", "Boomerang"], False, "Ada Lovelace", "ada@example.com"),
        ("o2", "ca", ["Boomerang"], False, "Ada Lovelace", "ada@example.com"),
        # Bob: Python on 1 of 3, one archived opportunity.
        ("o3", "cb", ["Python"], False, "Bob Stone", "bob@example.org"),
        ("o4", "cb", [], False, "Bob Stone", "bob@example.org"),
        ("o5", "cb", [], True, "Bob Stone", "bob@example.org"),
        # Cy: one opportunity only.
        ("o6", "cc", ["Python"], False, "Cy Young", "cy@example.com"),
    ]
    frame = pd.DataFrame(
        rows, columns=["opportunity_id", "contact_id", "tags", "archived", "name", "email"]
    )
    frame["archived_at"] = pd.array([None, None, None, None, 5, None], dtype="Int64")
    frame["confidential"] = False
    frame["anonymized"] = False
    frame["created_at"] = pd.array([1, 2, 3, 4, 5, 6], dtype="Int64")
    frame["updated_at"] = pd.array([1, 2, 3, 4, 5, 6], dtype="Int64")
    return frame


def test_filter_frame_search_min_and_archived():
    frame = _frame()
    assert set(filter_frame(frame, search="ADA")["contact_id"]) == {"ca"}
    assert set(filter_frame(frame, search="example.org")["contact_id"]) == {"cb"}
    assert set(filter_frame(frame, min_opportunities=3)["contact_id"]) == {"cb"}
    # without archived, Bob has two opportunities left
    assert (
        set(filter_frame(frame, min_opportunities=3, include_archived=False)["contact_id"]) == set()
    )
    assert len(filter_frame(frame, include_archived=False)) == 5


def test_initial_views_and_plan_preview():
    ex = TagExplorer(_frame(), tags=["Python"], min_opportunities=2)
    assert ex.selected_tags == ["Python"]
    grid = ex.grid_table()
    assert list(grid.columns) == ["Python"]
    assert grid.loc["Ada Lovelace (ca)", "Python"] == 0.5
    assert grid.loc["Bob Stone (cb)", "Python"] == pytest.approx(1 / 3)
    plan = ex.plan_table()
    assert plan.to_dict("records") == [{"op": "add", "tag": "Python", "opportunities": 3}]
    assert "3</b> additions" in ex.plan_view.value
    assert "Preview only" in ex.plan_view.value
    assert "tag-coverage" in ex.grid_view.value  # the styled table


def test_changing_widgets_updates_the_views():
    ex = TagExplorer(_frame(), tags=["Python"], min_opportunities=2)
    ex.search.value = "bob"
    assert "<b>1</b> contacts" in ex.status.value
    assert list(ex.grid_table().index) == ["Bob Stone (cb)"]
    assert ex.plan_table()["opportunities"].tolist() == [2]

    ex.include_archived.value = False  # Bob's archived opportunity leaves
    assert ex.grid_table().loc["Bob Stone (cb)", "Python"] == 0.5
    assert ex.plan_table()["opportunities"].tolist() == [1]

    ex.search.value = ""
    ex.tags.value = ("Boomerang",)
    stats = ex.stats_table()
    assert stats["tag"].tolist() == ["Boomerang"]
    assert int(stats["split_contacts"].iloc[0]) == 0
    assert ex.plan_table().empty
    assert "0</b> additions" in ex.plan_view.value

    ex.tags.value = ()
    assert "choose tags" in ex.plan_view.value
    assert ex.plan() is None


def test_unknown_tags_are_reported_not_selected():
    ex = TagExplorer(_frame(), tags=["Python", "Pyhton"])
    assert ex.selected_tags == ["Python"]
    assert "Pyhton" in ex.status.value


def test_widget_structure():
    box = TagExplorer(_frame(), tags=["Python"]).widget()
    assert isinstance(box, widgets.VBox)
    tabs = box.children[-1]
    assert isinstance(tabs, widgets.Tab)
    assert [tabs.get_title(i) for i in range(3)] == [
        "Coverage grid",
        "Tag statistics",
        "Plan preview",
    ]


def test_style_grid_highlights_only_gaps():
    grid = pd.DataFrame({"x": [0.5, 1.0, float("nan")]}, index=["a", "b", "c"])
    html = style_grid(grid).to_html()
    assert html.count("font-weight: bold") == 1  # the one gap
    assert "50%" in html and "100%" in html


def test_explorer_on_sandbox_data(sandbox):
    frame = frame_from_opportunities(sandbox.opportunities(), with_personal=True)
    ex = TagExplorer(frame, tags=["Python", "Go"])
    assert set(ex.plan_table()["tag"]) <= {"Python", "Go"}
    assert not ex.grid_table().empty
    ex.min_opportunities.value = ex.min_opportunities.max
    assert len(ex.grid_table()) >= 0  # the slider's top still renders
