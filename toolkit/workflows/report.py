"""Run one notebook headless as a report (`lever-tags report`, batches)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.config import load_settings
from toolkit.notebook import execute
from toolkit.notebook.execute import RunResult, check_out_root
from toolkit.notebook.params import resolve_notebook, run_parameters

# The notebooks that read Lever, and the parameter that lets them work offline instead (None:
# they always need Lever). 04-sync-activity reads a journal only.
LEVER_NOTEBOOKS = {
    "01-explore-tag-coverage": "snapshot_path",
    "02-audit-report": "snapshot_path",
    "03-remediate": None,
}


def check_credential(notebook: str | os.PathLike, parameters: Mapping[str, Any]) -> None:
    """Refuse, before any kernel starts, a run of a notebook that will read Lever without a
    credential in the environment (`ConfigurationError`: exit 2 with one line, no folder).

    Example:
        >>> check_credential("audit", {"snapshot_path": "snap.parquet"})  # offline: no key needed
    """
    stem = resolve_notebook(notebook).stem
    if stem not in LEVER_NOTEBOOKS:
        return
    offline = LEVER_NOTEBOOKS[stem]
    if offline is None or not parameters.get(offline):
        load_settings()  # raises the one-line "no Lever credential: set LEVER_API_KEY ..."


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
    input file, an `out_root` that is a file, or a missing Lever credential for a notebook that
    reads Lever (`check_credential`) is refused before any kernel starts.
    """
    if out_root:
        check_out_root(out_root)
    params = run_parameters(parameters, base)
    check_credential(notebook, params)
    return execute.run_notebook(notebook, params, out_root, name, **options)


def publish_executed_report(executed: str | os.PathLike) -> Path:
    """A notebook executed by plain papermill, nbconvert or Airflow made a private, offline,
    CSP-protected report (`execute.publish_executed`); returns the HTML's path."""
    return execute.publish_executed(executed)
