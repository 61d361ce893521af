"""Crash points for the crash tests, like the failpoints of databases (FoundationDB, TiKV).

`LEVER_TOOLKIT_FAILPOINTS="after_write=3,before_first_write"` makes the process kill itself with
SIGKILL (no cleanup, no flush: a real crash) the 3rd time it reaches `after_write`, and the first
time it reaches `before_first_write`. Unset, as it always is outside the tests, `hit` is one
environment lookup.

Points: `before_first_write` (planning journaled, nothing sent), `after_write` (Lever answered,
the outcome not yet journaled), `verify_midway` (verify has read part of the plan); for
`lever-tags sync`: `sync_after_accept` (a webhook stored, not yet answered), `sync_before_process`
(a contact's events taken from the queue, not yet checked), `sync_after_write` (Lever answered,
the outcome not yet journaled).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "LEVER_TOOLKIT_FAILPOINTS"
_lock = threading.Lock()
_reached: dict[str, int] = {}


def _armed(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in spec.split(","):
        name, _, count = item.strip().partition("=")
        if name:
            points[name] = int(count) if count.strip().isdigit() else 1
    return points


def hit(name: str) -> None:
    """Crash here (SIGKILL) when the environment arms this point and its count is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target = _armed(spec).get(name)
    if target is None:
        return
    with _lock:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] >= target:
            os.kill(os.getpid(), signal.SIGKILL)
