"""The one way to run the sandbox as a process of its own: `SandboxProcess`.

It runs ``python -m lever_sandbox --port 0 ARGS`` (or another command that prints the same two
lines, such as ``lever-tags sandbox``), reads ``LEVER_BASE_URL=...`` and ``LEVER_API_KEY=...``,
keeps draining what the process prints after them, and stops it with SIGTERM (then SIGKILL).
The demo, the tests and the benchmarks all start the sandbox through it.

Example:
    >>> with SandboxProcess("--contacts", "50") as sandbox:  # doctest: +SKIP
    ...     os.environ.update(sandbox.env)  # LEVER_BASE_URL, LEVER_API_KEY
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from typing import IO, Any

MODULE_COMMAND = (sys.executable, "-m", "lever_sandbox")
NAMES = ("LEVER_BASE_URL", "LEVER_API_KEY")


class SandboxStartError(RuntimeError):
    """The sandbox process exited, or printed no URL and key, before it was ready."""


class SandboxProcess:
    """A sandbox in a child process.

    Args:
        *args: the sandbox's options (`python -m lever_sandbox --help`); ``--port 0`` (any free
            port) unless a ``--port`` is given.
        command: the command to run instead of ``python -m lever_sandbox`` (e.g. ``python -m
            toolkit.cli sandbox``, to test the delegation).
        env: the child's environment (default: this process's, PYTHONPATH included).
        cwd: the child's working folder.
        stderr: where the child's stderr goes (default: discarded; ``subprocess.PIPE`` keeps it
            in `stderr_text` after `stop`).
        startup_timeout: seconds to wait for the two lines.
    """

    def __init__(
        self,
        *args: str,
        command: Sequence[str] = MODULE_COMMAND,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        startup_timeout: float = 60.0,
    ) -> None:
        port = [] if "--port" in args else ["--port", "0"]
        self.argv = [*command, *port, *args]
        self.env = {}
        self.output: list[str] = []  # what the process printed after the two lines
        self.stderr_text = ""
        self._child_env = dict(os.environ if env is None else env)
        self._cwd = cwd
        self._stderr = stderr
        self._timeout = startup_timeout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_lines: list[str] = []
        self._readers: list[threading.Thread] = []
        self.proc: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    @property
    def base_url(self) -> str:
        return self.env["LEVER_BASE_URL"]

    @property
    def api_key(self) -> str:
        return self.env["LEVER_API_KEY"]

    def start(self) -> SandboxProcess:
        """Start the process; return once it printed its URL and key."""
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self._child_env,
            cwd=self._cwd,
        )
        self._readers = [threading.Thread(target=self._drain, name="sandbox-stdout", daemon=True)]
        if self.proc.stderr is not None:
            self._readers.append(
                threading.Thread(target=self._drain_stderr, name="sandbox-stderr", daemon=True)
            )
        for reader in self._readers:
            reader.start()
        try:
            self._read_env()
        except BaseException:
            self.stop()
            raise
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:  # keeps draining after the two lines
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr_lines.append(line)

    def _read_env(self) -> None:
        deadline = time.monotonic() + self._timeout
        while len(self.env) < len(NAMES):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SandboxStartError(
                    f"the sandbox printed no URL and key within {self._timeout:g} s"
                ) from None
            if line is None:
                assert self.proc is not None
                raise SandboxStartError(
                    f"the sandbox exited with status {self.proc.wait()} before it was ready"
                )
            name, _, value = line.partition("=")
            if name in NAMES and value and name not in self.env:
                self.env[name] = value
            else:
                self.output.append(line)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 10 s; the exit status. Stopping twice is harmless."""
        proc = self.proc
        if proc is None:
            return -1
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for reader in self._readers:  # they end at the pipes' end of file
            reader.join(timeout=5)
        self._readers = []
        self.stderr_text = "".join(self._stderr_lines)
        while not self._lines.empty():  # what the reader handed over after the two lines
            line = self._lines.get()
            if line is not None:
                self.output.append(line)
        self.returncode = proc.returncode
        return proc.returncode

    def stats(self) -> dict[str, Any]:
        """GET /_sandbox/stats with the full-access key."""
        token = base64.b64encode(f"{self.api_key}:".encode()).decode()
        root = self.base_url.rstrip("/").removesuffix("/v1")
        request = urllib.request.Request(
            f"{root}/_sandbox/stats", headers={"Authorization": f"Basic {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
