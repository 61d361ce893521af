"""Test-side references, independent of the code under test.

`reference_tables`: the one plain-Python audit (loops over `(opportunity, contact, tags)` rows,
docs/architecture.md's definitions); `reference_audit` runs it on Lever-shaped objects. The
end-to-end tests compare the toolkit's vectorised answers with these loops over the sandbox's
own data, the unit and property tests with the same loops over their frames. `write_log`: counts
the tag writes the sandbox really applied, per (opportunity, op).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any


def is_archived(opp: dict) -> bool:
    return bool(opp.get("archived")) or opp.get("archivedAt") is not None


Row = tuple[str, Any, Iterable[str]]  # (opportunity id, contact id or None, tags)


def reference_tables(rows: Iterable[Row]) -> tuple[set[tuple], set[tuple], dict[Any, int]]:
    """Split pairs `(contact, tag, with_tag, opportunities)`, missing assignments
    `(opportunity, contact, tag)` and the opportunities per contact, by plain loops. An
    opportunity without a contact is a contact of its own (`("self", id)`), never split."""
    by_contact: dict[Any, list[tuple[str, set[str]]]] = defaultdict(list)
    for opp, contact, tags in rows:
        key = contact if contact is not None else ("self", opp)
        by_contact[key].append((opp, set(tags)))
    pairs: set[tuple] = set()
    missing: set[tuple] = set()
    for contact, opps in by_contact.items():
        if len(opps) < 2:
            continue
        for tag in set().union(*(tags for _, tags in opps)):
            holders = sum(tag in tags for _, tags in opps)
            if holders < len(opps):
                pairs.add((contact, tag, holders, len(opps)))
                missing.update((oid, contact, tag) for oid, tags in opps if tag not in tags)
    return pairs, missing, {c: len(opps) for c, opps in by_contact.items()}


def reference_audit(opportunities: Iterable[dict], include_archived: bool = True) -> dict:
    """Summary, split pairs `(contact, tag)`, missing assignments of Lever-shaped objects."""
    rows = [
        (opp["id"], opp.get("contact") or None, opp.get("tags") or [])
        for opp in opportunities
        if include_archived or not is_archived(opp)
    ]
    pairs, missing, sizes = reference_tables(rows)
    return {
        "summary": {
            "opportunities": sum(sizes.values()),
            "contacts": len(sizes),
            "multi_opportunity_contacts": sum(1 for n in sizes.values() if n > 1),
            "split_contacts": len({p[0] for p in pairs}),
            "split_pairs": len(pairs),
            "missing_assignments": len(missing),
        },
        "pairs": {(contact, tag) for contact, tag, _, _ in pairs},
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
