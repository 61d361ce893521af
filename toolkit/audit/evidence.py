"""Evidence whether a tag describes the person (contact-level) or the opportunity (posting, team,
location, stage). Evidence only: the decision is the user's, in the policy file."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the policy imports the audit's normalize_tag: a type-only import here
    from toolkit.policy import Policy

import re
from typing import Protocol

import numpy as np
import pandas as pd

from toolkit.audit.arrays import as_text
from toolkit.audit.engine import EVIDENCE_COLUMNS, AuditCore
from toolkit.audit.variants import normalize_tag

_COMMITMENTS = frozenset(
    {
        "full time",
        "fulltime",
        "part time",
        "parttime",
        "intern",
        "internship",
        "contract",
        "contractor",
        "contract to hire",
        "temp to hire",
        "temporary",
        "temp",
        "freelance",
        "seasonal",
        "permanent",
        "fixed term",
        "per diem",
        "co op",
    }
)


_WORK_MODES = frozenset({"remote", "hybrid", "on site", "onsite", "in office", "anywhere"})


# "Austin, TX" / "San Francisco, CA" / "St. Louis, MO": a city, a comma, a two-letter region code
_CITY_STATE = re.compile(r"^[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?,\s*[A-Z]{2}$")


def looks_posting_derived(tag: str) -> str:
    """Why a tag's *name* looks like posting data, or "" when it does not.

    Lever copies a posting's commitment and location onto the opportunity; such tags are meant to
    differ between a person's opportunities. Heuristic, for evidence only:

    * ``"commitment"``: Full-time, Part-time, Intern(ship), Contract(or), Temporary, Freelance, ...
    * ``"location"``: "City, ST" (two capital letters after a comma), or a work mode
      ("Remote", "Hybrid", "On-site", "Remote - US", "London (Remote)").

    Example:
        >>> [looks_posting_derived(t) for t in ["Full-time", "Austin, TX", "Remote - EU", "Python"]]
        ['commitment', 'location', 'location', '']
    """
    key = normalize_tag(tag).replace("-", " ").replace("_", " ")
    key = " ".join(key.split())
    if key in _COMMITMENTS:
        return "commitment"
    words = set(re.findall(r"[^\W\d_]+(?: site| office)?", key))
    if key in _WORK_MODES or "remote" in words:
        return "location"
    if _CITY_STATE.match(" ".join(str(tag).split())):
        return "location"
    return ""


def contact_level_evidence(
    frame: pd.DataFrame,
    *,
    min_contacts: int = 5,
    scattered_below: float = 0.1,
    clustered_above: float = 0.2,
    policy: Policy | None = None,
) -> pd.DataFrame:
    """Evidence, per tag, on whether it describes the person or the opportunity.

    Counted among the multi-opportunity contacts carrying the tag (``contacts_with_tag``):
    ``full_coverage_contacts`` have it on all their opportunities, ``split_contacts`` on some;
    ``full_coverage_rate`` and ``split_rate`` are their shares (0 when ``contacts_with_tag`` is 0;
    they add up to 1 otherwise); ``mean_coverage`` is the mean share of a carrying contact's
    opportunities that have it.

    ``expected_coverage`` is that mean share if the tag were scattered over opportunities at random
    with its overall frequency ``p`` (a contact with ``m`` opportunities that has it at least once
    would have ``p / (1 - (1 - p) ** m)`` of them covered), and ``clustering`` rescales the gap:
    ``(mean_coverage - expected_coverage) / (1 - expected_coverage)``, 0 for a tag that follows
    opportunities (a posting, team, location or stage), up to 1 for one that follows the person.
    It is 0 when undefined (no multi-opportunity contact, or a tag on nearly every opportunity).
    Why not the full coverage rate alone: after the migration, person tags are themselves split
    on most contacts (new opportunities lack them), so their full coverage is low too; their
    clustering still stands out (on the sandbox's data: 0.29 to 0.79 for person tags, -0.06 to
    0.04 for posting and stage tags).

    ``looks_posting_derived`` (with ``posting_reason``), a documented heuristic, is true when the
    name looks like a commitment or a location (``"commitment"``, ``"location"``: see
    ``looks_posting_derived``), or ``"scattered"``: at least ``min_contacts`` contacts carry it and
    its clustering is below ``scattered_below``.

    ``suggestion`` puts the evidence in words: ``"likely opportunity-level"`` when it looks posting
    derived; ``"likely contact-level"`` when at least ``min_contacts`` contacts carry it and its
    clustering is at least ``clustered_above`` or it is on all opportunities of 90% of them;
    ``"unclear"`` otherwise. It is evidence only: the decision is the user's, in the policy file
    (shown in ``policy``: "contact_level", "never_touch" or "").

    Args:
        frame: a snapshot frame of considered opportunities.
        min_contacts: carrying multi-opportunity contacts needed before coverage counts.
        scattered_below: clustering under which a tag looks opportunity-level.
        clustered_above: clustering from which a tag looks contact-level.
        policy: optional policy whose decisions fill the ``policy`` column.

    Returns:
        One row per tag, sorted by contacts_with_tag descending, then tag.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python", "Full-time"], ["Python"]]})
        >>> e = contact_level_evidence(f, min_contacts=1)
        >>> e[["tag", "full_coverage_rate", "posting_reason", "suggestion"]].values.tolist()
        [['Full-time', 0.0, 'commitment', 'likely opportunity-level'], ['Python', 1.0, '', 'likely contact-level']]
    """  # noqa: E501
    return evidence_table(
        AuditCore.build(frame), min_contacts, scattered_below, clustered_above, policy
    )


THRESHOLDS = (5, 0.1, 0.2)  # min_contacts, scattered_below, clustered_above: the defaults


class TagSums(Protocol):
    """What the evidence reads: per-tag sums (`engine.tag_sums`) and the sorted tag labels; an
    `AuditCore`, or the explorer's index (which has them without building a second core)."""

    @property
    def per_tag_counts(self) -> dict[str, np.ndarray]: ...

    @property
    def tag_labels(self) -> pd.Index: ...


def evidence_table(
    core: TagSums,
    min_contacts: int,
    scattered_below: float,
    clustered_above: float,
    policy: Policy | None,
) -> pd.DataFrame:
    per = core.per_tag_counts
    multi = per["multi"].astype(np.int64)
    full = per["full"].astype(np.int64)
    split = per["split"].astype(np.int64)
    has = multi > 0
    full_rate = np.divide(full, multi, out=np.zeros(len(multi)), where=has)
    split_rate = np.divide(split, multi, out=np.zeros(len(multi)), where=has)
    mean_cov = np.divide(per["share_sum"], multi, out=np.zeros(len(multi)), where=has)
    expected = np.divide(per["expected_sum"], multi, out=np.zeros(len(multi)), where=has)
    defined = has & (expected < 0.95)
    clustering = np.divide(
        mean_cov - expected, 1.0 - expected, out=np.zeros(len(multi)), where=defined
    )
    labels = [str(t) for t in core.tag_labels]
    enough = multi >= min_contacts
    scattered = enough & defined & (clustering < scattered_below)
    reasons = [
        looks_posting_derived(t) or ("scattered" if sc else "")
        for t, sc in zip(labels, scattered, strict=True)
    ]
    posting = np.array([bool(r) for r in reasons], dtype=bool)
    person = enough & ((defined & (clustering >= clustered_above)) | (full_rate >= 0.9))
    suggestion = np.where(
        posting,
        "likely opportunity-level",
        np.where(person, "likely contact-level", "unclear"),
    )
    decide = getattr(policy, "decision", None)  # aliases and patterns count (toolkit.policy)
    if decide is None:
        named = set(getattr(policy, "contact_level", None) or ())
        never = set(getattr(policy, "never_touch", None) or ())

        def decide(tag: str) -> str:
            return "contact_level" if tag in named else "never_touch" if tag in never else ""

    decided = [decide(t) or "" for t in labels]
    out = pd.DataFrame(
        {
            "tag": core.tag_labels.array,
            "opportunities": per["opportunities"].astype(np.int64),
            "contacts_with_tag": multi,
            "full_coverage_contacts": full,
            "full_coverage_rate": full_rate.astype(np.float64),
            "split_contacts": split,
            "split_rate": split_rate.astype(np.float64),
            "mean_coverage": mean_cov.astype(np.float64),
            "expected_coverage": expected.astype(np.float64),
            "clustering": clustering.astype(np.float64),
            "looks_posting_derived": posting,
            "posting_reason": as_text(reasons),
            "suggestion": as_text(suggestion.tolist()),
            "policy": as_text(decided),
        },
        columns=EVIDENCE_COLUMNS,
    )
    order = np.argsort(-multi, kind="stable")
    return out.take(order).reset_index(drop=True)
