"""Tag families: one contact-level tag in several spellings, or a group of tags by pattern (pure).

A policy's ``contact_level`` entry is a tag (``"Python"``), a family with aliases
(``{tag: "Do not contact", aliases: ["DNC", "Do Not Contact"], normalize: true}``) or a pattern
(``{pattern: "Skill: *"}``). `family_changes` is the one function that resolves families over a
frame; the audit (the policy's gaps), the plan, sync, the explorer and the reports all call it:

* a contact carrying **any member** (the tag or an alias) on any considered opportunity counts as
  having the canonical tag, and every one of its opportunities without the exact canonical
  spelling gets an ``add`` (an opportunity carrying only ``DNC`` gets "Do not contact" too);
* with ``normalize``, every alias is also removed (``remove`` rows; apply adds before it removes
  on each opportunity, so the person is never left without the tag);
* a pattern is expanded over the account's tags (`expand_patterns`): each matching tag is a
  contact-level tag of its own, with no alias.

For a tag without aliases the ``add`` rows are exactly the audit's missing assignments of it, so
plain policies give the numbers they always gave.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from toolkit.audit.arrays import as_text, group_offsets, stable_argsort
from toolkit.audit.engine import AuditCore

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import ContactLevelSource

FAMILY_COLUMNS = ["opportunity_id", "contact_id", "op", "tag", "family"]


@dataclass(frozen=True)
class TagFamily:
    """A contact-level tag and the other spellings that stand for it.

    Example:
        >>> TagFamily("Do not contact", ("DNC",)).members
        ('Do not contact', 'DNC')
    """

    tag: str
    aliases: tuple[str, ...] = ()
    normalize: bool = False

    @property
    def members(self) -> tuple[str, ...]:
        return (self.tag, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "aliases": list(self.aliases), "normalize": self.normalize}


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A pattern as a regular expression: ``*`` is any run of characters, the rest is exact.

    Example:
        >>> bool(pattern_regex("Skill: *").fullmatch("Skill: Go")), bool(
        ...     pattern_regex("Skill: *").fullmatch("skill: Go"))
        (True, False)
    """
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def expand_patterns(
    patterns: Iterable[str], known_tags: Iterable[str], exclude: Iterable[str] = ()
) -> list[str]:
    """The known tags some pattern matches (sorted), without the excluded ones.

    Example:
        >>> expand_patterns(["Skill: *"], ["Skill: Go", "Go", "Skill: Rust"], ["Skill: Rust"])
        ['Skill: Go']
    """
    regexes = [pattern_regex(p) for p in patterns]
    if not regexes:
        return []
    skip = set(exclude)
    return sorted(
        {str(t) for t in known_tags if t not in skip and any(r.fullmatch(str(t)) for r in regexes)}
    )


def policy_families(
    policy: ContactLevelSource | None, known_tags: Iterable[str]
) -> tuple[TagFamily, ...]:
    """A policy's contact-level families over an account's tags (``Policy.resolve``); an object
    with only ``contact_level`` gives one plain family per tag.

    Example:
        >>> from types import SimpleNamespace
        >>> policy_families(SimpleNamespace(contact_level=["Go"]), ["Go"])
        (TagFamily(tag='Go', aliases=(), normalize=False),)
    """
    resolve = getattr(policy, "resolve", None)
    if resolve is not None:
        return tuple(resolve(known_tags))
    return tuple(TagFamily(str(t)) for t in getattr(policy, "contact_level", None) or ())


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: as_text([]) for c in FAMILY_COLUMNS}, columns=FAMILY_COLUMNS)


def family_changes(frame: pd.DataFrame, families: Sequence[TagFamily]) -> pd.DataFrame:
    """The changes that make every family whole on the frame's opportunities.

    Args:
        frame: a snapshot frame of considered opportunities.
        families: the families (a plain tag is a family without aliases); a tag belongs to the
            first family naming it.

    Returns:
        DataFrame[opportunity_id, contact_id, op, tag, family] sorted by contact, opportunity,
        op, tag: ``add`` the canonical tag (``family``) where a contact carrying any member
        lacks the exact canonical spelling; ``remove`` an alias of a ``normalize`` family
        wherever it is. ``contact_id`` is the opportunity's own id when it has no contact.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "d"],
        ...                   "tags": [["DNC"], [], ["Do not contact", "DNC"]]})
        >>> fam = TagFamily("Do not contact", ("DNC",), normalize=True)
        >>> family_changes(f, [fam])[["opportunity_id", "op", "tag"]].values.tolist()
        [['o1', 'add', 'Do not contact'], ['o1', 'remove', 'DNC'], ['o2', 'add', 'Do not contact'], ['o3', 'remove', 'DNC']]
    """  # noqa: E501
    member_of: dict[str, int] = {}
    for i, family in enumerate(families):
        for tag in family.members:
            member_of.setdefault(tag, i)
    if not member_of or frame.empty:
        return _empty()
    core = AuditCore.build(frame, tags=list(member_of))
    if not len(core.pair_tag):
        return _empty()
    labels = [str(t) for t in core.tag_labels]
    n_fam = len(families)
    fam_of = np.array([member_of[t] for t in labels], dtype=np.int64)
    canonical = np.array([families[member_of[t]].tag == t for t in labels], dtype=bool)
    removable = np.array(
        [families[member_of[t]].normalize and families[member_of[t]].tag != t for t in labels],
        dtype=bool,
    )
    pair_fam = fam_of[core.pair_tag]
    pair_row = core.pair_opp.astype(np.int64)
    codes = core.contact_codes.astype(np.int64)
    # (contact, family) carrying any member, and every row of those contacts
    carried = np.unique(codes[pair_row] * n_fam + pair_fam)
    contact, fam = np.divmod(carried, n_fam)
    sizes = core.opps_per_contact[contact]
    order = stable_argsort(core.contact_codes).astype(np.int64)
    starts = group_offsets(core.opps_per_contact)
    offsets = group_offsets(sizes)
    position = np.arange(int(sizes.sum()), dtype=np.int64)
    position += np.repeat(starts[contact] - offsets, sizes)
    rows = order[position]
    row_fam = np.repeat(fam, sizes)
    has_canonical = np.unique(
        pair_row[canonical[core.pair_tag]] * n_fam + pair_fam[canonical[core.pair_tag]]
    )
    lacking = ~np.isin(rows * n_fam + row_fam, has_canonical)
    add_rows, add_fam = rows[lacking], row_fam[lacking]
    rem = removable[core.pair_tag]
    rem_rows, rem_tag = pair_row[rem], core.pair_tag[rem]
    family_tag = np.array([f.tag for f in families], dtype=object)
    out = pd.DataFrame(
        {
            "opportunity_id": np.concatenate(
                [
                    np.asarray(core.opp_ids[add_rows], dtype=object),
                    np.asarray(core.opp_ids[rem_rows], dtype=object),
                ]
            ),
            "contact_id": np.concatenate(
                [
                    np.asarray(core.contact_labels[codes[add_rows]], dtype=object),
                    np.asarray(core.contact_labels[codes[rem_rows]], dtype=object),
                ]
            ),
            "op": ["add"] * len(add_rows) + ["remove"] * len(rem_rows),
            "tag": np.concatenate([family_tag[add_fam], np.array(labels, dtype=object)[rem_tag]]),
            "family": np.concatenate([family_tag[add_fam], family_tag[fam_of[rem_tag]]]),
        },
        columns=FAMILY_COLUMNS,
    )
    out = out.astype(object).sort_values(
        ["contact_id", "opportunity_id", "op", "tag"], kind="stable"
    )
    return out.reset_index(drop=True)


def family_summary(changes: pd.DataFrame) -> dict[str, int]:
    """The policy's gaps in the audit's words: unfixed (contact, family) pairs, their contacts,
    the canonical tags to add and the aliases to remove.

    Example:
        >>> rows = pd.DataFrame({"contact_id": ["c", "c"], "family": ["T", "T"],
        ...                      "op": ["add", "remove"]})
        >>> family_summary(rows)
        {'split_pairs': 1, 'split_contacts': 1, 'missing_assignments': 1, 'alias_removals': 1}
    """
    if changes.empty:
        return {
            "split_pairs": 0,
            "split_contacts": 0,
            "missing_assignments": 0,
            "alias_removals": 0,
        }
    pairs = changes[["contact_id", "family"]].drop_duplicates()
    return {
        "split_pairs": len(pairs),
        "split_contacts": int(pairs["contact_id"].nunique()),
        "missing_assignments": int((changes["op"] == "add").sum()),
        "alias_removals": int((changes["op"] == "remove").sum()),
    }
