"""One notebook run with papermill into its own folder, and its HTML report.

A run executes one notebook of `notebooks/` into its own folder `reports/<UTC timestamp>-<name>/`
with that folder as the kernel's working directory, so whatever the notebook writes "beside
itself" (summary.json, CSVs, chart PNGs, the journal) lands there. The folder then holds:

- `<notebook>.ipynb`: the executed notebook (partial when a cell failed: papermill saves it as it
  goes and marks the failing cell);
- `<notebook>.html`: the report, inputs hidden, charts embedded as PNG images;
- the notebook's artifacts.

The kernel inherits this process's environment and reads the Lever credential from it
(`LeverClient.from_env()`); the credential is never a parameter, and every produced file is
scanned for it (raw, Basic-auth encoded, as a bearer, in an Authorization header) after the run
as a safety net. Kernels also get `LEVER_TOOLKIT_PROGRESS=0`: reports carry no progress bars.
A headless run of a notebook that fetches names by default is redacted unless the caller chose
(`headless_defaults`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit import config
from toolkit.errors import ConfigurationError
from toolkit.notebook.batch_index import run_numbers
from toolkit.notebook.params import (
    notebook_parameters,
    resolve_notebook,
    utc_stamp,
    validate_run_parameters,
)
from toolkit.notebook.runmode import REPORT, RUN_ENV
from toolkit.notebook.secrets import (
    SecretLeakError,
    refuse_secret_values,
    scan_files_for_secrets,
    scan_for_secrets,
    secret_values,
)
from toolkit.sanitize import create_private, private_dir, private_file, private_tree, short_repr

KERNEL_NAME = "python3"

log = logging.getLogger(__name__)


SUCCEEDED = "succeeded"


FAILED = "failed"


READ_ONLY_NOTEBOOKS = ("01-explore-tag-coverage", "02-audit-report", "04-sync-activity")


@dataclass
class RunResult:
    """What one notebook run produced."""

    name: str
    notebook: Path
    folder: Path
    status: str = SUCCEEDED
    parameters: dict[str, Any] = field(default_factory=dict)
    executed_path: Path | None = None
    html_path: Path | None = None
    artifacts: list[Path] = field(default_factory=list)
    error_cell: int | None = None  # index of the failing cell in the executed notebook
    error_message: str = ""
    started_at: str = ""
    seconds: float = 0.0
    profile: str = ""  # the account's profile (`toolkit.profiles`) the run used, if any

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    def as_row(self, relative_to: Path | None = None) -> dict[str, Any]:
        def rel(p: Path | None) -> str:
            if p is None:
                return ""
            return os.path.relpath(p, relative_to) if relative_to else str(p)

        return {
            "name": self.name,
            "profile": self.profile,
            "notebook": self.notebook.name,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error_message,
            "folder": rel(self.folder),
            "html": rel(self.html_path),
            "notebook_out": rel(self.executed_path),
            "started_at": self.started_at,
            **run_numbers(self.folder),  # key numbers from the run's summary/remediation JSON
        }


def unique_folder(out_root: Path, name: str) -> Path:
    check_out_root(out_root)
    try:
        private_dir(out_root)  # folders it creates are 0700; an existing one is left as it is
    except (FileExistsError, NotADirectoryError):
        raise ConfigurationError(f"--out-root {out_root} is not a folder") from None
    base = f"{utc_stamp()}-{name}"
    for n in range(1, 1000):
        folder = out_root / (base if n == 1 else f"{base}-{n}")
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)  # whatever the umask: a run folder holds personal data
        return folder
    raise ConfigurationError(f"cannot create a run folder under {out_root}")  # pragma: no cover


def check_out_root(out_root: str | os.PathLike) -> None:
    """Refuse an `--out-root` that is a file, or lies under one (one ConfigurationError line)."""
    path = Path(out_root)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigurationError(f"--out-root {out_root} is not a folder ({p} is a file)")
            return


_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_OK.fullmatch(name):
        raise ConfigurationError(
            f"run name {short_repr(name)} must be letters, digits, '.', '_' or '-' (1-100, "
            "starting with a letter or digit; no spaces, slashes or line breaks)"
        )
    return name


def _image_alts(nb: Any) -> list[str]:
    """The alternative text of each PNG output, in document order ("" when none)."""
    alts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                meta = output.get("metadata", {})
                alt = meta.get("image/png", {}).get("alt") if isinstance(meta, dict) else None
                alts.append(str(alt or meta.get("alt") or ""))
    return alts


# Reports are documents: no script runs, nothing loads from elsewhere (a report tells no third
# party it was opened, and a payload that slipped through an escape still cannot run).
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
    "script-src 'none'; base-uri 'none'; form-action 'none'"
)


_TEMPLATES = Path(__file__).resolve().parent / "templates"


# What HTML outputs may keep (nbconvert's SanitizeHTML, bleach): tables as pandas and Styler
# write them, with their <style>, and simple text markup. Anything else (script, svg, iframe,
# form, event handlers, javascript: links) is stripped; widget views and JavaScript outputs are
# dropped (their text/plain stays).
REPORT_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "div",
    "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p",
    "pre", "small", "span", "strong", "style", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
]  # fmt: skip


REPORT_ATTRIBUTES = {
    "*": ["class", "id", "title", "style"],
    "a": ["href"],
    "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
    "table": ["border"],
}


REPORT_STYLES = [
    "background-color", "border", "border-collapse", "color", "font-style", "font-weight",
    "padding", "text-align", "vertical-align", "white-space", "width",
]  # fmt: skip


def _strip_external(soup: Any) -> int:
    """Remove every element that would load something from elsewhere; return how many."""
    removed = 0
    for tag in soup.find_all(["script", "link", "iframe", "object", "embed", "base"]):
        if tag.name != "link" or tag.get("href"):  # a report runs no script (widget views too)
            tag.decompose()
            removed += 1
    for tag in soup.find_all(src=True):
        if not str(tag["src"]).startswith("data:"):
            del tag["src"]
            removed += 1
    return removed


def export_html(executed: Path, html_path: Path | None = None) -> Path:
    """Export an executed notebook to a self-contained, offline, sanitized HTML report.

    The code is hidden; images stay embedded (base64), and each chart gets its title as
    alternative text (`keep_figure` records it). The template (`toolkit/templates/offline`, the
    lab template without its CDN loads) references no require.js, MathJax, Mermaid or widget
    renderer, and carries a Content-Security-Policy (`REPORT_CSP`) that lets no script run and
    nothing load from another origin. Code cell outputs are sanitized by nbconvert's
    `SanitizeHTML` (bleach) with an allowlist that keeps pandas/Styler tables and their styles
    (`REPORT_TAGS`, `REPORT_ATTRIBUTES`, `REPORT_STYLES`): script, svg, iframes, forms, event
    handlers and javascript: links are escaped or dropped. Whatever would still load from
    elsewhere is removed (`_strip_external`). The file is 0600.
    """
    # Heavy (Jupyter stack, HTML parsing): loaded only when a report is exported.
    import nbformat
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    html_path = html_path or executed.with_suffix(".html")
    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("widgets", None)  # widget state would need a renderer from a CDN
    sanitizer = SanitizeHTML(tags=REPORT_TAGS, attributes=REPORT_ATTRIBUTES, styles=REPORT_STYLES)
    sanitizer.log.setLevel(logging.WARNING)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":  # outputs carry data; Markdown is the notebook's own text
            sanitizer.preprocess_cell(cell, {}, index)
    exporter = HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        template_name="offline",
        extra_template_basedirs=[str(_TEMPLATES)],
        require_js_url="",
        mathjax_url="",
        jquery_url="",
        widget_renderer_url="",
    )
    exporter.log.setLevel(logging.ERROR)  # it warns about missing alt text, set below
    resources = {"metadata": {"name": executed.stem}, "report_csp": REPORT_CSP}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    soup = BeautifulSoup(body, features="html.parser")
    alts = _image_alts(nb)
    images = soup.select('img[src^="data:image/png"]')
    for img, alt in zip(images, alts, strict=False):
        if alt:
            img["alt"] = alt
    _strip_external(soup)
    create_private(html_path)
    html_path.write_text(str(soup), encoding="utf-8")
    return html_path


def publish_executed(executed: str | os.PathLike) -> Path:
    """Make a notebook executed by another runner a report, as `lever-tags report` makes one.

    Plain `papermill`, `jupyter nbconvert --execute --to notebook` or Airflow write the
    executed notebook with their own umask (often 0644) and no HTML, or nbconvert's HTML that
    loads require.js and MathJax from a CDN. This makes the executed notebook 0600, writes the
    offline, sanitized, CSP-protected HTML beside it (`export_html`, 0600) and scans both for
    the credential (`scan_files_for_secrets`). Returns the HTML's path.

    Raises:
        ConfigurationError: not a file, or not a notebook (one line).
        SecretLeakError: the credential was found (text redacted in place).
    """
    path = Path(executed)
    if not path.is_file() or path.suffix != ".ipynb":
        raise ConfigurationError(f"--from-executed: no executed notebook (.ipynb) at {path}")
    private_file(path)
    try:
        html = export_html(path)
    except Exception as exc:  # not JSON, not a notebook: nbformat's and nbconvert's many errors
        message = " ".join(str(exc).split())[:200]
        raise ConfigurationError(f"--from-executed: {path} is not a notebook ({message})") from None
    leaked = scan_files_for_secrets([path, html])
    if leaked:
        raise SecretLeakError(
            f"a credential was found in {', '.join(p.name for p in leaked)} (redacted there); "
            "rotate the key. This is a bug: please report it"
        )
    return html


# What every kernel a run starts gets in its environment, on top of this process's: no progress
# bars (`toolkit.progress`), since a report is a document, not a terminal.
# `LEVER_TOOLKIT_RUN=report` tells the notebook's parameter check that this run's parameters,
# redaction and file modes are already taken care of (`toolkit.notebook.runmode`).
HEADLESS_KERNEL_ENV = {"LEVER_TOOLKIT_PROGRESS": "0", RUN_ENV: REPORT}


@functools.cache
def _headless_kernel_manager_base() -> type:
    # Heavy (Jupyter stack): loaded only when a notebook runs.
    from jupyter_client import AsyncKernelManager

    class HeadlessKernelManager(AsyncKernelManager):
        run_cwd: str | None = None

        # AsyncKernelManager turns KernelManager's start_kernel async (jupyter_client ignores
        # the same override error on its own class)
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            env = dict(kw.pop("env", None) or os.environ)
            env.update(HEADLESS_KERNEL_ENV)
            if self.run_cwd:
                kw["cwd"] = self.run_cwd
            await super().start_kernel(env=env, **kw)

    return HeadlessKernelManager


def _headless_kernel_manager(cwd: Path) -> type:
    """An `AsyncKernelManager` class that starts its kernel in `cwd` with `HEADLESS_KERNEL_ENV`.

    Both go to the child process only. This process's `os.environ` and working directory are
    never changed: papermill's own `cwd=` does `os.chdir` for the whole run, so runs side by
    side in threads (a batch's parallel audits) started each other's kernels in the wrong
    folder.
    """
    base = _headless_kernel_manager_base()
    return type("RunKernelManager", (base,), {"run_cwd": str(cwd)})


def headless_defaults(notebook: Path, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a headless run, with the defaults that keep personal data out of it.

    A notebook may default to fetching names for interactive use (`01-explore-tag-coverage`:
    `with_personal = True`, to search people by name in JupyterLab). A report is a file that
    gets shared, so when such a notebook runs headless and the caller chose neither
    `with_personal` nor `redact`, the run is redacted: names and emails become pseudonyms.
    Passing either parameter explicitly is a choice and is kept as given.

    Example:
        >>> headless_defaults(resolve_notebook("explore"), {})
        {'redact': True}
        >>> headless_defaults(resolve_notebook("explore"), {"with_personal": True})
        {'with_personal': True}
        >>> headless_defaults(resolve_notebook("audit"), {})
        {}
    """
    params = dict(parameters)
    declared = notebook_parameters(notebook)
    personal = {"with_personal", "redact"}
    if personal <= set(declared) and not personal & set(params):
        default = str(declared["with_personal"].get("default", "")).strip()
        if default == "True":
            params["redact"] = True
    return params


def _describe_failure(exc: Exception) -> tuple[int | None, str]:
    """(cell index, 'cell N (In [k]) `first line`: Error: message') from papermill's error."""
    index = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    source = str(getattr(exc, "source", "") or "")
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    if len(first) > 80:
        first = first[:79] + "…"
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = " ".join(str(getattr(exc, "evalue", exc)).split())
    where = f"cell {index}" if index is not None else "the notebook"
    if count is not None:
        where += f" (In [{count}])"
    if first:
        where += f" `{first}`"
    return index, f"{where}: {ename}: {evalue}"


def run_notebook(
    notebook: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    out_root: str | os.PathLike | None = None,
    name: str | None = None,
    *,
    kernel_name: str = KERNEL_NAME,
    execution_timeout: int | None = 900,
    log_output: bool = False,
) -> RunResult:
    """Execute a notebook with papermill into `out_root/<UTC timestamp>-<name>/`; export HTML.

    The kernel's working directory is the run folder, so the notebook's artifacts land beside
    the executed notebook. A failing cell does not raise: the result says which cell failed and
    why, and the partial notebook (and its HTML) are kept. Bad parameters raise
    `ConfigurationError` before any kernel starts. The kernel runs with `HEADLESS_KERNEL_ENV`
    (no progress bars) and `headless_defaults` (no names unless asked for).

    Args:
        notebook: a path, a file name in `notebooks/`, or an alias (`explore`, `audit`,
            `remediate`).
        parameters: values for the notebook's `parameters` cell (never a credential).
        out_root: where run folders go (default `config.REPORTS_DIR`).
        name: the run's name (default: the notebook's stem).

    Raises:
        ConfigurationError: unknown notebook or parameter, wrong-typed value, credential given.
        SecretLeakError: a produced file contained the credential (text files are redacted,
            binary ones left intact; see `scan_for_secrets`).
    """
    # Heavy (Jupyter stack): loaded only when a notebook runs, not by `import toolkit...`.
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = resolve_notebook(notebook)
    params = validate_run_parameters(path, dict(parameters or {}))
    params = headless_defaults(path, params)
    secrets = secret_values()
    refuse_secret_values(params, secrets)
    name = _check_name(name or path.stem)
    folder = unique_folder(Path(out_root) if out_root else config.REPORTS_DIR, name)
    result = RunResult(name=name, notebook=path, folder=folder, parameters=params)
    result.executed_path = folder / path.name
    result.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    create_private(result.executed_path)  # papermill rewrites it in place: it stays 0600
    t0 = time.monotonic()
    try:
        papermill.execute_notebook(
            str(path),
            str(result.executed_path),
            parameters=params,
            kernel_name=kernel_name,
            cwd=None,  # the kernel's cwd is set by its manager: no process-wide chdir
            progress_bar=False,
            log_output=log_output,
            execution_timeout=execution_timeout,
            # the kernel's own chatter stays out of the terminal: its start-up warning (TCP on
            # loopback) and the "KeyboardInterrupt caught in kernel" ERROR it logs now and then
            # when jupyter_client interrupts it on shutdown; cell errors reach the report anyway
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            kernel_manager_class=_headless_kernel_manager(folder),
        )
    except PapermillExecutionError as exc:
        result.status = FAILED
        result.error_cell, result.error_message = _describe_failure(exc)
    except Exception as exc:  # kernel died, timeout, ...: keep what was saved
        result.status = FAILED
        result.error_message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    result.seconds = time.monotonic() - t0
    if result.executed_path.exists():
        try:
            result.html_path = export_html(result.executed_path)
        except Exception as exc:  # a report without HTML is still a report
            log.warning("HTML export of %s failed: %s", result.executed_path, exc)
    result.artifacts = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p not in (result.executed_path, result.html_path) and p.suffix != ".lock"
    )
    private_tree(folder)  # 0700 folders, 0600 files, whatever the umask
    leaked = scan_for_secrets(folder, secrets)
    if leaked:
        names = ", ".join(str(p.relative_to(folder)) for p in leaked)
        raise SecretLeakError(
            f"a credential (the Lever key or token, its Basic-auth or bearer form, or the "
            f"redaction salt) was found in {names} under {folder}; text files have been "
            "redacted, binary files (journal, snapshot) were left intact and private: rotate "
            "the key. This is a bug: please report it"
        )
    return result
