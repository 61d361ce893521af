"""Snapshot and plan metadata as dataclasses: `SnapshotMeta` / `PlanMeta` read what the current
code writes, and what an older version wrote, and give back exactly the same dict."""

from __future__ import annotations

import dataclasses
import json

import pytest

from toolkit.client import LeverClient
from toolkit.remediate.plan import PLAN_COLUMNS, Plan, empty_rows
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planfile import meta_path as plan_meta_path
from toolkit.remediate.planmeta import PlanMeta, PlanSnapshotRef
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot
from toolkit.snapshot.meta import FetchStats, SnapshotMeta
from toolkit.snapshot.store import load_snapshot, meta_path, save_snapshot

# Written by hand with the keys an older version wrote: no full_fetch_at, with_personal,
# confidential_access or fetch kind; a key this version does not know.
OLD_SNAPSHOT_META = {
    "fetched_at": "2026-01-02T03:04:05+00:00",
    "host": "api.lever.co",
    "filters": {"confidentiality": "all"},
    "include_archived": False,
    "warnings": ["no access to confidential opportunities"],
    "counts": {"opportunities": 3, "contacts": 2},
    "fingerprint": "abc123",
    "watermark": 1767322800000,
    "fetch": {"seconds": 1.5, "requests": 4, "pages": 2},
    "legacy_note": {"kept": [1, 2]},
}
OLD_PLAN_META = {
    "mode": "rename",
    "tags": ["python"],
    "renames": {"python": "Python"},
    "policy": None,
    "include_archived": True,
    "snapshot": {"fingerprint": "abc123", "watermark": 1767322800000, "host": "api.lever.co"},
    "created_at": "2026-01-02T03:05:00+00:00",
    "counts": {"rows": 2, "add": 1, "remove": 1, "opportunities": 1, "calls": 2, "skipped": 0},
    "plan_sha256": "0" * 64,
    "reviewer": "someone",
}


def _client(sb) -> LeverClient:
    return LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)


def _round_trips(record_type: type[SnapshotMeta] | type[PlanMeta], data: dict) -> None:
    back = record_type.from_dict(data).to_dict()
    assert back == data
    assert list(back) == list(data)  # and in the same order
    assert json.dumps(back, sort_keys=True) == json.dumps(data, sort_keys=True)


def test_snapshot_and_plan_written_now_round_trip(sandbox, tmp_path):
    client = _client(sandbox)
    snap = fetch_snapshot(client, progress=False)
    save_snapshot(snap, tmp_path / "snap.parquet")
    on_disk = json.loads(meta_path(tmp_path / "snap.parquet").read_text())
    _round_trips(SnapshotMeta, on_disk)
    _round_trips(SnapshotMeta, snap.meta)
    info = load_snapshot(tmp_path / "snap.parquet").info
    assert info.host == on_disk["host"] and info.fetched_at == on_disk["fetched_at"]
    assert info.account == on_disk["account"] and info.watermark == on_disk["watermark"]
    assert (
        isinstance(info.fetch, FetchStats) and info.fetch.requests == on_disk["fetch"]["requests"]
    )
    assert info.include_archived is True and info.with_personal is False and not info.extra

    refreshed = refresh_snapshot(client, snap, progress=False)
    _round_trips(SnapshotMeta, refreshed.meta)
    assert refreshed.info.fetch is not None and refreshed.info.fetch.kind == "refresh"
    assert refreshed.info.refreshed_since == snap.info.watermark

    tag = str(snap.frame["tags"].explode().dropna().iloc[0])
    plan = make_plan(snap, tags=[tag])
    save_plan(plan, tmp_path / "plan.csv")
    written = json.loads(plan_meta_path(tmp_path / "plan.csv").read_text())
    _round_trips(PlanMeta, written)
    loaded = load_plan(tmp_path / "plan.csv")
    assert loaded.info.mode == "propagate" and loaded.info.tags == [tag]
    assert loaded.info.snapshot_ref.host == on_disk["host"]
    assert loaded.info.snapshot_ref.account == on_disk["account"]
    assert loaded.info.plan_sha256 == loaded.sha256 and not loaded.info.edited


def test_older_files_load_with_defaults_and_keep_unknown_keys():
    _round_trips(SnapshotMeta, OLD_SNAPSHOT_META)
    _round_trips(PlanMeta, OLD_PLAN_META)
    snap = SnapshotMeta.from_dict(OLD_SNAPSHOT_META)
    assert snap.full_fetch_at is None and snap.with_personal is False
    assert snap.confidential_access is None and snap.include_archived is False
    assert snap.fetch == FetchStats.from_dict({"seconds": 1.5, "requests": 4, "pages": 2})
    assert snap.fetch is not None and dict(snap.fetch.extra) == {"pages": 2}
    assert dict(snap.extra) == {"legacy_note": {"kept": [1, 2]}}
    plan = PlanMeta.from_dict(OLD_PLAN_META)
    assert plan.families == [] and plan.version is None and plan.sources is None
    assert plan.snapshot_ref.account is None and plan.snapshot_ref.watermark == 1767322800000
    assert dict(plan.extra) == {"reviewer": "someone"}


def test_empty_and_missing_metadata():
    assert SnapshotMeta.from_dict({}).to_dict() == {}
    assert SnapshotMeta.from_dict(None).include_archived is True
    assert PlanMeta.from_dict({}).snapshot_ref == PlanSnapshotRef()
    bare = Plan(rows=empty_rows(PLAN_COLUMNS))  # a hand-written plan without meta.json
    assert bare.info.mode is None and bare.watermark is None


def test_records_are_frozen_and_replace_adds_a_key():
    info = SnapshotMeta.from_dict(OLD_SNAPSHOT_META)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.host = "elsewhere"  # type: ignore[misc]
    changed = dataclasses.replace(info, full_fetch_at="2026-01-01T00:00:00+00:00").to_dict()
    assert changed == {**OLD_SNAPSHOT_META, "full_fetch_at": "2026-01-01T00:00:00+00:00"}


def test_plan_writers_keep_every_key_and_its_order(tmp_path):
    # save_plan and load_plan's "edited" flag go through PlanMeta: an older file's keys (known
    # or not) survive a save and a load, in their order, with the new keys after them.
    plan = Plan(rows=empty_rows(PLAN_COLUMNS), meta=dict(OLD_PLAN_META))
    save_plan(plan, tmp_path / "old.csv")
    written = json.loads(plan_meta_path(tmp_path / "old.csv").read_text())
    assert list(plan.meta) == list(OLD_PLAN_META)  # counts and plan_sha256 updated in place
    assert written == {**OLD_PLAN_META, "counts": plan.counts(), "plan_sha256": plan.sha256}
    (tmp_path / "old.csv").write_text(
        "opportunity_id,contact_id,op,tag\no1,c1,add,Python\n", encoding="utf-8"
    )
    edited = load_plan(tmp_path / "old.csv")
    assert edited.info.edited is True and list(edited.meta) == [*written, "edited"]  # file order
    assert {k: v for k, v in edited.meta.items() if k != "edited"} == written
