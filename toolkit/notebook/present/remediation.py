"""The remediation report's sections: the headline, the plan, drift, apply, verify, journal."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.notebook import charts, helpers
from toolkit.notebook.present.audit import people_words
from toolkit.notebook.present.blocks import Block, Note, column_words, key_value_table, table

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.remediate.plan import Plan
    from toolkit.remediate.result import ApplyResult


def run_lines(result: ApplyResult) -> Note:
    """The apply's summary lines, whole (a table cell cut them at 50 characters)."""
    lines = [str(line) for line in result.summary_lines()]
    body = "<br>".join(html.escape(line) for line in lines)
    return Note("\n".join(lines), "info", html_text=body)


def headline_remediation(
    plan: Plan, result: ApplyResult, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Block:
    """The headline of a remediation report: what the plan does, what was written, and the
    split pairs of the plan's tags before and after; "nothing to do" (and why) for an empty plan.

    Example:
        >>> from toolkit.remediate.plan import nothing_planned
        >>> headline_remediation(nothing_planned(), None, {}, {}).parts[0].text.split(":")[0]
        'Nothing to do'
    """
    counts = plan.counts()
    if not counts["rows"]:
        why = plan.info.note or "every chosen tag is already whole"
        text = f"Nothing to do: the plan has no change ({why}); nothing was written."
        if why == "no tags chosen":
            text += " Set the tags or policy_path parameter to plan changes."
        return Block(Note(text, "info"))
    contacts = int(plan.rows["contact_id"].nunique())
    tags = int(plan.rows["tag"].nunique())
    what = (
        f"The plan has {counts['rows']:,} changes ({counts['add']:,} additions, "
        f"{counts['remove']:,} removals) of {tags:,} {'tag' if tags == 1 else 'tags'} on "
        f"{counts['opportunities']:,} opportunities of {people_words(contacts)}, in "
        f"{counts['calls']:,} calls."
    )
    b, a = int(before.get("split_pairs", 0)), int(after.get("split_pairs", 0))
    if result.dry_run:
        done = (
            f"Dry run: nothing was written. Applied, it would take the plan's tags from {b:,} "
            f"split pairs to {a:,}."
        )
    else:
        done = (
            f"{int(result.applied):,} changes written, {int(result.failed):,} failed, "
            f"{int(result.not_found):,} on opportunities not found. Split pairs of the plan's "
            f"tags: {b:,} before, {a:,} after (re-fetched from Lever)."
        )
    rows = [
        ("planned changes", int(result.planned_changes), ""),
        ("write calls", int(result.planned_calls), ""),
        (
            "written",
            0 if result.dry_run else int(result.applied),
            "dry run" if result.dry_run else "",
        ),
        ("failed", int(result.failed), ""),
        ("split pairs before", b, "the plan's tags"),
        ("split pairs after", a, "projected" if result.dry_run else "re-fetched"),
    ]
    kind = "warning" if int(result.failed) or int(result.not_found) else "info"
    return Block(
        Note(f"{what} {done}", kind),
        key_value_table(rows, header=["", "count", "note"]),
        run_lines(result),
    )


def plan_table(plan: Plan) -> Any:
    """Changes per tag (additions and removals), or "none"."""
    return table(plan.changes_by_tag(), empty="none: the plan has no change")


def plan_chart(plan: Plan, output_dir: str | os.PathLike = "") -> Any:
    """The plan's chart, or "nothing to do" (never a chart of zeros) for an empty plan."""

    if plan.rows.empty:
        return Note("Nothing to do: the plan has no change, so there is no chart.", "none")
    return helpers.keep_figure(charts.plan_counts_bar(plan), "plan", output_dir)


def before_after_chart(
    plan: Plan,
    before: Mapping[str, Any] | pd.DataFrame,
    after: Mapping[str, Any] | pd.DataFrame,
    name: str,
    output_dir: str | os.PathLike = "",
    *,
    title: str | None = None,
) -> Any:
    """The before/after chart, or "nothing to do" when the plan changes nothing.

    Given summaries (dicts) the empty case is a note; given per-tag statistics it is nothing
    (None), so a report says "nothing to do" once."""

    if plan.rows.empty:  # one note for both charts (summaries first, then per tag: nothing)
        if isinstance(before, pd.DataFrame):
            return None
        return Note("Nothing to do: before and after are the same.", "none")
    return helpers.keep_figure(
        charts.before_after_bar(before, after, title=title), name, output_dir
    )


def skipped_table(plan: Plan) -> Any:
    """Rows the plan will not write, with why; "none" when it writes every row."""
    return table(plan.skipped, empty="none: the plan skips no row")


def drift_table(drift: pd.DataFrame, note: str = "") -> Any:
    """The plan's opportunities that changed since the snapshot; "none" when none did; the
    `note` of `workflows.client_for` when a dry run had no Lever access to check."""
    if note:
        return Note(note, "warning")
    return table(
        helpers.changed_opportunities(drift),
        empty="none: no opportunity of the plan changed since the snapshot",
    )


def apply_table(result: ApplyResult) -> Any:
    """The apply's counts (the summary lines are in the headline, whole)."""
    counts = helpers.apply_overview(result)
    counts = counts.loc[counts["item"] != "summary"].reset_index(drop=True)
    counts["item"] = counts["item"].map(column_words)
    return Block(
        run_lines(result), key_value_table(counts.itertuples(index=False), header=["", "value"])
    )


def verify_table(residual: pd.DataFrame, result: ApplyResult) -> Any:
    """Plan rows that do not hold after a real apply; "none" (with why) when empty."""
    if result.dry_run:
        return Note("none: a dry run writes nothing, so there is nothing to verify", "none")
    return table(residual, empty="none: every plan row holds in Lever")


def before_after_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> Any:
    """The two summaries side by side, with the change."""
    frame = helpers.compare_summaries(before, after)
    return table(frame.assign(metric=frame["metric"].map(column_words)), visible=())


def journal_table(result: ApplyResult) -> Any:
    """The run journal's summary; a dry run has none."""
    return table(helpers.journal_overview(result), visible=())
