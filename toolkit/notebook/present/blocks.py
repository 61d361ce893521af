"""The building blocks of a report for people: notes, visible tags, tables formatted for
people, and the notice about glyphs no installed font draws (see `toolkit.notebook.present`)."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from toolkit.notebook import charts

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler
    from pandas.io.formats.style_render import CSSDict


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


def column_words(column: object) -> str:
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
    data = data.rename(columns=column_words)
    formats = {column_words(k): v for k, v in formats.items()}
    styler = data.style.format(formats, escape="html", na_rep="")
    styler = styler.format_index(escape="html", axis=1).hide(axis="index")
    styles: list[CSSDict] = [
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
    back = {column_words(c): c for c in frame.columns}
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


def key_value_table(rows: Iterable[tuple[Any, ...]], *, header: Sequence[str]) -> Styler:
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


# ------------------------------------------------------------------------------------------------
# audit report sections
# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# remediation
# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# fonts
# ------------------------------------------------------------------------------------------------


def glyph_notice(*texts: Iterable[Any]) -> Note | None:
    """A warning when some characters of these labels have no glyph in any installed font.

    Charts draw tags with a font fallback list (`charts.FONT_FALLBACK`); a character
    none of them covers would be an empty box, so the report says which, and how to fix it.
    Returns None (displays nothing) when every character can be drawn.
    """
    labels = [str(t) for group in texts for t in group]
    missing = charts.missing_glyphs(labels)
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
