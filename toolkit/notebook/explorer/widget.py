"""`TagExplorer`: the widgets, their callbacks and the rendering (`toolkit.notebook.explorer`)."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from IPython.display import display

from toolkit.audit.evidence import THRESHOLDS, evidence_table
from toolkit.notebook.explorer.index import (
    DEBOUNCE_S,
    DEFAULT_TAGS,
    STATS_COLUMNS,
    STATS_ROWS,
    TAG_CHOICES,
    ExplorerIndex,
    Selection,
    apply_filters,
    visible_label,
)
from toolkit.notebook.explorer.views import Views, style_grid
from toolkit.policy import Policy
from toolkit.progress import in_kernel
from toolkit.sanitize import tag_problem

STATUS_TAGS = 12  # chosen tags named in the status line


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


# -- the index (built once) ---------------------------------------------------------------------

NO_MATH = '<div class="tex2jax_ignore mathjax_ignore">{}</div>'
"""Every view's HTML is wrapped in this: JupyterLab typesets `$...$` in an HTML widget with
MathJax, and a tag such as `$x^2$` is data, to be shown as typed (MathJax skips these classes)."""


NO_MATH_LABEL = '<span class="tex2jax_ignore mathjax_ignore" title="{0}">{0}</span>'
"""A tag checkbox's description (escaped text): ipywidgets typesets descriptions too. The span's
own title is the hover text over the label (ipywidgets puts the raw description in the title of
the span around it, which this one covers); with no `tooltip`, the box itself has no title."""


def option_label(box: widgets.Checkbox) -> str:
    """The text a tag checkbox shows, e.g. ``"Python (3 split)"`` (its description unwrapped).

    Example:
        >>> box = widgets.Checkbox(description=NO_MATH_LABEL.format("$5k-$10k (1 split)"))
        >>> option_label(box)
        '$5k-$10k (1 split)'
    """
    text = box.description
    if text.startswith("<span") and text.endswith("</span>"):
        text = text[text.index(">") + 1 : -len("</span>")]
    return html.unescape(text)


class Debounced:
    """Call `fn` once input has been quiet for `wait` seconds, on the kernel's event loop.

    Outside a Jupyter kernel (tests, scripts, a headless run) `fn` runs at once: nothing else
    would run the loop's timers there. `live` decides which case applies (default: a kernel
    with a running event loop).
    """

    def __init__(
        self,
        fn: Callable[[], None],
        wait: float = DEBOUNCE_S,
        live: Callable[[], bool] = in_kernel,
    ) -> None:
        self.fn, self.wait, self.live = fn, wait, live
        self.handle: asyncio.TimerHandle | None = None

    def __call__(self, _change: Any = None) -> None:
        loop = None
        if self.live():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            self.fn()
            return
        if self.handle is not None:
            self.handle.cancel()
        self.handle = loop.call_later(self.wait, self.fn)


class TagExplorer(Views):
    """Widgets and views over one snapshot frame; see the module docstring.

    Args:
        frame: a snapshot frame (`toolkit.snapshot` columns, `name`/`email` optional).
        tags: the tags chosen at the start (default: the policy's contact-level tags, else up to
            `DEFAULT_TAGS` the audit's evidence calls likely contact-level, else none).
        search, min_opportunities, include_archived: the filters' starting values.
        max_contacts: grid rows per page; max_tags: grid columns when no tag is chosen.
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
        policy: Policy | None = None,
    ) -> None:
        self.frame = frame
        self.policy = policy
        self.max_contacts = max_contacts
        self.max_tags = max_tags
        self.index = ix = ExplorerIndex(frame)
        self.page = 0
        self._sel: Selection | None = None
        self._preview: tuple[Any, Any] | None = None
        self._every_tag: dict[str, np.ndarray] | None = None  # per tag, under the filters
        self._split_pairs = np.zeros(0, dtype=np.int64)  # with it: the split pairs
        self._unlisted = 0
        self._evidence: pd.DataFrame | None = None
        self.tags_given = tags is not None  # chosen by the caller, not suggested
        # tags: split contacts over all data, for the checklist's labels and order
        everything = apply_filters(ix, "", 1, True)
        self._tag_split = np.bincount(
            ix.pair_tag[everything.pair_split(ix.opportunities[0], ix.pair_contact)],
            minlength=len(ix.tags),
        )
        self._tag_order = np.lexsort((np.arange(len(ix.tags)), -self._tag_split))
        if tags is None:
            tags = self._suggested_tags()
        tags = list(dict.fromkeys(tags))
        self._chosen: list[str] = [t for t in tags if t in ix.tag_code]
        self.unknown_tags = [t for t in tags if t not in ix.tag_code]

        top = max(2, int(ix.opportunities[0].max()) if len(ix.contacts) else 2)
        self.tag_filter = widgets.Text(
            placeholder=f"filter {len(ix.tags):,} tags…", continuous_update=True,
            layout=widgets.Layout(width="300px"),
        )  # fmt: skip
        self.tag_filter.add_class("ltt-tag-filter")
        self._checks: dict[str, widgets.Checkbox] = {}
        self.tag_list = widgets.VBox(
            layout=widgets.Layout(
                width="300px", max_height="230px", overflow="auto", flex_flow="column"
            )
        )
        self.tag_note = widgets.HTML()
        self.tags = widgets.VBox(
            [widgets.HTML("<b>Tags</b> (click to choose; type to filter)"), self.tag_filter,
             self.tag_list, self.tag_note],
        )  # fmt: skip
        self.tags.add_class("ltt-tags")
        placeholder = (
            "name, email or contact id"
            if "name" in frame.columns
            else "contact id (names need with_personal)"
        )
        self.search = widgets.Text(
            value=search, description="Search", placeholder=placeholder, continuous_update=True
        )
        self.search.add_class("ltt-search")
        self.min_opportunities = widgets.IntSlider(
            value=min(max(1, min_opportunities), top), min=1, max=top,
            description="Min opps", continuous_update=False,
        )  # fmt: skip
        self.min_opportunities.add_class("ltt-min-opportunities")
        self.include_archived = widgets.Checkbox(
            value=include_archived, description="Include archived", indent=False
        )
        self.include_archived.add_class("ltt-include-archived")
        self.prev_page = widgets.Button(description="◀ previous", layout={"width": "110px"})
        self.next_page = widgets.Button(description="next ▶", layout={"width": "110px"})
        self.prev_page.add_class("ltt-prev")
        self.next_page.add_class("ltt-next")
        self.prev_page.on_click(lambda _b: self._turn(-1))
        self.next_page.on_click(lambda _b: self._turn(+1))
        self.status = widgets.HTML()
        self.status.add_class("ltt-status")
        self.grid_view = widgets.HTML()
        self.grid_view.add_class("ltt-grid")
        self.stats_view = widgets.HTML()
        self.stats_view.add_class("ltt-stats")
        self.plan_view = widgets.HTML()
        self.plan_view.add_class("ltt-plan")

        self._search_later = Debounced(self._filters_changed)
        self._tags_later = Debounced(self._render_checklist)
        self.search.observe(self._search_later, names="value")
        self.tag_filter.observe(self._tags_later, names="value")
        for control in (self.min_opportunities, self.include_archived):
            control.observe(self._filters_changed, names="value")
        self._render_checklist()
        self.refresh()

    def _suggested_tags(self) -> list[str]:
        """The policy's contact-level tags, else the ones the evidence calls contact-level."""
        policy = self.policy
        if policy is not None and (policy.contact_level or policy.patterns):
            return [f.tag for f in policy.resolve(str(t) for t in self.index.tags)]
        evidence = self.evidence
        likely = evidence.loc[evidence["suggestion"] == "likely contact-level"]
        likely = likely.sort_values(["split_contacts", "tag"], ascending=[False, True])
        likely = likely.loc[likely["tag"].map(lambda t: tag_problem(t) is None)]  # plannable
        return likely["tag"].head(DEFAULT_TAGS).tolist()

    @property
    def evidence(self) -> pd.DataFrame:
        """The audit's contact-level evidence per tag (`audit.contact_level_evidence` over the
        whole frame), from the index's own pairs: computed once, the policy panel's too."""
        if self._evidence is None:
            self._evidence = evidence_table(self.index, *THRESHOLDS, None)
        return self._evidence

    # -- the current choice -----------------------------------------------------------------------

    @property
    def selected_tags(self) -> list[str]:
        """The chosen tags, in the order they were chosen."""
        return list(self._chosen)

    def choose_tags(self, tags: Iterable[str]) -> None:
        """Replace the chosen tags (unknown ones are ignored) and redraw."""
        self._chosen = [t for t in dict.fromkeys(tags) if t in self.index.tag_code]
        self._render_checklist()
        self._tags_changed()

    def _toggle(self, tag: str, on: bool) -> None:
        if on and tag not in self._chosen:
            self._chosen.append(tag)
        elif not on and tag in self._chosen:
            self._chosen.remove(tag)
        else:
            return
        self._render_note()
        self._tags_changed()

    def _check(self, tag: str) -> widgets.Checkbox:
        box = self._checks.get(tag)
        if box is None:
            n = int(self._tag_split[self.index.tag_code[tag]])
            label = f"{visible_label(tag)} ({n:,} split)"
            box = widgets.Checkbox(
                value=tag in self._chosen,
                # JupyterLab typesets a checkbox's description with MathJax: "$5k-$10k" would
                # become math. As HTML in a span MathJax skips, it shows as typed.
                description=NO_MATH_LABEL.format(html.escape(label)),
                description_allow_html=True,
                indent=False,
                layout=widgets.Layout(width="auto", min_height="22px"),
            )
            box.add_class("ltt-tag-option")
            box.observe(lambda change, t=tag: self._toggle(t, bool(change["new"])), names="value")
            self._checks[tag] = box
        return box

    def _render_checklist(self) -> None:
        """At most `TAG_CHOICES` boxes: the chosen tags matching the filter first, then the most
        split others matching it (a policy can choose hundreds: the filter finds any tag)."""
        ix = self.index
        needle = self.tag_filter.value.strip().lower()
        order = self._tag_order
        chosen = set(self._chosen)
        first = self._chosen
        if needle and len(ix.tags):
            lowered = pc.utf8_lower(pa.array(ix.tags, type=pa.large_string()))
            hit = np.asarray(pc.match_substring(lowered, needle).to_numpy(zero_copy_only=False))
            order = order[hit[order]]
            first = [t for t in self._chosen if hit[ix.tag_code[t]]]
        others = [str(ix.tags[i]) for i in order[: TAG_CHOICES + len(chosen)]]
        shown = [*first, *(t for t in others if t not in chosen)][:TAG_CHOICES]
        for tag in shown:
            box = self._check(tag)
            if box.value != (tag in chosen):
                box.value = tag in chosen
        self.tag_list.children = [self._checks[t] for t in shown]
        self._unlisted = len(order) - len(shown)
        self._render_note()

    def _render_note(self) -> None:
        rest = max(0, self._unlisted)
        more = f"; {rest:,} more tags not listed: type to filter" if rest else ""
        self.tag_note.value = f"<small>{len(self._chosen)} chosen{more}</small>"

    # -- rendering ------------------------------------------------------------------------------

    def _filters_changed(self, _change: Any = None) -> None:
        self._sel = None
        self._preview = None
        self._every_tag = None
        self.page = 0
        self.refresh()

    def _tags_changed(self) -> None:
        self.page = 0
        self.refresh()

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self._render_grid()
        self._render_status()

    def _render_grid(self) -> None:
        grid = self.grid_table()
        self.grid_view.value = NO_MATH.format(
            style_grid(grid).to_html()
            if not grid.empty
            else "<i>no contact matches: loosen the filters or choose other tags</i>"
        )
        pages = max(1, -(-self._grid_rows // self.max_contacts))
        self.prev_page.disabled = self.page <= 0
        self.next_page.disabled = self.page >= pages - 1

    def _render_status(self) -> None:
        sel, ix = self.selection(), self.index
        shown = int(sel.contacts.sum())
        start = self.page * self.max_contacts
        rows = self._grid_rows
        status = (
            f"<b>{shown:,}</b> contacts shown of <b>{len(ix.contacts):,}</b> "
            f"({int(sel.rows.sum()):,} opportunities); <b>{len(self._chosen)}</b> tags chosen"
        )
        if self._chosen:
            named = ", ".join(html.escape(t) for t in self._chosen[:STATUS_TAGS])
            rest = len(self._chosen) - STATUS_TAGS
            status += f" ({named}{f' and {rest:,} more' if rest > 0 else ''})"
        if rows:
            end = min(rows, start + self.max_contacts)
            status += f"; grid rows {start + 1:,}–{end:,} of {rows:,}"
        if self.unknown_tags:
            status += "; not in the snapshot: " + ", ".join(
                html.escape(t) for t in self.unknown_tags
            )
        self.status.value = NO_MATH.format(status)

    def refresh(self) -> None:
        """Redraw every view from the widgets' current values (only what is visible)."""
        self._render_grid()
        self._render_status()
        many = len(self._chosen) > STATS_ROWS  # a policy can choose hundreds: the top ones
        limit = None if self._chosen and not many else STATS_ROWS
        stats = self.stats_table(limit=limit)
        note = ""
        if limit is not None:
            total = len(self._chosen) if many else len(self._stats_codes(None)["code"])
            if total > limit:
                note = (
                    f"<p><small>the {limit} most split of {total:,} "
                    + ("chosen tags (all of them: <code>stats_table()</code>)" if many else "tags")
                    + ("" if many else "; choose tags to see theirs")
                    + "</small></p>"
                )
        counts = {c: "{:,}".format for c in STATS_COLUMNS[1:] if c != "split_rate"}
        self.stats_view.value = NO_MATH.format(
            note
            + stats.to_html(
                index=False, escape=True, formatters={**counts, "split_rate": "{:.0%}".format}
            )
        )
        preview = self.preview()
        if preview is None:
            self.plan_view.value = "<i>choose tags to preview a plan</i>"
        else:
            counts = preview["counts"]
            head = (
                f"<p>Preview only (writes happen in 03-remediate): <b>{counts['add']:,}</b> "
                "additions "
                + (f"and <b>{counts['remove']:,}</b> removals " if counts["remove"] else "")
                + f"on <b>{counts['opportunities']:,}</b> opportunities in "
                f"<b>{counts['calls']:,}</b> calls; {counts['skipped']:,} skipped.</p>"
            )
            table = self.plan_table().to_html(index=False, escape=True)
            self.plan_view.value = NO_MATH.format(head + table)

    def widget(self) -> widgets.VBox:
        """The explorer: filters on top, the status line, then tabs: grid, statistics, plan."""
        filters = widgets.HBox(
            [
                self.tags,
                widgets.VBox(
                    [
                        self.search,
                        self.min_opportunities,
                        self.include_archived,
                        widgets.HBox([self.prev_page, self.next_page]),
                    ]
                ),
            ]
        )
        tabs = widgets.Tab(children=[self.grid_view, self.stats_view, self.plan_view])
        for i, title in enumerate(("Coverage grid", "Tag statistics", "Plan preview")):
            tabs.set_title(i, title)
        box = widgets.VBox([filters, self.status, tabs])
        box.add_class("ltt-explorer")
        return box

    def _ipython_display_(self) -> None:  # `explorer` as a cell's last line shows the widget
        display(self.widget())


def explore(frame: pd.DataFrame, **options: Any) -> TagExplorer:
    """Build a `TagExplorer` over `frame` (see its arguments)."""
    return TagExplorer(frame, **options)
