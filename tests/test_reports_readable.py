"""Reports a recruiter can read (issue 23): the audit report starts with plain words and lists
the people to check by owner with links; the sync-activity report has a headline, tables without
a pandas index, its chart once, and a "writes" count that never counts a dry run's writes."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from toolkit.notebook import execute
from toolkit.sync import activity
from toolkit.sync.store import SyncJournal

pytestmark = pytest.mark.notebook


@pytest.fixture
def lever_env(sandbox, monkeypatch):
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox


def _dry_run_journal(path) -> None:
    with SyncJournal(path) as journal:
        journal.open_sync_run({"dry_run": True})
        for n, (contact, opp) in enumerate((("c1", "o1"), ("c2", "o2"))):
            journal.enqueue_webhook(f"w{n}", "applicationCreated", 1_700_000_000_000, contact, opp)
            journal.write_intent(
                contact, opp, "add", ["Python"], [], trigger="webhook", session=None, dry_run=True
            )


def test_dry_run_writes_are_never_counted_as_writes(tmp_path):
    _dry_run_journal(tmp_path / "sync.sqlite")
    sync = activity.load_sync_activity(tmp_path / "sync.sqlite")
    over_time = activity.activity_over_time(sync)
    assert over_time["writes"].sum() == 0 and over_time["dry-run writes"].sum() == 2
    headline = activity.activity_headline(sync)
    assert "A dry run: nothing was written; 2 writes (2 tags) would have been made" in headline
    before = plt.get_fignums()
    activity.activity_chart(sync)
    assert plt.get_fignums() == before  # not a pyplot figure: a report shows it once


def test_sync_activity_report_has_a_headline_one_chart_and_no_index(tmp_path):
    _dry_run_journal(tmp_path / "sync.sqlite")
    result = execute.run_notebook(
        "sync-activity", {"journal_path": str(tmp_path / "sync.sqlite")}, tmp_path / "reports"
    )
    assert result.ok, result.error_message
    page = result.html_path.read_text(encoding="utf-8")
    assert "A dry run: nothing was written" in page
    assert page.count('src="data:image/png;base64,') == 1  # the chart, once
    assert "row_heading" not in page and "blank level0" not in page  # no pandas index
    over_time = pd.read_csv(result.folder / "sync_over_time.csv")
    assert over_time["writes"].sum() == 0 and over_time["dry-run writes"].sum() == 2


def test_audit_report_starts_with_words_and_lists_people_to_check_by_owner(lever_env, tmp_path):
    result = execute.run_notebook("audit", {"with_personal": True}, tmp_path / "reports")
    assert result.ok, result.error_message
    page = result.html_path.read_text(encoding="utf-8")
    assert page.index("Words used here") < page.index("Headline")
    assert "People to check, by owner" in page
    base = lever_env.base_url.removesuffix("/v1")
    links = re.findall(r'<a href="([^"#]+/candidates/[^"]+)"', page)
    assert links and all(link.startswith(f"{base}/candidates/") for link in links)
    owners = {u["name"] for u in lever_env.users}
    assert any(owner in page for owner in owners)
    assert (result.folder / "worklist.xlsx").is_file()
