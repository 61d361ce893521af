"""Matplotlib figures for the reports: sorted, titled, readable with long tag names.

Every function takes the DataFrames or dicts that the audit and remediation steps return and gives
back a `matplotlib.figure.Figure` (never `pyplot` state), so notebooks display it and the HTML
export embeds it as a PNG. Colours come from the Okabe-Ito palette, which stays distinguishable
under the common forms of colour blindness; heatmaps use `cividis`, designed for the same reason.

`base` holds what every chart shares (palette, labels, files); `audit` and `remediation` the
charts of each step. The names below are the package's public API.
"""

from toolkit.notebook.charts.audit import (
    coverage_heatmap,
    coverage_matrix,
    opportunities_per_contact_hist,
    split_contacts_bar,
)
from toolkit.notebook.charts.base import (
    FONT_FALLBACK,
    HEATMAP_CMAP,
    HEATMAP_LABEL_SIZE,
    LABEL_WIDTH,
    OKABE_ITO,
    PALETTE,
    close,
    describe_figure,
    fit_labels,
    font_families,
    missing_glyphs,
    plain_text,
    png_bytes,
    save_figure,
    shorten,
    use_fallback_fonts,
)
from toolkit.notebook.charts.remediation import before_after_bar, plan_counts_bar

__all__ = [
    "FONT_FALLBACK",
    "HEATMAP_CMAP",
    "HEATMAP_LABEL_SIZE",
    "LABEL_WIDTH",
    "OKABE_ITO",
    "PALETTE",
    "before_after_bar",
    "close",
    "coverage_heatmap",
    "coverage_matrix",
    "describe_figure",
    "fit_labels",
    "font_families",
    "missing_glyphs",
    "opportunities_per_contact_hist",
    "plain_text",
    "plan_counts_bar",
    "png_bytes",
    "save_figure",
    "shorten",
    "split_contacts_bar",
    "use_fallback_fonts",
]
