"""The sandbox's `updatedAt` listing orders with an `updatedAt` before its `createdAt` (generated
data holds some: `updatedAt` is capped at `LAST_UPDATE_MS`, a late `createdAt` is not): a
`created_at_start` window still lists it (a fast path used to skip it, and a fetch cut there
lost it)."""

from __future__ import annotations

import pytest

from toolkit.client import LeverClient

DAY_MS = 86_400_000


@pytest.mark.parametrize("order", ["updated", "updated-desc"])
def test_an_updated_at_before_the_created_at_is_listed_by_a_created_at_window(fresh_sandbox, order):
    sb = fresh_sandbox(seed=6, opportunities=300, listing_order=order)
    template = sb.opportunities()[0]
    late = max(o["createdAt"] for o in sb.opportunities()) + 30 * DAY_MS
    odd = dict(template, id="updated-before-created", createdAt=late, updatedAt=late - 20 * DAY_MS)
    sb.engine.state.insert(odd)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    listed = {
        o["id"]
        for o in client.iter_opportunities(
            created_at_start=late - DAY_MS, confidentiality="all", limit=10
        )
    }
    assert "updated-before-created" in listed
