"""The interactive tag-coverage explorer for JupyterLab (ipywidgets).

`TagExplorer(frame)` holds the filters as widgets (a filterable tag checklist with the chosen tags
on top, a name/email search that answers as you type, a minimum number of opportunities, archived
on/off) and redraws three views whenever one changes: a contact x tag coverage grid with the gaps
highlighted (paged), the per-tag statistics, and a preview of the plan the current choice would
produce (preview only: nothing is written from here). The same views are available as plain
DataFrames (`grid_table()`, `stats_table()`, `plan_table()`), which is what a headless run
(papermill, nbval) leaves behind in the report.

How it stays interactive on a million opportunities: the frame is indexed once (`ExplorerIndex`:
contacts and tags as integer codes, the distinct (contact, tag) pairs with how many of the
contact's opportunities carry the tag, with and without archived ones, and the lower-cased search
text as a dictionary). A change of a control is then a handful of numpy passes over those arrays
(boolean masks, `bincount`s), and only what is visible is rendered: one page of the grid, the top
rows of the statistics. `benchmarks/bench_explorer.py` measures it (`docs/benchmarks.md`).

Everything that comes from Lever (tags, names, ids) is escaped wherever it meets HTML.

Example (in a notebook):
    explorer = TagExplorer(snap.frame, tags=["Python"])
    explorer.widget()          # the interactive view
    explorer.grid_table()      # the current grid page, static
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import audit
from toolkit.charts import OKABE_ITO
from toolkit.progress import in_kernel
from toolkit.sanitize import tag_problem

NO_MATH = '<div class="tex2jax_ignore mathjax_ignore">{}</div>'
"""Every view's HTML is wrapped in this: JupyterLab typesets `$...$` in an HTML widget with
MathJax, and a tag such as `$x^2$` is data, to be shown as typed (MathJax skips these classes)."""

GAP_STYLE = f"background-color: {OKABE_ITO['orange']}; color: black; font-weight: bold"
FULL_STYLE = "background-color: #cfe6f6; color: black"
DEFAULT_TAGS = 5
DEBOUNCE_S = 0.2  # search and tag filter: redraw this long after the last keystroke
TAG_CHOICES = 40  # tag checkboxes listed at once (chosen ones first, then the best matches)
STATS_ROWS = 25  # statistics rows rendered when no tag is chosen (every tag)
STATS_COLUMNS = audit.TAG_STATISTICS_COLUMNS


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
    """A pandas Styler: shares as percentages, gaps (strictly between 0 and 1) highlighted.

    Contact labels and tags (both from Lever) are HTML-escaped.
    """

    def colour(value: float) -> str:
        if pd.isna(value):
            return ""
        return GAP_STYLE if 0.0 < value < 1.0 else FULL_STYLE

    return (
        grid.style.format("{:.0%}", na_rep="", escape="html")
        .format_index(escape="html", axis=0)
        .format_index(escape="html", axis=1)
        .map(colour)
        .set_caption("share of each contact's opportunities carrying the tag; gaps highlighted")
        .set_table_attributes('class="tag-coverage"')
    )


# -- the index (built once) ---------------------------------------------------------------------


def _codes(values: Any, objects: bool = True) -> tuple[np.ndarray, Any]:
    """int64 codes into the sorted distinct strings (pyarrow dictionary encoding); the distinct
    strings as a numpy object array, or (``objects=False``) as a pyarrow array."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    encoded = pc.dictionary_encode(array)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    labels = encoded.dictionary.take(pa.array(order))
    if objects:
        labels = np.asarray(labels.to_pylist(), dtype=object)
    return rank[index] if len(index) else index, labels


def _as_list(value: Any) -> list[str]:
    """A tags cell as a list of strings: a bare string is one tag; None or NaN is none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _flat_tags(tags: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of each tag occurrence, tag code, sorted distinct tags); a repeat counts once."""
    values = tags.to_numpy(dtype=object, na_value=None)
    try:
        lists = pa.array(values, type=pa.large_list(pa.large_string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        lists = pa.array([_as_list(v) for v in values], type=pa.large_list(pa.large_string()))
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    flat = lists.flatten()
    rows = np.repeat(np.arange(len(values), dtype=np.int64), lengths.astype(np.int64))
    if not len(flat):
        return rows, np.zeros(0, dtype=np.int64), np.asarray([], dtype=object)
    codes, labels = _codes(flat)
    present = np.asarray(pc.is_valid(flat).to_numpy(zero_copy_only=False), dtype=bool)
    rows, codes = rows[present], codes[present]
    key = _distinct(rows * len(labels) + codes)  # one (row, tag) per occurrence kept
    return key // len(labels), key % len(labels), labels


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a stable sort: fast on the nearly sorted keys it gets here)."""
    ordered = np.sort(keys, kind="stable")
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _argsort(keys: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative integer keys: numpy's radix sort on 16-bit digits when
    the keys fit in 32 bits (several times faster than a comparison sort on millions)."""
    if not len(keys) or int(keys.max()) >= 1 << 32 or int(keys.min()) < 0:
        return np.argsort(keys, kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if int(keys.max()) >= 1 << 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def _distinct_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and, per key, the position of its value (sort-based)."""
    order = _argsort(keys)
    ordered = keys[order]
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _text_array(frame: pd.DataFrame, name: str) -> pa.Array:
    """A text column as a pyarrow large_string array (missing values stay null)."""
    try:
        array = pa.array(frame[name], from_pandas=True)
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            return array.cast(pa.large_string())
        if pa.types.is_null(array.type):
            return pa.nulls(len(array), pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    values = [
        None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
        for v in frame[name].astype("object")
    ]
    return pa.array(values, type=pa.large_string())


def _strings(frame: pd.DataFrame, name: str) -> pa.Array:
    """A text column as a pyarrow large_string array, missing values as ""."""
    return pc.fill_null(_text_array(frame, name), "")


def _contact_keys(frame: pd.DataFrame) -> pa.Array:
    """contact_id, or ``opp:<opportunity_id>`` for an opportunity without a contact."""
    contact = _text_array(frame, "contact_id")
    if not contact.null_count:
        return contact
    prefix = pa.scalar("opp:", pa.large_string())
    own = pc.binary_join_element_wise(
        prefix, _strings(frame, "opportunity_id"), pa.scalar("", pa.large_string())
    )
    return pc.if_else(pc.is_null(contact), own, contact)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return pd.array(frame[name], dtype="boolean").fillna(False).to_numpy(dtype=bool)


class ExplorerIndex:
    """Integer view of a snapshot frame for the explorer; built once, read by every redraw.

    Attributes:
        contact: contact code per row (contactless opportunities are contacts of their own).
        contacts: the contact key per code (contact_id, or ``opp:<id>``), sorted.
        tags: the distinct tags, sorted; a tag's code is its position.
        archived, anonymized: booleans per row.
        pair_contact, pair_tag: the distinct (contact, tag) pairs, sorted by tag then contact;
            ``tag_start[t]:tag_start[t + 1]`` are tag t's pairs.
        pair_with: opportunities of the contact carrying the tag, ``[all, without archived]``.
        opportunities: opportunities per contact, ``[all, without archived]``.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.reset_index(drop=True)
        self.frame = frame
        n = len(frame)
        contact_keys = _contact_keys(frame)
        self.contact, self.contacts = _codes(contact_keys, objects=False)
        n_contacts = len(self.contacts)
        self.archived = _column(frame, "archived")
        self.anonymized = _column(frame, "anonymized")
        self.opportunities = [
            np.bincount(self.contact, minlength=n_contacts),
            np.bincount(self.contact[~self.archived], minlength=n_contacts),
        ]
        self.flat_row, self.flat_tag, self.tags = _flat_tags(frame["tags"])
        self.tag_code = {str(t): i for i, t in enumerate(self.tags)}
        n_tags = max(1, len(self.tags))
        # (contact, tag) pairs, ordered by tag then contact; how many opportunities carry it
        keys = self.flat_tag * n_contacts + self.contact[self.flat_row]
        pairs, inverse = _distinct_inverse(keys)
        self.pair_tag = pairs // n_contacts
        self.pair_contact = pairs % n_contacts
        active = ~self.archived[self.flat_row]
        self.pair_with = [
            np.bincount(inverse, minlength=len(pairs)),
            np.bincount(inverse, weights=active, minlength=len(pairs)).astype(np.int64),
        ]
        self.tag_start = np.searchsorted(self.pair_tag, np.arange(n_tags + 1))
        # flat occurrences by tag: tag t is on rows flat_row[occ[t0:t1]]
        self.occ = _argsort(self.flat_tag)
        self.occ_start = np.searchsorted(self.flat_tag[self.occ], np.arange(n_tags + 1))
        # rows by contact: contact c's rows are by_contact[row_start[c]:row_start[c + 1]]
        self.by_contact = _argsort(self.contact)
        self.row_start = np.zeros(n_contacts + 1, dtype=np.int64)
        np.cumsum(self.opportunities[0], out=self.row_start[1:])
        self.first_row = np.full(n_contacts, -1, dtype=np.int64)
        self.first_row[self.contact[::-1]] = np.arange(n - 1, -1, -1)
        # the search text (name, email, contact id): one per contact (its first row's), plus the
        # rows whose text differs from their contact's first row (rare), lower-cased
        parts = [_strings(frame, c) for c in ("name", "email") if c in frame.columns]
        parts.append(contact_keys)
        text = pc.binary_join_element_wise(*parts, pa.scalar("\n", type=pa.large_string()))
        first = pa.array(self.first_row)
        same = np.asarray(
            pc.equal(text, text.take(pa.array(self.first_row[self.contact]))).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        self.contact_text = pc.utf8_lower(text.take(first))
        self.extra_rows = np.flatnonzero(~same)
        self.extra_text = pc.utf8_lower(text.take(pa.array(self.extra_rows)))
        self.first_text_active = np.zeros(n_contacts, dtype=bool)  # that text on a live row
        self.first_text_active[self.contact[same & ~self.archived]] = True
        self.names = _text_array(frame, "name") if "name" in frame.columns else None

    def search(self, needle: str, include_archived: bool) -> np.ndarray:
        """Contacts with an opportunity whose name, email or contact id contains `needle`
        (lower-case); without archived ones, only live opportunities count."""
        hit = np.asarray(
            pc.match_substring(self.contact_text, needle).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        if not include_archived:
            hit &= self.first_text_active
        if len(self.extra_rows):
            found = np.asarray(
                pc.match_substring(self.extra_text, needle).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
            rows = self.extra_rows[found]
            if not include_archived:
                rows = rows[~self.archived[rows]]
            hit[self.contact[rows]] = True
        return hit

    def contact_key(self, contact: int) -> str:
        """The contact's key: its contact_id, or ``opp:<id>`` for one without a contact."""
        return str(self.contacts[contact].as_py())

    def rows_with(self, tag: int) -> np.ndarray:
        """The rows carrying a tag code."""
        return self.flat_row[self.occ[self.occ_start[tag] : self.occ_start[tag + 1]]]

    def rows_of(self, contacts: np.ndarray) -> np.ndarray:
        """Every row of the given contact codes (one gather, no Python loop)."""
        starts = self.row_start[contacts]
        sizes = self.row_start[contacts + 1] - starts
        if not len(sizes) or not sizes.sum():
            return np.zeros(0, dtype=np.int64)
        offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
        return self.by_contact[offsets + np.arange(int(sizes.sum()))]

    def pairs_of(self, tags: Iterable[int]) -> np.ndarray:
        """Pair positions of the given tag codes."""
        parts = [np.arange(self.tag_start[t], self.tag_start[t + 1]) for t in tags]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def label(self, contact: int) -> str:
        """'Name (first 8 of the id)' when names are known, else the contact key."""
        key = self.contact_key(contact)
        row = self.first_row[contact]
        if self.names is not None and row >= 0:
            name = self.names[int(row)].as_py()
            if isinstance(name, str) and name:
                return f"{name} ({key[:8]})"
        return key


@dataclass
class _Selection:
    """What the filters keep: per row, per contact, per pair (numpy masks and counts)."""

    rows: np.ndarray  # bool per row
    contacts: np.ndarray  # bool per contact
    opportunities: np.ndarray  # kept opportunities per contact
    pair_with: np.ndarray  # per pair, opportunities carrying the tag (archived per the filter)
    pair_kept: np.ndarray  # bool per pair: kept contact and the tag on a kept opportunity

    def pair_split(self, opps: np.ndarray, pair_contact: np.ndarray) -> np.ndarray:
        n = opps[pair_contact]
        return self.pair_kept & (n >= 2) & (self.pair_with < n)


def _select(
    ix: ExplorerIndex, search: str, min_opportunities: int, include_archived: bool
) -> _Selection:
    which = 0 if include_archived else 1
    opps = ix.opportunities[which]
    keep = opps >= max(1, int(min_opportunities))
    needle = (search or "").strip().lower()
    if needle:
        keep &= ix.search(needle, include_archived)
    rows = keep[ix.contact]
    if not include_archived:
        rows &= ~ix.archived
    pair_with = ix.pair_with[which]
    pair_kept = keep[ix.pair_contact] & (pair_with > 0)
    return _Selection(rows, keep, np.where(keep, opps, 0), pair_with, pair_kept)


def _policy_rules(policy: Any) -> tuple[set[str], bool]:
    """(never_touch tags, skip_anonymized) of a Policy or a mapping, as `make_plan` reads them."""
    if policy is None:
        return set(), True
    if isinstance(policy, dict):
        return set(policy.get("never_touch", []) or []), bool(policy.get("skip_anonymized", True))
    return set(getattr(policy, "never_touch", ()) or ()), bool(
        getattr(policy, "skip_anonymized", True)
    )


def _visible(tag: str) -> str:
    """A tag as a label: quoted when it has surrounding spaces ("python " is not "python")."""
    return f'"{tag}"' if tag != tag.strip() or not tag else tag


class _Debounced:
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
        self.fn, self.wait, self.live, self.handle = fn, wait, live, None

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


class TagExplorer:
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
        policy: Any = None,
    ) -> None:
        self.frame = frame
        self.policy = policy
        self.max_contacts = max_contacts
        self.max_tags = max_tags
        self.index = ix = ExplorerIndex(frame)
        self.page = 0
        self._sel: _Selection | None = None
        self._preview: tuple[Any, Any] | None = None
        self._every_tag: dict[str, np.ndarray] | None = None
        self._unlisted = 0
        # tags: split contacts over all data, for the checklist's labels and order
        everything = _select(ix, "", 1, True)
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

        self._search_later = _Debounced(self._filters_changed)
        self._tags_later = _Debounced(self._render_checklist)
        self.search.observe(self._search_later, names="value")
        self.tag_filter.observe(self._tags_later, names="value")
        for control in (self.min_opportunities, self.include_archived):
            control.observe(self._filters_changed, names="value")
        self._render_checklist()
        self.refresh()

    def _suggested_tags(self) -> list[str]:
        """The policy's contact-level tags, else the ones the evidence calls contact-level."""
        if self.policy is not None and getattr(self.policy, "contact_level", None):
            return list(self.policy.contact_level)
        needed = ["opportunity_id", "contact_id", "tags"]  # all the evidence reads
        evidence = audit.contact_level_evidence(self.frame[needed].reset_index(drop=True))
        likely = evidence.loc[evidence["suggestion"] == "likely contact-level"]
        likely = likely.sort_values(["split_contacts", "tag"], ascending=[False, True])
        likely = likely.loc[likely["tag"].map(lambda t: tag_problem(t) is None)]  # plannable
        return likely["tag"].head(DEFAULT_TAGS).tolist()

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
            box = widgets.Checkbox(
                value=tag in self._chosen,
                description=f"{_visible(tag)} ({n:,} split)",
                indent=False,
                layout=widgets.Layout(width="auto", min_height="22px"),
            )
            box.add_class("ltt-tag-option")
            box.observe(lambda change, t=tag: self._toggle(t, bool(change["new"])), names="value")
            self._checks[tag] = box
        return box

    def _render_checklist(self) -> None:
        """The chosen tags first, then the most split tags matching the filter."""
        ix = self.index
        needle = self.tag_filter.value.strip().lower()
        order = self._tag_order
        if needle and len(ix.tags):
            lowered = pc.utf8_lower(pa.array(ix.tags, type=pa.large_string()))
            hit = np.asarray(pc.match_substring(lowered, needle).to_numpy(zero_copy_only=False))
            order = order[hit[order]]
        chosen = set(self._chosen)
        others = [str(ix.tags[i]) for i in order[: TAG_CHOICES + len(chosen)]]
        shown = [t for t in self._chosen] + [t for t in others if t not in chosen]
        shown = shown[: max(TAG_CHOICES, len(self._chosen))]
        for tag in shown:
            box = self._check(tag)
            if box.value != (tag in chosen):
                box.value = tag in chosen
        self.tag_list.children = [self._checks[t] for t in shown]
        self._unlisted = len(order) - len([t for t in shown if t not in chosen])
        self._render_note()

    def _render_note(self) -> None:
        rest = max(0, self._unlisted)
        more = f"; {rest:,} more tags not listed: type to filter" if rest else ""
        self.tag_note.value = f"<small>{len(self._chosen)} chosen{more}</small>"

    def selection(self) -> _Selection:
        """The masks of the current filters (cached until a filter changes)."""
        if self._sel is None:
            self._sel = _select(
                self.index,
                self.search.value,
                self.min_opportunities.value,
                self.include_archived.value,
            )
        return self._sel

    def filtered(self) -> pd.DataFrame:
        """The opportunities of the contacts the filters keep."""
        return self.index.frame.loc[self.selection().rows].reset_index(drop=True)

    def _shown_tags(self) -> list[int]:
        """Tag codes of the grid's columns: the chosen tags, else the most split ones now."""
        if self._chosen:
            return [self.index.tag_code[t] for t in self._chosen]
        stats = self._stats_codes(None)
        return [int(t) for t in stats["code"][: self.max_tags]]

    def _stats_codes(self, codes: list[int] | None) -> dict[str, np.ndarray]:
        """Per-tag counts under the filters, for the given tag codes (None: every tag, cached
        until a filter changes)."""
        if codes is None:
            if self._every_tag is None:
                self._every_tag = self._count_tags(None)
            return self._every_tag
        return self._count_tags(codes)

    def _count_tags(self, codes: list[int] | None) -> dict[str, np.ndarray]:
        ix, sel = self.index, self.selection()
        n_tags = len(ix.tags)
        if codes is None:
            pairs = slice(None)
            tag_of = ix.pair_tag
        else:
            pairs = ix.pairs_of(codes)
            tag_of = ix.pair_tag[pairs]
        kept = sel.pair_kept[pairs]
        with_tag = sel.pair_with[pairs]
        opps = sel.opportunities[ix.pair_contact[pairs]]
        multi = kept & (opps >= 2)
        split = multi & (with_tag < opps)

        def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
            w = None if weights is None else weights[mask]
            return np.bincount(tag_of[mask], weights=w, minlength=n_tags)

        out = {
            "opportunities": count(kept, with_tag).astype(np.int64),
            "contacts": count(kept),
            "multi": count(multi),
            "split": count(split),
            "missing": count(split, opps - with_tag).astype(np.int64),
        }
        wanted = np.arange(n_tags) if codes is None else np.asarray(codes, dtype=np.int64)
        order = np.lexsort((wanted, -out["split"][wanted]))
        out = {k: v[wanted[order]] for k, v in out.items()}
        out["code"] = wanted[order]
        if codes is None:  # every tag: only those carried by a kept contact
            present = out["contacts"] > 0
            out = {k: v[present] for k, v in out.items()}
        return out

    def stats_table(self, limit: int | None = None) -> pd.DataFrame:
        """Per-tag statistics of the filtered contacts, for the chosen tags (or all).

        Same columns as `audit.tag_statistics`, most split first.
        """
        counts = self._stats_codes([self.index.tag_code[t] for t in self._chosen] or None)
        if limit is not None:
            counts = {k: v[:limit] for k, v in counts.items()}
        multi = counts["multi"]
        rate = np.divide(
            counts["split"], multi, out=np.zeros(len(multi), dtype=np.float64), where=multi > 0
        )
        return pd.DataFrame(
            {
                "tag": [str(self.index.tags[c]) for c in counts["code"]],
                "opportunities": counts["opportunities"].astype(np.int64),
                "contacts": counts["contacts"].astype(np.int64),
                "multi_opportunity_contacts": multi.astype(np.int64),
                "split_contacts": counts["split"].astype(np.int64),
                "split_rate": rate,
                "missing_assignments": counts["missing"].astype(np.int64),
            },
            columns=STATS_COLUMNS,
        )

    def _grid_contacts(self, codes: list[int]) -> np.ndarray:
        """Contacts carrying a shown tag, most split among the shown tags first, then the most
        opportunities, then contact id."""
        ix, sel = self.index, self.selection()
        pairs = ix.pairs_of(codes)
        kept = pairs[sel.pair_kept[pairs]]
        if not len(kept):
            return np.zeros(0, dtype=np.int64)
        carrying = np.zeros(len(ix.contacts), dtype=bool)
        carrying[ix.pair_contact[kept]] = True
        contacts = np.flatnonzero(carrying)
        opps = sel.opportunities
        split = kept[sel.pair_with[kept] < opps[ix.pair_contact[kept]]]
        split_count = np.bincount(ix.pair_contact[split], minlength=len(ix.contacts))
        key = split_count[contacts] * (int(opps.max()) + 1) + opps[contacts]
        return contacts[np.argsort(-key, kind="stable")]

    def grid_table(self) -> pd.DataFrame:
        """Contact x tag shares on the current grid page (NaN = the contact never has the tag)."""
        ix, sel = self.index, self.selection()
        codes = self._shown_tags()
        ordered = self._grid_contacts(codes)
        self._grid_rows = len(ordered)
        self.page = min(self.page, max(0, -(-len(ordered) // self.max_contacts) - 1))
        start = self.page * self.max_contacts
        page = ordered[start : start + self.max_contacts]
        values = np.full((len(page), len(codes)), np.nan)
        for j, t in enumerate(codes):
            lo, hi = ix.tag_start[t], ix.tag_start[t + 1]
            at = np.searchsorted(ix.pair_contact[lo:hi], page) + lo
            at = np.minimum(at, max(lo, hi - 1))
            found = (hi > lo) & (ix.pair_contact[at] == page) & sel.pair_kept[at]
            share = sel.pair_with[at] / np.maximum(sel.opportunities[page], 1)
            values[:, j] = np.where(found, share, np.nan)
        labels = [ix.label(int(c)) for c in page]
        return pd.DataFrame(
            values,
            index=pd.Index(labels, name="contact", dtype=object),
            columns=pd.Index([str(ix.tags[t]) for t in codes], name="tag", dtype=object),
        )

    def styled_grid(self) -> Any:
        """`grid_table()` styled: percentages, gaps highlighted (a static HTML table)."""
        return style_grid(self.grid_table())

    def preview(self) -> dict[str, Any] | None:
        """What the plan for the current choice would do, counted on the index (None: no tags).

        The same numbers as `plan()` (propagate: every missing assignment of a chosen tag among
        the kept contacts; `never_touch` tags and, by default, anonymized opportunities skipped),
        without building the plan's rows.
        """
        if not self._chosen:
            return None
        key = tuple(self._chosen)  # the cache is dropped whenever a filter changes
        if self._preview is not None and self._preview[0] == key:
            return self._preview[1]
        ix, sel = self.index, self.selection()
        never, skip_anonymized = _policy_rules(self.policy)
        touched = np.zeros(len(ix.contact), dtype=bool)
        per_tag: dict[str, int] = {}
        skipped = 0
        for tag in self._chosen:
            t = ix.tag_code[tag]
            lo, hi = ix.tag_start[t], ix.tag_start[t + 1]
            opps = sel.opportunities[ix.pair_contact[lo:hi]]
            split = sel.pair_kept[lo:hi] & (opps >= 2) & (sel.pair_with[lo:hi] < opps)
            rows = ix.rows_of(ix.pair_contact[lo:hi][split])  # the split contacts' rows
            has = np.zeros(len(ix.contact), dtype=bool)
            has[ix.rows_with(t)] = True
            candidate = rows[sel.rows[rows] & ~has[rows]]
            if tag in never or tag_problem(tag) is not None:  # never written as it is
                skipped += len(candidate)
                continue
            if skip_anonymized:
                anonymous = ix.anonymized[candidate]
                skipped += int(anonymous.sum())
                candidate = candidate[~anonymous]
            if len(candidate):
                per_tag[tag] = len(candidate)
            touched[candidate] = True
        adds = sum(per_tag.values())
        opportunities = int(touched.sum())
        result = {
            "counts": {
                "rows": adds,
                "add": adds,
                "remove": 0,
                "opportunities": opportunities,
                "calls": opportunities,
                "skipped": skipped,
            },
            "by_tag": per_tag,
        }
        self._preview = (key, result)
        return result

    def plan(self) -> Any:
        """The plan (propagate) the current choice would produce, or None without tags.

        Built from the filtered frame by `toolkit.plan.make_plan` (rows and all); the views use
        `preview()`, which counts the same on the index.
        """
        from toolkit.plan import make_plan

        tags = [t for t in self._chosen if tag_problem(t) is None]  # never written as it is
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
        preview = self.preview()
        if preview is None or not preview["by_tag"]:
            return pd.DataFrame({"op": [], "tag": [], "opportunities": []})
        by_tag = sorted(preview["by_tag"].items())
        return pd.DataFrame(
            {
                "op": ["add"] * len(by_tag),
                "tag": [t for t, _ in by_tag],
                "opportunities": np.array([n for _, n in by_tag], dtype=np.int64),
            }
        )

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
            status += " (" + ", ".join(html.escape(t) for t in self._chosen) + ")"
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
        limit = None if self._chosen else STATS_ROWS
        stats = self.stats_table(limit=limit)
        note = ""
        if limit is not None:
            total = len(self._stats_codes(None)["code"])
            if total > limit:
                note = (
                    f"<p><small>the {limit} most split of {total:,} tags; "
                    "choose tags to see theirs</small></p>"
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
                f"additions on <b>{counts['opportunities']:,}</b> opportunities in "
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
        from IPython.display import display

        display(self.widget())


def explore(frame: pd.DataFrame, **options: Any) -> TagExplorer:
    """Build a `TagExplorer` over `frame` (see its arguments)."""
    return TagExplorer(frame, **options)
