"""Display helpers the notebooks call: small tables about a snapshot, a summary, a run, and
charts kept as PNG files beside the report (docs/architecture.md)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.display import Image

from toolkit.notebook.charts import save_figure
from toolkit.notebook.charts.base import describe_figure
from toolkit.notebook.params import resolve_output_dir
from toolkit.remediate.journal_views import journal_summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from toolkit.ports import ContactLevelSource
    from toolkit.remediate.result import ApplyResult
    from toolkit.snapshot.frame import Snapshot

log = logging.getLogger(__name__)


def snapshot_overview(snap: Snapshot) -> pd.DataFrame:
    """A short table about a snapshot: where from, when, how many, and its warnings."""
    info, access = snap.info, "confidential_access"
    frame = snap.frame
    rows: list[tuple[str, Any]] = [
        ("host", info.host or ""),
        ("fetched_at", info.fetched_at or ""),
        ("opportunities", len(frame)),
    ]
    for column in ("archived", "confidential", "anonymized"):
        if column in frame.columns:
            rows.append((column, int(frame[column].fillna(False).astype(bool).sum())))
    rows += [
        ("confidential_access", info.confidential_access if info.has(access) else ""),
        ("personal_data", "name" in frame.columns),
        ("redacted", bool(info.redacted)),
    ]
    if info.redaction:
        rows.append(("redaction", info.redaction))
    rows += [("warning", w) for w in info.warnings]
    return pd.DataFrame(rows, columns=["item", "value"]).astype({"value": "object"})


def summary_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """A summary dict as a two-column table.

    Example:
        >>> summary_table({"split_pairs": 3}).to_dict("records")
        [{'metric': 'split_pairs', 'value': 3}]
    """
    return pd.DataFrame({"metric": list(summary), "value": list(summary.values())}).astype(
        {"value": "object"}
    )


def focus_coverage(
    coverage: pd.DataFrame, policy: ContactLevelSource | None = None
) -> pd.DataFrame:
    """Coverage rows of the policy's contact-level tags when a policy names some, else all.

    Posting-derived tags are meant to differ between a person's opportunities; with a policy, the
    heatmap shows the tags that should not.
    """
    tags = list(getattr(policy, "contact_level", None) or [])
    if not tags:
        return coverage
    return coverage.loc[coverage["tag"].isin(set(tags))].reset_index(drop=True)


def artifacts_table(paths: Mapping[str, Path] | Iterable[Path]) -> pd.DataFrame:
    """The files a step wrote, with their sizes."""
    items = paths.items() if isinstance(paths, Mapping) else ((Path(p).stem, p) for p in paths)
    rows = [(name, Path(p).name, Path(p).stat().st_size) for name, p in items]
    return pd.DataFrame(rows, columns=["artifact", "file", "bytes"])


def keep_figure(fig: Figure, name: str, output_dir: str | os.PathLike = "") -> Any:
    """Save `fig` as `<output_dir>/charts/<name>.png`; return it as a PNG image to display.

    The returned `IPython.display.Image` embeds the PNG in the notebook, so the HTML report
    carries the chart as an image whatever the plotting backend.
    """
    path = save_figure(fig, resolve_output_dir(output_dir) / "charts" / f"{name}.png")
    # alternative text: the title, the axes and the first values (what a reader would see)
    alt = describe_figure(fig) or figure_title(fig) or name
    return Image(data=path.read_bytes(), format="png", alt=alt)


def figure_title(fig: Figure) -> str:
    """The first axes' title (left, then centre): the chart's alternative text in reports."""
    for ax in fig.axes:
        for loc in ("left", "center"):
            title = ax.get_title(loc=loc)
            if title:
                return title
    return ""


def changed_opportunities(drift: pd.DataFrame) -> pd.DataFrame:
    """The opportunities that changed since the snapshot (empty: no drift)."""
    if drift.empty or "changed" not in drift.columns:
        return drift
    return drift.loc[drift["changed"].astype(bool)].reset_index(drop=True)


def apply_overview(result: ApplyResult) -> pd.DataFrame:
    """An `ApplyResult` as a table: what happened, in words and counts."""
    rows: list[tuple[str, Any]] = [("summary", line) for line in result.summary_lines()]
    for key in ("dry_run", "planned_changes", "planned_calls", "applied", "failed", "not_found",
                "skipped", "pending", "calls", "attempts"):  # fmt: skip
        rows.append((key, getattr(result, key)))
    rows.append(("elapsed_seconds", round(float(result.elapsed), 1)))
    return pd.DataFrame(rows, columns=["item", "value"]).astype({"value": "object"})


def compare_summaries(before: Mapping[str, Any], after: Mapping[str, Any]) -> pd.DataFrame:
    """Two summaries side by side, with the change.

    Example:
        >>> compare_summaries({"split_pairs": 5}, {"split_pairs": 0}).to_dict("records")
        [{'metric': 'split_pairs', 'before': 5, 'after': 0, 'change': -5}]
    """
    keys = list(dict.fromkeys([*before, *after]))
    rows = [(k, before.get(k, 0), after.get(k, 0)) for k in keys]
    table = pd.DataFrame(rows, columns=["metric", "before", "after"])
    table["change"] = table["after"] - table["before"]
    return table


def journal_overview(result: ApplyResult) -> pd.DataFrame:
    """The journal's summary as a table; a dry run has no journal."""
    if result.dry_run or not result.journal_path:
        return pd.DataFrame([("journal", "dry run: no journal, nothing was written")],
                            columns=["item", "value"])  # fmt: skip
    summary = journal_summary(result.journal_path)
    summary["path"] = Path(summary.get("path", "")).name  # the folder is the report's
    return pd.DataFrame(
        [(k, json.dumps(v, default=str) if isinstance(v, dict | list) else v)
         for k, v in summary.items()],
        columns=["item", "value"],
    ).astype({"value": "object"})  # fmt: skip
