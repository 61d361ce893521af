"""What the sync tests share: the sandbox's admin routes, and contacts set up for a sync check."""

from __future__ import annotations

from typing import Any

import requests

TAG = "Do not contact"  # the contact-level tag the sync tests keep consistent


def admin(sb, method: str, path: str, body: Any = None) -> requests.Response:
    """One call to the sandbox's ``/_sandbox`` admin routes with its full-access key."""
    return requests.request(method, f"{sb.url}/_sandbox{path}", auth=(sb.api_key, ""), json=body)


def contacts_with(sb, count: int) -> list[tuple[str, list[str]]]:
    """Contacts with 1-3 plain opportunities (no anonymized one), tagged TAG on all of them."""
    by_contact: dict[str, list[dict]] = {}
    for opp in sb.opportunities():
        if opp.get("contact"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    chosen = []
    for contact, opps in sorted(by_contact.items()):
        if len(opps) > 3 or any(o.get("isAnonymized") for o in opps):
            continue
        for opp in opps:
            sb.set_tags(opp["id"], [*(t for t in opp["tags"] if t != TAG), TAG])
        chosen.append((contact, [o["id"] for o in opps]))
        if len(chosen) == count:
            return chosen
    raise AssertionError("not enough contacts in the sandbox")
