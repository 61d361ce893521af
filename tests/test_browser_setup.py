"""How the browser suite behaves without a browser: one skip line, or a failure under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_suite(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", "tests/browser"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_without_chromium_the_suite_skips_with_one_line_saying_how_to_enable_it():
    run = _run_suite(LTT_CHROMIUM="/nonexistent/chromium")
    assert run.returncode in (0, 5), run.stdout[-2000:]  # 5: alone, nothing else was collected
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1, run.stdout[-2000:]
    assert "Chromium not found" in skipped[0] and "apt-get install -y chromium" in skipped[0]


def test_under_ci_a_missing_browser_fails_instead():
    run = _run_suite(LTT_CHROMIUM="/nonexistent/chromium", CI="true")
    assert run.returncode != 0
    assert "CI=true and the browser tests cannot run: Chromium not found" in run.stdout
    assert "SKIPPED" not in run.stdout
