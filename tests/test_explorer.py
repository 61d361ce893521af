"""The explorer's callbacks: set widget values in Python, assert on what the views show."""

from __future__ import annotations

import asyncio
import html
import threading
import time

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

from toolkit import audit
from toolkit.notebook.explorer import Debounced, TagExplorer, filter_frame, style_grid
from toolkit.notebook.explorer.widget import NO_MATH_LABEL, option_label
from toolkit.policy import Policy
from toolkit.remediate.planner import make_plan
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
    assert "<td>100%</td>" in ex.stats_view.value  # a rate as a percentage (Python: 2 of 2)


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
    _click_tag(ex, "Python")  # a plain click takes Python off...
    _click_tag(ex, "Boomerang")  # ...and another puts Boomerang on: no Ctrl, no Enter
    assert ex.selected_tags == ["Boomerang"]
    stats = ex.stats_table()
    assert stats["tag"].tolist() == ["Boomerang"]
    assert int(stats["split_contacts"].iloc[0]) == 0
    assert ex.plan_table().empty
    assert "0</b> additions" in ex.plan_view.value

    ex.choose_tags([])
    assert "choose tags" in ex.plan_view.value
    assert ex.plan() is None


def test_unknown_tags_are_reported_not_selected():
    ex = TagExplorer(_frame(), tags=["Python", "Pyhton"])
    assert ex.selected_tags == ["Python"]
    assert "Pyhton" in ex.status.value


def _click_tag(ex: TagExplorer, tag: str) -> None:
    """What a click on the tag's checkbox does: flip its value."""
    label = f'"{tag}"' if tag != tag.strip() else tag
    boxes = [b for b in ex.tag_list.children if option_label(b).startswith(f"{label} (")]
    assert boxes, f"{tag} is not listed"
    boxes[0].value = not boxes[0].value


def _classes(widget) -> set[str]:
    found = set(widget._dom_classes)
    for child in getattr(widget, "children", ()):
        found |= _classes(child)
    return found


def test_widget_structure():
    box = TagExplorer(_frame(), tags=["Python"]).widget()
    assert isinstance(box, widgets.VBox)
    assert {
        "ltt-tags",
        "ltt-search",
        "ltt-min-opportunities",
        "ltt-include-archived",
        "ltt-grid",
        "ltt-stats",
        "ltt-plan",
        "ltt-status",
    } <= _classes(box)
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


def test_every_chosen_tag_is_listed_first_and_the_filter_finds_the_others():
    ex = TagExplorer(_frame(), tags=["Boomerang", "Python"])
    listed = [option_label(b) for b in ex.tag_list.children]
    assert listed[:2] == ["Boomerang (0 split)", "Python (2 split)"]
    assert all(b.value for b in ex.tag_list.children[:2])
    ex.choose_tags([])
    ex.tag_filter.value = "boom"
    assert [option_label(b) for b in ex.tag_list.children] == ["Boomerang (0 split)"]
    _click_tag(ex, "Boomerang")
    assert ex.selected_tags == ["Boomerang"]
    assert "Boomerang" in ex.status.value


def test_a_tag_with_surrounding_spaces_is_told_apart():
    frame = _frame()
    frame.at[1, "tags"] = ["Boomerang", "Python "]
    ex = TagExplorer(frame, tags=["Python", "Python "])
    listed = [option_label(b) for b in ex.tag_list.children]
    assert listed[:2] == ["Python (2 split)", '"Python " (1 split)']


def test_search_is_debounced_inside_a_running_loop():
    calls: list[float] = []
    fired: list[asyncio.Event] = []

    def search() -> None:
        calls.append(time.monotonic())
        fired[0].set()

    debounced = Debounced(search, wait=0.05, live=lambda: True)

    async def typing() -> None:
        fired.append(asyncio.Event())
        for _ in range(5):  # five keystrokes, 10 ms apart
            debounced()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(fired[0].wait(), timeout=60)  # the one call; bounds a failure

    # a thread of its own: its own event loop, as the kernel has one
    worker = threading.Thread(target=asyncio.run, args=(typing(),))
    worker.start()
    worker.join(timeout=10)
    assert len(calls) == 1
    outside = []
    Debounced(lambda: outside.append(1))()  # not in a kernel: at once, whatever the loop
    assert outside == [1]


def test_lever_strings_are_escaped_in_every_view():
    frame = _frame()
    evil = "<img src=x onerror=alert(1)>"
    frame.at[0, "tags"] = ["Python", evil]
    frame.at[1, "tags"] = []
    frame["name"] = frame["name"].replace("Ada Lovelace", "<script>alert(2)</script>")
    ex = TagExplorer(frame, tags=["Python", evil, "<b>nope</b>"])
    views = [ex.grid_view.value, ex.stats_view.value, ex.plan_view.value, ex.status.value]
    for text in views:
        assert "<img" not in text and "<script" not in text and "<b>nope" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in ex.grid_view.value
    assert "&lt;script&gt;" in ex.grid_view.value
    assert "&lt;b&gt;nope&lt;/b&gt;" in ex.status.value
    assert ex.grid_table().loc["<script>alert(2)</script> (ca)", evil] == 0.5


def test_a_dollar_tag_is_shown_as_typed_not_typeset():
    frame = _frame()
    math = "$x^{2}$ skills"
    frame.at[0, "tags"] = ["Python", math]
    ex = TagExplorer(frame, tags=["Python", math])
    for view in (ex.grid_view, ex.stats_view, ex.plan_view, ex.status):
        # JupyterLab's MathJax skips these classes, so `$...$` stays text
        assert view.value.startswith('<div class="tex2jax_ignore mathjax_ignore">'), view.value
        assert view.value.endswith("</div>")
    assert "$x^{2}$ skills" in ex.status.value
    # the tag checkboxes too: ipywidgets typesets descriptions, so theirs are HTML in a span
    # MathJax skips, escaped (a hostile tag stays text), and read back as typed
    hostile = '<b title="x">"$5k-$10k"</b>'
    frame.at[1, "tags"] = [hostile]
    ex = TagExplorer(frame, tags=["Python", math, hostile])
    boxes = {option_label(b).rsplit(" (", 1)[0]: b for b in ex.tag_list.children}
    assert set(boxes) >= {"Python", math, hostile}
    for tag in (math, hostile):
        box = boxes[tag]
        assert box.description_allow_html
        assert box.description == NO_MATH_LABEL.format(html.escape(f"{tag} (1 split)"))
        assert "<b" not in box.description and box.description.count("<span") == 1


def test_the_grid_is_paged():
    rows = [
        (f"o{i}-{j}", f"c{i:03d}", ["Python"] if j == 0 else [], False, f"P{i:03d}", "x@y")
        for i in range(75)
        for j in range(2)
    ]
    frame = pd.DataFrame(
        rows, columns=["opportunity_id", "contact_id", "tags", "archived", "name", "email"]
    )
    ex = TagExplorer(frame, tags=["Python"], max_contacts=30)
    first = list(ex.grid_table().index)
    assert len(first) == 30 and first[0] == "P000 (c000)"
    assert ex.prev_page.disabled and not ex.next_page.disabled
    assert "grid rows 1–30 of 75" in ex.status.value
    ex.next_page.click()
    assert ex.grid_table().index[0] == "P030 (c030)"
    assert "grid rows 31–60 of 75" in ex.status.value
    ex.next_page.click()
    assert len(ex.grid_table()) == 15 and ex.next_page.disabled
    ex.search.value = "p07"  # a filter starts again on page one
    assert list(ex.grid_table().index) == [f"P07{i} (c07{i})" for i in range(5)]


def _expected(frame, ex):
    kept = filter_frame(
        frame,
        search=ex.search.value,
        min_opportunities=ex.min_opportunities.value,
        include_archived=ex.include_archived.value,
    )
    return kept


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"include_archived": False},
        {"min_opportunities": 3},
        {"search": "a"},
        {"search": "example", "include_archived": False, "min_opportunities": 2},
    ],
)
def test_the_index_agrees_with_the_audit_and_the_plan(sandbox, state):
    frame = frame_from_opportunities(sandbox.opportunities(), with_personal=True)
    policy = Policy.from_dict({"version": 1, "contact_level": ["Python"], "never_touch": ["Go"]})
    tags = ["Python", "Go", "Boomerang"]
    ex = TagExplorer(frame, tags=tags, policy=policy, max_contacts=10_000)
    for name, value in state.items():
        getattr(ex, name).value = value
    kept = _expected(frame, ex)
    assert int(ex.selection().rows.sum()) == len(kept)

    stats = ex.stats_table().sort_values("tag").reset_index(drop=True)
    truth = audit.tag_statistics(kept, tags=tags).sort_values("tag").reset_index(drop=True)
    truth = truth.loc[truth["opportunities"] > 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        stats.loc[stats["opportunities"] > 0].reset_index(drop=True), truth, check_dtype=False
    )

    plan = make_plan(kept, tags=tags, policy=policy, include_archived=ex.include_archived.value)
    assert ex.preview()["counts"] == plan.counts()
    pd.testing.assert_frame_equal(ex.plan_table(), plan.changes_by_tag(), check_dtype=False)
    assert ex.plan().counts() == plan.counts()

    grid = ex.grid_table()
    truth_grid = audit.coverage_grid(kept, tags=tags, max_contacts=None).dropna(how="all")
    assert len(grid) == len(truth_grid)
    keys = {ex.index.label(c): ex.index.contact_key(c) for c in range(len(ex.index.contacts))}
    values = truth_grid.loc[[keys[label] for label in grid.index]].to_numpy()
    np.testing.assert_allclose(grid.to_numpy(), values)


def test_explorer_on_sandbox_data(sandbox):
    frame = frame_from_opportunities(sandbox.opportunities(), with_personal=True)
    ex = TagExplorer(frame, tags=["Python", "Go"])
    assert set(ex.plan_table()["tag"]) <= {"Python", "Go"}
    assert not ex.grid_table().empty
    top = ex.min_opportunities.max
    ex.min_opportunities.value = top  # the slider's top: the contacts with the most opportunities
    counts = frame["contact_id"].value_counts()
    busiest = set(counts[counts == top].index)
    with_tags = {
        c
        for c, t in zip(frame["contact_id"], frame["tags"], strict=True)
        if {"Python", "Go"} & set(t)
    }
    assert len(ex.grid_table()) == len(busiest & with_tags)
    assert f"<b>{len(busiest)}</b> contacts shown" in ex.status.value


def test_search_matches_filter_frame_when_names_differ_between_opportunities():
    frame = _frame()
    frame["archived"] = [True, False, True, False, True, False]  # first rows archived
    frame.at[1, "name"] = "Ada Byron"  # Ada's live row has another name than her first one
    frame.at[2, "email"] = "bob@old.example"  # Bob's first (archived) row has an old email
    ex = TagExplorer(frame, tags=["Python"], min_opportunities=1)
    for needle in ("byron", "lovelace", "old.example", "bob@example.org", "cy", "zzz", "CA"):
        for archived in (True, False):
            ex.include_archived.value = archived
            ex.search.value = needle
            expected = set(
                filter_frame(frame, search=needle, include_archived=archived)["contact_id"]
            )
            shown = {ex.index.contact_key(c) for c in np.flatnonzero(ex.selection().contacts)}
            assert shown == expected, (needle, archived)


def test_without_chosen_tags_the_views_show_the_most_split_tags():
    ex = TagExplorer(_frame(), tags=[], min_opportunities=1)
    stats = ex.stats_table()
    truth = audit.tag_statistics(_frame())
    assert stats["tag"].tolist() == truth["tag"].tolist()
    assert list(ex.grid_table().columns) == stats["tag"].tolist()[: ex.max_tags]
    ex.min_opportunities.value = 3  # Bob alone: the cached every-tag counts are recomputed
    assert ex.stats_table()["tag"].tolist() == ["Python"]
    assert "choose tags" in ex.plan_view.value
