"""Matplotlib figures for the reports: sorted, titled, readable with long tag names.

Every function takes the DataFrames or dicts that the audit and remediation steps return and gives
back a `matplotlib.figure.Figure` (never `pyplot` state), so notebooks display it and the HTML
export embeds it as a PNG. Colours come from the Okabe-Ito palette, which stays distinguishable
under the common forms of colour blindness; heatmaps use `cividis`, designed for the same reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt  # imported so IPython registers its PNG formatter for figures
import numpy as np
import pandas as pd
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
PALETTE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "sky_blue", "purple")]
HEATMAP_CMAP = "cividis"
LABEL_WIDTH = 40  # characters of a tag name shown on an axis; the rest becomes an ellipsis
HEATMAP_LABEL_SIZE = 10  # points: the `with/total` labels of the heatmap's cells

# Fonts, in order, that charts draw text with. Matplotlib (>= 3.6) takes each character from the
# first family in this list that has it, so Latin text stays DejaVu Sans (matplotlib's own) and
# Chinese, Japanese and Korean tags come from Noto Sans CJK (Debian/Ubuntu: fonts-noto-cjk, which
# `make` installs when it can). Only installed families are used; a character none of them has is
# reported by `missing_glyphs` (the reports show a warning) instead of silently drawn as a box.
FONT_FALLBACK = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Noto Sans",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)

__all__ = [
    "FONT_FALLBACK",
    "OKABE_ITO",
    "PALETTE",
    "before_after_bar",
    "coverage_heatmap",
    "describe_figure",
    "fit_labels",
    "font_families",
    "missing_glyphs",
    "opportunities_per_contact_hist",
    "plan_counts_bar",
    "save_figure",
    "shorten",
    "split_contacts_bar",
]


def font_families(candidates: tuple[str, ...] = FONT_FALLBACK) -> list[str]:
    """The installed families of `candidates`, in order (DejaVu Sans ships with matplotlib).

    Example:
        >>> font_families()[0]
        'DejaVu Sans'
    """
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in candidates if name in installed] or ["DejaVu Sans"]


def _font_files(families: list[str]) -> list[str]:
    from matplotlib import font_manager

    files = []
    for name in families:
        try:
            path = font_manager.findfont(
                font_manager.FontProperties(family=name), fallback_to_default=False
            )
        except ValueError:
            continue
        files.append(path)
    return list(dict.fromkeys(files))


def missing_glyphs(labels: Any, families: list[str] | None = None) -> set[str]:
    """The characters of `labels` that no font of `families` (default: the charts') can draw.

    Example:
        >>> missing_glyphs(["Python", "Berlin"])
        set()
        >>> sorted(missing_glyphs(["数据"], ["DejaVu Sans"]))
        ['据', '数']
    """
    from matplotlib.ft2font import FT2Font

    chars = {ch for label in labels for ch in str(label) if ch.isprintable() and not ch.isspace()}
    if not chars:
        return set()
    fonts = [FT2Font(path) for path in _font_files(families or font_families())]
    return {ch for ch in chars if not any(f.get_char_index(ord(ch)) for f in fonts)}


def use_fallback_fonts() -> None:
    """Make every chart text use `font_families()` (called once when this module is imported)."""
    matplotlib.rcParams["font.family"] = font_families()


use_fallback_fonts()


def shorten(label: object, width: int = LABEL_WIDTH) -> str:
    """Cut a long label to `width` characters, ending with an ellipsis.

    Example:
        >>> shorten("Senior Software Engineer, Platform Infrastructure (Remote)", 20)
        'Senior Software Eng…'
        >>> shorten("Python")
        'Python'
    """
    text = str(label)
    return text if len(text) <= width else text[: width - 1] + "…"


def plain_text(label: object) -> str:
    r"""A data label matplotlib draws as it is: `$` escaped, so a tag like `$\alpha$` or
    `$$x^{99999}$$` is shown literally, never parsed as mathtext (nor made to fail rendering).

    Example:
        >>> plain_text("costs $5 or $6")
        'costs \\$5 or \\$6'
    """
    return str(label).replace("$", r"\$")


def _unique_labels(labels: list[str], width: int) -> list[str]:
    """Shortened labels, made distinct again when two long names share their first characters.

    They are data (tags, names): `$` is escaped (`plain_text`), so none is read as mathtext.
    """
    out: list[str] = []
    seen: dict[str, int] = {}
    for label in labels:
        short = shorten(label, width)
        n = seen.get(short, 0)
        seen[short] = n + 1
        out.append(plain_text(short if n == 0 else f"{short} ({n + 1})"))
    return out


def _new_figure(rows: int, *, width: float = 9.0, min_height: float = 2.6) -> tuple[Figure, Any]:
    height = max(min_height, 0.8 + 0.32 * rows)
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    return fig, ax


def _empty(fig: Figure, ax, title: str, message: str) -> Figure:
    ax.set_title(title, loc="left", fontweight="bold")
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.35")
    ax.set_axis_off()
    return fig


def _annotate_barh(ax, bars, values) -> list:
    texts = []
    for bar, value in zip(bars, values, strict=True):
        if value:
            texts.append(
                ax.annotate(
                    f"{int(value):,}",
                    (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                )
            )
    return texts


def fit_labels(fig: Figure, ax, texts: list, *, axis: str = "x", pad: float = 4.0) -> None:
    """Extend the value axis until every value label lies inside the axes, `pad` pixels clear.

    A label sits a few points beyond the end of its bar, so a fixed margin cannot fit every
    number at every size; this lays the figure out (constrained layout included), measures the
    labels, and widens the limit (at most a few rounds; each one converges further).

    Example:
        >>> stats = pd.DataFrame({"tag": ["x"], "split_contacts": [123456]})
        >>> fig = split_contacts_bar(stats)
        >>> fig.draw_without_rendering()
        >>> ax = fig.axes[0]
        >>> bool(ax.texts[0].get_window_extent().x1 <= ax.get_window_extent().x1)
        True
    """
    if not texts:
        return
    for _ in range(4):
        with _glyph_warnings_reported():
            fig.draw_without_rendering()
        box = ax.get_window_extent()
        if axis == "x":
            reach, edge, size = max(t.get_window_extent().x1 for t in texts), box.x1, box.width
            lo, hi = ax.get_xlim()
        else:
            reach, edge, size = max(t.get_window_extent().y1 for t in texts), box.y1, box.height
            lo, hi = ax.get_ylim()
        overflow = reach + pad - edge
        if overflow <= 0 or size <= 0:
            return
        grow = (hi - lo) * overflow / max(size - overflow, size * 0.2)
        if axis == "x":
            ax.set_xlim(lo, hi + grow)
        else:
            ax.set_ylim(lo, hi + grow)


def split_contacts_bar(
    stats: pd.DataFrame, top: int = 20, *, value: str = "split_contacts", what: str = "Tags"
) -> Figure:
    """Horizontal bars of the tags with the most split contacts, largest at the top.

    Args:
        stats: per-tag statistics with at least the columns `tag` and `value`
            (`toolkit.audit.tag_statistics`).
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
    fig, ax = _new_figure(len(data))
    if data.empty:
        return _empty(
            fig, ax, f"{what} with split contacts", "No split contacts: every tag is whole"
        )
    labels = _unique_labels([str(t) for t in data["tag"]], LABEL_WIDTH)
    values = data[value].astype("int64").to_numpy()
    y = np.arange(len(data))
    bars = ax.barh(y, values, color=OKABE_ITO["blue"])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # largest first, at the top
    texts = _annotate_barh(ax, bars, values)
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
    fig, ax = _new_figure(0, width=8.0, min_height=3.6)
    if frame.empty:
        return _empty(fig, ax, title, "No opportunities")
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

    Rows are the contacts with the most split tags (then the most opportunities), columns the tags
    split for the most contacts among them. A value strictly between 0 and 1 is a gap.

    Args:
        coverage: rows `contact_id, tag, with_tag, opportunities` (`toolkit.audit.tag_coverage` or
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
    cov = coverage[["contact_id", "tag", "with_tag", "opportunities"]].copy()
    cov["contact_id"] = cov["contact_id"].astype(str)
    cov["tag"] = cov["tag"].astype(str)
    cov["share"] = cov["with_tag"].astype("float64") / cov["opportunities"].astype("float64")
    cov["split"] = (cov["with_tag"] > 0) & (cov["with_tag"] < cov["opportunities"])
    per_contact = (
        cov.groupby("contact_id")
        .agg(splits=("split", "sum"), opps=("opportunities", "max"))
        .reset_index()
        .sort_values(["splits", "opps", "contact_id"], ascending=[False, False, True])
    )
    per_contact = per_contact[per_contact["splits"] > 0].head(top_contacts)
    if per_contact.empty:
        return pd.DataFrame(dtype="float64")
    chosen = cov[cov["contact_id"].isin(per_contact["contact_id"])]
    tag_rank = (
        chosen[chosen["split"]]
        .groupby("tag")
        .size()
        .reset_index(name="n")
        .sort_values(["n", "tag"], ascending=[False, True])
        .head(top_tags)
    )
    grid = chosen.pivot_table(index="contact_id", columns="tag", values="share", aggfunc="max")
    grid = grid.reindex(index=per_contact["contact_id"], columns=tag_rank["tag"]).fillna(0.0)
    grid.index.name = "contact"
    grid.columns.name = "tag"
    if labels:
        grid.index = [str(labels.get(c, c)) for c in grid.index]
        grid.index.name = "contact"
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
    else:  # already a contact x tag grid of shares (toolkit.audit.coverage_grid); NaN = absent
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
        return _empty(fig, ax, title, "No split pairs")
    image = ax.imshow(grid.to_numpy(), cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), _unique_labels([str(c) for c in grid.columns], 28))
    ax.set_yticks(range(rows), _unique_labels([str(r) for r in grid.index], 28))
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
            text = counts.get((grid.index[i], grid.columns[j]), f"{share:.0%}")
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
    for row in coverage.itertuples(index=False):
        key = (str(labels.get(row.contact_id, row.contact_id)) if labels else str(row.contact_id),
               str(row.tag))  # fmt: skip
        out[key] = f"{int(row.with_tag)}/{int(row.opportunities)}"
    return out


def _plan_rows(plan: Any) -> pd.DataFrame:
    rows = getattr(plan, "rows", plan)
    if not isinstance(rows, pd.DataFrame):
        raise TypeError("plan_counts_bar needs a Plan or a DataFrame with columns op, tag")
    return rows


def plan_counts_bar(plan: Any, top: int = 20) -> Figure:
    """Planned changes per tag, additions and removals stacked, most changes at the top.

    Args:
        plan: a `toolkit.plan.Plan` or its rows (`opportunity_id, contact_id, op, tag`).
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
        fig, ax = _new_figure(0)
        return _empty(fig, ax, title, "Nothing to change")
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
    fig, ax = _new_figure(len(counts))
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
    ax.set_yticks(y, _unique_labels([str(t) for t in counts["tag"]], LABEL_WIDTH))
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
    statistics frames (`toolkit.audit.tag_statistics`), compares split contacts per tag for the
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
        _unique_labels([str(t) for t in tags], LABEL_WIDTH),
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
        fig, ax = _new_figure(len(labels) * 1.6)
    else:
        fig = Figure(figsize=(8.0, 4.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
    if not labels or (not any(before) and not any(after)):
        return _empty(fig, ax, title, "Nothing split before or after")
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


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write `fig` as a PNG (creating the folder) and return the path.

    Example:
        >>> import tempfile
        >>> fig = split_contacts_bar(pd.DataFrame({"tag": ["x"], "split_contacts": [1]}))
        >>> save_figure(fig, Path(tempfile.mkdtemp()) / "x.png").suffix
        '.png'
    """
    path = Path(path)
    from toolkit.sanitize import create_private, private_dir

    private_dir(path.parent)  # charts carry tags and names: 0600 in 0700 folders
    create_private(path)  # savefig truncates it in place: the mode stays
    with _glyph_warnings_reported():
        fig.savefig(path, dpi=dpi, format="png", metadata={"Software": None})
    return path


@contextmanager
def _glyph_warnings_reported() -> Iterator[None]:
    """Matplotlib's "Glyph N missing from font(s)" warnings are replaced by the report's notice
    (`toolkit.present.glyph_notice`, built on `missing_glyphs`): one sentence saying which
    characters and how to fix it, instead of a warning per glyph in the middle of a report."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-").replace(",", ""))
    except ValueError:
        return False
    return True


def describe_figure(fig: Figure, *, items: int = 8) -> str:
    """Alternative text for a chart: its title, axes, and the first values it shows.

    Bars are read from the axes' bar containers (each category with its value, or one value per
    series: "Python: before 11, after 0"); a heatmap gives its size and columns; an empty chart
    its message.

    Example:
        >>> fig = split_contacts_bar(pd.DataFrame({"tag": ["Go", "Rust"], "split_contacts": [7, 3]}))
        >>> describe_figure(fig)
        'Tags with the most split contacts (top 20). Horizontal bars; x: contacts with the tag on some but not all of their opportunities. Go: 7; Rust: 3.'
    """  # noqa: E501
    if not fig.axes:
        return ""
    ax = fig.axes[0]
    title = ax.get_title(loc="left") or ax.get_title()
    parts = [title.rstrip(".") + "."] if title else []
    if not ax.axison:  # an empty chart: its message is the whole content
        parts += [t.get_text() + "." for t in ax.texts if t.get_text()]
        return " ".join(parts)
    xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
    ticks_y = [t.get_text() for t in ax.get_yticklabels()]
    ticks_x = [t.get_text() for t in ax.get_xticklabels()]
    if ax.get_images():
        shown = [t for t in ticks_x if t]
        parts.append(
            f"Heatmap: {len([t for t in ticks_y if t])} rows ({ylabel or 'rows'}) by "
            f"{len(shown)} columns ({xlabel or 'columns'}): {_listed(shown, items, ', ')}."
        )
        return " ".join(parts)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    if not bars:
        return " ".join(parts)
    horizontal = bars[0].orientation == "horizontal"
    kind = "Horizontal bars" if horizontal else "Bars"
    axis = f"; x: {xlabel}" if xlabel else ""
    axis += f"; y: {ylabel}" if ylabel and not horizontal else ""
    parts.append(f"{kind}{axis}.")
    categories = ticks_y if horizontal else ticks_x
    series = [(c.get_label(), list(c.datavalues)) for c in bars]
    rows = []
    for k, category in enumerate(categories):
        if not category or any(k >= len(values) for _, values in series):
            continue
        if len(series) == 1:
            rows.append(f"{category}: {_num(series[0][1][k])}")
        else:
            rows.append(f"{category}: " + ", ".join(f"{lab} {_num(v[k])}" for lab, v in series))
    if rows:
        parts.append(_listed(rows, items, "; ") + ".")
    return " ".join(parts)


def _num(value: Any) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{float(value):,.2f}"


def _listed(items: list[str], limit: int, sep: str) -> str:
    shown = sep.join(items[:limit])
    return shown + (f"{sep}and {len(items) - limit} more" if len(items) > limit else "")


def png_bytes(fig: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (what notebooks and the HTML report embed)."""
    import io

    buf = io.BytesIO()
    with _glyph_warnings_reported():
        fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None})
    return buf.getvalue()


def _register_ipython_png() -> None:
    """Inside IPython, show every `Figure` as a PNG whatever the backend state.

    The figures here are made without pyplot, and the inline backend only registers its PNG
    formatter once a pyplot figure exists; without this, a kernel shows `<Figure size ...>`.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters.get("image/png")
    if formatter is not None:
        formatter.for_type(Figure, png_bytes)


_register_ipython_png()


def close(fig: Figure) -> None:
    """Release a figure made here (they are not registered with pyplot, so this is optional)."""
    plt.close(fig)
