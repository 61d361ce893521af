"""Clean stops: SIGINT and SIGTERM during an apply or a rollback finish the calls in flight.

`stop_on_signals` replaces the two handlers for the length of a run (main thread only): the
first signal sets a `StopRequest`, the runner's workers send no new call once it is set, each
finishes the call it has in flight and journals its outcome, and the run ends "stopped" with the
rest left pending for the same command to resume. A second signal of either kind stops at once
(KeyboardInterrupt): the journal's intents still make that resumable, as after a kill.

Exit codes (docs/operations.md): 128 + the signal number, the shell's convention: 130 after
SIGINT (Ctrl-C), 143 after SIGTERM (systemd, CI runners, `kill`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest(threading.Event):
    """Set by the first SIGINT/SIGTERM; `signum` says which."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.set()

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM); 0 when not stopped.

        Example:
            >>> stop = StopRequest()
            >>> stop.request(signal.SIGTERM)
            >>> stop.exit_code
            143
        """
        return 128 + int(self.signum) if self.signum is not None else 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM into a `StopRequest` while the block runs (handlers restored).

    Outside the main thread (a notebook kernel's worker, a test thread) no handler can be set:
    the request is returned all the same and never set.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop now
        stop.request(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["STOP_SIGNALS", "StopRequest", "stop_on_signals"]
