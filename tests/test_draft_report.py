"""Notebook 02's "Draft policy": the draft `lever-tags policy draft` would write, in the report."""

from __future__ import annotations

import html

import pandas as pd

from lever_sandbox.data import HOSTILE_TAGS
from toolkit.notebook import execute
from toolkit.notebook.present import draft_policy_block
from toolkit.policy_draft import draft_policy


def test_the_audit_report_shows_the_draft(fresh_sandbox, monkeypatch, tmp_path):
    sb = fresh_sandbox(contacts=1000)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    for name, value in sb.env().items():
        monkeypatch.setenv(name, value)
    result = execute.run_notebook("audit", {}, tmp_path)
    assert result.ok, result.error_message
    page = html.unescape(result.html_path.read_text(encoding="utf-8"))
    assert "Draft policy" in page
    assert "The evidence calls 10 tags contact-level" in page
    assert "lever-tags policy draft --out policy.yaml" in page
    assert 'contact_level:\n  - "' in page  # the YAML itself, as written


def test_the_block_escapes_what_comes_from_lever():
    rows = [(f"o{i}", f"c{i // 2}", [HOSTILE_TAGS[0]] if i % 2 == 0 else []) for i in range(20)]
    frame = pd.DataFrame(rows, columns=["opportunity_id", "contact_id", "tags"])

    class Run:  # what the block reads of a workflows.AuditRun
        include_archived = True

    Run.frame = frame
    shown = draft_policy_block(Run(), "snap.parquet")._repr_html_()
    assert "<script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "--snapshot snap.parquet" in shown
    assert HOSTILE_TAGS[0] in draft_policy(frame).text  # listed, quoted, in the draft itself
