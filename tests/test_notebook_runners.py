"""Issue 20, finding 8: the notebooks are safe through any runner, not only `lever-tags report`.

Real plain `papermill` runs (its command line, in a child process with the usual umask 022)
against the session sandbox: notebook 01, which fetches names by default for JupyterLab, comes
out redacted; a parameter the notebook does not declare fails the check cell; the executed
notebook becomes a private, offline, CSP-protected report with `lever-tags report
--from-executed`, and `jupyter nbconvert --template offline` gives the CSP too. How a kernel
knows how it is run (`toolkit.notebook.runmode`) is tested directly.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from toolkit import config
from toolkit.cli import main
from toolkit.errors import ConfigurationError
from toolkit.notebook import execute, runmode
from toolkit.notebook.params import check_parameters

pytestmark = pytest.mark.notebook

EXPLORE = config.NOTEBOOKS_DIR / "01-explore-tag-coverage.ipynb"
TEMPLATES = Path(execute.__file__).resolve().parent / "templates"
# What would load from elsewhere: a remote src/href, or the CDN scripts nbconvert's own
# templates load (require.js, MathJax); a "mathjax_ignore" class is not one.
CDN = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|cdnjs|jsdelivr|unpkg|require(?:\.min)?\.js"""
    r"|MathJax\.js|tex-(?:chtml|svg|mml)",
    re.I,
)


def _runner_env(sandbox) -> dict[str, str]:
    """This process's environment as a scheduler would have it: the sandbox's credential, no
    Jupyter server session, no `lever-tags report` marker."""
    drop = ("LEVER_", "JPY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(sandbox.env())
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    return env


def _papermill(env, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "papermill", *args, "--no-progress-bar", "-k", "python3"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: 0644 unless made private
        check=False,
    )


def _csp(page: str) -> str | None:
    meta = BeautifulSoup(page, "html.parser").find(
        "meta", {"http-equiv": "Content-Security-Policy"}
    )
    return meta.get("content") if meta else None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def explored(sandbox, tmp_path_factory):
    """Notebook 01 run by plain papermill with its defaults (with_personal = True)."""
    folder = tmp_path_factory.mktemp("plain-papermill")
    out = folder / "explore.ipynb"
    done = _papermill(_runner_env(sandbox), str(EXPLORE), str(out), cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_plain_papermill_run_of_notebook_01_publishes_no_real_name(sandbox, explored):
    text = explored.read_text(encoding="utf-8")
    names = {o["name"] for o in sandbox.opportunities() if o.get("name")} - {"Anonymized"}
    assert len(names) > 100
    published = sorted(n for n in names if n in text or json.dumps(n)[1:-1] in text)
    assert published == [], published[:5]
    assert re.search(r"Person-[0-9a-f]{6,}", text)  # pseudonyms instead


def test_a_parameter_the_notebook_lacks_fails_the_check_cell(sandbox, tmp_path):
    out = tmp_path / "typo.ipynb"
    done = _papermill(
        _runner_env(sandbox), str(EXPLORE), str(out), "-p", "with_personel", "False", cwd=tmp_path
    )
    assert done.returncode != 0
    assert "with_personel: this notebook has no such parameter" in done.stderr
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    failed = [
        c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert len(failed) == 1 and "check_parameters" in "".join(failed[0]["source"])
    assert "Person-" not in out.read_text(encoding="utf-8")  # stopped before any fetch


def test_from_executed_makes_a_private_offline_csp_report(explored, capsys):
    assert _mode(explored) == 0o644  # as papermill wrote it under umask 022
    assert main(["report", "--from-executed", str(explored)]) == 0
    html = Path(capsys.readouterr().out.strip())
    assert html == explored.with_suffix(".html")
    assert _mode(explored) == _mode(html) == 0o600
    page = html.read_text(encoding="utf-8")
    assert _csp(page) == execute.REPORT_CSP
    assert "<script" not in page and not CDN.search(page)


def test_from_executed_refuses_what_is_not_an_executed_notebook(tmp_path, capsys):
    bad = tmp_path / "x.ipynb"
    bad.write_text("not json", encoding="utf-8")
    for argv in (["--from-executed", str(tmp_path / "none.ipynb")], ["--from-executed", str(bad)]):
        assert main(["report", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--from-executed" in err, err
    assert main(["report", "audit", "--from-executed", str(bad)]) == 2


def test_nbconvert_with_the_offline_template_carries_the_csp(explored, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
         f"--TemplateExporter.extra_template_basedirs={TEMPLATES}", "--template", "offline",
         "--output-dir", str(tmp_path), "--output", "plain", str(explored)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = (tmp_path / "plain.html").read_text(encoding="utf-8")
    assert _csp(page) == execute.REPORT_CSP  # no script runs, nothing loads from elsewhere
    assert not CDN.search(page)


def test_the_docs_point_schedulers_at_lever_tags_batch():
    usage = (config.PROJECT_ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    assert "PapermillOperator" not in usage
    assert "--from-executed" in usage and "--template offline" in usage


# -- how a kernel knows how it is run -------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({}, "headless"),  # papermill, nbconvert --execute, Airflow, nbclient
        ({"LEVER_TOOLKIT_RUN": "report"}, "report"),  # lever-tags report / batch
        ({"JPY_SESSION_NAME": "/home/a/01.ipynb"}, "interactive"),  # a Jupyter server's kernel
        ({"LEVER_TOOLKIT_RUN": "interactive"}, "interactive"),
        ({"LEVER_TOOLKIT_RUN": "anything"}, "headless"),
    ],
)
def test_run_mode(environ, mode):
    assert runmode.run_mode(environ) == mode


def test_lever_tags_report_kernels_are_marked_as_such():
    assert execute.HEADLESS_KERNEL_ENV[runmode.RUN_ENV] == runmode.REPORT


def _namespace(**injected):
    cell = "with_personal: bool = True\nredact: bool = False\nsearch: str = ''\n"
    params = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in injected.items())
    history = ["", "", cell, *([params] if injected else []), "params = check_parameters()"]
    return {"In": history, "with_personal": True, "redact": False, "search": "", **injected}


@pytest.fixture
def headless(monkeypatch):
    for name in ("LEVER_TOOLKIT_RUN", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_headless_check_redacts_refuses_and_makes_files_private(headless, monkeypatch):
    ns = _namespace()  # nbconvert --execute: nothing injected
    assert check_parameters(ns).redact is True and ns["redact"] is True
    assert os.umask(0o022) == 0o077  # the kernel's files are private from now on
    assert check_parameters(_namespace(with_personal=True)).redact is False  # a choice, kept
    assert check_parameters(_namespace(redact=False)).redact is False
    with pytest.raises(ConfigurationError, match="with_personel: this notebook has no such"):
        check_parameters(_namespace(with_personel=True))
    with pytest.raises(ConfigurationError, match="api_key: credentials are never"):
        check_parameters(_namespace(api_key="x"))
    monkeypatch.setenv("LEVER_API_KEY", "a-key-that-must-not-be-a-parameter")
    with pytest.raises(ConfigurationError, match="contains the Lever credential"):
        check_parameters(_namespace(search="a-key-that-must-not-be-a-parameter"))


def test_report_and_interactive_runs_keep_their_parameters(headless, monkeypatch):
    monkeypatch.setenv("LEVER_TOOLKIT_RUN", "report")
    assert check_parameters(_namespace()).redact is False  # report did it before the kernel
    monkeypatch.setenv("LEVER_TOOLKIT_RUN", "interactive")
    assert check_parameters(_namespace()).redact is False  # JupyterLab: names to search by
    assert os.umask(0o022) == 0o022
