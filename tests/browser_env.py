"""Whether the browser suite can run here: the system's Chromium and Playwright.

Imported by tests/conftest.py (the one session `browser` fixture) and the browser test modules
(pytest puts this folder on sys.path).
"""

from __future__ import annotations

import os
import shutil

import pytest

ENABLE = (
    "install Chromium from the system's packages (as root: apt-get install -y chromium "
    "fonts-noto-cjk; `make test` does that when run as root) or set LTT_CHROMIUM=/path/to/chromium"
)


def chromium_path() -> str | None:
    """The system Chromium (LTT_CHROMIUM, else chromium / chromium-browser on PATH)."""
    explicit = os.environ.get("LTT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser suite cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium not found"
    return None


def skip_or_fail(reason: str) -> None:
    """Inside a fixture or test: skip with one line saying how to enable the browser; under
    CI=true, fail instead (never a skip)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}; to enable them, {ENABLE}")
    pytest.skip(f"browser tests skipped: {reason}; to enable them, {ENABLE}")


def require_browser() -> None:
    """At the test module's import: skip the whole module with one line when no browser is
    here (how to enable it in the reason); under CI=true, fail instead (never a skip)."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the browser tests cannot run: {reason}; to enable them, {ENABLE}")
    pytest.skip(
        f"browser tests skipped: {reason}; to enable them, {ENABLE}", allow_module_level=True
    )
