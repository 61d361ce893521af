"""A policy drafted from the evidence (`lever-tags policy draft`): pure, frames in, YAML text out.

The audit's evidence (`toolkit.audit.evidence`) suggests, per tag, "likely contact-level",
"likely opportunity-level" or "unclear". The draft turns that into a valid policy file for the
user to review: ``contact_level`` holds exactly the tags the evidence calls contact-level, each
with a comment giving its numbers; opportunity-level and unclear tags are listed in comments only
(never in ``contact_level``); near-duplicate spellings (`toolkit.audit.variants`) are noted beside
their canonical spelling. The decision stays the user's: nothing is propagated until they keep
the file and plan with it.

Every tag in the text is written as a double-quoted YAML scalar with every line break escaped,
so no tag from Lever can break out of its comment or its list item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
import yaml

from toolkit.audit.engine import AuditCore
from toolkit.audit.evidence import evidence_table
from toolkit.audit.tables import considered
from toolkit.audit.variants import variants_from_counts
from toolkit.policy import Policy
from toolkit.sanitize import tag_problem

__all__ = ["PolicyDraft", "draft_policy", "yaml_quote"]

CONTACT = "likely contact-level"
OPPORTUNITY = "likely opportunity-level"
MIN_CONTACTS = 5  # the evidence's own thresholds (`run_audit` uses the same)
SCATTERED_BELOW = 0.1
CLUSTERED_ABOVE = 0.2
# YAML (1.1, PyYAML) also breaks lines at NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR
_YAML_BREAKS = {"\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P"}


def yaml_quote(text: str) -> str:
    """`text` as a one-line double-quoted YAML scalar (safe inside a comment or a list item).

    Example:
        >>> yaml_quote('Do not "contact"\\nnever_touch: [x]')
        '"Do not \\\\"contact\\\\"\\\\nnever_touch: [x]"'
        >>> yaml.safe_load(yaml_quote("a\\u2028b")) == "a\\u2028b"
        True
    """
    quoted = json.dumps(str(text), ensure_ascii=False)  # JSON strings are YAML scalars
    for raw, escaped in _YAML_BREAKS.items():
        quoted = quoted.replace(raw, escaped)
    return quoted


@dataclass(frozen=True)
class PolicyDraft:
    """A drafted policy: the YAML text and what it decided.

    Attributes:
        text: the policy file (valid: `Policy.from_dict` reads it).
        contact_level: the tags in ``contact_level`` (the evidence's contact-level tags).
        opportunity_level: tags listed in comments as likely opportunity-level.
        unclear: tags listed in comments as unclear.
        variants: {canonical: [variant spellings]} noted beside the canonical.
        unwritable: tags Lever could not be given (empty, control characters, too long).
    """

    text: str
    contact_level: tuple[str, ...]
    opportunity_level: tuple[str, ...] = ()
    unclear: tuple[str, ...] = ()
    variants: dict[str, list[str]] = field(default_factory=dict)
    unwritable: tuple[str, ...] = ()

    @property
    def policy(self) -> Policy:
        """The drafted file, read back as a `Policy`."""
        return Policy.from_dict(yaml.safe_load(self.text), source="<draft>")


def _numbers(row: pd.Series) -> str:
    return (
        f"{int(row['opportunities'])} opportunities; {int(row['contacts_with_tag'])} contacts "
        f"with several carry it, {row['full_coverage_rate']:.0%} on all of theirs; "
        f"clustering {row['clustering']:.2f}"
    )


def _variant_note(tag: str, variants: dict[str, list[str]], counts: dict[str, int]) -> str:
    spellings = variants.get(tag)
    if not spellings:
        return ""
    listed = ", ".join(f"{yaml_quote(v)} ({counts.get(v, 0)} opportunities)" for v in spellings)
    return f"; variants: {listed}"


def draft_policy(
    frame: pd.DataFrame, *, include_archived: bool = True, source: str = ""
) -> PolicyDraft:
    """Draft a policy from the evidence of a snapshot frame (pure).

    Args:
        frame: a snapshot frame (every opportunity the key can read).
        include_archived: consider archived opportunities (written into the draft).
        source: where the frame came from (a snapshot path), named in the header.

    Returns:
        A `PolicyDraft` whose ``text`` is a valid policy file.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": [f"o{i}" for i in range(12)],
        ...                   "contact_id": [f"c{i // 2}" for i in range(12)],
        ...                   "tags": [["Python", "Full-time"], ["Python"]] * 6})
        >>> d = draft_policy(f)
        >>> d.contact_level, d.opportunity_level, d.policy.contact_level
        (('Python',), ('Full-time',), ('Python',))
    """
    core = AuditCore.build(considered(frame, include_archived=include_archived))
    evidence = evidence_table(core, MIN_CONTACTS, SCATTERED_BELOW, CLUSTERED_ABOVE, None)
    table = variants_from_counts(list(core.all_tag_labels), core.all_tag_opportunities)
    counts = dict(zip(table["tag"], table["opportunities"].astype(int), strict=True))
    variants: dict[str, list[str]] = {}
    spelled: set[str] = set()
    for tag, canonical, is_canonical in zip(
        table["tag"], table["canonical"], table["is_canonical"], strict=True
    ):
        if not is_canonical:
            variants.setdefault(str(canonical), []).append(str(tag))
            spelled.add(str(tag))

    lines: dict[str, list[tuple[str, str]]] = {CONTACT: [], OPPORTUNITY: [], "unclear": []}
    chosen: dict[str, list[str]] = {CONTACT: [], OPPORTUNITY: [], "unclear": []}
    unwritable: list[str] = []
    for _, row in evidence.iterrows():
        tag = str(row["tag"])
        if tag in spelled:
            continue  # noted beside its canonical spelling
        if tag_problem(tag) is not None:
            unwritable.append(tag)
            continue
        kind = row["suggestion"] if row["suggestion"] in (CONTACT, OPPORTUNITY) else "unclear"
        why = _numbers(row)
        if kind == OPPORTUNITY and row["posting_reason"]:
            why = f"{row['posting_reason']}: {why}"
        elif kind == "unclear" and int(row["contacts_with_tag"]) < MIN_CONTACTS:
            why = f"too few contacts to tell (fewer than {MIN_CONTACTS}): {why}"
        why += _variant_note(tag, variants, counts)
        chosen[kind].append(tag)
        lines[kind].append((tag, why))

    text = _render(lines, unwritable, include_archived, source, len(frame))
    draft = PolicyDraft(
        text=text,
        contact_level=tuple(chosen[CONTACT]),
        opportunity_level=tuple(chosen[OPPORTUNITY]),
        unclear=tuple(chosen["unclear"]),
        variants=variants,
        unwritable=tuple(unwritable),
    )
    if draft.policy.contact_level != draft.contact_level:  # the file says what the draft says
        raise AssertionError("the drafted policy does not read back as drafted")
    return draft


def _render(
    lines: dict[str, list[tuple[str, str]]],
    unwritable: list[str],
    include_archived: bool,
    source: str,
    opportunities: int,
) -> str:
    out = [
        "# lever-tag-toolkit policy, drafted by `lever-tags policy draft` from the audit's "
        "evidence",
        f"# ({opportunities} opportunities{', snapshot ' + yaml_quote(source) if source else ''})."
        " A draft: review every line, the decision is yours.",
        "# Numbers per tag: the opportunities carrying it; the contacts with several",
        "# opportunities that carry it, and the share of them carrying it on all of theirs; its",
        "# clustering (0: it follows opportunities, like a posting or a stage; up to 1: it",
        "# follows the person).",
        "# Tags are exact strings (case sensitive).",
        "version: 1",
        "# contact_level: the tags the evidence calls contact-level; propagated to every",
        "# opportunity of the person by `lever-tags plan --policy`.",
        "contact_level:" + ("" if lines[CONTACT] else " []"),
    ]
    out += [f"  - {yaml_quote(tag)}  # {why}" for tag, why in lines[CONTACT]]
    out += [
        "# never_touch: tags the toolkit must never add or remove (stage markers, for example).",
        "never_touch: []",
        "# Likely opportunity-level (posting, team, location, commitment, stage): meant to",
        "# differ between a person's opportunities; never propagated. Listed for review only.",
    ]
    out += [f"#   - {yaml_quote(tag)}  # {why}" for tag, why in lines[OPPORTUNITY]]
    out += [
        "# Unclear: the evidence does not decide. Move a line into contact_level to propagate",
        "# it, or into never_touch to protect it.",
    ]
    out += [f"#   - {yaml_quote(tag)}  # {why}" for tag, why in lines["unclear"]]
    if unwritable:
        out.append("# Tags Lever could not be given (empty, control characters, too long):")
        out += [f"#   - {yaml_quote(tag)}" for tag in unwritable]
    out += [
        f"include_archived: {'true' if include_archived else 'false'}",
        "skip_anonymized: true",
    ]
    return "\n".join(out) + "\n"
