"""The closed sets of words the toolkit uses (plan modes, the states of journaled writes and of
sync's queue), light enough for the command line's parser and the specs (no pandas, nothing of
the toolkit).

Each is a `StrEnum`: a member is the string it stands for (``CallState.DONE == "done"``), so the
journals on disk, the JSON files and the CSVs hold the same words as before there were enums.

Example:
    >>> Mode("rename") is Mode.RENAME, MODES
    (True, ('propagate', 'remove', 'rename', 'add'))
    >>> CallState.DONE == "done", "failed" in FAILURE_STATES, CallState("noop") in FINAL_STATES
    (True, True, True)
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """What a plan does: add missing assignments, take tags off, replace variants, or add tags
    to listed people."""

    PROPAGATE = "propagate"
    REMOVE = "remove"
    RENAME = "rename"
    ADD = "add"  # with a list of people (`plan --contacts`): the tags on all their opportunities


MODES: tuple[str, ...] = tuple(m.value for m in Mode)


class CallState(StrEnum):
    """A write call of the run journal (`toolkit.remediate.journal`)."""

    PENDING = "pending"  # planned, not started
    INTENT = "intent"  # the request may have left
    DONE = "done"  # Lever answered 2xx (or a resume check found the tags already in place)
    NOOP = "noop"  # nothing left to write (drift or a resume check)
    FAILED = "failed"  # a final error
    NOT_FOUND = "not_found"  # 404: the opportunity is gone


# The states a call ends in; the others (pending, intent) are open: a resume takes them up.
FINAL_STATES = frozenset({CallState.DONE, CallState.NOOP, CallState.FAILED, CallState.NOT_FOUND})
OPEN_STATES = frozenset(CallState) - FINAL_STATES
# The states of a write that did not get its change into Lever: the one definition of "failed"
# (the CLI, the reports and sync's activity report all count these, for the run journal's calls
# and sync's writes alike).
FAILURE_STATES = frozenset({CallState.FAILED, CallState.NOT_FOUND})


class InboxState(StrEnum):
    """An event (webhook or polled contact) in sync's queue: queued -> processing -> done."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class WriteState(StrEnum):
    """A write of `lever-tags sync` (its journal's ``sync_writes``)."""

    INTENT = "intent"  # committed before the request
    DONE = "done"
    DRY_RUN = "dry_run"  # what a dry run would have written
    FAILED = "failed"
    NOT_FOUND = "not_found"
    INTERRUPTED = "interrupted"  # an intent found after an unclean stop
