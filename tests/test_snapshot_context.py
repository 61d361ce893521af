"""The snapshot keeps the context a person needs (issue 23): owner, stage, posting, origin and
archived reason, as categoricals; the owner's name and email only with personal data on."""

from __future__ import annotations

import pandas as pd

from toolkit.client import LeverClient
from toolkit.redact import redact_frame
from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot
from toolkit.snapshot.frame import CONTEXT_COLUMNS, frame_from_opportunities, typed_frame
from toolkit.snapshot.store import load_snapshot, save_snapshot


def _truth(sb) -> dict[str, dict]:
    state = sb.engine.state
    titles = {p["id"]: p["text"] for p in state.postings}
    reasons = {r["id"]: r["text"] for r in state.archive_reasons}
    stages = {s["id"]: s["text"] for s in state.stages}
    users = {u["id"]: u for u in sb.users}
    out = {}
    for o in sb.opportunities():
        reason = (o.get("archived") or {}).get("reason") or o.get("archiveReason")
        out[o["id"]] = {
            "owner_id": o["owner"],
            "owner_name": users[o["owner"]]["name"],
            "owner_email": users[o["owner"]]["email"],
            "stage": stages[o["stage"]],
            "posting": titles[state.applications[o["applications"][0]]["posting"]],
            "origin": o["origin"],
            "archived_reason": reasons.get(reason) if reason else None,
        }
    return out


def test_a_fetch_keeps_owner_stage_posting_origin_and_archived_reason(sandbox, tmp_path):
    client = LeverClient(sandbox.base_url, api_key=sandbox.api_key, rate=1000, burst=1000)
    snap = fetch_snapshot(client, progress=False, with_personal=True)
    truth = _truth(sandbox)
    frame = snap.frame
    assert set(CONTEXT_COLUMNS) <= set(frame.columns)
    for row in frame.to_dict("records"):
        want = truth[row["opportunity_id"]]
        for column, value in want.items():
            got = row[column]
            assert (None if pd.isna(got) else got) == value, (column, row["opportunity_id"])
    for column in [*CONTEXT_COLUMNS, "owner_name", "owner_email"]:
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
    # Parquet keeps them (and their dtype)
    loaded = load_snapshot(save_snapshot(snap, tmp_path / "s.parquet")).frame
    assert loaded["posting"].tolist() == frame["posting"].tolist()
    assert isinstance(loaded["stage"].dtype, pd.CategoricalDtype)


def test_names_and_emails_only_with_personal_data(sandbox):
    client = LeverClient(sandbox.base_url, api_key=sandbox.api_key, rate=1000, burst=1000)
    frame = fetch_snapshot(client, progress=False).frame
    assert not {"name", "email", "owner_name", "owner_email"} & set(frame.columns)
    assert frame["owner_id"].notna().all() and frame["posting"].notna().all()


def test_pseudonyms_cover_the_owner_too():
    frame = frame_from_opportunities(
        [{"id": "o1", "owner": {"id": "u1", "name": "Riley Recruiter", "email": "r@example.com"}}],
        with_personal=True,
    )
    redacted = redact_frame(frame, salt=None)
    assert redacted.loc[0, "owner_name"].startswith("Person-")
    assert redacted.loc[0, "owner_email"].endswith("@redacted.invalid")
    assert redacted.loc[0, "owner_id"] == "u1"


def test_ids_only_or_expanded_objects_both_parse():
    plain = frame_from_opportunities(
        [{"id": "o1", "owner": "u1", "stage": "s1", "applications": ["a1"], "origin": "sourced"}]
    )
    assert plain.loc[0, ["owner_id", "stage_id", "origin"]].tolist() == ["u1", "s1", "sourced"]
    assert pd.isna(plain.loc[0, "posting_id"])  # an application id says nothing of its posting
    hostile = frame_from_opportunities([{"id": "o1", "owner": 5, "stage": ["x"], "origin": {}}])
    assert hostile.loc[0, ["owner_id", "stage_id", "origin"]].isna().all()


def test_a_refresh_keeps_the_context(fresh_sandbox):
    sb = fresh_sandbox(seed=5, contacts=40)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    snap = fetch_snapshot(client, progress=False)
    opp = sb.opportunities()[0]["id"]
    sb.set_tags(opp, ["changed"])
    fresh = refresh_snapshot(client, snap, progress=False)
    row = fresh.frame.set_index("opportunity_id").loc[opp]
    assert row["posting"] == _truth(sb)[opp]["posting"] and row["tags"] == ["changed"]
    assert isinstance(typed_frame(fresh.frame)["posting"].dtype, pd.CategoricalDtype)
