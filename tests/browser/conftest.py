"""Fixtures for the browser suite: a sandbox, JupyterLab on loopback, Chromium through Playwright.

Chromium comes from the system's packages (`/usr/bin/chromium`, or `LTT_CHROMIUM`); nothing is
downloaded at test time (never Playwright's own browser download). Without Chromium or
Playwright the suite skips with one line saying how to enable it, except under `CI=true`,
where that is a failure.

JupyterLab serves a copy of `notebooks/` in a temporary folder, with its own config, runtime,
settings and workspace folders there (autosave off, news off, every cell rendered), so the
repository's notebooks stay clean. The sandbox's key reaches the kernels through JupyterLab's
environment only. Screenshots go to `tests/browser/artifacts/` (gitignored).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from polling import wait_for

from lever_sandbox.process import SandboxProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STARTUP_S = (
    180  # bounds a failure only: JupyterLab starts in seconds, but slowly beside 3 busy workers
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


# -- processes ----------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    """The sandbox in a child process (`SandboxProcess`: `python -m lever_sandbox --port 0`)."""
    with SandboxProcess(
        "--seed", "7", "--contacts", "300", "--rate", "1000", "--burst", "1000",
        cwd=ROOT, startup_timeout=STARTUP_S,
    ) as sandbox:  # fmt: skip
        yield sandbox


@dataclass
class Lab:
    url: str
    token: str
    root: Path  # the folder JupyterLab serves (a copy of notebooks/)
    log: Path
    secrets: list[str] = field(default_factory=list)

    def notebook_url(self, name: str) -> str:
        return f"{self.url}lab/tree/{name}?token={self.token}&reset"


def _settings(folder: Path) -> None:
    """Autosave off, news off, every cell in the DOM (no windowing), no update check."""
    files = {
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


@pytest.fixture(scope="session")
def jupyterlab(
    sandbox_process: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (free port) serving a copy of the notebooks; torn down after."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    for name in ("config", "runtime", "settings", "workspaces", "data"):
        (base / name).mkdir()
    _settings(base / "settings")
    token = secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "LEVER_BASE_URL": sandbox_process.base_url,
            "LEVER_API_KEY": sandbox_process.api_key,
        }
    )
    for name in ("LEVER_ACCESS_TOKEN", "LEVER_TOOLKIT_PROGRESS"):
        env.pop(name, None)  # the sandbox's key only; bars on, as a person sees them
    log = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
        "--ServerApp.port=0", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=", "--ServerApp.open_browser=False",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        url = _lab_url(base / "runtime", proc, log)
        yield Lab(url, token, root, log, [sandbox_process.api_key, token])
    finally:
        _stop(proc)


def _lab_url(runtime: Path, proc: subprocess.Popen, log: Path) -> str:
    """The server's URL from its runtime file (written once it listens)."""

    def url() -> str | None:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited: {log.read_text(errors='replace')[-2000:]}")
        for path in runtime.glob("jpserver-*.json"):
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if info.get("port"):
                return f"http://127.0.0.1:{info['port']}/"
        return None

    return wait_for(url, STARTUP_S, "JupyterLab to start (its jpserver-*.json)")


# -- the browser --------------------------------------------------------------------------------


# `browser` (one Chromium for the whole session) is in tests/conftest.py: sync Playwright cannot
# start twice in one thread, and tests outside this folder (test_hostile.py) need it too.


@dataclass
class PageWatch:
    """What a page did: console errors, warnings and errors in order, requests off loopback."""

    console_errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # "type: text" of warnings and errors
    outside: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, PageWatch]]:
    """A fresh page (1400x1000) that records console errors and any request beyond loopback."""
    from urllib.parse import urlparse

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch = PageWatch()

    def on_console(message: Any) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)
        if message.type in ("error", "warning"):
            watch.console.append(f"{message.type}: {message.text[:300]}")

    def on_request(request: Any) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in (
            "127.0.0.1",
            "localhost",
        ):
            watch.outside.append(request.url)

    page.on("console", on_console)
    page.on("request", on_request)
    try:
        yield page, watch
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (tests/browser/artifacts/, gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
