"""The contact x tag coverage grid (the explorer and the heatmap): the share of each contact's
opportunities carrying each tag, for the most affected contacts. One rule for picking them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from toolkit.audit.arrays import as_text, listify
from toolkit.audit.engine import COVERAGE_COLUMNS, AuditCore


def coverage_grid(
    frame: pd.DataFrame,
    contacts: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    max_contacts: int | None = 50,
    max_tags: int | None = 40,
    *,
    split_only: bool = False,
) -> pd.DataFrame:
    """A contact x tag matrix: the share of the contact's opportunities that carry the tag.

    Values are ``with_tag / opportunities`` in 0..1 and NaN where the contact has the tag on
    none of its opportunities, so a heatmap shows split cells (strictly between 0 and 1) at a
    glance.

    Without ``contacts``, the contacts with the most split pairs are shown (then the most
    opportunities, then contact_id), at most ``max_contacts``. Without ``tags``, the tags carried by
    the shown contacts, the most often split among them first, at most ``max_tags``. Given
    ``contacts`` or ``tags`` are kept in the given order (unknown ones give all-NaN rows/columns).

    Args:
        frame: a snapshot frame of considered opportunities, or its coverage table already
            computed (``contact_id, tag, with_tag, opportunities``: `tag_coverage`,
            `AuditResult.coverage` or `split_pairs`).
        contacts: contact ids to show (None: pick as above).
        tags: tags to show (None: pick as above).
        max_contacts: cap on the picked contacts (None: no cap).
        max_tags: cap on the picked tags (None: no cap).
        split_only: pick only contacts with a split pair and tags split for one of them (the
            report's heatmap of the most affected contacts).

    Returns:
        DataFrame indexed by ``contact_id``, one float column per tag (columns named ``tag``).

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["a", "b"], ["a"], ["b"]]})
        >>> coverage_grid(f).to_dict("index")
        {'c': {'b': 0.5, 'a': 1.0}, 'd': {'b': 1.0, 'a': nan}}
    """
    if set(COVERAGE_COLUMNS) <= set(frame.columns):
        cov = frame[COVERAGE_COLUMNS].astype({"contact_id": str, "tag": str})
    else:
        cov = AuditCore.build(frame).coverage()
    cov["fraction"] = cov["with_tag"] / cov["opportunities"]
    cov["split"] = (cov["opportunities"] >= 2) & (cov["with_tag"] < cov["opportunities"])
    if contacts is None:
        per_contact = (
            cov.groupby("contact_id", sort=False)
            .agg(split=("split", "sum"), opportunities=("opportunities", "first"))
            .reset_index()
        )
        per_contact = per_contact.sort_values(
            ["split", "opportunities", "contact_id"], ascending=[False, False, True]
        )
        if split_only:
            per_contact = per_contact.loc[per_contact["split"] > 0]
        if tags is not None:
            wanted_tags = set(listify(tags))
            has = cov.loc[cov["tag"].isin(wanted_tags), "contact_id"].unique()
            per_contact = per_contact.loc[per_contact["contact_id"].isin(has)]
        picked = per_contact["contact_id"].tolist()
        if max_contacts is not None:
            picked = picked[:max_contacts]
    else:
        picked = list(dict.fromkeys(listify(contacts)))
    shown = cov.loc[cov["contact_id"].isin(set(picked))]
    if tags is None:
        per_tag = (
            (shown.loc[shown["split"]] if split_only else shown)
            .groupby("tag", sort=False)
            .agg(split=("split", "sum"), contacts=("contact_id", "size"))
            .reset_index()
            .sort_values(["split", "contacts", "tag"], ascending=[False, False, True])
        )
        tag_list = per_tag["tag"].tolist()
        if max_tags is not None:
            tag_list = tag_list[:max_tags]
    else:
        tag_list = list(dict.fromkeys(listify(tags)))
    grid = shown.pivot(index="contact_id", columns="tag", values="fraction") if len(shown) else None
    index = pd.Index(as_text(picked), name="contact_id")
    columns = pd.Index(as_text(tag_list), name="tag")
    if grid is None:
        return pd.DataFrame(np.nan, index=index, columns=columns, dtype=np.float64)
    out = grid.reindex(index=index, columns=columns).astype(np.float64)
    out.index.name, out.columns.name = "contact_id", "tag"
    return out
