"""The wheel works outside the checkout: built, installed into a fresh virtual environment, and
`lever-tags report audit` run against the sandbox from an empty folder (no PYTHONPATH, no
checkout on the path). Its dependencies come from the project's .venv, read through a path file
(`--no-deps`: installing them all again would only measure pip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from lever_sandbox.process import SandboxProcess
from toolkit import __version__

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCES = (".git", ".venv", "build", "*.egg-info", "reports", "test-artifacts", "__pycache__")
NOT_SOURCES += (".mypy_cache", ".ruff_cache", ".pytest_cache", "artifacts")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (no deps); the .venv's packages after its own."""
    work = tmp_path_factory.mktemp("install")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, which must
    # not touch the checkout (nor collide with another build of it running beside this one).
    source = work / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheel = next((work / "dist").glob("lever_tag_toolkit-*.whl"))
    venv.EnvBuilder(with_pip=False).create(work / "venv")
    python = work / "venv" / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         "--ignore-installed", str(wheel)],
        capture_output=True, text=True, check=False, env=_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    # Then the .venv's packages, as a plain path entry after the venv's own: its .pth files (the
    # editable install of a checkout) are not processed, so `toolkit` can only be the wheel's.
    # Their data files: nbconvert's templates only (the .venv's kernel spec would start the
    # .venv's Python, and the kernel must import the wheel), through JUPYTER_PATH (`_env`).
    (Path(purelib) / "zz-project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shared = Path(sysconfig.get_paths()["data"]) / "share" / "jupyter" / "nbconvert"
    (work / "venv" / "share" / "jupyter").mkdir(parents=True)
    (work / "venv" / "share" / "jupyter" / "nbconvert").symlink_to(shared)
    return work / "venv"


def _env(**extra: str) -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("LEVER_", "PYTHON", "JUPYTER"))
    } | extra


def test_the_installed_toolkit_is_the_wheel_not_the_checkout(installed, tmp_path):
    done = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import toolkit, lever_sandbox; print(toolkit.__file__); print(lever_sandbox.__file__)"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, check=True,
    )  # fmt: skip
    for line in done.stdout.split():
        assert str(installed) in line and str(ROOT) not in line
    version = subprocess.run(
        [str(installed / "bin" / "lever-tags"), "--version"],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == f"lever-tags {__version__}"


def test_report_audit_runs_from_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with SandboxProcess("--contacts", "40", "--rate", "1000", "--burst", "1000") as sandbox:
        done = subprocess.run(
            [str(installed / "bin" / "lever-tags"), "report", "audit"],
            capture_output=True,
            text=True,
            env=_env(**sandbox.env),
            cwd=empty,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.parent == empty / "reports"  # the current folder, not site-packages
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["toolkit_version"] == __version__ and summary["opportunities"] > 0
    assert list(folder.glob("*.html"))
    site = installed / "lib"
    assert not [p for p in site.rglob("reports") if p.is_dir()]  # nothing written beside the code
