"""Notebook 01's policy panel in JupyterLab: two choices, Save policy and Save plan, and the saved
policy planned by `lever-tags plan --policy` gives exactly what the preview showed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser_env import require_browser
from polling import wait_for
from test_jupyterlab import CHANGE_S, _run_explorer, _shot

require_browser()
pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _plan_text(page: Any) -> str:
    return page.locator(".ltt-plan").first.text_content() or ""


def _until(check, what: str) -> None:
    wait_for(check, CHANGE_S, what)


def _choose(page: Any, tag: str, choice: str) -> None:
    """Find the tag with the panel's filter, pick a choice in its row, wait for the preview."""
    before = _plan_text(page)
    page.locator(".ltt-policy-filter input").fill(tag)
    # The kernel re-points the rows once the filter reaches it: until then a row found now may
    # be hidden a moment later. Wait until every visible row's tag (its label's <b>) matches.
    rows = page.locator(".ltt-policy-row:visible")
    names = rows.locator(".widget-html b")
    _until(
        lambda: (
            bool(texts := names.all_inner_texts())
            and all(tag.casefold() in t.casefold() for t in texts)
        ),
        f"the panel's rows filtered to {tag!r}",
    )
    exact = page.locator(".widget-html b", has_text=re.compile(f"^{re.escape(tag)}$"))
    rows.filter(has=exact).first.locator("select").select_option(label=choice)
    _until(lambda: _plan_text(page) != before, f"the preview did not follow {tag} -> {choice}")


def _preview_rows(page: Any) -> dict[tuple[str, str], int]:
    """(op, tag) -> opportunities, from the preview's table."""
    cells = page.locator(".ltt-plan table tbody tr").all()
    out = {}
    for row in cells:
        op, tag, n = (c.strip() for c in row.locator("td").all_inner_texts())
        out[(op, tag)] = int(n.replace(",", ""))
    return out


def test_two_choices_saved_policy_plans_what_the_preview_showed(
    jupyterlab, page, artifacts, sandbox_process, tmp_path
):
    from toolkit.remediate.planfile import load_plan  # the toolkit, in the test process

    page, watch = page
    lab = jupyterlab
    for name in ("policy.yaml", "plan.csv"):
        (lab.root / name).unlink(missing_ok=True)
    _run_explorer(page, lab)
    page.locator(".ltt-policy").scroll_into_view_if_needed()
    page.locator(".lm-TabBar-tabLabel", has_text="Plan preview").click()
    assert "Preview only" in _plan_text(page)
    before = _preview_rows(page)
    assert ("add", "Rust") in before and ("add", "Diversity pipeline") not in before

    _choose(page, "Rust", "never touch")  # the draft's contact-level tag, now protected
    _choose(page, "Diversity pipeline", "contact-level")  # unclear in the draft (3 carriers)
    _shot(page, artifacts, "01-policy-panel-choices")
    shown = _preview_rows(page)
    assert ("add", "Rust") not in shown and shown[("add", "Diversity pipeline")] > 0

    page.locator(".ltt-save-policy").click()
    _until((lab.root / "policy.yaml").is_file, "Save policy wrote no file")
    _until(lambda: "lever-tags plan --policy" in _text_of(page, ".ltt-next-command"), "no hint")
    page.locator(".ltt-save-plan").click()
    _until((lab.root / "plan.csv").is_file, "Save plan wrote no file")
    _until(lambda: "lever-tags apply" in _text_of(page, ".ltt-next-command"), "no next command")
    _shot(page, artifacts, "01-policy-panel-saved")

    policy_file = lab.root / "policy.yaml"
    assert stat.S_IMODE(os.stat(policy_file).st_mode) == 0o600
    saved = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    assert "Rust" in saved["never_touch"] and "Diversity pipeline" in saved["contact_level"]

    env = dict(os.environ, LEVER_BASE_URL=sandbox_process.base_url)
    env["LEVER_API_KEY"] = sandbox_process.api_key
    env.pop("LEVER_ACCESS_TOKEN", None)
    out = tmp_path / "cli.csv"
    done = subprocess.run(
        [sys.executable, "-m", "toolkit.cli", "plan", "--policy", str(policy_file),
         "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cli = load_plan(out).rows
    counts = cli.groupby(["op", "tag"]).size().to_dict()
    assert counts == shown  # the command line plans exactly what the preview showed
    columns = ["opportunity_id", "op", "tag"]
    from_panel = load_plan(lab.root / "plan.csv").rows
    assert sorted(map(tuple, from_panel[columns].values.tolist())) == sorted(
        map(tuple, cli[columns].values.tolist())
    )
    total = int(re.search(r"([\d,]+) additions", _plan_text(page)).group(1).replace(",", ""))
    assert total == len(cli)
    assert not watch.outside, watch.outside[:3]


def _text_of(page: Any, css: str) -> str:
    return page.locator(css).first.text_content() or ""
