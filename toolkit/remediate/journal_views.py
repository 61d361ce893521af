"""Reading a finished (or running) journal without taking its lock: its summary and its calls
as a table, for reports and notebooks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, INTENT


def journal_summary(path: str | os.PathLike) -> dict[str, Any]:
    """Summarize a journal without taking its lock (safe while a run is going).

    Returns:
        A dict with kind, status, calls, calls_by_state, applied/failed/not_found/pending
        (changes, i.e. tags), dropped, writes, attempts, sessions.

    Example:
        >>> journal_summary("run.sqlite")["calls_by_state"]  # doctest: +SKIP
        {'done': 120, 'failed': 1}
    """
    with Journal(path, lock=False, create=False) as journal:
        return journal.summary()


def journal_frame(path: str | os.PathLike) -> pd.DataFrame:
    """The calls of a journal as a DataFrame (one row per (opportunity, op)), without locking."""
    with Journal(path, lock=False, create=False) as journal:
        return journal.calls_frame()


def journal_written_ids(paths: Iterable[str | os.PathLike]) -> set[str]:
    """The opportunities the runs of these journals wrote (or may have written).

    Example:
        >>> journal_written_ids(["plan.journal.sqlite"])  # doctest: +SKIP
        {'0b1c...', ...}
    """
    out: set[str] = set()
    for path in paths:
        with Journal(path, lock=False, create=False) as journal:
            for call in journal.calls([DONE, INTENT, FAILED]):
                out.add(call.opportunity_id)
    return out
