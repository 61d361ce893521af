"""The HTML reports as a reader opens them: in Chromium, from disk, with nothing else.

Demo-like reports are made against a sandbox (an audit with a policy, a remediation dry run, and
a remediation with the notebook's defaults), with a Chinese contact-level tag planted so the
charts carry CJK labels. Each report is opened in the system's Chromium through Playwright
(never Playwright's own browser download): every image decodes, has alternative text, no console
error, no request leaves loopback (every request is intercepted and recorded; anything else is
aborted), and a full-page screenshot is saved under `test-artifacts/browser-reports/` (gitignored).

They use the suite's `browser` fixture (tests/browser/conftest.py). Without Chromium or
Playwright they skip with one line saying how to enable them, except under `CI=true`, where a
missing browser is a failure (browser_env.require_browser).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from browser_env import require_browser

from lever_sandbox import Sandbox
from toolkit.client import LeverClient
from toolkit.notebook import charts, execute

pytestmark = [pytest.mark.notebook, pytest.mark.browser]
require_browser()  # one line to skip without Chromium; under CI=true a failure (browser_env)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = (
    Path(os.environ.get("LEVER_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser-reports"
)
CJK_TAG = "数据科学"
VIEWPORT = {"width": 1280, "height": 900}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _plant_cjk_tag(sb: Sandbox, contacts: int = 15) -> set[str]:
    """Put CJK_TAG on the first opportunity of a few multi-opportunity contacts (split pairs)."""
    by_contact: dict[str, list[dict]] = {}
    for opp in sb.opportunities():
        if opp.get("contact") and not opp.get("archived") and not opp.get("isAnonymized"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    chosen = [opps for opps in by_contact.values() if len(opps) >= 2][:contacts]
    with LeverClient(sb.base_url, api_key=sb.api_key) as client:
        for opps in chosen:
            client.add_tags(opps[0]["id"], [CJK_TAG])
    return {opps[0]["contact"] for opps in chosen}


@pytest.fixture(scope="module")
def made_reports(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The reports of a demo-like batch against a sandbox with a CJK contact-level tag."""
    root = tmp_path_factory.mktemp("browser-reports")
    policy = yaml.safe_load((ROOT / "notebooks" / "demo-policy.yaml").read_text(encoding="utf-8"))
    policy["contact_level"].append(CJK_TAG)
    policy_path = root / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    with (
        Sandbox(seed=7, contacts=300, latency_ms=0, rate=1000, burst=1000) as sb,
        pytest.MonkeyPatch.context() as mp,
    ):
        planted = _plant_cjk_tag(sb)
        mp.delenv("LEVER_ACCESS_TOKEN", raising=False)
        for name, value in sb.env().items():
            mp.setenv(name, value)
        writes_before = sb.stats()["writes"]
        runs = {
            "audit": execute.run_notebook(
                "audit",
                {"policy_path": str(policy_path), "with_personal": True},
                root,
                "audit-before",
            ),
            "dry-run": execute.run_notebook(
                "remediate", {"policy_path": str(policy_path)}, root, "remediate-dry-run"
            ),
            "defaults": execute.run_notebook("remediate", {}, root, "remediate-defaults"),
        }
        writes = sb.stats()["writes"] - writes_before
    for name, run in runs.items():
        assert run.ok, f"{name}: {run.error_message}"
    yield {"runs": runs, "writes": writes, "planted": planted}


def _open(browser: Any, html_path: Path, shot: str) -> dict[str, Any]:
    """Open a report from disk; return what the page did (requests, console errors, images)."""
    page = browser.new_page(viewport=VIEWPORT)
    requests: list[str] = []
    outside: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        requests.append(url)
        parsed = urlparse(url)
        local = parsed.scheme in ("file", "data", "blob", "about") or (parsed.hostname in LOOPBACK)
        if local:
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html_path.resolve().as_uri(), wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=10_000)
    images = page.evaluate(
        """Array.from(document.images).map(i => ({
            alt: i.getAttribute('alt') || '', natural: i.naturalWidth,
            shown: i.getBoundingClientRect().width, top: i.getBoundingClientRect().top}))"""
    )
    geometry = page.evaluate(
        """({scroll: document.documentElement.scrollWidth,
             client: document.documentElement.clientWidth,
             tables: Array.from(document.querySelectorAll('table')).map(t => ({
                right: t.getBoundingClientRect().right,
                headers: Array.from(t.querySelectorAll('th')).map(h => h.textContent.trim())})),
             firstNote: (() => { const n = document.querySelector('.lever-note');
                                 return n ? n.getBoundingClientRect().top : null; })(),
             emptyCells: Array.from(document.querySelectorAll('.jp-Cell'))
                .filter(c => !c.innerText.trim() && !c.querySelector('img, table, svg'))
                .map(c => c.getBoundingClientRect().height)})"""
    )
    text = page.inner_text("body")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    page.close()
    return {
        "requests": requests,
        "outside": outside,
        "errors": errors,
        "images": images,
        "geometry": geometry,
        "text": text,
        "html": html_path.read_text(encoding="utf-8"),
    }


def _assert_clean(seen: dict[str, Any]) -> None:
    """Images decoded with alt text; no console error; nothing requested beyond loopback; no
    blank band left by a code cell that shows nothing (the parameters, the imports)."""
    assert seen["geometry"]["emptyCells"], "the report's hidden code cells were not found"
    assert max(seen["geometry"]["emptyCells"]) == 0, seen["geometry"]["emptyCells"]
    assert all(i["natural"] > 0 for i in seen["images"]), seen["images"]
    assert all(i["alt"].strip() for i in seen["images"]), "an image without alternative text"
    assert seen["outside"] == [], f"requests beyond loopback: {seen['outside']}"
    assert seen["errors"] == [], f"console errors: {seen['errors']}"


def test_audit_report_in_chromium(browser, made_reports):
    run = made_reports["runs"]["audit"]
    seen = _open(browser, run.html_path, "audit-report")
    geometry = seen["geometry"]
    # the headline comes first: its note above every chart
    assert geometry["firstNote"] is not None
    assert all(geometry["firstNote"] < i["top"] for i in seen["images"])
    assert seen["text"].index("people of") < seen["text"].index("Per-tag statistics")
    # nothing wider than the page: the evidence table's policy column is on screen
    assert geometry["scroll"] <= geometry["client"], geometry
    evidence = next(t for t in geometry["tables"] if "suggestion" in t["headers"])
    assert "policy" in evidence["headers"] and evidence["right"] <= geometry["client"]
    # ␣python and python are two visibly different rows
    assert "␣python" in seen["text"]
    # readable heatmap labels: 10 pt at 110 dpi, shown at (nearly) natural size
    heat = next(i for i in seen["images"] if i["alt"].startswith("Tag coverage"))
    label_px = charts.HEATMAP_LABEL_SIZE * 110 / 72 * heat["shown"] / heat["natural"]
    assert label_px >= 12, label_px
    # CJK tags: drawn (a CJK font is installed) or reported, never silently boxes
    assert CJK_TAG in next(i["alt"] for i in seen["images"] if "split contacts" in i["alt"])
    if charts.missing_glyphs([CJK_TAG]):
        assert "no glyph in the installed fonts" in seen["text"]
    else:
        assert "no glyph in the installed fonts" not in seen["text"]
    # tables for people: no pandas index, no raw rates
    assert 'class="row_heading' not in seen["html"] and "0.653061" not in seen["html"]
    _assert_clean(seen)


def test_remediate_dry_run_report_in_chromium(browser, made_reports):
    assert made_reports["writes"] == 0  # dry runs and the defaults send no write
    seen = _open(browser, made_reports["runs"]["dry-run"].html_path, "remediate-dry-run")
    assert "Dry run: nothing was written" in seen["text"]
    line = next(ln for ln in seen["text"].splitlines() if ln.startswith("dry run (apply):"))
    assert line.endswith("would be written; nothing was written")  # whole, not cut at 50
    assert len(seen["images"]) == 3
    assert seen["geometry"]["scroll"] <= seen["geometry"]["client"]
    _assert_clean(seen)


def test_remediate_defaults_report_says_nothing_to_do(browser, made_reports):
    seen = _open(browser, made_reports["runs"]["defaults"].html_path, "remediate-defaults")
    assert "Nothing to do" in seen["text"]
    assert seen["images"] == []  # no bar chart of zeros
    assert "none" in seen["text"]
    _assert_clean(seen)
