"""Charts of a remediation: the plan's changes per tag, and before / after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from toolkit.notebook.charts.base import (
    LABEL_WIDTH,
    OKABE_ITO,
    empty_chart,
    fit_labels,
    new_figure,
    unique_labels,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.remediate.plan import Plan


def _plan_rows(plan: Plan) -> pd.DataFrame:
    rows = getattr(plan, "rows", plan)
    if not isinstance(rows, pd.DataFrame):
        raise TypeError("plan_counts_bar needs a Plan or a DataFrame with columns op, tag")
    return rows


def plan_counts_bar(plan: Plan, top: int = 20) -> Figure:
    """Planned changes per tag, additions and removals stacked, most changes at the top.

    Args:
        plan: a `toolkit.remediate.plan.Plan` or its rows (`opportunity_id, contact_id, op, tag`).
        top: how many tags to show.

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["a", "a"],
        ...                      "op": ["add", "add"], "tag": ["Python", "Python"]})
        >>> plan_counts_bar(rows).axes[0].get_title(loc="left")
        'Planned changes per tag (2 in total)'
    """
    rows = _plan_rows(plan)
    total = len(rows)
    title = f"Planned changes per tag ({total:,} in total)"
    if rows.empty:
        fig, ax = new_figure(0)
        return empty_chart(fig, ax, title, "Nothing to change")
    counts = (
        rows.assign(tag=rows["tag"].astype(str), op=rows["op"].astype(str))
        .groupby(["tag", "op"])
        .size()
        .unstack("op", fill_value=0)
    )
    for op in ("add", "remove"):
        if op not in counts.columns:
            counts[op] = 0
    counts["total"] = counts["add"] + counts["remove"]
    counts = counts.reset_index().sort_values(["total", "tag"], ascending=[False, True]).head(top)
    fig, ax = new_figure(len(counts))
    y = np.arange(len(counts))
    adds = counts["add"].to_numpy()
    removes = counts["remove"].to_numpy()
    # Only the ops the plan has get bars (and so legend entries).
    if adds.any():
        ax.barh(y, adds, color=OKABE_ITO["green"], label="add")
    if removes.any():
        stacked = ax.barh(
            y, removes, left=adds, color=OKABE_ITO["vermillion"], label="remove", hatch="//"
        )
        for patch in stacked:  # a bar's left end is sticky: it would pin the axis to a total
            patch.sticky_edges.x.clear()
    texts = [
        ax.annotate(f"{int(tot):,}", (tot, yi), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)
        for yi, tot in zip(y, counts["total"].to_numpy(), strict=True)
        if tot
    ]  # fmt: skip
    ax.set_yticks(y, unique_labels([str(t) for t in counts["tag"]], LABEL_WIDTH))
    ax.invert_yaxis()
    ax.set_xlabel("opportunities to change")
    ax.set_title(title, loc="left", fontweight="bold")
    # Above the bars, right: never on top of a bar or its number.
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False,
              borderaxespad=0.2)  # fmt: skip
    ax.set_xlim(left=0)
    ax.margins(x=0.05)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fit_labels(fig, ax, texts)
    return fig


BEFORE_AFTER_KEYS = ("split_pairs", "split_contacts", "missing_assignments")


def before_after_bar(
    before: Mapping[str, Any] | pd.DataFrame,
    after: Mapping[str, Any] | pd.DataFrame,
    *,
    keys: tuple[str, ...] = BEFORE_AFTER_KEYS,
    top: int = 20,
    title: str | None = None,
) -> Figure:
    """Grouped bars comparing two audits.

    Given two summary dicts (`toolkit.audit.summarize`), compares `keys`; given two per-tag
    statistics frames (`audit.tag_statistics`), compares split contacts per tag for the
    tags that had the most before.

    Example:
        >>> fig = before_after_bar({"split_pairs": 10, "split_contacts": 4},
        ...                        {"split_pairs": 0, "split_contacts": 0})
        >>> fig.axes[0].get_title(loc="left")
        'Before and after remediation'
    """
    if isinstance(before, pd.DataFrame) or isinstance(after, pd.DataFrame):
        return _before_after_tags(pd.DataFrame(before), pd.DataFrame(after), top=top, title=title)
    labels = [k.replace("_", " ") for k in keys]
    b = [int(before.get(k, 0) or 0) for k in keys]
    a = [int(after.get(k, 0) or 0) for k in keys]
    title = title or "Before and after remediation"
    return _grouped(labels, b, a, title, "count", horizontal=False)


def _before_after_tags(
    before: pd.DataFrame, after: pd.DataFrame, *, top: int, title: str | None
) -> Figure:
    col = "split_contacts"
    b = before.set_index("tag")[col] if len(before) else pd.Series(dtype="int64")
    a = after.set_index("tag")[col] if len(after) else pd.Series(dtype="int64")
    tags = sorted(set(b.index) | set(a.index), key=lambda t: (-int(b.get(t, 0)), str(t)))
    tags = [t for t in tags if int(b.get(t, 0)) or int(a.get(t, 0))][:top]
    return _grouped(
        unique_labels([str(t) for t in tags], LABEL_WIDTH),
        [int(b.get(t, 0)) for t in tags],
        [int(a.get(t, 0)) for t in tags],
        title or "Split contacts per tag, before and after",
        "split contacts",
        horizontal=True,
    )


def _grouped(
    labels: list[str], before: list[int], after: list[int], title: str, unit: str, *,
    horizontal: bool,
) -> Figure:  # fmt: skip
    if horizontal:
        fig, ax = new_figure(len(labels) * 1.6)
    else:
        fig = Figure(figsize=(8.0, 4.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
    if not labels or (not any(before) and not any(after)):
        return empty_chart(fig, ax, title, "Nothing split before or after")
    pos = np.arange(len(labels))
    w = 0.38
    bar = ax.barh if horizontal else ax.bar
    kw = "height" if horizontal else "width"
    b_bars = bar(pos - w / 2, before, color=OKABE_ITO["orange"], label="before", **{kw: w})
    a_bars = bar(pos + w / 2, after, color=OKABE_ITO["blue"], label="after", hatch="..", **{kw: w})
    texts = []
    for bars, values in ((b_bars, before), (a_bars, after)):
        for rect, v in zip(bars, values, strict=True):
            if horizontal:
                xy, off, ha, va = (
                    (v, rect.get_y() + rect.get_height() / 2),
                    (3, 0),
                    "left",
                    "center",
                )
            else:
                xy, off, ha, va = (
                    (rect.get_x() + rect.get_width() / 2, v),
                    (0, 2),
                    "center",
                    "bottom",
                )
            texts.append(ax.annotate(f"{v:,}", xy, xytext=off, textcoords="offset points",
                                     ha=ha, va=va, fontsize=8))  # fmt: skip
    if horizontal:
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.margins(x=0.12)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(pos, labels)
        ax.set_ylabel(unit)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontweight="bold")
    ax.legend(frameon=False)
    fit_labels(fig, ax, texts, axis="x" if horizontal else "y")
    return fig
