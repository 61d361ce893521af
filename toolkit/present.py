"""What a person sees in a report: headlines, tables formatted for people, visible tags, notes.

The notebooks `02-audit-report` and `03-remediate` call these to display results; the audit and
remediation modules compute, this module words and formats. Everything that comes from Lever (tag
strings, names) is HTML-escaped where it meets HTML (`html.escape`, `Styler.format(escape="html")`).

- `headline_*` lead a report: one or two sentences and a small table of the key numbers. With a
  policy they count the policy's contact-level tags (what the heatmap shows), and keep the
  all-tags numbers beside them, labelled.
- `table` formats a DataFrame for people: no index, thousands separators, rates as percentages,
  column names in words, and "none" (with why) instead of a bare header when it is empty.
- `visible_tag` shows whitespace and invisible characters (`␣python`), so `python` and ` python`
  never look like two identical rows.
"""

from __future__ import annotations

import html
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from toolkit.audit import AuditResult

__all__ = [
    "EVIDENCE_SHOWN",
    "Block",
    "Note",
    "apply_table",
    "audit_meta",
    "before_after_chart",
    "before_after_table",
    "drift_table",
    "evidence_table",
    "focus_label",
    "focus_statistics",
    "focus_summary",
    "glyph_notice",
    "headline_audit",
    "headline_remediation",
    "how_it_differs",
    "journal_table",
    "key_numbers_audit",
    "key_value_table",
    "plan_chart",
    "plan_table",
    "run_details",
    "run_lines",
    "skipped_table",
    "split_contacts_chart",
    "split_pairs_table",
    "table",
    "tag_statistics_table",
    "variants_table",
    "verify_table",
    "visible_tag",
]

# Column names ending like this are shares (0..1) and print as percentages.
PERCENT_SUFFIXES = ("_rate", "_share", "coverage", "share")
NONE = "none"

# ------------------------------------------------------------------------------------------------
# notes
# ------------------------------------------------------------------------------------------------


class Note:
    """A short paragraph in a report (`kind`: "info", "warning", "none"), as HTML and as text.

    Example:
        >>> Note("nothing to do", "info")
        nothing to do
        >>> "&lt;b&gt;</p>" in Note("<b>", "warning")._repr_html_()
        True
    """

    _STYLE: ClassVar[dict[str, str]] = {
        "info": "padding:6px 10px;border-left:4px solid #0072B2;background:#eef5fb;",
        "warning": "padding:6px 10px;border-left:4px solid #D55E00;background:#fdf0e8;",
        "none": "color:#555;font-style:italic;",
    }

    def __init__(self, text: str, kind: str = "info", *, html_text: str | None = None) -> None:
        self.text = text
        self.kind = kind if kind in self._STYLE else "info"
        self._html = html_text  # already escaped markup (only built here from escaped parts)

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        body = self._html if self._html is not None else html.escape(self.text)
        attrs = f'class="lever-note lever-note-{self.kind}" style="{self._STYLE[self.kind]}"'
        if self.kind == "none":
            return f"<p {attrs}><em>{body}</em></p>"
        # a blockquote: the report's own CSS draws it set apart even where inline styles are
        # stripped (a sanitized export keeps elements, not every style)
        return f'<blockquote {attrs} role="note"><p>{body}</p></blockquote>'


class Block:
    """Several display objects shown as one output (a headline: sentences, then a table).

    Parts may be `Note`s, pandas `Styler`s, DataFrames, or None (skipped).
    """

    def __init__(self, *parts: Any) -> None:
        self.parts = [p for p in parts if p is not None]

    def __repr__(self) -> str:
        return "\n\n".join(
            p.data.to_string(index=False) if hasattr(p, "data") else repr(p) for p in self.parts
        )

    def _repr_html_(self) -> str:
        html_parts = []
        for part in self.parts:
            if hasattr(part, "to_html"):
                html_parts.append(part.to_html())
            elif hasattr(part, "_repr_html_"):
                html_parts.append(part._repr_html_())
            else:
                html_parts.append(f"<p>{html.escape(str(part))}</p>")
        return '<div class="lever-block">' + "\n".join(html_parts) + "</div>"


# ------------------------------------------------------------------------------------------------
# tags made visible
# ------------------------------------------------------------------------------------------------

_MARKS = {" ": "␣", "\t": "⇥", "\n": "⏎", "\r": "⏎", "\u00a0": "⍽"}


def _invisible(ch: str) -> bool:
    return ch != " " and unicodedata.category(ch) in ("Cf", "Cc", "Zs", "Zl", "Zp")


def visible_tag(tag: object) -> str:
    """The tag with whitespace differences and invisible characters made visible.

    Leading and trailing spaces, runs of two or more spaces, tabs, no-break spaces and
    zero-width or control characters become visible marks (`␣`, `⇥`, `⍽`, `⟨U+200B⟩`); an
    ordinary single space between words stays a space. A tag with nothing to show is unchanged.

    Example:
        >>> visible_tag(" python"), visible_tag("Do not  contact"), visible_tag("Go")
        ('␣python', 'Do not␣␣contact', 'Go')
        >>> visible_tag("data\\u200bscience")
        'data⟨U+200B⟩science'
    """
    text = str(tag)
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch == " ":
            lead = text[:i].strip() == ""
            trail = text[i + 1 :].strip() == ""
            double = (i > 0 and text[i - 1] == " ") or (i + 1 < n and text[i + 1] == " ")
            out.append("␣" if lead or trail or double else " ")
        elif ch in _MARKS:
            out.append(_MARKS[ch])
        elif _invisible(ch):
            out.append(f"⟨U+{ord(ch):04X}⟩")
        else:
            out.append(ch)
    return "".join(out)


_MARK_STYLE = "background:#fde2c8;color:#a3410a;font-weight:bold;border-radius:2px"


def _visible_html(escaped: str) -> str:
    """`visible_tag` of already-escaped text, the marks highlighted (for Styler formatters)."""
    shown = visible_tag(escaped)
    if shown == escaped:
        return escaped
    parts = []
    for ch in shown:
        if ch in "␣⇥⏎⍽":
            parts.append(f'<span class="ws" style="{_MARK_STYLE}">{ch}</span>')
        else:
            parts.append(ch)
    html_text = "".join(parts).replace("⟨", f'<span class="ws" style="{_MARK_STYLE}">⟨')
    # monospace: every character as wide as the next, so a marked space reads as a space
    return '<code style="white-space:nowrap">' + html_text.replace("⟩", "⟩</span>") + "</code>"


def how_it_differs(tag: str, canonical: str) -> str:
    """In words, how a variant differs from its canonical spelling.

    Example:
        >>> how_it_differs(" python", "Python")
        'leading space, case'
        >>> how_it_differs("Do not  contact", "Do not contact")
        'double space'
        >>> how_it_differs("Python", "Python")
        'canonical'
    """
    if tag == canonical:
        return "canonical"
    found: list[str] = []
    if tag != tag.lstrip():
        found.append("leading space")
    if tag != tag.rstrip():
        found.append("trailing space")
    core = tag.strip()
    if "  " in core:
        found.append("double space")
    if any(_invisible(ch) or ch in _MARKS for ch in core if ch != " "):
        found.append("invisible character")
    squeezed = " ".join(core.split())
    if squeezed != canonical and squeezed.casefold() == canonical.casefold():
        found.append("case")
    elif squeezed.casefold() != canonical.casefold():
        found.append("spelling or punctuation")
    return ", ".join(found) or "unicode form"


def variants_table(variants: pd.DataFrame) -> Any:
    """Near-duplicate variants for people: each tag shown with visible whitespace, and how it
    differs from the canonical spelling; "none" when there are none.

    Example:
        >>> v = pd.DataFrame({"group": ["python"] * 2, "tag": ["Python", " python"],
        ...                   "opportunities": [40, 1], "canonical": ["Python"] * 2,
        ...                   "is_canonical": [True, False]})
        >>> variants_table(v).data[["tag", "differs by"]].values.tolist()
        [['Python', 'canonical'], [' python', 'leading space, case']]
    """
    if variants.empty:
        return Note("none: no tag has a near-duplicate spelling", "none")
    shown = variants.loc[:, ["tag", "opportunities", "canonical"]].copy()
    shown.insert(
        1,
        "differs by",
        [
            how_it_differs(str(t), str(c))
            for t, c in zip(variants["tag"], variants["canonical"], strict=True)
        ],
    )
    return table(shown, visible=("tag", "canonical"))


# ------------------------------------------------------------------------------------------------
# tables for people
# ------------------------------------------------------------------------------------------------


def _is_percent(column: str) -> bool:
    return column.endswith(PERCENT_SUFFIXES)


def _words(column: object) -> str:
    return str(column).replace("_", " ")


def table(
    frame: pd.DataFrame,
    *,
    empty: str = NONE,
    percent: Sequence[str] | None = None,
    visible: Sequence[str] = ("tag",),
    columns: Sequence[str] | None = None,
    head: int | None = None,
    wrap: bool = False,
) -> Styler | Note:
    """A DataFrame formatted for people; a "none" note when it has no rows.

    No index; integers with thousands separators; share columns (named `*_rate`, `*coverage`,
    `*share`, or listed in `percent`) as percentages; booleans as yes/no; other floats with two
    decimals; column names with spaces instead of underscores; every cell HTML-escaped, tags
    (the `visible` columns) with their whitespace made visible. `wrap` lets long headers and
    cells wrap so a wide table fits the page.

    Args:
        frame: the table.
        empty: what an empty table says ("none", or "none: <why>").
        percent: columns holding shares 0..1 (default: by name).
        visible: tag columns whose whitespace is shown (`visible_tag`).
        columns: the columns to show, in order (default all).
        head: show only the first rows.
        wrap: wrap headers and cells (for wide tables).

    Example:
        >>> t = table(pd.DataFrame({"tag": ["Go"], "contacts": [1234], "split_rate": [0.653061]}))
        >>> t.data.columns.tolist(), "1,234" in t.to_html(), "65.3%" in t.to_html()
        (['tag', 'contacts', 'split rate'], True, True)
        >>> table(pd.DataFrame({"a": []}), empty="none: nothing changed")
        none: nothing changed
    """
    if frame is None or len(frame) == 0:
        return Note(empty, "none")
    data = frame.loc[:, list(columns)] if columns is not None else frame
    if head is not None:
        data = data.head(head)
    data = data.reset_index(drop=True)
    pct = set(percent) if percent is not None else {c for c in data.columns if _is_percent(str(c))}
    formats: dict[str, Any] = {}
    for column in data.columns:
        series = data[column]
        if column in visible:
            formats[column] = _visible_html
        elif column in pct:
            formats[column] = "{:.1%}"
        elif pd.api.types.is_bool_dtype(series):
            formats[column] = lambda v: "yes" if v else "no"
        elif pd.api.types.is_integer_dtype(series):
            formats[column] = "{:,}"
        elif pd.api.types.is_float_dtype(series):
            formats[column] = "{:,.2f}"
        elif series.dtype == object:
            formats[column] = _cell_text
    data = data.rename(columns=_words)
    formats = {_words(k): v for k, v in formats.items()}
    styler = data.style.format(formats, escape="html", na_rep="")
    styler = styler.format_index(escape="html", axis=1).hide(axis="index")
    styles = [
        {"selector": "th", "props": "text-align:left;" + ("white-space:normal;" if wrap else "")},
        {"selector": "td", "props": "text-align:left;" + ("white-space:normal;" if wrap else "")},
    ]
    if wrap:
        styles.append(
            {"selector": "", "props": "table-layout:auto;max-width:100%;font-size:0.9em;"}
        )
    for j, column in enumerate(frame.loc[:, list(data.columns.map(_unwords(frame)))].columns):
        series = frame[column]
        if column not in visible and (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        ):  # numbers right-aligned (a column class beats the table's `td` rule)
            styles.append({"selector": f"td.col{j}, th.col{j}", "props": "text-align:right;"})
    return styler.set_table_styles(styles, overwrite=False)


def _unwords(frame: pd.DataFrame) -> Any:
    back = {_words(c): c for c in frame.columns}
    return lambda shown: back[shown]


def _cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


def key_value_table(rows: Iterable[tuple[str, Any]], *, header: Sequence[str]) -> Styler:
    """A small two-or-more column table of labelled values (numbers get separators)."""
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(header)).astype("object")

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, int):
            return f"{v:,}"
        if isinstance(v, float):
            return f"{v:,.2f}"
        return "" if v is None else str(v)

    styler = frame.style.format(fmt, escape="html").hide(axis="index")
    return styler.set_table_styles([{"selector": "th, td", "props": "text-align:left;"}])


# ------------------------------------------------------------------------------------------------
# policy-aware numbers
# ------------------------------------------------------------------------------------------------


def _contact_level(policy: Any) -> list[str]:
    return list(getattr(policy, "contact_level", None) or [])


def focus_summary(result: AuditResult, policy: Any = None) -> dict[str, int]:
    """The audit's split numbers counted over the policy's contact-level tags (as the heatmap).

    Without a policy (or one naming no contact-level tag) this is the all-tags summary.

    Example:
        >>> from types import SimpleNamespace
        >>> from toolkit.audit import run_audit
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python", "Berlin"], []]})
        >>> focus_summary(run_audit(f), SimpleNamespace(contact_level=["Python"]))["split_pairs"]
        1
    """
    tags = _contact_level(policy)
    summary = {k: int(v) for k, v in result.summary.items()}
    if not tags:
        return summary
    wanted = set(tags)
    pairs = result.split_pairs.loc[result.split_pairs["tag"].isin(wanted)]
    missing = result.missing_assignments.loc[result.missing_assignments["tag"].isin(wanted)]
    return dict(
        summary,
        split_contacts=int(pairs["contact_id"].nunique()),
        split_pairs=len(pairs),
        missing_assignments=len(missing),
    )


def focus_statistics(stats: pd.DataFrame, policy: Any = None) -> pd.DataFrame:
    """Per-tag statistics of the policy's contact-level tags (all tags without a policy)."""
    tags = _contact_level(policy)
    if not tags:
        return stats
    return stats.loc[stats["tag"].isin(set(tags))].reset_index(drop=True)


def audit_meta(meta: Mapping[str, Any], result: AuditResult, policy: Any = None) -> dict:
    """The snapshot's metadata plus the policy summary `summary.json` carries (as the CLI's)."""
    out = dict(meta or {})
    tags = _contact_level(policy)
    if tags:
        focus = focus_summary(result, policy)
        out["policy"] = str(getattr(policy, "source", "") or "")
        out["policy_summary"] = {
            "contact_level_tags": len(set(tags)),
            "contact_level_split_pairs": focus["split_pairs"],
            "contact_level_split_contacts": focus["split_contacts"],
            "contact_level_missing_assignments": focus["missing_assignments"],
        }
    return out


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


def _people(n: int) -> str:
    return f"{n:,} {'person' if n == 1 else 'people'}"


def key_numbers_audit(result: AuditResult, policy: Any = None) -> pd.DataFrame:
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
    if _contact_level(policy):
        focus = focus_summary(result, policy)
        columns["contact-level tags (policy)"] = [focus[k] for k, _ in labels]
    columns["all tags"] = [s[k] for k, _ in labels]
    return pd.DataFrame(columns)


def headline_audit(result: AuditResult, policy: Any = None, snap: Any = None) -> Block:
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
        f"{_people(n)} of {multi:,} with two or more opportunities ({_pct(n, multi)}) {verb} a "
        "split tag: a tag on some of their opportunities but not all"
    )
    tags = _contact_level(policy)
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


# ------------------------------------------------------------------------------------------------
# audit report sections
# ------------------------------------------------------------------------------------------------


def focus_label(policy: Any = None) -> str:
    """What the charts count: "Contact-level tags" with a policy naming some, else "Tags"."""
    return "Contact-level tags" if _contact_level(policy) else "Tags"


def split_contacts_chart(
    result: AuditResult, policy: Any = None, top: int = 20, output_dir: str | os.PathLike = ""
) -> Any:
    """The "most split" chart, counting what the headline and the heatmap count."""
    from toolkit.charts import split_contacts_bar
    from toolkit.reports import keep_figure

    stats = focus_statistics(result.tag_statistics, policy)
    fig = split_contacts_bar(stats, top=top, what=focus_label(policy))
    return keep_figure(fig, "split-contacts", output_dir)


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
    from toolkit.reports import artifacts_table, parameters_table, snapshot_overview

    parts: list[Any] = [table(parameters_table(params), visible=())]
    if snap is not None:
        parts.append(table(snapshot_overview(snap), visible=()))
    if artifacts:
        parts.append(table(artifacts_table(artifacts), visible=()))
    return Block(*parts)


# ------------------------------------------------------------------------------------------------
# remediation
# ------------------------------------------------------------------------------------------------


def run_lines(result: Any) -> Note:
    """The apply's summary lines, whole (a table cell cut them at 50 characters)."""
    lines = [str(line) for line in result.summary_lines()]
    body = "<br>".join(html.escape(line) for line in lines)
    return Note("\n".join(lines), "info", html_text=body)


def headline_remediation(
    plan: Any, result: Any, before: Mapping[str, Any], after: Mapping[str, Any]
) -> Block:
    """The headline of a remediation report: what the plan does, what was written, and the
    split pairs of the plan's tags before and after; "nothing to do" (and why) for an empty plan.

    Example:
        >>> from types import SimpleNamespace
        >>> empty = SimpleNamespace(counts=lambda: {"rows": 0}, meta={"note": "no tags chosen"})
        >>> headline_remediation(empty, None, {}, {}).parts[0].text.split(":")[0]
        'Nothing to do'
    """
    counts = plan.counts()
    meta = getattr(plan, "meta", {}) or {}
    if not counts["rows"]:
        why = meta.get("note") or "every chosen tag is already whole"
        text = f"Nothing to do: the plan has no change ({why}); nothing was written."
        if why == "no tags chosen":
            text += " Set the tags or policy_path parameter to plan changes."
        return Block(Note(text, "info"))
    contacts = int(plan.rows["contact_id"].nunique())
    tags = int(plan.rows["tag"].nunique())
    what = (
        f"The plan has {counts['rows']:,} changes ({counts['add']:,} additions, "
        f"{counts['remove']:,} removals) of {tags:,} {'tag' if tags == 1 else 'tags'} on "
        f"{counts['opportunities']:,} opportunities of {_people(contacts)}, in "
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


def plan_table(plan: Any) -> Any:
    """Changes per tag (additions and removals), or "none"."""
    return table(plan.changes_by_tag(), empty="none: the plan has no change")


def plan_chart(plan: Any, output_dir: str | os.PathLike = "") -> Any:
    """The plan's chart, or "nothing to do" (never a chart of zeros) for an empty plan."""
    from toolkit.charts import plan_counts_bar
    from toolkit.reports import keep_figure

    if plan.rows.empty:
        return Note("Nothing to do: the plan has no change, so there is no chart.", "none")
    return keep_figure(plan_counts_bar(plan), "plan", output_dir)


def before_after_chart(
    plan: Any,
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
    from toolkit.charts import before_after_bar
    from toolkit.reports import keep_figure

    if plan.rows.empty:  # one note for both charts (summaries first, then per tag: nothing)
        if isinstance(before, pd.DataFrame):
            return None
        return Note("Nothing to do: before and after are the same.", "none")
    return keep_figure(before_after_bar(before, after, title=title), name, output_dir)


def skipped_table(plan: Any) -> Any:
    """Rows the plan will not write, with why; "none" when it writes every row."""
    return table(plan.skipped, empty="none: the plan skips no row")


def drift_table(drift: pd.DataFrame) -> Any:
    """The plan's opportunities that changed since the snapshot; "none" when none did."""
    from toolkit.reports import drift_table as changed

    return table(
        changed(drift), empty="none: no opportunity of the plan changed since the snapshot"
    )


def apply_table(result: Any) -> Any:
    """The apply's counts (the summary lines are in the headline, whole)."""
    from toolkit.reports import apply_overview

    counts = apply_overview(result)
    counts = counts.loc[counts["item"] != "summary"].reset_index(drop=True)
    counts["item"] = counts["item"].map(_words)
    return Block(
        run_lines(result), key_value_table(counts.itertuples(index=False), header=["", "value"])
    )


def verify_table(residual: pd.DataFrame, result: Any) -> Any:
    """Plan rows that do not hold after a real apply; "none" (with why) when empty."""
    if result.dry_run:
        return Note("none: a dry run writes nothing, so there is nothing to verify", "none")
    return table(residual, empty="none: every plan row holds in Lever")


def before_after_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> Any:
    """The two summaries side by side, with the change."""
    from toolkit.reports import before_after_table as side_by_side

    frame = side_by_side(before, after)
    return table(frame.assign(metric=frame["metric"].map(_words)), visible=())


def journal_table(result: Any) -> Any:
    """The run journal's summary; a dry run has none."""
    from toolkit.reports import journal_overview

    return table(journal_overview(result), visible=())


# ------------------------------------------------------------------------------------------------
# fonts
# ------------------------------------------------------------------------------------------------


def glyph_notice(*texts: Iterable[Any]) -> Note | None:
    """A warning when some characters of these labels have no glyph in any installed font.

    Charts draw tags with a font fallback list (`toolkit.charts.FONT_FALLBACK`); a character
    none of them covers would be an empty box, so the report says which, and how to fix it.
    Returns None (displays nothing) when every character can be drawn.
    """
    from toolkit.charts import missing_glyphs

    labels = [str(t) for group in texts for t in group]
    missing = missing_glyphs(labels)
    if not missing:
        return None
    chars = "".join(sorted(missing))
    shown = chars if len(chars) <= 40 else chars[:39] + "…"
    affected = [t for t in labels if set(t) & missing]
    example = ", ".join(visible_tag(t) for t in affected[:3])
    return Note(
        f"Warning: {len(missing)} character(s) in {len(affected)} tag(s) or label(s) have no "
        f"glyph in the installed fonts and show as empty boxes in the charts: {shown} "
        f"(e.g. {example}). The tables show them correctly. Install a font that covers them "
        "(e.g. `apt-get install fonts-noto-cjk` for Chinese, Japanese and Korean) and rerun.",
        "warning",
    )
