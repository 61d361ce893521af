"""The sandbox's modes for a null `updatedAt` (Lever does not say where one stands): in the
`updated` orders as its `createdAt` (default), or below / above every `updatedAt`; in the
`updated_at` filters as its `createdAt` (default), never matched, or as 0. Every page of every
listing equals a brute-force reference (the fast paths of the `updated` orders must not skip the
nulls wherever they stand)."""

from __future__ import annotations

import pytest

from lever_sandbox.config import NULL_UPDATED_AT, NULL_UPDATED_FILTER, SandboxConfigError
from toolkit.client import LeverClient

DAY_MS = 86_400_000


def _sort_value(opp: dict, mode: str) -> int:
    updated = opp.get("updatedAt")
    if updated is not None:
        return updated
    return {"created": opp["createdAt"], "smallest": -1, "largest": 2**62}[mode]


def _reference(opps: list[dict], order: str, mode: str, params: dict, flt: str) -> list[str]:
    """The ids a listing must give, in order: the filters and the sort spelled out."""
    sign = 1 if order == "updated" else -1
    lo = params.get("created_at_start", -(2**63))
    hi = params.get("created_at_end", 2**63)
    u_lo = params.get("updated_at_start")
    u_hi = params.get("updated_at_end")
    rows = []
    for o in opps:
        if not lo <= o["createdAt"] <= hi:
            continue
        if u_lo is not None or u_hi is not None:
            if o.get("updatedAt") is None and flt == "never":
                continue
            u = 0 if o.get("updatedAt") is None and flt == "zero" else _sort_value(o, "created")
            if (u_lo is not None and u < u_lo) or (u_hi is not None and u > u_hi):
                continue
        rows.append((sign * _sort_value(o, mode), o["id"]))
    return [opp_id for _key, opp_id in sorted(rows)]


@pytest.mark.parametrize("flt", NULL_UPDATED_FILTER)
@pytest.mark.parametrize("mode", NULL_UPDATED_AT)
@pytest.mark.parametrize("order", ["updated", "updated-desc"])
def test_every_listing_of_the_updated_orders_matches_the_reference(fresh_sandbox, order, mode, flt):
    sb = fresh_sandbox(
        seed=11,
        opportunities=400,
        listing_order=order,
        null_updated_at=mode,
        null_updated_filter=flt,
    )
    opps = sb.opportunities()
    nulls = [o for o in opps if o.get("updatedAt") is None]
    assert len(nulls) >= 5  # the generated data holds a few
    created = sorted(o["createdAt"] for o in opps)
    mid, late = created[len(created) // 3], created[2 * len(created) // 3]
    some_null = nulls[len(nulls) // 2]["createdAt"]
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    for params in (
        {},
        {"created_at_start": mid},
        {"created_at_start": mid, "created_at_end": late},
        {"created_at_end": mid},
        {"updated_at_start": some_null},
        {"updated_at_end": some_null, "created_at_start": created[0]},
        {"created_at_start": some_null, "created_at_end": some_null},
    ):
        listed = [
            o["id"] for o in client.iter_opportunities(confidentiality="all", limit=37, **params)
        ]
        assert listed == _reference(opps, order, mode, params, flt), params


@pytest.mark.parametrize("mode", ["smallest", "largest"])
def test_a_null_stands_at_one_end_and_no_updated_filter_matches_it(fresh_sandbox, mode):
    sb = fresh_sandbox(
        seed=11,
        opportunities=300,
        listing_order="updated",
        null_updated_at=mode,
        null_updated_filter="never",
    )
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    listed = list(client.iter_opportunities(confidentiality="all"))
    is_null = [o.get("updatedAt") is None for o in listed]
    count = sum(is_null)
    ends = is_null[:count] if mode == "smallest" else is_null[len(is_null) - count :]
    assert count and all(ends)
    null = next(o for o in listed if o.get("updatedAt") is None)
    at = null["createdAt"]
    window = {"created_at_start": at, "created_at_end": at}
    assert null["id"] in {o["id"] for o in client.iter_opportunities(**window)}
    matched = client.iter_opportunities(updated_at_start=at, updated_at_end=at, **window)
    assert null["id"] not in {o["id"] for o in matched}


def test_by_default_a_null_is_its_created_at_in_the_updated_filters(fresh_sandbox):
    sb = fresh_sandbox(seed=11, opportunities=300)
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    null = next(o for o in sb.opportunities() if o.get("updatedAt") is None)
    at = null["createdAt"]
    matched = client.iter_opportunities(
        updated_at_start=at, updated_at_end=at, created_at_start=at, created_at_end=at
    )
    assert null["id"] in {o["id"] for o in matched}


def test_switching_the_mode_sorts_the_orders_anew(fresh_sandbox):
    sb = fresh_sandbox(seed=11, opportunities=200, listing_order="updated")
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    first = [o["id"] for o in client.iter_opportunities(confidentiality="all")]
    sb.configure(null_updated_at="largest")
    last = [o["id"] for o in client.iter_opportunities(confidentiality="all")]
    assert sorted(first) == sorted(last) and first != last
    assert last == _reference(sb.opportunities(), "updated", "largest", {}, "created")


def test_a_null_compared_as_zero_is_matched_by_every_end_and_no_start(fresh_sandbox):
    sb = fresh_sandbox(seed=11, opportunities=300, null_updated_filter="zero")
    client = LeverClient(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    null = next(o for o in sb.opportunities() if o.get("updatedAt") is None)
    at = null["createdAt"]
    window = {"created_at_start": at, "created_at_end": at}
    ended = client.iter_opportunities(updated_at_end=1, **window)
    assert null["id"] in {o["id"] for o in ended}
    started = client.iter_opportunities(updated_at_start=1, **window)
    assert null["id"] not in {o["id"] for o in started}


def test_an_unknown_null_mode_is_refused_by_name(fresh_sandbox):
    sb = fresh_sandbox(seed=11, opportunities=20)
    with pytest.raises(SandboxConfigError, match="null_updated_at must be one of"):
        sb.configure(null_updated_at="middle")
