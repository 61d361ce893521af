"""Charts of the audit: split contacts per tag, opportunities per contact, the coverage heatmap."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from toolkit.audit.coverage import coverage_grid
from toolkit.notebook.charts.base import (
    HEATMAP_CMAP,
    HEATMAP_LABEL_SIZE,
    LABEL_WIDTH,
    OKABE_ITO,
    annotate_barh,
    empty_chart,
    fit_labels,
    new_figure,
    unique_labels,
)


def split_contacts_bar(
    stats: pd.DataFrame, top: int = 20, *, value: str = "split_contacts", what: str = "Tags"
) -> Figure:
    """Horizontal bars of the tags with the most split contacts, largest at the top.

    Args:
        stats: per-tag statistics with at least the columns `tag` and `value`
            (`audit.tag_statistics`).
        top: how many tags to show.
        value: the column to rank and plot.
        what: what the bars are, for the title (e.g. "Contact-level tags" with a policy).

    Example:
        >>> stats = pd.DataFrame({"tag": ["Python", "Go"], "split_contacts": [3, 7]})
        >>> fig = split_contacts_bar(stats)
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['Go', 'Python']
    """
    title = f"{what} with the most split contacts (top {top})"
    data = stats.loc[stats[value] > 0, ["tag", value]] if len(stats) else stats
    data = data.sort_values([value, "tag"], ascending=[False, True], kind="stable").head(top)
    fig, ax = new_figure(len(data))
    if data.empty:
        return empty_chart(
            fig, ax, f"{what} with split contacts", "No split contacts: every tag is whole"
        )
    labels = unique_labels([str(t) for t in data["tag"]], LABEL_WIDTH)
    values = data[value].astype("int64").to_numpy()
    y = np.arange(len(data))
    bars = ax.barh(y, values, color=OKABE_ITO["blue"])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # largest first, at the top
    texts = annotate_barh(ax, bars, values)
    ax.set_xlabel("contacts with the tag on some but not all of their opportunities")
    ax.set_title(title, loc="left", fontweight="bold")
    ax.margins(x=0.05)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    fit_labels(fig, ax, texts)
    return fig


def _contact_keys(frame: pd.DataFrame) -> pd.Series:
    """The contact of each opportunity; an opportunity without a contact is a contact of its own."""
    contact = frame["contact_id"].astype("object")
    missing = contact.isna()
    if missing.any():
        contact = contact.where(~missing, "opp:" + frame["opportunity_id"].astype(str))
    return contact


def opportunities_per_contact_hist(frame: pd.DataFrame, *, cap: int = 10) -> Figure:
    """How many contacts have 1, 2, 3, ... opportunities (the last bar is `cap` or more).

    Only contacts with two or more opportunities can have split tags; they are drawn in orange.

    Args:
        frame: a snapshot frame with `opportunity_id` and `contact_id`.
        cap: counts at or above this value share the last bar.

    Example:
        >>> frame = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                       "contact_id": ["a", "a", "b"]})
        >>> fig = opportunities_per_contact_hist(frame)
        >>> fig.axes[0].get_title(loc="left")
        'Opportunities per contact'
    """
    title = "Opportunities per contact"
    fig, ax = new_figure(0, width=8.0, min_height=3.6)
    if frame.empty:
        return empty_chart(fig, ax, title, "No opportunities")
    per_contact = _contact_keys(frame).value_counts()
    clipped = per_contact.clip(upper=cap)
    counts = clipped.value_counts().sort_index()
    xs = list(range(1, int(counts.index.max()) + 1))
    heights = [int(counts.get(x, 0)) for x in xs]
    colors = [OKABE_ITO["sky_blue"] if x == 1 else OKABE_ITO["orange"] for x in xs]
    bars = ax.bar(xs, heights, color=colors, edgecolor="white")
    labels = [f"{x}+" if x == cap and (per_contact >= cap).any() else str(x) for x in xs]
    ax.set_xticks(xs, labels)
    texts = [
        ax.annotate(
            f"{h:,}",
            (bar.get_x() + bar.get_width() / 2, h),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
        for bar, h in zip(bars, heights, strict=True)
        if h
    ]
    multi = int((per_contact >= 2).sum())
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel("opportunities of the contact")
    ax.set_ylabel("contacts")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.text(
        0.99,
        0.97,
        f"{len(per_contact):,} contacts, {multi:,} with two or more opportunities",
        ha="right",
        va="top",
        transform=ax.transAxes,
        fontsize=9,
        color="0.25",
    )
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fit_labels(fig, ax, texts, axis="y")
    return fig


def coverage_matrix(
    coverage: pd.DataFrame,
    *,
    top_contacts: int = 25,
    top_tags: int = 15,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Share of each contact's opportunities carrying each tag, for the most affected contacts.

    `toolkit.audit.coverage_grid` (``split_only``) with absent tags as 0 and contacts labelled:
    rows are the contacts with the most split tags (then the most opportunities), columns the
    tags split for the most contacts among them. A value strictly between 0 and 1 is a gap.

    Args:
        coverage: rows `contact_id, tag, with_tag, opportunities` (`audit.tag_coverage` or
            `toolkit.audit.split_pairs`).
        top_contacts: rows to keep.
        top_tags: columns to keep.
        labels: optional contact id -> display label (a name or a pseudonym).

    Example:
        >>> cov = pd.DataFrame({"contact_id": ["a", "a", "b"], "tag": ["x", "y", "x"],
        ...                     "with_tag": [1, 2, 2], "opportunities": [2, 2, 2]})
        >>> float(coverage_matrix(cov).loc["a", "x"])
        0.5
    """
    if coverage.empty:
        return pd.DataFrame(dtype="float64")
    grid = coverage_grid(
        coverage, max_contacts=top_contacts, max_tags=top_tags, split_only=True
    ).fillna(0.0)  # absent: on none of the contact's opportunities
    if grid.empty:
        return pd.DataFrame(dtype="float64")
    index = [str(labels.get(c, c)) for c in grid.index] if labels else list(grid.index)
    grid.index = pd.Index(index, name="contact")
    return grid.astype("float64")


def coverage_heatmap(
    coverage: pd.DataFrame,
    *,
    top_contacts: int = 25,
    top_tags: int = 15,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Heatmap of the most affected contacts x their most split tags; gaps are outlined.

    `coverage` is either the long coverage table (`contact_id, tag, with_tag, opportunities`:
    `AuditResult.coverage` or `split_pairs`), from which the most affected contacts are picked, or
    a ready contact x tag grid of shares (`toolkit.audit.coverage_grid`, NaN = absent).

    Each cell is the share of the contact's opportunities carrying the tag: 0 (dark) the tag is
    absent, 1 (light) on all of them; anything between is a split pair, outlined in vermillion and
    labelled `with/total`.

    Example:
        >>> cov = pd.DataFrame({"contact_id": ["a", "b"], "tag": ["x", "x"],
        ...                     "with_tag": [1, 2], "opportunities": [3, 2]})
        >>> coverage_heatmap(cov).axes[0].get_title(loc="left")
        'Tag coverage of the most affected contacts'
    """
    title = "Tag coverage of the most affected contacts"
    if _is_long_coverage(coverage):
        grid = coverage_matrix(
            coverage, top_contacts=top_contacts, top_tags=top_tags, labels=labels
        )
    else:  # already a contact x tag grid of shares (audit coverage_grid); NaN = absent
        grid = coverage.iloc[:top_contacts, :top_tags].astype("float64").fillna(0.0)
        if labels:
            grid.index = [str(labels.get(c, c)) for c in grid.index]
    rows, cols = grid.shape
    # At most 10 inches (1,100 px at the reports' 110 dpi): a report page shows it at (nearly) its
    # own size, so the cell labels stay HEATMAP_LABEL_SIZE points, not scaled down to ~7 px.
    width = min(10.0, max(6.5, 3.5 + 0.5 * cols))
    fig = Figure(figsize=(width, max(3.0, 1.8 + 0.34 * rows)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if grid.empty:
        return empty_chart(fig, ax, title, "No split pairs")
    image = ax.imshow(grid.to_numpy(), cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), unique_labels([str(c) for c in grid.columns], 28))
    ax.set_yticks(range(rows), unique_labels([str(r) for r in grid.index], 28))
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    # Outline and label each gap; text colour follows the cell's lightness.
    counts = _with_counts(coverage, labels) if _is_long_coverage(coverage) else {}
    for (i, j), share in np.ndenumerate(grid.to_numpy()):
        if 0.0 < share < 1.0:
            ax.add_patch(
                Rectangle(
                    (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=OKABE_ITO["vermillion"], lw=2
                )
            )
            text = counts.get((str(grid.index[i]), str(grid.columns[j])), f"{share:.0%}")
            ax.text(j, i, text, ha="center", va="center", fontsize=HEATMAP_LABEL_SIZE,
                    color="black" if share > 0.5 else "white")  # fmt: skip
    ax.set_xlabel("tag")
    ax.set_ylabel("contact")
    ax.set_title(title, loc="left", fontweight="bold")
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("share of the contact's opportunities with the tag")
    return fig


def _is_long_coverage(coverage: pd.DataFrame) -> bool:
    return {"contact_id", "tag", "with_tag", "opportunities"} <= set(coverage.columns)


def _with_counts(
    coverage: pd.DataFrame, labels: Mapping[str, str] | None
) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    columns = [coverage[c] for c in ("contact_id", "tag", "with_tag", "opportunities")]
    for contact, tag, with_tag, opportunities in zip(*columns, strict=True):
        key = (str(labels.get(contact, contact)) if labels else str(contact), str(tag))
        out[key] = f"{int(with_tag)}/{int(opportunities)}"
    return out
