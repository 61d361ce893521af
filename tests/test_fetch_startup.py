"""`lever-tags snapshot` starts listing before pandas loads, and reads the account and the
catalogs beside the listing's first pages (issue 25's whole-command speed): what it records and
counts is the same as when everything ran one after the other."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.client.account import account_of
from toolkit.errors import AuthenticationError
from toolkit.snapshot.frame import frame_from_opportunities, frame_from_rows
from toolkit.snapshot.listing import ParsedItems, fetch_opportunities, in_thread, start_fetch
from toolkit.snapshot.rows import columns
from toolkit.snapshot.windows import WindowedListing


def _routes(sb) -> dict[str, int]:
    return {k: sum(v.values()) for k, v in sb.stats()["by_route"].items()}


def test_snapshot_records_the_account_and_catalogs_read_beside_the_listing(env, tmp_path):
    env.reset_stats()
    out = tmp_path / "snap.parquet"
    assert main(["snapshot", "--out", str(out)]) == 0
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    fetch, routes = meta["fetch"], _routes(env)
    context = routes["GET /v1/users"] + routes["GET /v1/postings"]
    context += routes["GET /v1/archive_reasons"]
    assert fetch["context_requests"] == context >= 3
    assert fetch["requests"] == routes["GET /v1/opportunities"]  # the listing's own, apart
    assert fetch["requests"] + context == sum(routes.values())
    expected = account_of(LeverClient(env.base_url, api_key=env.api_key))
    assert meta["account"] == expected and meta["account"]["fingerprint"]


def test_snapshot_without_a_key_is_refused_before_any_request(env, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LEVER_API_KEY")
    env.reset_stats()
    assert main(["snapshot", "--out", str(tmp_path / "snap.parquet")]) == 2
    assert "LEVER_API_KEY" in capsys.readouterr().err
    assert env.stats()["requests"] == 0
    assert not (tmp_path / "snap.parquet").exists()


def test_a_refused_key_in_the_background_fetch_fails_the_command(env, tmp_path, monkeypatch):
    monkeypatch.setenv("LEVER_API_KEY", "not-a-key")
    out = tmp_path / "snap.parquet"
    assert main(["snapshot", "--out", str(out)]) != 0
    assert not out.exists()


def test_start_fetch_hands_the_listing_error_to_whoever_waits(env):
    client = LeverClient(env.base_url, api_key="not-a-key")
    with pytest.raises(AuthenticationError):
        start_fetch(client, workers=2, progress=False).result(timeout=60)


def test_in_thread_returns_the_result_or_raises_the_error():
    assert in_thread(sorted, [3, 1, 2]).result(timeout=10) == [1, 2, 3]
    with pytest.raises(ZeroDivisionError):
        in_thread(lambda: 1 / 0).result(timeout=10)


# -- the frame parsed as the pages arrive ----------------------------------------------------


@pytest.mark.parametrize("with_personal", [False, True])
@pytest.mark.parametrize("order", ["created", "updated-desc"])
def test_rows_parsed_as_listed_make_the_frame_the_items_make(fresh_sandbox, order, with_personal):
    sb = fresh_sandbox(seed=4, opportunities=900, listing_order=order)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    fetched = fetch_opportunities(client, workers=3, progress=False, with_personal=with_personal)
    assert fetched.rows is not None and list(fetched.rows) == list(fetched.items)
    expected = frame_from_opportunities(fetched.items.values(), with_personal=with_personal)
    pd.testing.assert_frame_equal(frame_from_rows(fetched.rows.values(), with_personal), expected)
    assert len(expected) == len(sb.opportunities())


def test_a_replaced_item_replaces_its_row_and_items_without_an_id_have_none():
    items = ParsedItems(with_personal=False)
    items["o1"] = {"id": "o1", "tags": ["a"]}
    items["o1"] = {"id": "o1", "tags": ["b"]}  # the catch-up's newer copy
    items["x"] = {"tags": ["no id"]}
    assert list(items.rows) == ["o1"] and items.rows["o1"][2] == ["b"]


def test_a_frame_from_no_rows_has_every_column():
    assert list(frame_from_rows([], with_personal=True).columns) == columns(True)


# -- pages asked for at once -----------------------------------------------------------------


def test_only_the_pages_the_limiter_can_take_are_in_flight(fresh_sandbox):
    """rate x latency with a margin, not every window at once (5 before, here)."""
    sb = fresh_sandbox(seed=4, opportunities=2500, latency_ms=100, rate=20, burst=20)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=10, burst=10)
    sb.reset_stats()
    listing = WindowedListing(client, workers=8)
    items = listing.run([({"confidentiality": "all"}, (None, None))])
    assert set(items) == {o["id"] for o in sb.opportunities()}
    assert listing.stats["windows"] > 4  # several windows ran, fewer pages at once
    # slots: rate x the quickest latency x 1.5, + 1 (3 at 100 ms; 4 on a slow machine); the
    # server may count an answer still being written beside the next request: one more
    assert sb.stats()["max_in_flight"] <= listing.slots + 1 <= 5
