"""What every chart shares: the palette, label shortening, figure helpers, and saving figures
as PNG (files and IPython display)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt  # imported so IPython registers its PNG formatter for figures
import numpy as np
from IPython import get_ipython
from matplotlib import font_manager
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from toolkit.sanitize import create_private, private_dir

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


def font_families(candidates: tuple[str, ...] = FONT_FALLBACK) -> list[str]:
    """The installed families of `candidates`, in order (DejaVu Sans ships with matplotlib).

    Example:
        >>> font_families()[0]
        'DejaVu Sans'
    """
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in candidates if name in installed] or ["DejaVu Sans"]


def _font_files(families: list[str]) -> list[str]:
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
    chars = {ch for label in labels for ch in str(label) if ch.isprintable() and not ch.isspace()}
    if not chars:
        return set()
    fonts = [FT2Font(path) for path in _font_files(families or font_families())]
    return {ch for ch in chars if not any(f.get_char_index(ord(ch)) for f in fonts)}


def use_fallback_fonts() -> None:
    """Make every chart text use `font_families()` (called once when this module is imported)."""
    matplotlib.rcParams["font.family"] = font_families()


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


def unique_labels(labels: list[str], width: int) -> list[str]:
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


def new_figure(rows: float, *, width: float = 9.0, min_height: float = 2.6) -> tuple[Figure, Any]:
    height = max(min_height, 0.8 + 0.32 * rows)
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    return fig, ax


def empty_chart(fig: Figure, ax, title: str, message: str) -> Figure:
    ax.set_title(title, loc="left", fontweight="bold")
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.35")
    ax.set_axis_off()
    return fig


def annotate_barh(ax, bars, values) -> list:
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
        >>> import pandas as pd
        >>> from toolkit.notebook.charts import split_contacts_bar
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


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write `fig` as a PNG (creating the folder) and return the path.

    Example:
        >>> import tempfile
        >>> import pandas as pd
        >>> from toolkit.notebook.charts import split_contacts_bar
        >>> fig = split_contacts_bar(pd.DataFrame({"tag": ["x"], "split_contacts": [1]}))
        >>> save_figure(fig, Path(tempfile.mkdtemp()) / "x.png").suffix
        '.png'
    """
    path = Path(path)
    private_dir(path.parent)  # charts carry tags and names: 0600 in 0700 folders
    create_private(path)  # savefig truncates it in place: the mode stays
    with _glyph_warnings_reported():
        fig.savefig(path, dpi=dpi, format="png", metadata={"Software": None})
    return path


@contextmanager
def _glyph_warnings_reported() -> Iterator[None]:
    """Matplotlib's "Glyph N missing from font(s)" warnings are replaced by the report's notice
    (`toolkit.notebook.present.glyph_notice`, built on `missing_glyphs`): one sentence saying which
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
        >>> import pandas as pd
        >>> from toolkit.notebook.charts import split_contacts_bar
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
    series = [(c.get_label(), list(np.asarray(c.datavalues))) for c in bars]
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
    buf = io.BytesIO()
    with _glyph_warnings_reported():
        fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None})
    return buf.getvalue()


def _register_ipython_png() -> None:
    """Inside IPython, show every `Figure` as a PNG whatever the backend state.

    The figures here are made without pyplot, and the inline backend only registers its PNG
    formatter once a pyplot figure exists; without this, a kernel shows `<Figure size ...>`.
    """
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters.get("image/png")
    if formatter is not None:
        formatter.for_type(Figure, png_bytes)


_register_ipython_png()
use_fallback_fonts()


def close(fig: Figure) -> None:
    """Release a figure made here (they are not registered with pyplot, so this is optional)."""
    plt.close(fig)
