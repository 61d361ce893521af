"""Start `lever-tags sandbox` as a separate process for benchmarks (closer to real use)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sandbox_process(*args: str) -> Iterator[dict[str, str]]:
    """Run the sandbox CLI with `args`; yield its LEVER_BASE_URL / LEVER_API_KEY; stop it after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit.cli", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        env: dict[str, str] = {}
        while len(env) < 2:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the sandbox exited with {proc.wait()} before it was ready")
            name, _, value = line.strip().partition("=")
            if name in ("LEVER_BASE_URL", "LEVER_API_KEY"):
                env[name] = value
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
