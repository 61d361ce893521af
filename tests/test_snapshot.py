"""Snapshot: parsing Lever's shapes, Parquet round trip, the windowed fetch, incremental refresh."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError
from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot
from toolkit.snapshot.frame import (
    COLUMNS,
    CONTEXT_COLUMNS,
    Snapshot,
    empty_frame,
    fingerprint,
    frame_from_opportunities,
    safe_watermark,
    watermark,
)
from toolkit.snapshot.store import load_snapshot, meta_path, save_snapshot

EXAMPLES = Path(__file__).resolve().parent / "fixtures"  # copies of shared/lever-examples


def _client(sb, **kw) -> LeverClient:
    return LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000, **kw)


def _state(frame: pd.DataFrame) -> dict[str, tuple]:
    return {
        row.opportunity_id: (row.contact_id if pd.notna(row.contact_id) else None, sorted(row.tags))
        for row in frame.itertuples()
    }


def _raw_state(opps) -> dict[str, tuple]:
    return {o["id"]: (o.get("contact") or None, sorted(o.get("tags") or [])) for o in opps}


# -- parsing -----------------------------------------------------------------------------------


def test_parses_lever_example_page_and_both_archived_shapes():
    page = json.loads((EXAMPLES / "opportunity-list-page.json").read_text())
    legacy = json.loads((EXAMPLES / "opportunity-legacy-archived-shape.json").read_text())
    legacy_opps = legacy.get("data", legacy)
    legacy_opps = legacy_opps if isinstance(legacy_opps, list) else [legacy_opps]
    frame = frame_from_opportunities(page["data"] + legacy_opps)
    assert list(frame.columns) == COLUMNS + CONTEXT_COLUMNS
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["tags"] == [
        "Administrative Assistant",
        "Airbyte",
        "San Francisco, CA",
        "Part-time",
        "interview",
    ]
    assert not first["archived"] and pd.isna(first["archived_at"])
    assert second["archived"] and second["archived_at"] == 1732451503446
    assert first["contact_id"] == second["contact_id"]
    legacy_row = frame.iloc[2]  # legacy top-level archivedAt: null, so active
    assert not legacy_row["archived"] and legacy_row["tags"][0] == "San Francisco"
    archived_legacy = frame_from_opportunities(
        [dict(legacy_opps[0], archivedAt=1417588008760, archiveReason="r1")]
    )
    assert archived_legacy.loc[0, "archived"]
    assert archived_legacy.loc[0, "archived_at"] == 1417588008760


def test_parsing_is_defensive():
    frame = frame_from_opportunities(
        [
            {"id": "o1"},  # everything missing
            {"id": "o2", "contact": {"id": "c2"}, "tags": ["a", 3, None, "b"], "updatedAt": None},
            {"contact": "c3"},  # no id: not an opportunity we can use
            {"id": "o4", "archivedAt": 5, "confidentiality": "confidential", "isAnonymized": True},
            {"id": "o5", "contact": "", "tags": "not a list", "createdAt": "x", "extra": {"y": 1}},
        ],
        with_personal=True,
    )
    assert frame["opportunity_id"].tolist() == ["o1", "o2", "o4", "o5"]
    assert frame["tags"].tolist() == [[], ["a", "b"], [], []]
    assert frame["contact_id"].isna().tolist() == [True, False, True, True]
    assert frame.loc[1, "contact_id"] == "c2"
    row = frame.loc[2]
    assert row["archived"] and row["archived_at"] == 5 and row["confidential"] and row["anonymized"]
    assert frame["updated_at"].isna().all() and frame["created_at"].isna().all()
    assert {"name", "email"} <= set(frame.columns)


def test_fingerprint_ignores_row_and_tag_order_but_sees_changes():
    opps = [
        {"id": "o1", "contact": "c", "tags": ["a", "b"], "updatedAt": 1},
        {"id": "o2", "contact": "c", "tags": [], "updatedAt": 2},
    ]
    frame = frame_from_opportunities(opps)
    flipped = frame_from_opportunities([opps[1], dict(opps[0], tags=["b", "a"])])
    assert fingerprint(frame) == fingerprint(flipped)
    changed = frame_from_opportunities([opps[0], dict(opps[1], tags=["a"])])
    assert fingerprint(frame) != fingerprint(changed)
    assert watermark(frame) == 2 and watermark(empty_frame()) is None


# -- files -------------------------------------------------------------------------------------


def test_parquet_round_trip(tmp_path):
    frame = frame_from_opportunities(
        [
            {"id": "o1", "contact": "c1", "tags": ["Zoë", " python", "Do not contact"]},
            {"id": "o2", "tags": [], "archived": {"archivedAt": 9}, "createdAt": 3},
        ],
        with_personal=True,
    )
    snap = Snapshot(frame, {"fingerprint": fingerprint(frame), "warnings": ["w"]})
    path = save_snapshot(snap, tmp_path / "s.parquet")
    back = load_snapshot(path)
    pd.testing.assert_frame_equal(back.frame, frame)
    assert back.meta["warnings"] == ["w"] and meta_path(path).is_file()
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "not found"),
        (b"not parquet", "not a Parquet snapshot"),
        ("columns", "missing columns"),
    ],
)
def test_load_snapshot_bad_files(tmp_path, content, expected):
    path = tmp_path / "s.parquet"
    if content == "columns":
        pd.DataFrame({"x": [1]}).to_parquet(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=expected):
        load_snapshot(path)


# -- fetching from the sandbox -----------------------------------------------------------------


def test_fetch_equals_the_sandbox_data_including_confidential(sandbox):
    snap = fetch_snapshot(_client(sandbox), workers=4, progress=False)
    expected = sandbox.opportunities()
    assert _state(snap.frame) == _raw_state(expected)
    assert snap.frame["opportunity_id"].is_unique
    assert snap.frame["confidential"].any() and snap.frame["archived"].any()
    assert snap.meta["confidential_access"] is True and snap.meta["warnings"] == []
    assert snap.meta["counts"]["opportunities"] == len(expected)


def test_fetch_can_exclude_archived(sandbox):
    snap = fetch_snapshot(_client(sandbox), include_archived=False, progress=False)
    active = [o for o in sandbox.opportunities() if not (o.get("archived") or o.get("archivedAt"))]
    assert _state(snap.frame) == _raw_state(active)


def test_fetch_without_confidential_access_continues_with_a_warning(sandbox):
    client = LeverClient(
        sandbox.base_url, api_key=sandbox.restricted_api_key, rate=1000, burst=1000
    )
    snap = fetch_snapshot(client, progress=False)
    public = [o for o in sandbox.opportunities() if o.get("confidentiality") != "confidential"]
    assert _state(snap.frame) == _raw_state(public)
    assert snap.meta["confidential_access"] is False
    assert "confidential" in snap.meta["warnings"][0]


def test_windowed_fetch_is_complete_and_spends_few_extra_requests(fresh_sandbox):
    sb = fresh_sandbox(seed=11, contacts=2500)
    client = _client(sb)
    workers = 4
    snap = fetch_snapshot(client, workers=workers, progress=False)
    expected = sb.opportunities()
    assert _state(snap.frame) == _raw_state(expected)
    pages = -(-len(expected) // 100)
    # The probe, then at most two extra requests per window (a partial last page, a refetched
    # first page when it splits); windows: workers + 2 open edges, plus at most 4 x workers.
    max_windows = workers + 2 + 4 * workers
    assert pages <= snap.meta["fetch"]["requests"] <= pages + 1 + 2 * max_windows


def test_refresh_picks_up_changed_and_new_opportunities(fresh_sandbox):
    sb = fresh_sandbox(seed=5, contacts=200)
    client = _client(sb)
    full = fetch_snapshot(client, progress=False)
    # Pretend the newest opportunity did not exist yet when the snapshot was taken.
    last_change = full.frame["updated_at"].fillna(full.frame["created_at"])
    newest = full.frame.loc[last_change.idxmax(), "opportunity_id"]
    older = full.frame[full.frame["opportunity_id"] != newest].reset_index(drop=True)
    stale = Snapshot(older, dict(full.meta, watermark=safe_watermark(older)))
    victim = older.iloc[0]["opportunity_id"]
    sb.set_tags(victim, ["Changed after snapshot"])
    refreshed = refresh_snapshot(client, stale, progress=False)
    assert _state(refreshed.frame) == _raw_state(sb.opportunities())
    assert refreshed.meta["refreshed_changed"] >= 2
    # deletions come from Lever's "List deleted opportunities": no warning about them
    assert not any("deleted opportunities" in w for w in refreshed.meta["warnings"])
    assert refreshed.meta["fingerprint"] == fingerprint(refreshed.frame)


def test_fetch_is_complete_whatever_order_the_server_lists_in():
    """Lever's order is undocumented: a server listing by updatedAt must not make the windowed
    fetch lose anything. Most opportunities here changed right after they were created, so the
    pages look ordered by createdAt, but a few old ones changed recently and come last (a
    transport fake with real filtering and paging)."""
    from urllib.parse import parse_qs, urlsplit

    import responses

    opps = [  # created ever faster: the last time window holds most of them
        {"id": f"o{i:04d}", "contact": f"c{i // 3}", "tags": [], "createdAt": 1_600_000_000_000 + i}
        for i in sorted({int(1e11 * (k / 1500) ** 0.2) for k in range(1500)})
    ]
    for n, opp in enumerate(opps):
        opp["updatedAt"] = opp["createdAt"] + (10**9 if n % 97 == 5 else 5)
    by_updated = sorted(opps, key=lambda o: o["updatedAt"])

    def listing(request):
        query = parse_qs(urlsplit(request.url).query)
        lo = int(query.get("created_at_start", [0])[0])
        hi = int(query.get("created_at_end", [10**15])[0])
        rows = [o for o in by_updated if lo <= o["createdAt"] <= hi]
        start = int(query.get("offset", ["0"])[0])
        limit = int(query["limit"][0])
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        body = {"data": page, "hasNext": more, **({"next": str(start + limit)} if more else {})}
        return 200, {}, json.dumps(body)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, "https://lever.test/v1/opportunities", callback=listing)
        for catalog in ("postings", "archive_reasons"):  # the texts behind the context ids
            rsps.add(responses.GET, f"https://lever.test/v1/{catalog}", json={"data": []})
        client = LeverClient("https://lever.test/v1", api_key="k", rate=1e6, burst=10**6)
        snap = fetch_snapshot(client, workers=4, progress=False)
    assert sorted(snap.frame["opportunity_id"]) == sorted(o["id"] for o in opps)


def test_the_watermark_covers_changes_made_while_the_fetch_ran(fresh_sandbox):
    """A change to an opportunity already read, made while the fetch went on, must fall after
    the watermark, whatever the latest updatedAt in the data: the drift check and the refresh
    list from it."""
    sb = fresh_sandbox(seed=3, contacts=50)
    client = _client(sb)
    snap = fetch_snapshot(client, progress=False)
    assert client.server_time_ms is not None  # Lever's clock, from the Date header
    first = snap.frame.iloc[0]["opportunity_id"]
    sb.set_tags(first, ["changed during the fetch"])
    changed = next(o for o in sb.opportunities() if o["id"] == first)
    assert changed["updatedAt"] >= snap.meta["watermark"]
    assert snap.meta["watermark"] <= watermark(snap.frame) - 60_000


def test_a_refresh_that_excludes_archived_drops_newly_archived_ones(fresh_sandbox):
    sb = fresh_sandbox(seed=4, contacts=80)
    client = _client(sb)
    snap = fetch_snapshot(client, include_archived=False, progress=False)
    victim = snap.frame.iloc[0]["opportunity_id"]
    sb.archive_opportunity(victim)
    refreshed = refresh_snapshot(client, snap, progress=False)
    assert victim not in set(refreshed.frame["opportunity_id"])
    assert refreshed.meta["fetch"]["kind"] == "refresh"
