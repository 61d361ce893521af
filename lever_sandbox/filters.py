"""`GET /opportunities` filters compiled into a predicate over the sandbox's opportunities.

Time filters are inclusive epoch milliseconds. Where an opportunity whose `updatedAt` is null
stands in `updated_at_start/_end` is undocumented at Lever: `null_filter` (the config's
``null_updated_filter``) compares it as its `createdAt` (default), matches it never, or
compares it as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lever_sandbox.data import is_archived
from lever_sandbox.protocol import ApiError, parse_bool, parse_ms


def opportunity_filter(
    params: dict[str, list[str]],
    confidential_access: bool,
    confidential_denied: str = "403",
    null_filter: str = "created",
) -> Callable[[dict[str, Any]], bool]:
    """Compile ``GET /opportunities`` filters into a predicate (ApiError on bad ones).

    A key without confidential access that asks for confidential data gets a 403, or with
    ``confidential_denied="filter"`` the confidential ones are silently left out (both are
    reported of Lever). `null_filter`: how `updated_at_start/_end` treat a null `updatedAt`
    (``created``, ``never`` or ``zero``: see the module's docstring).
    """
    confidentiality = (params.get("confidentiality") or ["non-confidential"])[-1]
    if confidentiality not in ("non-confidential", "confidential", "all"):
        raise ApiError(
            400,
            "InvalidRequest",
            "confidentiality must be one of non-confidential, confidential, all",
        )
    hide_confidential = False
    if confidentiality != "non-confidential" and not confidential_access:
        if confidential_denied != "filter":
            raise ApiError(
                403,
                "Forbidden",
                "This API key does not have access to confidential data",
            )
        hide_confidential = True
    tags = set(params.get("tag") or [])
    contacts = set(params.get("contact_id") or [])
    emails = {e.strip().lower() for e in params.get("email") or [] if e.strip()}
    archived = parse_bool(params, "archived")
    c_start, c_end = (
        parse_ms(params, "created_at_start"),
        parse_ms(params, "created_at_end"),
    )
    u_start, u_end = (
        parse_ms(params, "updated_at_start"),
        parse_ms(params, "updated_at_end"),
    )

    def keep(opp: dict[str, Any]) -> bool:
        conf = opp.get("confidentiality") or "non-confidential"
        if confidentiality != "all" and conf != confidentiality:
            return False
        if hide_confidential and conf == "confidential":
            return False
        if tags and tags.isdisjoint(opp.get("tags") or ()):
            return False
        if contacts and opp.get("contact") not in contacts:
            return False
        if emails and emails.isdisjoint(e.lower() for e in opp.get("emails") or ()):
            return False
        if archived is not None and is_archived(opp) != archived:
            return False
        created = int(opp.get("createdAt") or 0)
        if c_start is not None and created < c_start:
            return False
        if c_end is not None and created > c_end:
            return False
        if u_start is not None or u_end is not None:
            updated = opp.get("updatedAt")
            if updated is None and null_filter == "never":
                return False
            if updated is None:
                updated = 0 if null_filter == "zero" else created
            updated = int(updated)
            if u_start is not None and updated < u_start:
                return False
            if u_end is not None and updated > u_end:
                return False
        return True

    keep.created_range = (c_start, c_end)  # type: ignore[attr-defined]  # a fast path
    return keep
