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

from toolkit.notebook.explorer.index import ExplorerIndex
from toolkit.notebook.explorer.panel import PolicyPanel, policy_panel
from toolkit.notebook.explorer.views import style_grid
from toolkit.notebook.explorer.widget import (
    Debounced,
    TagExplorer,
    explore,
    filter_frame,
)

__all__ = [
    "Debounced",
    "ExplorerIndex",
    "PolicyPanel",
    "TagExplorer",
    "explore",
    "filter_frame",
    "policy_panel",
    "style_grid",
]
