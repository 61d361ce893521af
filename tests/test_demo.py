"""`make demo` end to end (`python -m toolkit.demo`), and what it leaves behind."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_reaches_zero_split_pairs_and_leaks_no_key(tmp_path):
    key = "demo-" + secrets.token_hex(12)  # known to the test, so every file can be searched
    env = dict(os.environ, LEVER_SANDBOX_KEY=key)
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN", "LEVER_BASE_URL"):
        env.pop(name, None)
    out = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "toolkit.demo", "--out-root", str(out), "--latency-ms", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "0 after" in done.stdout
    html = list(out.rglob("*.html"))
    reports = [p for p in html if p.name != "index.html"]
    assert len(reports) >= 4 and any(p.name == "index.html" for p in html)
    assert all("data:image/png;base64," in p.read_text() for p in reports if "audit" in p.name)
    produced = [p for p in out.rglob("*") if p.is_file()]
    assert produced
    for path in produced:
        data = path.read_bytes()
        assert key.encode() not in data, f"the key is in {path}"
        assert b"Authorization" not in data, f"an Authorization header is in {path}"
    assert key not in done.stdout and key not in done.stderr
