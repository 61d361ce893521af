"""What the explorer shows, computed on its index: the selection, the statistics, the coverage
grid and the plan preview, as DataFrames (a mixin of `TagExplorer`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from toolkit.notebook.charts.base import OKABE_ITO
from toolkit.notebook.explorer.index import (
    STATS_COLUMNS,
    ExplorerIndex,
    Selection,
    apply_filters,
    policy_rules,
)
from toolkit.policy import Policy
from toolkit.remediate.planner import make_plan
from toolkit.sanitize import tag_problem

GAP_STYLE = f"background-color: {OKABE_ITO['orange']}; color: black; font-weight: bold"


FULL_STYLE = "background-color: #cfe6f6; color: black"


def style_grid(grid: pd.DataFrame) -> Any:
    """A pandas Styler: shares as percentages, gaps (strictly between 0 and 1) highlighted.

    Contact labels and tags (both from Lever) are HTML-escaped.
    """

    def colour(value: Any) -> str:  # a float share or NaN
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


class Views:
    """The explorer's views; `TagExplorer` provides the index, the widgets and the options."""

    max_chosen_columns = 12  # grid columns at most when tags are chosen (the rest: statistics)

    # set by TagExplorer.__init__ (the filters are ipywidgets, which ship no types)
    index: ExplorerIndex
    policy: Policy | None
    search: Any
    min_opportunities: Any
    include_archived: Any
    max_contacts: int
    max_tags: int
    page: int
    _chosen: list[str]
    _sel: Selection | None
    _preview: tuple[Any, Any] | None
    _every_tag: dict[str, np.ndarray] | None

    def selection(self) -> Selection:
        """The masks of the current filters (cached until a filter changes)."""
        if self._sel is None:
            self._sel = apply_filters(
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
        """Tag codes of the grid's columns: the chosen tags (the first `max_chosen_columns`:
        a policy can choose hundreds), else the most split ones now."""
        if self._chosen:
            return [self.index.tag_code[t] for t in self._chosen[: self.max_chosen_columns]]
        stats = self._stats_codes(None)
        return [int(t) for t in stats["code"][: self.max_tags]]

    def _stats_codes(self, codes: list[int] | None) -> dict[str, np.ndarray]:
        """Per-tag counts under the filters, most split first, for the given tag codes (None:
        every tag carried by a kept contact). A subset of `_tag_counts`: no recount."""
        per = self._tag_counts()
        every = codes is None
        wanted = np.arange(len(self.index.tags)) if every else np.asarray(codes, dtype=np.int64)
        if every:
            wanted = wanted[per["contacts"] > 0]
        order = np.lexsort((wanted, -per["split"][wanted]))
        out = {k: v[wanted[order]] for k, v in per.items()}
        out["code"] = wanted[order]
        return out

    def _tag_counts(self) -> dict[str, np.ndarray]:
        """Per tag code, every tag at once, under the filters (cached until a filter changes):
        the statistics' counts and what a plan would add (``missing``, of which ``anonymized``)."""
        if self._every_tag is not None:
            return self._every_tag
        ix, sel = self.index, self.selection()
        n_tags = len(ix.tags)
        kept = np.flatnonzero(sel.pair_kept)  # the kept pairs, then arrays over them only
        tag = ix.pair_tag[kept]
        with_tag = sel.pair_with[kept]
        opps = sel.opportunities[ix.pair_contact[kept]]
        multi = opps >= 2
        split = multi & (with_tag < opps)
        # one pass for three counts: 0 kept, 1 multi-opportunity, 2 split
        kinds = np.bincount(tag * 3 + multi + split, minlength=3 * n_tags).reshape(n_tags, 3)
        split_at = np.flatnonzero(split)
        split_tag = tag[split_at]
        self._split_pairs = kept[split_at]
        which = 0 if self.include_archived.value else 1
        anonymized = np.zeros(n_tags, dtype=np.int64)
        if ix.anonymized.any():
            pairs = self._split_pairs
            lacking = ix.anonymized_opportunities[which][ix.pair_contact[pairs]]
            lacking -= ix.pair_anonymized[which][pairs]
            anonymized = np.bincount(split_tag, weights=lacking, minlength=n_tags)
        missing = (opps - with_tag)[split_at]
        self._every_tag = {
            "opportunities": np.bincount(tag, weights=with_tag, minlength=n_tags),
            "contacts": kinds.sum(axis=1),
            "multi": kinds[:, 1] + kinds[:, 2],
            "split": kinds[:, 2],
            "missing": np.bincount(split_tag, weights=missing, minlength=n_tags),
            "anonymized": anonymized,
        }
        self._every_tag = {k: v.astype(np.int64) for k, v in self._every_tag.items()}
        return self._every_tag

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
        without building the plan's rows. A chosen tag the policy gives aliases counts as its
        family (`toolkit.audit.families`): every kept opportunity of a contact carrying any
        member gets the tag where it lacks it, and with ``normalize`` the aliases are removed.

        How it stays fast with hundreds of chosen tags: a plain tag's additions are a sum over
        its split pairs, counted for every tag at once when a filter changes (`_tag_counts`), so
        a choice only adds up its tags' numbers; the opportunities touched (a union over the
        tags) are one pass over the rows: an opportunity gets a call when it carries fewer of
        its contact's split chosen tags than the contact has.
        """
        if not self._chosen:
            return None
        key = tuple(self._chosen)  # the cache is dropped whenever a filter changes
        if self._preview is not None and self._preview[0] == key:
            return self._preview[1]
        ix = self.index
        never, skip_anonymized = policy_rules(self.policy)
        family_of = getattr(self.policy, "family", None)
        per = self._tag_counts()
        counts: dict[tuple[str, str], int] = {}
        skipped = 0
        plain = np.zeros(len(ix.tags), dtype=bool)  # planned tag by tag from the split pairs
        families = []
        for tag in self._chosen:
            family = family_of(tag) if family_of is not None else None
            aliases = [a for a in family.aliases if a in ix.tag_code] if family else []
            if aliases:
                families.append((tag, aliases, bool(family and family.normalize)))
                continue
            code = ix.tag_code[tag]
            missing, anonymized = int(per["missing"][code]), int(per["anonymized"][code])
            if tag in never or tag_problem(tag) is not None:  # never written as it is
                skipped += missing
                continue
            if skip_anonymized:
                skipped += anonymized
                missing -= anonymized
            if missing:
                counts[("add", tag)] = missing
            plain[code] = True
        touched = {"add": self._rows_lacking(plain, skip_anonymized)}
        touched["remove"] = np.zeros(len(ix.contact), dtype=bool)
        for tag, aliases, normalize in families:
            changes = [("add", tag, self._missing_rows(tag, aliases))]
            if normalize:
                changes += [("remove", a, self._kept_rows(a)) for a in aliases]
            for op, what, candidate in changes:
                if tag in never or tag_problem(what) is not None:  # never written as it is
                    skipped += len(candidate)
                    continue
                if skip_anonymized:
                    anonymous = ix.anonymized[candidate]
                    skipped += int(anonymous.sum())
                    candidate = candidate[~anonymous]
                if len(candidate):
                    counts[(op, what)] = len(candidate)
                touched[op][candidate] = True
        adds = sum(n for (op, _), n in counts.items() if op == "add")
        removes = sum(counts.values()) - adds
        calls = int(np.count_nonzero(touched["add"])) + int(np.count_nonzero(touched["remove"]))
        result = {
            "counts": {
                "rows": adds + removes,
                "add": adds,
                "remove": removes,
                "opportunities": int(np.count_nonzero(touched["add"] | touched["remove"])),
                "calls": calls,
                "skipped": skipped,
            },
            "by_tag": {t: n for (op, t), n in counts.items() if op == "add"},
            "by_op_tag": sorted((op, t, n) for (op, t), n in counts.items()),
        }
        self._preview = (key, result)
        return result

    def _rows_lacking(self, chosen: np.ndarray, skip_anonymized: bool) -> np.ndarray:
        """Per row: kept, and lacking one of the chosen tags (a bool per tag code) that its
        contact carries split, i.e. given an addition (anonymized rows left out when skipped)."""
        ix, sel = self.index, self.selection()
        self._tag_counts()  # the split pairs of the current filters
        split = self._split_pairs
        pairs = split[chosen[ix.pair_tag[split]]]
        n_rows = len(ix.contact)
        if not len(pairs):
            return np.zeros(n_rows, dtype=bool)
        tags_of_contact = np.bincount(ix.pair_contact[pairs], minlength=len(ix.contacts))
        marked = np.zeros(len(ix.pair_tag), dtype=bool)
        marked[pairs] = True
        carried = np.bincount(ix.flat_row[marked[ix.flat_pair]], minlength=n_rows)
        lacking = sel.rows & (carried < tags_of_contact[ix.contact])
        if skip_anonymized:
            lacking &= ~ix.anonymized
        return lacking

    def _kept_rows(self, tag: str) -> np.ndarray:
        """The kept rows carrying `tag`."""
        rows = self.index.rows_with(self.index.tag_code[tag])
        return rows[self.selection().rows[rows]]

    def _missing_rows(self, tag: str, aliases: list[str]) -> np.ndarray:
        """Kept rows of the contacts carrying the tag (or an alias) that lack the tag: without
        aliases, the missing assignments of the split contacts."""
        ix, sel = self.index, self.selection()
        carriers = []
        for member in [tag, *aliases]:
            if member not in ix.tag_code:
                continue
            t = ix.tag_code[member]
            lo, hi = ix.tag_start[t], ix.tag_start[t + 1]
            kept = sel.pair_kept[lo:hi]
            if not aliases:  # a plain tag: only split contacts lack it somewhere
                opps = sel.opportunities[ix.pair_contact[lo:hi]]
                kept = kept & (opps >= 2) & (sel.pair_with[lo:hi] < opps)
            carriers.append(ix.pair_contact[lo:hi][kept])
        if not carriers:
            return np.zeros(0, dtype=np.int64)
        rows = ix.rows_of(np.unique(np.concatenate(carriers)))
        has = np.zeros(len(ix.contact), dtype=bool)
        if tag in ix.tag_code:
            has[ix.rows_with(ix.tag_code[tag])] = True
        return rows[sel.rows[rows] & ~has[rows]]

    def plan(self) -> Any:
        """The plan (propagate) the current choice would produce, or None without tags.

        Built from the filtered frame by `make_plan` (rows and all); the views use
        `preview()`, which counts the same on the index.
        """
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
        if preview is not None and preview.get("by_op_tag"):
            ops, tags, counts = zip(*preview["by_op_tag"], strict=True)
            return pd.DataFrame(
                {"op": list(ops), "tag": list(tags), "opportunities": np.array(counts, np.int64)}
            )
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
