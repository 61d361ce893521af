"""Progress bars: shown in terminals and in Jupyter, quiet in headless runs.

`progress=None` (the default everywhere) decides by where the code runs: an interactive
terminal (stderr is a TTY) or a Jupyter kernel shows a bar; anything else (cron, CI, pipes)
does not. `LEVER_TOOLKIT_PROGRESS=0` or `1` overrides that; `lever-tags report` and `batch`
set it to 0 for the kernels they start, so papermill reports carry no bar.

In Jupyter the bar is a text output updated in place (an IPython display handle), not a widget:
a widget bar that closes itself leaves "Error displaying widget: model not found" behind after a
page reload. When it ends, the output keeps one plain line (what was done, how fast).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm as _text_tqdm

ENV = "LEVER_TOOLKIT_PROGRESS"


def in_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (not a terminal IPython, not a script)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None  # a Jupyter kernel, not a terminal IPython


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show a bar: the explicit choice, else the environment, else the context."""
    if progress is not None:
        return progress
    forced = os.environ.get(ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if in_kernel():
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Discard:
    """A file that swallows tqdm's own writes (the display handle shows the bar instead)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class OutputBar(_text_tqdm):
    """A text tqdm bar drawn into a Jupyter output through a display handle.

    Every refresh replaces the output's text; closing leaves the final line (count, time, rate),
    which is plain text and therefore survives saving, reloading and a kernel restart.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # IPython only when a notebook bar is drawn: progress is imported by the CLI too.
        from IPython.display import display

        kwargs["file"] = _Discard()
        kwargs["leave"] = True
        kwargs.setdefault("ascii", False)
        kwargs.setdefault("ncols", 100)
        self._handle = display({"text/plain": ""}, raw=True, display_id=True)
        super().__init__(*args, **kwargs)

    # tqdm's close() reads display()'s True; types-tqdm declares it returning None
    def display(  # type: ignore[override]
        self, msg: str | None = None, pos: int | None = None
    ) -> bool:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            text = self.__str__() if msg is None else msg
            handle.update({"text/plain": text}, raw=True)
        return True


def progress_bar(progress: bool | None = None, **kwargs: Any) -> _text_tqdm[Any]:
    """A bar (an updating text output in Jupyter, text in a terminal), disabled when not wanted."""
    enabled = progress_enabled(progress)
    if enabled and in_kernel():
        return OutputBar(**kwargs)
    return _text_tqdm(disable=not enabled, leave=False, **kwargs)
