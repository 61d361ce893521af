"""The run lock of a journal: `<journal>.lock` beside it, held with `fcntl.flock` for the
journal's life, so two runs never share a journal. The kernel releases it when the process dies,
so a killed run never leaves a stale lock; a clean release removes the file while still holding
the lock (unlink, then unlock), and a file left behind by a crash is harmless.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from toolkit.remediate.journal_schema import JournalError
from toolkit.sanitize import private_dir

try:  # POSIX only; on other platforms the lock degrades to an O_EXCL-free best effort
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class RunLock:
    """The lock of the journal at `journal` (the file `<journal>.lock`)."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = journal.with_name(journal.name + ".lock")
        self._handle: Any = None

    def _is_current(self, handle: Any) -> bool:
        """The open lock file is still the one at `path` (not unlinked by its holder)."""
        try:
            ours, there = os.fstat(handle.fileno()), os.stat(self.path)
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino)

    def take(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        private_dir(self.path.parent)  # a folder made for --journal is 0700
        # A holder that releases cleanly unlinks the file and then unlocks. A run that opened
        # the old file just before may then lock a file nobody else sees; it must notice that
        # (the path no longer names its file) and take the lock again on the current one.
        for _attempt in range(100):
            handle = self._open()
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise JournalError(
                    f"another run holds the journal {self.journal} (lock {self.path}); "
                    "wait for it to finish or use another --journal"
                ) from None
            if self._is_current(handle):
                break
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        else:  # pragma: no cover  (another process keeps removing the file)
            raise JournalError(f"could not take the lock {self.path}; try again")
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def _open(self) -> Any:
        """Open (or create, 0600) the lock file without following a symlink; refuse anything
        but a plain file of its own (a hard link to another file would be truncated)."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            kind = "a symlink" if self.path.is_symlink() else "not usable"
            raise JournalError(
                f"the lock file {self.path} is {kind} ({exc.strerror}); remove it and retry"
            ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise JournalError(
                f"the lock file {self.path} is not a plain file of its own (a link or a "
                "device); remove it and retry"
            )
        return os.fdopen(fd, "r+")

    def release(self) -> None:
        """Remove the lock file while still holding the lock, then unlock."""
        if self._handle is not None:
            if self._is_current(self._handle):
                with contextlib.suppress(OSError):
                    self.path.unlink()
            with contextlib.suppress(OSError):
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def check_unlocked(journal: Path) -> None:
    """Refuse early (`JournalError`) when another run holds the journal, before any request.

    A probe: the lock is taken and released at once; the run takes it again for good when it
    opens the journal.
    """
    probe = RunLock(Path(journal))
    probe.take()
    probe.release()
