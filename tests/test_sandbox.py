"""The sandbox server, exercised through the real `LeverClient` over loopback."""

from __future__ import annotations

from toolkit.client import LeverClient


def test_full_listing_equals_dataset(sandbox):
    client = LeverClient(sandbox.base_url, api_key=sandbox.api_key, rate=1000, burst=1000)
    listed = list(client.iter_opportunities(confidentiality="all"))
    ids = [o["id"] for o in listed]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(o["id"] for o in sandbox.opportunities())
