"""What every chart shares: the palette, label shortening, figure helpers, and saving figures
as PNG (files and IPython display)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt  # imported so IPython registers its PNG formatter for figures
from IPython import get_ipython
from matplotlib.figure import Figure

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


def _unique_labels(labels: list[str], width: int) -> list[str]:
    """Shortened labels, made distinct again when two long names share their first characters."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for label in labels:
        short = shorten(label, width)
        n = seen.get(short, 0)
        seen[short] = n + 1
        out.append(short if n == 0 else f"{short} ({n + 1})")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png", metadata={"Software": None})
    return path


def png_bytes(fig: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (what notebooks and the HTML report embed)."""
    buf = io.BytesIO()
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


def close(fig: Figure) -> None:
    """Release a figure made here (they are not registered with pyplot, so this is optional)."""
    plt.close(fig)
