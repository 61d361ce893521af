"""`lever-tags snapshot` starts listing before pandas loads, and reads the account and the
catalogs beside the listing's first pages (issue 25's whole-command speed): what it records and
counts is the same as when everything ran one after the other."""

from __future__ import annotations

import json

import pytest

from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.client.account import account_of
from toolkit.errors import AuthenticationError
from toolkit.snapshot.listing import in_thread, start_fetch


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
