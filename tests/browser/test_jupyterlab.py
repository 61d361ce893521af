"""The three notebooks as a person uses them: JupyterLab in Chromium, Run All, the widgets, reload.

For each notebook: open it, wait until the kernel is really there ("(ipykernel) | Idle" in the
status bar), Run All, wait until every code cell has its execution number and the kernel is idle,
then check that no cell shows an error and no widget says "Error displaying widget". In 01 every
explorer control is used the way a person would (click, type, arrow key) and the views must
change; then the notebook is saved and the page reloaded, and the widgets must render again. 03
runs with its defaults and the sandbox must have received no write. Screenshots of each step are
saved in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_env import require_browser
from polling import wait_for

require_browser()
pytestmark = [pytest.mark.slow]

IDLE = re.compile(r"\(ipykernel\)\s*\|\s*Idle")
BAR = re.compile(r"opportunities: [\d,]+ opp")  # the snapshot's progress bar, once done
RUN_S = 120  # a whole notebook, Run All to idle
CHANGE_S = 15  # one control, to the views changing


def _wait_idle(page: Any) -> None:
    page.get_by_text(IDLE).first.wait_for(timeout=RUN_S * 1000)


def _open(page: Any, lab: Any, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=RUN_S * 1000)
    _wait_idle(page)


def _run_all(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    _wait_done(page)


def _prompts(page: Any) -> list[str]:
    return page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _wait_done(page: Any) -> None:
    """Every code cell numbered ([n]:) and the kernel idle: the notebook has run."""

    def done() -> bool:
        prompts = _prompts(page)
        numbered = prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)
        return bool(numbered and page.get_by_text(IDLE).count())

    wait_for(done, RUN_S, "every cell numbered ([n]:) and the kernel idle")


def _no_errors(page: Any) -> None:
    body = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in body
    assert "Traceback" not in body
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    texts = [t for t in errors.all_inner_texts() if "Error" in t or "Exception" in t]
    assert not texts, texts[:2]


def _save(page: Any, lab: Any, name: str) -> None:
    """Ctrl+S, then wait until the file on disk (the served copy) has been rewritten."""
    path = lab.root / name
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    wait_for(lambda: path.stat().st_mtime_ns != before, CHANGE_S, f"{name} saved")


def _saved_outputs(lab: Any, name: str) -> list[dict]:
    notebook = json.loads((lab.root / name).read_text(encoding="utf-8"))
    return [o for c in notebook["cells"] for o in c.get("outputs", [])]


def _plain(output: dict) -> str:
    text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=False)


def _text(page: Any, css: str) -> str:
    return page.locator(css).first.inner_text()


def _changes(page: Any, css: str, before: str) -> str:
    """Wait until the element's text differs from `before`; return the new text."""
    seen: list[str] = []

    def changed() -> bool:
        seen.append(page.locator(css).first.inner_text())
        return seen[-1] != before

    wait_for(changed, CHANGE_S, f"{css} to change from {before[:200]!r}")
    return seen[-1]


def _contacts_shown(status: str) -> int:
    match = re.search(r"([\d,]+) contacts shown", status)
    assert match, status
    return int(match.group(1).replace(",", ""))


def _opportunities(status: str) -> int:
    match = re.search(r"\(([\d,]+) opportunities\)", status)
    assert match, status
    return int(match.group(1).replace(",", ""))


def _grid_rows(page: Any) -> list[str]:
    return page.locator(".ltt-grid table tbody th").all_inner_texts()


def _grid_columns(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".ltt-grid table thead th").all_inner_texts()]


def _run_explorer(page: Any, lab: Any) -> str:
    """Open 01, Run All, wait for the explorer, check for errors; the status line."""
    _open(page, lab, "01-explore-tag-coverage.ipynb")
    _run_all(page)
    page.locator(".ltt-status").wait_for(timeout=RUN_S * 1000)
    _no_errors(page)
    page.locator(".ltt-explorer").scroll_into_view_if_needed()
    return _text(page, ".ltt-status")


def test_01_explorer_controls_and_reload(jupyterlab, page, artifacts, sandbox_process):
    page, watch = page
    status = _run_explorer(page, jupyterlab)
    _shot(page, artifacts, "01-00-start")

    total = _contacts_shown(status)
    chosen = page.locator(".ltt-tags .ltt-tag-option input:checked")
    assert chosen.count() >= 1, "the starting tags are listed, checked, above the fold"
    for i in range(chosen.count()):
        assert chosen.nth(i).is_visible()
    columns = _grid_columns(page)

    # tags: a plain click on an unchosen tag adds it (no Ctrl)
    option = page.locator(".ltt-tags .ltt-tag-option").filter(
        has=page.locator("input:not(:checked)")
    )
    label = option.first.inner_text().strip()
    tag = label.rsplit(" (", 1)[0]
    _shot(page, artifacts, "01-01-tags-before")
    option.first.locator("input").click()
    status = _changes(page, ".ltt-status", status)
    assert tag in status
    assert _grid_columns(page) != columns and tag in _grid_columns(page)
    assert tag in page.locator(".ltt-stats").text_content()  # the statistics tab follows
    _shot(page, artifacts, "01-02-tags-after")

    # ... and a second click takes it off again
    page.locator(".ltt-tags .ltt-tag-option", has_text=label).locator("input").click()
    status = _changes(page, ".ltt-status", status)
    assert tag not in _grid_columns(page)

    # the tag filter narrows the list as you type
    listed = page.locator(".ltt-tags .ltt-tag-option").count()
    _shot(page, artifacts, "01-03-tag-filter-before")
    page.locator(".ltt-tag-filter input").press_sequentially(tag[:4], delay=50)
    unchosen = page.locator(".ltt-tags .ltt-tag-option").filter(
        has=page.locator("input:not(:checked)")
    )
    # typed one key at a time, the list narrows in steps: wait for the last one
    wait_for(
        lambda: (
            page.locator(".ltt-tags .ltt-tag-option").count() < listed
            and all(tag[:4].lower() in t.lower() for t in unchosen.all_inner_texts())
        ),
        CHANGE_S,
        f"the tag list narrowed to tags containing {tag[:4]!r}",
    )
    _shot(page, artifacts, "01-04-tag-filter-after")
    page.locator(".ltt-tag-filter input").fill("")

    # search as you type: no Enter
    rows = _grid_rows(page)
    name = rows[0].rsplit(" (", 1)[0]
    _shot(page, artifacts, "01-05-search-before")
    page.locator(".ltt-search input").press_sequentially(name, delay=30)
    # searched as typed, the grid follows each key: wait for the whole name's rows, and for the
    # status line, which the kernel sets after the grid (read at once, it can still be the old)
    wait_for(
        lambda: (
            (rows := _grid_rows(page))
            and all(r.startswith(name) for r in rows)
            and _contacts_shown(page.locator(".ltt-status").first.inner_text()) < total
        ),
        CHANGE_S,
        f"the grid showing only {name!r} and the status line counting fewer contacts",
    )
    status = page.locator(".ltt-status").first.inner_text()
    assert _contacts_shown(status) < total
    _shot(page, artifacts, "01-06-search-after")
    page.locator(".ltt-search input").fill("")
    status = _changes(page, ".ltt-status", status)
    assert _contacts_shown(status) == total

    # min opportunities: the slider's handle, one arrow key
    _shot(page, artifacts, "01-07-min-opportunities-before")
    handle = page.locator(".ltt-min-opportunities .noUi-handle")
    handle.focus()
    handle.press("ArrowRight")
    status = _changes(page, ".ltt-status", status)
    assert _contacts_shown(status) < total
    _shot(page, artifacts, "01-08-min-opportunities-after")
    handle.press("ArrowLeft")
    status = _changes(page, ".ltt-status", status)
    assert _contacts_shown(status) == total

    # include archived: one click changes the opportunities counted
    _shot(page, artifacts, "01-09-archived-before")
    with_archived = _opportunities(status)
    page.locator(".ltt-include-archived input").click()
    status = _changes(page, ".ltt-status", status)
    assert _opportunities(status) < with_archived
    _shot(page, artifacts, "01-10-archived-after")
    page.locator(".ltt-include-archived input").click()
    status = _changes(page, ".ltt-status", status)
    assert _opportunities(status) == with_archived

    # paging: next shows the following rows
    rows = _grid_rows(page)
    _shot(page, artifacts, "01-11-page-before")
    if page.locator(".ltt-next").is_enabled():
        page.locator(".ltt-next").click()
        status = _changes(page, ".ltt-status", status)
        assert "grid rows 31" in status and _grid_rows(page) != rows
        _shot(page, artifacts, "01-12-page-after")

    # the statistics and plan tabs show the chosen tags
    page.locator(".lm-TabBar-tabLabel", has_text="Tag statistics").click()
    page.locator(".ltt-stats table").wait_for()
    page.locator(".lm-TabBar-tabLabel", has_text="Plan preview").click()
    assert "Preview only" in page.locator(".ltt-plan").inner_text()
    _shot(page, artifacts, "01-13-plan-tab")

    # save, reload: every widget renders again (the kernel still runs)
    _save(page, jupyterlab, "01-explore-tag-coverage.ipynb")
    page.reload()
    _wait_idle(page)
    try:
        page.locator(".ltt-status").wait_for(timeout=RUN_S * 1000)
    except Exception as exc:  # seen once in 7 fresh-clone runs: keep what the page showed
        _shot(page, artifacts, "01-14-reload-failed")
        body = page.locator(".jp-Notebook").inner_text()[-1500:]
        log = jupyterlab.log.read_text(encoding="utf-8", errors="replace")[-3000:]
        log = log.replace(jupyterlab.token, "<token>")
        raise AssertionError(
            f"the explorer was not drawn again after a reload: {body!r}\n"
            f"console: {watch.console[-20:]!r}\nJupyterLab's log: {log}"
        ) from exc
    # both saved widgets drawn again (the explorer's tags, the policy panel) before "no errors"
    page.locator(".ltt-tags .ltt-tag-option").first.wait_for(timeout=RUN_S * 1000)
    page.locator(".ltt-policy-filter input").wait_for(timeout=RUN_S * 1000)
    _no_errors(page)
    assert _contacts_shown(_text(page, ".ltt-status")) == _contacts_shown(status)
    assert page.locator(".ltt-tags .ltt-tag-option").count() > 0
    page.locator(".ltt-explorer").scroll_into_view_if_needed()
    _shot(page, artifacts, "01-14-after-reload")
    outputs = _saved_outputs(jupyterlab, "01-explore-tag-coverage.ipynb")
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    # the explorer and the policy panel (issue 21) are widgets; the progress bar is text
    assert len(views) == 2, "only the explorer and the policy panel are widgets"
    bars = [o for o in outputs if BAR.match(_plain(o))]
    assert bars, "the snapshot's progress bar leaves its final line as text"
    assert not watch.outside, watch.outside[:3]


# Tags a person can meet in a real account: Chinese (needs a CJK font: `make test` installs
# fonts-noto-cjk with Chromium) and a salary band whose two dollar signs look like TeX math to
# JupyterLab's MathJax, which typesets widget descriptions.
CJK_TAG = "数据科学"
DOLLAR_TAG = "$5k-$10k"

# Draws each character of the text with the element's font on a canvas and compares it with the
# drawing of unassigned code points (U+0378, U+0379): a character that draws like them has no
# glyph in any font the browser found (a "tofu" box). The two unassigned ones must draw alike,
# or the comparison proves nothing.
GLYPHS_JS = """(element) => {
  const style = getComputedStyle(element);
  const font = `${style.fontStyle} ${style.fontWeight} 40px ${style.fontFamily}`;
  const draw = (text) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 64;
    const context = canvas.getContext("2d");
    context.font = font;
    context.fillText(text, 4, 48);
    return canvas.toDataURL();
  };
  const tofu = draw("\\u0378");
  return {
    tofu_alike: draw("\\u0379") === tofu,
    drawn: Array.from(element.dataset.glyphs).map((ch) => draw(ch) !== tofu),
  };
}"""


@pytest.fixture
def planted_tags(sandbox_process) -> Iterator[dict[str, list[str]]]:
    """CJK_TAG and DOLLAR_TAG on the first opportunity of a few contacts with several (split
    pairs), written through the sandbox's API; taken off again afterwards."""
    from toolkit.client import LeverClient

    with LeverClient(sandbox_process.base_url, api_key=sandbox_process.api_key) as client:
        by_contact: dict[str, list[str]] = {}
        for opp in client.iter_opportunities():
            if opp.get("contact") and not opp.get("isAnonymized"):
                by_contact.setdefault(opp["contact"], []).append(opp["id"])
        chosen = [ids[0] for ids in by_contact.values() if len(ids) >= 2][:6]
        planted = {CJK_TAG: chosen[:3], DOLLAR_TAG: chosen[3:]}
        for tag, ids in planted.items():
            for opp_id in ids:
                client.add_tags(opp_id, [tag])
        try:
            yield planted
        finally:
            for tag, ids in planted.items():
                for opp_id in ids:
                    client.remove_tags(opp_id, [tag])


def _choose_by_filter(page: Any, tag: str, status: str) -> tuple[Any, str]:
    """Type the start of `tag` in the tag filter, check its option; the option and new status."""
    box = page.locator(".ltt-tag-filter input")
    box.fill("")
    box.press_sequentially(tag[:3], delay=50)
    # typed one key at a time, the list is drawn again after each: wait for the last one
    unchosen = page.locator(".ltt-tags .ltt-tag-option").filter(
        has=page.locator("input:not(:checked)")
    )
    wait_for(
        lambda: all(tag[:3].casefold() in t.casefold() for t in unchosen.all_inner_texts()),
        CHANGE_S,
        f"the tag list narrowed to tags containing {tag[:3]!r}",
    )
    option = page.locator(".ltt-tags .ltt-tag-option", has_text=tag)
    option.first.wait_for(timeout=CHANGE_S * 1000)
    option.first.locator("input").click()
    return option.first, _changes(page, ".ltt-status", status)


def test_01_tags_in_any_script_and_with_dollar_signs(jupyterlab, page, artifacts, planted_tags):
    page, watch = page
    status = _run_explorer(page, jupyterlab)

    # the salary band: its text exactly, nowhere typeset as math
    option, status = _choose_by_filter(page, DOLLAR_TAG, status)
    assert option.inner_text().strip().startswith(f"{DOLLAR_TAG} (")
    # hovering shows the plain text: the label's own title; the box itself has none
    label = option.locator(".tex2jax_ignore")
    assert label.get_attribute("title") == label.inner_text() == option.inner_text().strip()
    assert option.locator("input").get_attribute("title") is None
    assert DOLLAR_TAG in _grid_columns(page)
    assert DOLLAR_TAG in status
    explorer = page.locator(".ltt-explorer")
    assert explorer.locator("mjx-container, .MathJax, math").count() == 0
    _shot(page, artifacts, "01-20-dollar-tag")

    # the Chinese tag: listed, chosen, a grid column, and drawn with real glyphs
    option, status = _choose_by_filter(page, CJK_TAG, status)
    assert option.inner_text().strip().startswith(f"{CJK_TAG} (")
    assert CJK_TAG in _grid_columns(page)
    header = page.locator(".ltt-grid table thead th", has_text=CJK_TAG).first
    for element in (option.locator("label, span").last, header):
        element.evaluate(f"(e) => {{ e.dataset.glyphs = {json.dumps(CJK_TAG)}; }}")
        drawn = element.evaluate(GLYPHS_JS)
        assert drawn["tofu_alike"], "the glyph check cannot tell a missing glyph here"
        assert all(drawn["drawn"]), f"{CJK_TAG!r} has characters without a glyph: {drawn}"
    assert explorer.locator("mjx-container, .MathJax, math").count() == 0
    _shot(page, artifacts, "01-21-cjk-tag")
    assert not watch.outside, watch.outside[:3]


@pytest.mark.parametrize("name", ["02-audit-report.ipynb"])
def test_02_runs_and_survives_a_reload(jupyterlab, page, artifacts, name):
    page, watch = page
    _open(page, jupyterlab, name)
    _run_all(page)
    _no_errors(page)
    images = page.locator(".jp-OutputArea-output img")
    assert images.count() >= 3
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    _shot(page, artifacts, "02-00-run")
    _save(page, jupyterlab, name)
    page.reload()
    _wait_idle(page)
    bar = page.get_by_text(BAR).first
    bar.wait_for(timeout=RUN_S * 1000)  # the saved outputs drawn again before "no errors"
    _no_errors(page)
    bar.scroll_into_view_if_needed()  # the snapshot's progress bar: a plain line, not a widget
    _shot(page, artifacts, "02-01-after-reload")
    assert not [o for o in _saved_outputs(jupyterlab, name) if o.get("output_type") == "error"]
    assert not watch.outside, watch.outside[:3]


def test_03_with_its_defaults_writes_nothing(jupyterlab, page, artifacts, sandbox_process):
    page, watch = page
    before = sandbox_process.stats()
    _open(page, jupyterlab, "03-remediate.ipynb")
    _run_all(page)
    _no_errors(page)
    _shot(page, artifacts, "03-00-run")
    after = sandbox_process.stats()
    assert after["requests"] > before["requests"], "03 read from the sandbox"
    assert after["writes"] == before["writes"], "03 with its defaults (a dry run) wrote"
    assert not watch.outside, watch.outside[:3]


def test_no_key_in_anything_jupyterlab_saved(jupyterlab, sandbox_process):
    """The key went to the kernels through the environment: no served file holds it."""
    for path in jupyterlab.root.rglob("*"):
        if path.is_file():
            assert sandbox_process.api_key.encode() not in path.read_bytes(), path
