"""The audit's tables, one function each: explode, coverage, split pairs, missing assignments,
the summary and per-tag statistics (pure pandas over the engine, `toolkit.audit.engine`)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from toolkit.audit.arrays import require_columns
from toolkit.audit.engine import AuditCore


def explode_tags(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per distinct (opportunity, tag) of the frame.

    A tag repeated in one opportunity's list gives one row. An opportunity without a contact gets
    its own ``opportunity_id`` as contact key. Opportunities without tags give no rows.

    Args:
        frame: a snapshot frame (``opportunity_id``, ``contact_id``, ``tags``).
        tags: optional subset of tags (exact strings) to keep.

    Returns:
        DataFrame[opportunity_id, contact_id, tag], ordered by frame row, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", None],
        ...                   "tags": [["b", "a", "b"], ["a"]]})
        >>> explode_tags(f).values.tolist()
        [['o1', 'c', 'a'], ['o1', 'c', 'b'], ['o2', 'o2', 'a']]
    """
    return AuditCore.build(frame, tags=tags).exploded()


def tag_coverage(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """For every (contact, tag) present: on how many of the contact's opportunities it is.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[contact_id, tag, with_tag, opportunities] sorted by contact_id then tag
        (contactless opportunities, keyed by their opportunity_id, come last).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["a"], ["a", "b"]]})
        >>> tag_coverage(f).values.tolist()
        [['c', 'a', 2, 2], ['c', 'b', 1, 2]]
    """
    return AuditCore.build(frame, tags=tags).coverage()


def split_pairs(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """The split pairs: a contact with 2+ opportunities and a tag on some but not all of them.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[contact_id, tag, with_tag, opportunities] sorted by contact_id then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> split_pairs(f).values.tolist()
        [['c', 'b', 1, 2]]
    """
    return AuditCore.build(frame, tags=tags).split_pairs()


def missing_assignments(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """The (opportunity, tag) pairs that propagating every split tag would add.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        DataFrame[opportunity_id, contact_id, tag] sorted by contact_id, tag, then frame order.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "c"],
        ...                   "tags": [["a", "b"], ["a"], []]})
        >>> missing_assignments(f).values.tolist()
        [['o3', 'c', 'a'], ['o2', 'c', 'b'], ['o3', 'c', 'b']]
    """
    return AuditCore.build(frame, tags=tags).missing()


def summarize(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> dict[str, int]:
    """The headline numbers of the audit.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        ``{"opportunities", "contacts", "multi_opportunity_contacts", "split_contacts",
        "split_pairs", "missing_assignments"}``, all ints.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3", "o4"],
        ...                   "contact_id": ["c", "c", "d", None],
        ...                   "tags": [["a", "b"], ["a"], ["b"], ["z"]]})
        >>> summarize(f)  # doctest: +NORMALIZE_WHITESPACE
        {'opportunities': 4, 'contacts': 3, 'multi_opportunity_contacts': 1,
         'split_contacts': 1, 'split_pairs': 1, 'missing_assignments': 1}
    """
    return AuditCore.build(frame, tags=tags).summary()


def tag_statistics(frame: pd.DataFrame, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-tag statistics: how widely each tag is used and how often it is split.

    Columns: ``opportunities`` (opportunities carrying it), ``contacts`` (contacts carrying it on
    at least one opportunity), ``multi_opportunity_contacts`` (those with 2+ opportunities),
    ``split_contacts``, ``split_rate`` (split_contacts / multi_opportunity_contacts, 0 when there
    are none), ``missing_assignments``.

    Args:
        frame: a snapshot frame of considered opportunities.
        tags: optional subset of tags (exact strings) to restrict the tag-based results to;
            computing only those is cheaper than filtering afterwards.

    Returns:
        One row per tag, sorted by split_contacts descending, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> tag_statistics(f)[["tag", "contacts", "split_contacts", "split_rate"]].values.tolist()
        [['b', 2, 1, 1.0], ['a', 1, 0, 0.0]]
    """
    return AuditCore.build(frame, tags=tags).tag_statistics()


def considered(snapshot_frame: pd.DataFrame, include_archived: bool = True) -> pd.DataFrame:
    """The considered opportunities of a snapshot frame.

    Confidential opportunities are always considered (the snapshot already holds what the key can
    read); archived ones unless ``include_archived`` is false. Anonymized opportunities stay: they
    are part of the picture, only writes skip them.

    Args:
        snapshot_frame: the snapshot frame (needs ``archived`` when archived ones are dropped).
        include_archived: keep archived opportunities (the default, as in docs/architecture.md).

    Returns:
        A new frame with the considered rows, index reset.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["a"], []], "archived": [False, True]})
        >>> considered(f, include_archived=False)["opportunity_id"].tolist()
        ['o1']
        >>> len(considered(f))
        2
    """
    if include_archived:
        return snapshot_frame.reset_index(drop=True)
    require_columns(snapshot_frame, ["archived"], "considered(include_archived=False)")
    column = snapshot_frame["archived"]
    if column.dtype == bool:
        archived = column.to_numpy()
    else:  # nullable or object booleans: missing counts as not archived
        archived = column.astype("boolean").fillna(False).to_numpy(dtype=bool)
    return snapshot_frame.loc[~archived].reset_index(drop=True)
