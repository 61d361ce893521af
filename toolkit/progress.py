"""Progress bars: shown in terminals and in Jupyter, quiet in headless runs.

`progress=None` (the default everywhere) decides by where the code runs: an interactive
terminal (stderr is a TTY) or a Jupyter kernel shows a bar; anything else (cron, CI, pipes)
does not. `LEVER_TOOLKIT_PROGRESS=0` or `1` overrides that; `lever-tags report` and `batch`
set it to 0 for the kernels they start, so papermill reports carry no bar.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

ENV = "LEVER_TOOLKIT_PROGRESS"


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show a bar: the explicit choice, else the environment, else the context."""
    if progress is not None:
        return progress
    forced = os.environ.get(ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is not None:  # a Jupyter kernel, not a terminal IPython
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(progress: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar (a widget in Jupyter, text in a terminal), disabled when not wanted."""
    return tqdm(disable=not progress_enabled(progress), leave=False, **kwargs)
