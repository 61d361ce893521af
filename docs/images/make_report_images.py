"""Screenshots of the report sections a recruiter reads first, into docs/images/.

    .venv/bin/python docs/images/make_report_images.py [WORK_DIR]

Against a bundled sandbox (synthetic people): a batch with one audit run (names on) is run
twice, with a few tag changes in between, so the second report has "Since the last run"; a sync
journal of a dry run gives the sync-activity report. Each section (from its heading to the next
one) of the HTML reports is photographed in headless Chromium (the system's `/usr/bin/chromium`,
never Playwright's own browser download). Nothing leaves the machine: the pages are opened from
files and every request that is not a file is refused.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from lever_sandbox.server import Sandbox  # noqa: E402
from toolkit.notebook import execute  # noqa: E402
from toolkit.notebook.batch import run_batch  # noqa: E402
from toolkit.sync.store import SyncJournal  # noqa: E402

IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"
AUDIT_SECTIONS = {
    "Words-used-here": "audit-words-used-here.png",
    "Since-the-last-run": "audit-since-the-last-run.png",
    "People-to-check,-by-owner": "audit-people-to-check.png",
}
SYNC_SECTIONS = {
    "Headline": "sync-activity-headline.png",
    "Over-time": "sync-activity-over-time.png",
}


def _reports(work: Path) -> tuple[Path, Path]:
    with Sandbox(seed=7, contacts=120, latency_ms=0, rate=1000, burst=1000) as sb:
        os.environ.update(sb.env())
        os.environ.pop("LEVER_ACCESS_TOKEN", None)
        runs = work / "runs.yaml"
        runs.write_text(
            "runs:\n  - {name: weekly, notebook: audit, parameters: {with_personal: true}}\n",
            encoding="utf-8",
        )
        run_batch(runs, work / "out")
        opps = [o for o in sb.opportunities() if o.get("contact")]
        sb.set_tags(opps[0]["id"], [*opps[0]["tags"], "Open to relocation"])
        sb.set_tags(opps[1]["id"], [t for t in opps[1]["tags"] if t != "Python"] + ["Python"])
        sb.set_tags(opps[2]["id"], opps[2]["tags"][:-1])
        second = run_batch(runs, work / "out")
    audit = second.results[0].html_path
    journal = work / "sync.sqlite"
    with SyncJournal(journal) as sync:
        sync.open_sync_run({"dry_run": True})
        for n in range(6):
            at = 1_765_000_000_000 + n * 600_000
            sync.enqueue_webhook(f"w{n}", "applicationCreated", at, f"c{n}", f"o{n}")
            sync.write_intent(
                f"c{n}", f"o{n}", "add", ["Python"], [], trigger="webhook", session=None,
                dry_run=True,
            )  # fmt: skip
    report = execute.run_notebook("sync-activity", {"journal_path": str(journal)}, work / "sync")
    return audit, report.html_path


def _shoot(page, html: Path, sections: dict[str, str]) -> None:
    page.goto(html.resolve().as_uri(), wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    for anchor, name in sections.items():
        box = page.evaluate(
            """(id) => {
                const h = document.getElementById(id);
                const cells = Array.from(document.querySelectorAll('.jp-Cell'));
                const first = cells.findIndex(c => c.contains(h));
                let last = cells.length;
                for (let i = first + 1; i < cells.length; i++) {
                    if (cells[i].querySelector('h2')) { last = i; break; }
                }
                const top = cells[first].getBoundingClientRect().top + window.scrollY;
                let bottom = top;
                for (const c of cells.slice(first, last)) {
                    const r = c.getBoundingClientRect();
                    if (r.height > 0) bottom = Math.max(bottom, r.bottom + window.scrollY);
                }
                return {top, height: Math.min(bottom - top, 1400)};
            }""",
            anchor,
        )
        page.screenshot(
            path=str(IMAGES / name),
            clip={"x": 0, "y": box["top"], "width": 1100, "height": box["height"]},
            full_page=True,
        )
        print(IMAGES / name)


def _local_only(route) -> None:
    local = route.request.url.startswith(("file:", "data:"))
    route.continue_() if local else route.abort()


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(argv[0]) if argv else Path(tmp)  # a folder given: its reports are reused
        made = sorted(work.glob("out/*/*-weekly/*.html"))[-1:] + sorted(work.glob("sync/*/*.html"))
        audit, sync = made if len(made) == 2 else _reports(work)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                ),
            )
            _shoot(page, audit, AUDIT_SECTIONS)
            _shoot(page, sync, SYNC_SECTIONS)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
