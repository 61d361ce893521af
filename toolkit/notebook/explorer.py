"""The interactive tag-coverage explorer for JupyterLab (ipywidgets).

`TagExplorer(frame)` holds the filters (tags, name/email search, minimum opportunities, archived
on/off) as widgets and recomputes three views whenever one changes: a contact x tag coverage grid
with the gaps highlighted, the per-tag statistics, and a preview of the plan the current choice
would produce (preview only: nothing is written from here). The same views are available as plain
DataFrames (`grid_table()`, `stats_table()`, `plan_table()`), which is what a headless run
(papermill, nbval) leaves behind in the report.

Example (in a notebook):
    explorer = TagExplorer(snap.frame, tags=["Python"])
    explorer.widget()          # the interactive view
    explorer.grid_table()      # the same grid, static
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from toolkit import audit
from toolkit.audit.report import contact_labels
from toolkit.notebook.charts import OKABE_ITO
from toolkit.remediate.planner import make_plan
from toolkit.sanitize import tag_problem

GAP_STYLE = f"background-color: {OKABE_ITO['orange']}; color: black; font-weight: bold"
FULL_STYLE = "background-color: #cfe6f6; color: black"
DEFAULT_TAGS = 5


def _contact_key(frame: pd.DataFrame) -> pd.Series:
    contact = frame["contact_id"].astype("object")
    return contact.where(contact.notna(), "opp:" + frame["opportunity_id"].astype(str))


def filter_frame(
    frame: pd.DataFrame,
    *,
    search: str = "",
    min_opportunities: int = 1,
    include_archived: bool = True,
) -> pd.DataFrame:
    """The opportunities of the contacts that pass the filters.

    Archived opportunities are dropped first when `include_archived` is off; then a contact is
    kept when it has at least `min_opportunities` remaining opportunities and, if `search` is
    given, one of them matches it (case-insensitive, in `name` or `email` when the snapshot holds
    them, and always in `contact_id`).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"], "contact_id": ["a", "a", "b"],
        ...                   "tags": [[], [], []], "archived": [False, True, False],
        ...                   "name": ["Ada", "Ada", "Bob"], "email": ["a@x", "a@x", "b@x"]})
        >>> filter_frame(f, min_opportunities=2)["opportunity_id"].tolist()
        ['o1', 'o2']
        >>> filter_frame(f, min_opportunities=2, include_archived=False).empty
        True
        >>> filter_frame(f, search="BOB")["contact_id"].tolist()
        ['b']
    """
    out = frame
    if not include_archived and "archived" in out.columns:
        out = out.loc[~out["archived"].astype(bool)]
    if out.empty:
        return out.reset_index(drop=True)
    key = _contact_key(out)
    keep = key.map(key.value_counts()) >= max(1, int(min_opportunities))
    text = (search or "").strip().lower()
    if text:
        hit = pd.Series(False, index=out.index)
        for column in ("name", "email", "contact_id"):
            if column in out.columns:
                values = out[column].astype("object").fillna("").astype(str).str.lower()
                hit |= values.str.contains(text, regex=False)
        matched = set(key[hit])
        keep &= key.isin(matched)
    return out.loc[keep].reset_index(drop=True)


def style_grid(grid: pd.DataFrame) -> Any:
    """A pandas Styler: shares as percentages, gaps (strictly between 0 and 1) highlighted."""

    def colour(value: float) -> str:
        if pd.isna(value):
            return ""
        return GAP_STYLE if 0.0 < value < 1.0 else FULL_STYLE

    return (
        grid.style.format("{:.0%}", na_rep="", escape="html")
        .format_index(escape="html", axis=0)  # tags and names are data: never markup
        .format_index(escape="html", axis=1)
        .map(colour)
        .set_caption("share of each contact's opportunities carrying the tag; gaps highlighted")
        .set_table_attributes('class="tag-coverage"')
    )


class TagExplorer:
    """Widgets and views over one snapshot frame; see the module docstring.

    Args:
        frame: a snapshot frame (`toolkit.snapshot.fetch` columns, `name`/`email` optional).
        tags: the tags chosen at the start (default: the policy's contact-level tags, else up to
            `DEFAULT_TAGS` the audit's evidence calls likely contact-level, else none).
        search, min_opportunities, include_archived: the filters' starting values.
        max_contacts, max_tags: rows and columns of the coverage grid.
        policy: a `toolkit.policy.Policy` for the plan preview (never_touch, skip_anonymized).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        tags: Iterable[str] | None = None,
        search: str = "",
        min_opportunities: int = 2,
        include_archived: bool = True,
        max_contacts: int = 30,
        max_tags: int = 12,
        policy: Any = None,
    ) -> None:
        self.frame = frame
        self.policy = policy
        self.max_contacts = max_contacts
        self.max_tags = max_tags
        self.all_stats = audit.tag_statistics(audit.considered(frame, include_archived=True))
        options = [
            (f"{t} ({int(n)} split)", t)
            for t, n in zip(self.all_stats["tag"], self.all_stats["split_contacts"], strict=True)
        ]
        known = set(self.all_stats["tag"])
        if tags is None:
            tags = self._suggested_tags()
        tags = list(tags)
        chosen = [t for t in tags if t in known]
        self.unknown_tags = [t for t in tags if t not in known]
        top = max(2, int(_contact_key(frame).value_counts().max()) if len(frame) else 2)
        self.tags = widgets.SelectMultiple(
            options=options, value=tuple(chosen), rows=10, description="Tags",
            layout=widgets.Layout(width="420px"),
        )  # fmt: skip
        placeholder = (
            "name, email or contact id"
            if "name" in frame.columns
            else "contact id (names need with_personal)"
        )
        self.search = widgets.Text(
            value=search, description="Search", placeholder=placeholder, continuous_update=False
        )
        self.min_opportunities = widgets.IntSlider(
            value=min(max(1, min_opportunities), top), min=1, max=top,
            description="Min opps", continuous_update=False,
        )  # fmt: skip
        self.include_archived = widgets.Checkbox(
            value=include_archived, description="Include archived", indent=False
        )
        self.status = widgets.HTML()
        self.grid_view = widgets.HTML()
        self.stats_view = widgets.HTML()
        self.plan_view = widgets.HTML()
        for control in (self.tags, self.search, self.min_opportunities, self.include_archived):
            control.observe(self._changed, names="value")
        self.refresh()

    def _suggested_tags(self) -> list[str]:
        """The policy's contact-level tags, else the ones the evidence calls contact-level."""
        if self.policy is not None and getattr(self.policy, "contact_level", None):
            return list(self.policy.contact_level)
        evidence = audit.contact_level_evidence(audit.considered(self.frame))
        likely = evidence.loc[evidence["suggestion"] == "likely contact-level"]
        likely = likely.sort_values(["split_contacts", "tag"], ascending=[False, True])
        likely = likely.loc[likely["tag"].map(lambda t: tag_problem(t) is None)]  # plannable
        return likely["tag"].head(DEFAULT_TAGS).tolist()

    # -- the current choice -----------------------------------------------------------------------

    @property
    def selected_tags(self) -> list[str]:
        return list(self.tags.value)

    def filtered(self) -> pd.DataFrame:
        """The opportunities of the contacts the filters keep."""
        return filter_frame(
            self.frame,
            search=self.search.value,
            min_opportunities=self.min_opportunities.value,
            include_archived=self.include_archived.value,
        )

    def grid_table(self) -> pd.DataFrame:
        """Contact x tag shares for the chosen tags (NaN = the contact never has the tag)."""
        frame = self.filtered()
        tags = self.selected_tags or None
        if frame.empty:
            return pd.DataFrame(columns=pd.Index(tags or [], name="tag"), dtype="float64")
        grid = audit.coverage_grid(
            frame, tags=tags, max_contacts=self.max_contacts, max_tags=self.max_tags
        )
        if tags:  # only contacts that carry at least one chosen tag somewhere
            grid = grid.dropna(how="all")
        labels = contact_labels(frame)
        if labels:
            grid.index = pd.Index([labels.get(c, c) for c in grid.index], name="contact")
        return grid

    def styled_grid(self) -> Any:
        """`grid_table()` styled: percentages, gaps highlighted (a static HTML table)."""
        return style_grid(self.grid_table())

    def stats_table(self) -> pd.DataFrame:
        """Per-tag statistics of the filtered contacts, for the chosen tags (or all)."""
        frame = self.filtered()
        stats = audit.tag_statistics(frame) if len(frame) else self.all_stats.iloc[0:0]
        if self.selected_tags:
            stats = stats.loc[stats["tag"].isin(self.selected_tags)]
        return stats.reset_index(drop=True)

    def plan(self) -> Any:
        """The plan (propagate) the current choice would produce, or None without tags."""
        tags = [t for t in self.selected_tags if tag_problem(t) is None]  # never written as is
        if not tags:
            return None
        return make_plan(
            self.filtered(),
            mode="propagate",
            tags=tags,
            policy=self.policy,
            include_archived=self.include_archived.value,
        )

    def plan_table(self) -> pd.DataFrame:
        """Opportunities the preview would change, per op and tag (nothing is written)."""
        plan = self.plan()
        if plan is None or plan.rows.empty:
            return pd.DataFrame({"op": [], "tag": [], "opportunities": []})
        return plan.changes_by_tag()

    # -- rendering ------------------------------------------------------------------------------

    def _changed(self, _change: Any = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute every view from the widgets' current values."""
        frame = self.filtered()
        contacts = int(_contact_key(frame).nunique()) if len(frame) else 0
        self.status.value = (
            f"<b>{contacts:,}</b> contacts, <b>{len(frame):,}</b> opportunities match; "
            f"<b>{len(self.selected_tags)}</b> tags chosen"
        )
        if self.unknown_tags:
            self.status.value += "; not in the snapshot: " + ", ".join(
                html.escape(t) for t in self.unknown_tags
            )
        grid = self.grid_table()
        self.grid_view.value = (
            style_grid(grid).to_html() if not grid.empty else "<i>no contact matches</i>"
        )
        stats = self.stats_table()
        self.stats_view.value = stats.to_html(index=False, float_format=lambda v: f"{v:.2f}")
        plan = self.plan()
        if plan is None:
            self.plan_view.value = "<i>choose tags to preview a plan</i>"
        else:
            counts = plan.counts()
            head = (
                f"<p>Preview only (writes happen in 03-remediate): <b>{counts['add']:,}</b> "
                f"additions on <b>{counts['opportunities']:,}</b> opportunities in "
                f"<b>{counts['calls']:,}</b> calls; {counts['skipped']:,} skipped.</p>"
            )
            self.plan_view.value = head + self.plan_table().to_html(index=False)

    def widget(self) -> widgets.VBox:
        """The explorer: filters on top, then tabs with the grid, statistics and plan preview."""
        filters = widgets.HBox(
            [
                self.tags,
                widgets.VBox([self.search, self.min_opportunities, self.include_archived]),
            ]
        )
        tabs = widgets.Tab(children=[self.grid_view, self.stats_view, self.plan_view])
        for i, title in enumerate(("Coverage grid", "Tag statistics", "Plan preview")):
            tabs.set_title(i, title)
        return widgets.VBox([filters, self.status, tabs])

    def _ipython_display_(self) -> None:  # `explorer` as a cell's last line shows the widget
        display(self.widget())


def explore(frame: pd.DataFrame, **options: Any) -> TagExplorer:
    """Build a `TagExplorer` over `frame` (see its arguments)."""
    return TagExplorer(frame, **options)
