"""Test-side references, independent of the code under test.

`reference_audit`: plain-Python audit numbers computed straight from Lever-shaped objects; the
end-to-end tests compare the toolkit's vectorised answers with these loops over the sandbox's
own data. `write_log`: counts the tag writes the sandbox really applied, per (opportunity, op).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable


def is_archived(opp: dict) -> bool:
    return bool(opp.get("archived")) or opp.get("archivedAt") is not None


def reference_audit(opportunities: Iterable[dict], include_archived: bool = True) -> dict:
    """Summary, split pairs, missing assignments as docs/architecture.md defines them, by loops."""
    by_contact: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
    for opp in opportunities:
        if not include_archived and is_archived(opp):
            continue
        contact = opp.get("contact") or f"self:{opp['id']}"
        by_contact[contact].append((opp["id"], set(opp.get("tags") or [])))
    pairs: set[tuple[str, str]] = set()
    missing: set[tuple[str, str, str]] = set()
    for contact, opps in by_contact.items():
        if len(opps) < 2:
            continue
        for tag in set().union(*(tags for _, tags in opps)):
            holders = [oid for oid, tags in opps if tag in tags]
            if 0 < len(holders) < len(opps):
                pairs.add((contact, tag))
                missing.update((oid, contact, tag) for oid, tags in opps if tag not in tags)
    return {
        "summary": {
            "opportunities": sum(len(v) for v in by_contact.values()),
            "contacts": len(by_contact),
            "multi_opportunity_contacts": sum(1 for v in by_contact.values() if len(v) > 1),
            "split_contacts": len({c for c, _ in pairs}),
            "split_pairs": len(pairs),
            "missing_assignments": len(missing),
        },
        "pairs": pairs,
        "missing": missing,
    }


def split_pairs_of(opportunities: Iterable[dict], tag: str) -> set[tuple[str, str]]:
    """The split pairs `(contact, tag)` of one tag, by the loops above."""
    return {pair for pair in reference_audit(opportunities)["pairs"] if pair[1] == tag}


def write_log(sb) -> Counter:
    """Effective tag writes per (opportunity, op), counted inside the sandbox (test-side hook)."""
    log: Counter = Counter()
    state = sb.engine.state
    original = state.change_tags

    def change_tags(opp_id, add=(), remove=()):
        result = original(opp_id, add=add, remove=remove)
        log[(opp_id, "add" if add else "remove")] += 1
        return result

    state.change_tags = change_tags
    return log
