"""The client owns its instrumentation: per-thread call records and stats deltas, read by callers
(the apply runner journals attempts and statuses from them) without patching the session."""

from __future__ import annotations

import threading

import pytest
import responses

from toolkit.client import LeverClient
from toolkit.client.ratelimit import TokenBucket
from toolkit.errors import NotFoundError

BASE = "https://lever.test/v1"


@pytest.fixture
def client() -> LeverClient:
    return LeverClient(
        base_url=BASE,
        api_key="k",
        sleep=lambda _s: None,
        limiter=TokenBucket(1e6, 10**6, sleep=lambda _s: None),
    )


def test_a_call_record_counts_attempts_and_the_last_status(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/opportunities/o1", status=503)
        rsps.get(f"{BASE}/opportunities/o1", status=429, headers={"Retry-After": "0"})
        rsps.get(f"{BASE}/opportunities/o1", json={"data": {"id": "o1"}})
        rsps.get(
            f"{BASE}/opportunities/o2", status=404, json={"code": "NotFound", "message": "gone"}
        )
        before = client.stats.as_dict()
        record = client.start_call_record()
        client.get_opportunity("o1")
        assert (record.attempts, record.status) == (3, 200)
        assert client.call_record is record
        record = client.start_call_record()
        with pytest.raises(NotFoundError):
            client.get_opportunity("o2")
        assert (record.attempts, record.status) == (1, 404)
    delta = client.stats.since(before)
    assert delta["requests"] == 4 and delta["retries"] == 2
    assert delta["by_status"] == {"200": 1, "404": 1, "429": 1, "503": 1}
    assert "request" not in vars(client.session)  # nobody wrapped the session


def test_call_records_are_per_thread(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/opportunities/o1", json={"data": {"id": "o1"}})
        mine = client.start_call_record()
        seen = {}

        def other() -> None:
            seen["record"] = client.start_call_record()
            client.get_opportunity("o1")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["record"].attempts == 1 and mine.attempts == 0
