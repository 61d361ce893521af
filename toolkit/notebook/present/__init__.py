"""What a person sees in a report: headlines, tables formatted for people, visible tags, notes.

The notebooks `02-audit-report` and `03-remediate` call these to display results; the audit and
remediation modules compute, this package words and formats (`blocks`: notes, visible tags,
tables; `audit` and `remediation`: the sections of each report). Everything that comes from
Lever (tag strings, names) is HTML-escaped where it meets HTML (`html.escape`,
`Styler.format(escape="html")`).

- `headline_*` lead a report: one or two sentences and a small table of the key numbers. With a
  policy they count the policy's contact-level tags (what the heatmap shows), and keep the
  all-tags numbers beside them, labelled.
- `table` formats a DataFrame for people: no index, thousands separators, rates as percentages,
  column names in words, and "none" (with why) instead of a bare header when it is empty.
- `visible_tag` shows whitespace and invisible characters (`␣python`), so `python` and ` python`
  never look like two identical rows.
"""

from toolkit.notebook.present.audit import (
    EVIDENCE_SHOWN,
    draft_policy_block,
    evidence_table,
    focus_label,
    focus_statistics,
    headline_audit,
    key_numbers_audit,
    run_details,
    split_contacts_chart,
    split_pairs_table,
    tag_statistics_table,
)
from toolkit.notebook.present.blocks import (
    Block,
    Note,
    glyph_notice,
    how_it_differs,
    key_value_table,
    table,
    variants_table,
    visible_tag,
)
from toolkit.notebook.present.recruiter import headline_sync, people_to_check, since_last_run
from toolkit.notebook.present.remediation import (
    apply_table,
    before_after_chart,
    before_after_table,
    drift_table,
    headline_remediation,
    journal_table,
    plan_chart,
    plan_table,
    run_lines,
    skipped_table,
    verify_table,
)

__all__ = [
    "EVIDENCE_SHOWN",
    "Block",
    "Note",
    "apply_table",
    "before_after_chart",
    "before_after_table",
    "draft_policy_block",
    "drift_table",
    "evidence_table",
    "focus_label",
    "focus_statistics",
    "glyph_notice",
    "headline_audit",
    "headline_remediation",
    "headline_sync",
    "how_it_differs",
    "journal_table",
    "key_numbers_audit",
    "key_value_table",
    "people_to_check",
    "plan_chart",
    "plan_table",
    "run_details",
    "run_lines",
    "since_last_run",
    "skipped_table",
    "split_contacts_chart",
    "split_pairs_table",
    "table",
    "tag_statistics_table",
    "variants_table",
    "verify_table",
    "visible_tag",
]
