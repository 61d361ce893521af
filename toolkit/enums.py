"""The closed sets of words the toolkit uses (plan modes), light enough for the command line's
parser and the specs (no pandas, nothing of the toolkit).

Example:
    >>> Mode("rename") is Mode.RENAME, MODES
    (True, ('propagate', 'remove', 'rename', 'add'))
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
