"""Under each injected fault, a full snapshot equals the sandbox's data exactly, and a propagate
run ends with no gap it could close and no extra tag.

Set LEVER_FAULT_REPORT=FILE to collect each scenario's retries and times as JSON lines
(`benchmarks/fault_matrix.py` does that and renders the table in docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from lever_sandbox import CONTACT_LEVEL_TAGS
from toolkit.audit import missing_assignments
from toolkit.client import LeverClient
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.planner import make_plan
from toolkit.snapshot.fetch import fetch_snapshot

TAGS = list(CONTACT_LEVEL_TAGS)

# name -> (sandbox settings, client settings, what is tried in words). A client setting
# "workers" is the snapshot's: few workers make windows of several pages each.
SCENARIOS = {
    "429 storm with Retry-After": (
        {"rate": 4, "burst": 2, "retry_after": True},
        {"rate": 10, "burst": 10, "backoff_base": 0.5, "backoff_max": 30},
        "server allows 4/s (another client uses the rest of the key's budget), client at its "
        "default 10/s; Retry-After sent (whole seconds)",
    ),
    "429 storm without Retry-After": (
        {"rate": 4, "burst": 2},
        {"rate": 10, "burst": 10, "backoff_base": 0.5, "backoff_max": 30},
        "the same storm without the header: exponential backoff with full jitter",
    ),
    "5% server errors": ({"fail_rate": 0.05}, {}, "5% of requests answer 500, 502 or 503"),
    "dropped connections": (
        {"drop_rate": 0.05},
        {},
        "5% of connections closed without an answer",
    ),
    "latency spikes of 2 s": (
        {"spike_rate": 0.05, "spike_ms": 2000, "latency_ms": 5},
        {},
        "5% of requests delayed 2 s, the client's default timeouts (5 s connect, 30 s read)",
    ),
    "latency spikes past the read timeout": (
        {"spike_rate": 0.05, "spike_ms": 2000, "latency_ms": 5},
        {"timeout": (2.0, 1.0)},
        "the same spikes with a 1 s read timeout: timed-out writes may have landed and are sent "
        "again (adding or removing a set of tags is idempotent)",
    ),
    "invalid offset token mid-listing": (
        {"offset_fault_each_listing": 1, "contacts": 1000},
        {"workers": 2},
        "the second page of every listing answers 'Invalid offset token' once (HTTP 400)",
    ),
    "invalid offset token with HTTP 200": (
        {"offset_fault_each_listing": 1, "offset_error_status": 200, "contacts": 1000},
        {"workers": 2},
        "the same message with status 200, as one public connector saw",
    ),
}


def _tag_sets(sb) -> dict[str, set[str]]:
    return {o["id"]: set(o.get("tags") or []) for o in sb.opportunities()}


def _record(row: dict) -> None:
    path = os.environ.get("LEVER_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario(fresh_sandbox, tmp_path, name):
    server, client_options, tried = SCENARIOS[name]
    sb = fresh_sandbox(**{"seed": 21, "contacts": 150, **server})
    options = {"rate": 1000, "burst": 1000, "backoff_base": 0.02, "backoff_max": 0.5}
    options.update(client_options)
    workers = options.pop("workers", 4)
    client = LeverClient(sb.base_url, api_key=sb.api_key, max_attempts=10, **options)
    before = _tag_sets(sb)

    started = time.monotonic()
    snap = fetch_snapshot(client, workers=workers, progress=False)
    fetch_seconds = time.monotonic() - started
    fetched = {row.opportunity_id: set(row.tags) for row in snap.frame.itertuples()}
    assert fetched == before, "the snapshot differs from the sandbox's data"
    fetch_stats = client.stats.as_dict()

    plan = make_plan(snap, tags=TAGS)
    assert len(plan.rows) > 0
    started = time.monotonic()
    result = apply_plan(
        client,
        plan,
        journal_path=tmp_path / "run.sqlite",
        dry_run=False,
        progress=False,
        workers=4,
    )
    apply_seconds = time.monotonic() - started
    assert result.failed == 0 and result.pending == 0 and result.not_found == 0

    after = _tag_sets(sb)
    expected = {k: set(v) for k, v in before.items()}
    for opp, tag in plan.rows[["opportunity_id", "tag"]].itertuples(index=False):
        expected[opp].add(tag)
    assert after == expected, "a tag was lost, or one was added that the plan did not hold"

    # Gaps left for these tags are exactly the rows the plan skipped on purpose (anonymized).
    final = fetch_snapshot(client, workers=workers, progress=False)
    left = missing_assignments(final.frame, tags=TAGS)
    left_rows = set(zip(left["opportunity_id"], left["tag"], strict=True))
    skipped = set(zip(plan.skipped["opportunity_id"], plan.skipped["tag"], strict=True))
    assert left_rows <= skipped

    stats = client.stats.as_dict()
    faults = sb.stats().get("faults", {})
    assert sum(faults.values()) > 0 or stats["rate_limited"] > 0, f"no fault was injected: {stats}"
    _record(
        {
            "scenario": name,
            "tried": tried,
            "opportunities": len(before),
            "writes": result.calls,
            "held": True,
            "fetch_seconds": round(fetch_seconds, 2),
            "apply_seconds": round(apply_seconds, 2),
            "requests": stats["requests"],
            "retries": stats["retries"],
            "rate_limited": stats["rate_limited"],
            "server_errors": stats["server_errors"],
            "connection_errors": stats["connection_errors"],
            "listing_restarts": stats["listing_restarts"],
            "fetch_retries": fetch_stats["retries"] + fetch_stats["listing_restarts"],
            "faults": dict(faults),
        }
    )
