"""Run one notebook headless as a report (`lever-tags report`, batches)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.notebook import execute
from toolkit.notebook.execute import RunResult, check_out_root
from toolkit.notebook.params import run_parameters


def run_report(
    notebook: str | os.PathLike,
    parameters: Mapping[str, Any],
    *,
    base: str | os.PathLike,
    out_root: str | os.PathLike | None = None,
    name: str | None = None,
    **options: Any,
) -> RunResult:
    """Run one notebook headless into its own folder, with an HTML report.

    Relative path parameters are taken from `base` (where the command was typed); a missing
    input file or an `out_root` that is a file is refused before any kernel starts.
    """
    if out_root:
        check_out_root(out_root)
    params = run_parameters(parameters, base)
    return execute.run_notebook(notebook, params, out_root, name, **options)


def publish_executed_report(executed: str | os.PathLike) -> Path:
    """A notebook executed by plain papermill, nbconvert or Airflow made a private, offline,
    CSP-protected report (`execute.publish_executed`); returns the HTML's path."""
    return execute.publish_executed(executed)
