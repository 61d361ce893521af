"""The audit report's sections: policy-aware numbers, the headline, charts and tables."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.audit import AuditResult
from toolkit.audit.report import focus_summary, policy_contact_level
from toolkit.notebook import charts, helpers
from toolkit.notebook.params import parameters_table
from toolkit.notebook.present.blocks import Block, Note, table
from toolkit.policy_draft import draft_policy

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import ContactLevelSource


def focus_statistics(stats: pd.DataFrame, policy: ContactLevelSource | None = None) -> pd.DataFrame:
    """Per-tag statistics of the policy's contact-level tags (all tags without a policy)."""
    tags = policy_contact_level(policy)
    if not tags:
        return stats
    return stats.loc[stats["tag"].isin(set(tags))].reset_index(drop=True)


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def people_words(n: int) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


def key_numbers_audit(
    result: AuditResult, policy: ContactLevelSource | None = None
) -> pd.DataFrame:
    """The key numbers of an audit: one column for all tags, and with a policy one for its
    contact-level tags first (what the charts and the heatmap count)."""
    s = {k: int(v) for k, v in result.summary.items()}
    labels = [
        ("opportunities", "opportunities considered"),
        ("contacts", "people (contacts)"),
        ("multi_opportunity_contacts", "people with two or more opportunities"),
        ("split_contacts", "people with a split tag"),
        ("split_pairs", "split pairs (person, tag)"),
        ("missing_assignments", "missing assignments (tag writes to close them)"),
    ]
    columns: dict[str, list[Any]] = {"": [text for _, text in labels]}
    if policy_contact_level(policy):
        focus = focus_summary(result, policy)
        columns["contact-level tags (policy)"] = [focus[k] for k, _ in labels]
    columns["all tags"] = [s[k] for k, _ in labels]
    return pd.DataFrame(columns)


def headline_audit(
    result: AuditResult, policy: ContactLevelSource | None = None, snap: Any = None
) -> Block:
    """The headline of an audit report: a sentence or two, then the key numbers table.

    With a policy the sentences and the first column count its contact-level tags (as the charts
    and the heatmap do); the all-tags numbers stay beside them, labelled. The snapshot's warnings
    (e.g. confidential opportunities not readable) follow, since they change what was counted.

    Example:
        >>> from toolkit.audit import run_audit
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python"], []]})
        >>> headline_audit(run_audit(f)).parts[0].text.split(":")[0]
        '1 person of 1 with two or more opportunities (100%) has a split tag'
    """
    s = {k: int(v) for k, v in result.summary.items()}
    multi = s["multi_opportunity_contacts"]
    n = s["split_contacts"]
    verb = "has" if n == 1 else "have"
    first = (
        f"{people_words(n)} of {multi:,} with two or more opportunities ({_pct(n, multi)}) "
        f"{verb} a split tag: a tag on some of their opportunities but not all"
    )
    tags = policy_contact_level(policy)
    if tags:
        focus = focus_summary(result, policy)
        f = focus["split_contacts"]
        second = (
            f"{f:,} of them ({_pct(f, n)}) concern the policy's {len(set(tags))} contact-level "
            f"tags: {focus['split_pairs']:,} split pairs, {focus['missing_assignments']:,} "
            f"missing assignments a propagate run would write. The charts and the heatmap count "
            f"these contact-level tags; the all-tags numbers are in the right-hand column."
        )
        text = f"{first}. {second}"
    else:
        pairs = s["split_pairs"]
        miss = s["missing_assignments"]
        text = (
            f"{first} ({pairs:,} split {'pair' if pairs == 1 else 'pairs'}, {miss:,} missing "
            f"{'assignment' if miss == 1 else 'assignments'}). No policy: every tag counts, "
            "including tags that differ by design between opportunities (posting, location)."
        )
    warnings = list(((getattr(snap, "meta", None) or {}).get("warnings")) or [])
    notes = [Note("Snapshot warning: " + str(w), "warning") for w in warnings]
    return Block(Note(text, "info"), table(key_numbers_audit(result, policy), visible=()), *notes)


def focus_label(policy: ContactLevelSource | None = None) -> str:
    """What the charts count: "Contact-level tags" with a policy naming some, else "Tags"."""
    return "Contact-level tags" if policy_contact_level(policy) else "Tags"


def split_contacts_chart(
    result: AuditResult,
    policy: ContactLevelSource | None = None,
    top: int = 20,
    output_dir: str | os.PathLike = "",
) -> Any:
    """The "most split" chart, counting what the headline and the heatmap count."""

    stats = focus_statistics(result.tag_statistics, policy)
    fig = charts.split_contacts_bar(stats, top=top, what=focus_label(policy))
    return helpers.keep_figure(fig, "split-contacts", output_dir)


def tag_statistics_table(result: AuditResult, top: int = 20) -> Any:
    """Per-tag statistics of every tag (the policy's and the posting-derived ones), top rows."""
    return table(result.tag_statistics, head=top, empty="none: no tag in the snapshot")


EVIDENCE_SHOWN = [
    "tag",
    "contacts_with_tag",
    "split_rate",
    "full_coverage_rate",
    "clustering",
    "posting_reason",
    "suggestion",
    "policy",
]


def evidence_table(evidence: pd.DataFrame, head: int = 50) -> Any:
    """The contact-level evidence, narrowed to the columns that decide and wrapped to fit the
    page (every column is in `evidence.csv`)."""
    shown = evidence.loc[:, [c for c in EVIDENCE_SHOWN if c in evidence.columns]].copy()
    if "posting_reason" in shown:
        shown["posting_reason"] = shown["posting_reason"].replace("", "-")
    if "policy" in shown:
        shown["policy"] = shown["policy"].replace("", "-").str.replace("_", " ")
    return table(
        shown.rename(columns={"contacts_with_tag": "contacts", "posting_reason": "looks like"}),
        head=head,
        wrap=True,
        empty="none: no tag in the snapshot",
    )


def split_pairs_table(result: AuditResult, top: int = 20) -> Any:
    """The first split pairs (all of them are in split_pairs.csv)."""
    return table(result.split_pairs, head=top, empty="none: no split pair")


def run_details(params: Mapping[str, Any], snap: Any = None, artifacts: Any = None) -> Block:
    """What the report was made from: parameters, the snapshot, and the files written."""
    parts: list[Any] = [table(parameters_table(params), visible=())]
    if snap is not None:
        parts.append(table(helpers.snapshot_overview(snap), visible=()))
    if artifacts:
        parts.append(table(helpers.artifacts_table(artifacts), visible=()))
    return Block(*parts)


class Preformatted:
    """Text shown as is, in a monospaced block (HTML-escaped)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<pre style="max-height:30em;overflow:auto">{html.escape(self.text)}</pre>'


def draft_policy_block(run: Any, snapshot_path: Any = "") -> Block:
    """The report's "Draft policy": what `lever-tags policy draft` would write from this
    evidence (`toolkit.policy_draft`), with the commands that save it and plan from it.

    Args:
        run: the `workflows.AuditRun` of the report.
        snapshot_path: the snapshot the report was made from ("" when fetched).
    """
    draft = draft_policy(run.frame, include_archived=run.include_archived)
    snap = f" --snapshot {snapshot_path}" if snapshot_path else ""
    named = ", ".join(draft.contact_level) if draft.contact_level else "none"
    note = Note(
        f"The evidence calls {len(draft.contact_level)} tags contact-level ({named}); "
        f"{len(draft.opportunity_level)} opportunity-level and {len(draft.unclear)} unclear tags "
        "are listed in comments, never in contact_level. Save it with "
        f"`lever-tags policy draft{snap} --out policy.yaml`, review it, then plan with "
        "`lever-tags plan --policy policy.yaml`.",
        "info",
    )
    return Block(note, Preformatted(draft.text))
