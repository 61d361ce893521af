"""`run_audit`: every table of the audit from one preparation of the snapshot frame."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the policy imports the audit's normalize_tag: a type-only import here
    from toolkit.policy import Policy

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from toolkit.audit.arrays import listify
from toolkit.audit.engine import AuditCore
from toolkit.audit.evidence import evidence_table
from toolkit.audit.families import TagFamily, family_changes, policy_families
from toolkit.audit.tables import considered
from toolkit.audit.variants import normalize_tag, variants_from_counts


@dataclass
class AuditResult:
    """Everything the audit found, as plain dicts and DataFrames.

    Attributes:
        summary: the ``summarize`` numbers (ints).
        coverage: ``tag_coverage`` of the considered opportunities.
        split_pairs: ``split_pairs``.
        missing_assignments: ``missing_assignments``.
        tag_statistics: ``tag_statistics``.
        variants: ``tag_variants``.
        evidence: ``contact_level_evidence``.
        policy_gaps: with a policy, what fills its contact-level families
            (``audit.families.family_changes``: canonical tags to add, aliases to remove);
            None without a policy.
        options: how the audit was run (include_archived, tags, policy source).
    """

    summary: dict[str, int]
    coverage: pd.DataFrame
    split_pairs: pd.DataFrame
    missing_assignments: pd.DataFrame
    tag_statistics: pd.DataFrame
    variants: pd.DataFrame
    evidence: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    policy_gaps: pd.DataFrame | None = None


def run_audit(
    frame: pd.DataFrame,
    include_archived: bool = True,
    tags: Iterable[str] | None = None,
    *,
    policy: Policy | None = None,
) -> AuditResult:
    """Run the whole audit on a snapshot frame (one preparation, every table).

    Args:
        frame: the snapshot frame (all opportunities the key can read).
        include_archived: consider archived opportunities (default true).
        tags: optional subset of tags to audit (exact strings). The opportunity and contact counts
            stay those of the whole account; split pairs, missing assignments, statistics and
            evidence cover these tags only (a requested tag absent from the account gets a row of
            zeros in the statistics); variants keep the groups containing one of them.
        policy: optional ``toolkit.policy.Policy``; its ``include_archived`` overrides the argument,
            its decisions fill the evidence ``policy`` column, and its contact-level families
            (aliases, patterns: ``Policy.resolve``) give ``policy_gaps``.

    Returns:
        An ``AuditResult``.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2", "o3"],
        ...                   "contact_id": ["c", "c", "c"],
        ...                   "tags": [["a"], ["a"], []],
        ...                   "archived": [False, False, True]})
        >>> run_audit(f).summary["missing_assignments"]
        1
        >>> run_audit(f, include_archived=False).summary["split_pairs"]
        0
    """
    if policy is not None:
        include_archived = bool(policy.include_archived)
    wanted = None if tags is None else list(dict.fromkeys(listify(tags)))
    frame = considered(frame, include_archived=include_archived)
    core = AuditCore.build(frame, tags=wanted)
    variants = variants_from_counts(list(core.all_tag_labels), core.all_tag_opportunities)
    if wanted is not None and len(variants):
        groups = {normalize_tag(t) for t in wanted}
        variants = variants.loc[variants["group"].isin(groups)].reset_index(drop=True)
    gaps: pd.DataFrame | None = None
    families: tuple[TagFamily, ...] = ()
    if policy is not None:
        families = policy_families(policy, core.all_tag_labels)
        gaps = family_changes(frame, families)
    return AuditResult(
        policy_gaps=gaps,
        summary=core.summary(),
        coverage=core.coverage(),
        split_pairs=core.split_pairs(),
        missing_assignments=core.missing(),
        tag_statistics=core.tag_statistics(),
        variants=variants,
        evidence=evidence_table(core, 5, 0.1, 0.2, policy),
        options={
            "include_archived": include_archived,
            "tags": wanted,
            "policy": getattr(policy, "source", None) if policy is not None else None,
            "contact_level": [f.tag for f in families],
        },
    )
