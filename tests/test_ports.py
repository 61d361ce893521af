"""The Protocols of toolkit/ports.py: the real client is each of them; a fake missing a method
is not (mypy checks the types at every call site; these check the names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolkit.client import LeverClient
from toolkit.client.stats import ClientStats
from toolkit.policy import Policy
from toolkit.ports import ContactLevelSource, LeverAPI, OpportunityReader, TagClient


class ReadOnly:
    """A fake that reads opportunities and nothing else."""

    base_url = "http://127.0.0.1:1/v1"
    server_time_ms: int | None = None

    def __init__(self) -> None:
        self.stats = ClientStats()

    def iter_opportunities(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return iter([])

    def iter_opportunity_pages(self, **filters: Any) -> Iterator[Any]:
        return iter([])

    def get_opportunity(self, opportunity_id: str, **params: Any) -> dict[str, Any]:
        return {"id": opportunity_id, "tags": []}

    def iter_users(self, email: str | None = None) -> Iterator[dict[str, Any]]:
        return iter([])


def test_the_lever_client_is_every_client_protocol() -> None:
    client = LeverClient("http://127.0.0.1:1/v1", api_key="synthetic-key")
    try:
        for protocol in (OpportunityReader, TagClient, LeverAPI):
            assert isinstance(client, protocol), protocol.__name__
    finally:
        client.close()


def test_a_reader_is_not_a_writer() -> None:
    fake = ReadOnly()
    assert isinstance(fake, OpportunityReader)
    assert not isinstance(
        fake, TagClient
    )  # no add_tags/remove_tags: apply refuses it at type check
    assert not isinstance(fake, LeverAPI)


def test_a_policy_is_a_contact_level_source() -> None:
    policy = Policy.from_dict({"version": 1, "contact_level": ["Python"]})
    assert isinstance(policy, ContactLevelSource)
    assert not isinstance(object(), ContactLevelSource)
