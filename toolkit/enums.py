"""The closed sets of words the toolkit uses (plan modes), light enough for the command line's
parser and the specs (no pandas, nothing of the toolkit).

Example:
    >>> Mode("rename") is Mode.RENAME, MODES
    (True, ('propagate', 'remove', 'rename'))
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """What a plan does: add missing assignments, take tags off, or replace variants."""

    PROPAGATE = "propagate"
    REMOVE = "remove"
    RENAME = "rename"


MODES: tuple[str, ...] = tuple(m.value for m in Mode)
