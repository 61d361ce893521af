"""How a notebook is being run, seen from inside its kernel, and the safe defaults of each way.

`lever-tags report` and `lever-tags batch` check parameters before any kernel starts, redact
headless runs (`execute.headless_defaults`) and make every file private; their kernels get
`LEVER_TOOLKIT_RUN=report`. A notebook can also be run by anything else that executes notebooks:
plain `papermill`, `jupyter nbconvert --execute`, Airflow's papermill operator, nbclient. Such
a run is a report nobody reviewed before it was shared, so the notebook's own parameter check
(`params.check_parameters`, the cell after the parameters cell) gives it the same defaults:

- `report`: run by `lever-tags report` / `batch` (everything already done before the kernel);
- `interactive`: a kernel a Jupyter server started for a notebook someone has open (JupyterLab,
  Notebook 7: the server sets `JPY_SESSION_NAME`), or `LEVER_TOOLKIT_RUN=interactive` set by
  whoever wants an interactive session elsewhere (VS Code, a console);
- `headless`: anything else. Parameters that papermill injected (its `# Parameters` cell, read
  back from the kernel's input history) are checked against the notebook's parameters cell and
  for credentials; a notebook that fetches names by default is redacted unless `with_personal`
  or `redact` was passed; the kernel's umask becomes 077, so every file it writes is private.

The executed notebook and any HTML are written by the runner, not the kernel:
`lever-tags report --from-executed OUT.ipynb` makes that file private and writes the offline,
CSP-protected HTML report beside it (docs/usage.md).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from typing import Any

RUN_ENV = "LEVER_TOOLKIT_RUN"
REPORT, INTERACTIVE, HEADLESS = "report", "interactive", "headless"
PAPERMILL_HEADER = "# Parameters"  # the first line of the cell papermill injects (Python)


def run_mode(environ: Mapping[str, str] | None = None) -> str:
    """`report`, `interactive` or `headless` (see the module's docstring).

    Example:
        >>> run_mode({"LEVER_TOOLKIT_RUN": "report"}), run_mode({"JPY_SESSION_NAME": "x.ipynb"})
        ('report', 'interactive')
        >>> run_mode({})
        'headless'
    """
    env = os.environ if environ is None else environ
    chosen = env.get(RUN_ENV, "").strip().lower()
    if chosen in (REPORT, INTERACTIVE):
        return chosen
    if env.get("JPY_SESSION_NAME"):
        return INTERACTIVE
    return HEADLESS


def assigned_names(source: Any) -> list[str]:
    """The names a cell assigns at its top level (`x = 1`, `x: int = 1`), in order.

    Example:
        >>> assigned_names("a: str = ''  # a comment\\nb = 2\\nprint(a)")
        ['a', 'b']
        >>> assigned_names("not python (")
        []
    """
    try:
        tree = ast.parse(str(source))
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def injected_parameters(namespace: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(names papermill injected, names the notebook's parameters cell declares), read from the
    kernel's input history (`In`); both empty when nothing was injected (nbconvert, nbclient).

    Example:
        >>> ns = {"In": ["", "a: int = 1\\nb = 2", "# Parameters\\nb = 5\\nc = 3\\n", "a + b"]}
        >>> injected_parameters(ns)
        (['b', 'c'], ['a', 'b'])
    """
    history = namespace.get("In")
    if not isinstance(history, list):
        return [], []
    for index in range(len(history) - 1, 0, -1):
        source = history[index]
        if isinstance(source, str) and source.lstrip().startswith(PAPERMILL_HEADER):
            return assigned_names(source), assigned_names(history[index - 1])
    return [], []


def headless_problems(injected: list[str], declared: list[str]) -> list[str]:
    """One phrase per injected parameter the notebook does not declare.

    Example:
        >>> headless_problems(["with_personel"], ["with_personal", "redact"])
        ['with_personel: this notebook has no such parameter (it has: with_personal, redact)']
    """
    if not declared:  # no parameters cell seen: nothing to compare with
        return []
    return [
        f"{name}: this notebook has no such parameter (it has: {', '.join(declared)})"
        for name in injected
        if name not in declared
    ]


def headless_redaction(params: Mapping[str, Any], injected: list[str]) -> bool:
    """Whether a headless run must be redacted: it would fetch names by default, and the caller
    passed neither `with_personal` nor `redact` (the rule of `execute.headless_defaults`).

    Example:
        >>> headless_redaction({"with_personal": True, "redact": False}, [])
        True
        >>> headless_redaction({"with_personal": True, "redact": False}, ["with_personal"])
        False
    """
    if not {"with_personal", "redact"} <= set(params) or {"with_personal", "redact"} & set(
        injected
    ):
        return False
    return params["with_personal"] is True and params["redact"] is not True


def make_kernel_private() -> None:
    """Every file and folder this kernel creates from now on is private (umask 077)."""
    os.umask(0o077)


__all__ = [
    "HEADLESS",
    "INTERACTIVE",
    "REPORT",
    "RUN_ENV",
    "assigned_names",
    "headless_problems",
    "headless_redaction",
    "injected_parameters",
    "make_kernel_private",
    "run_mode",
]
