"""The windowed listing (`snapshot.windows`): exact on every createdAt profile, in every listing
order, under injected faults; the hand-on of a running window fails safe; concurrent reads."""

from __future__ import annotations

from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from fake_pages import page_answer
from polling import wait_for

from lever_sandbox.data import (
    BULK_IMPORT_MS,
    CONTACT_LEVEL_TAGS,
    CREATED_PROFILES,
    DAY_MS,
    apply_created_profile,
    generate_dataset,
)
from toolkit.client import LeverClient
from toolkit.snapshot.fetch import fetch_snapshot
from toolkit.snapshot.listing import fetch_opportunities
from toolkit.snapshot.windows import WindowedListing, split_window

ORDERS = ("created", "newest", "updated", "updated-desc", "shuffled")


def _client(sb, **kw) -> LeverClient:
    options = {"rate": 1000, "burst": 1000, "backoff_base": 0.01, "backoff_max": 0.05}
    options.update(kw)
    return LeverClient(sb.base_url, api_key=sb.api_key, **options)


def _assert_exact(snap, sb) -> None:
    expected = {o["id"]: sorted(o.get("tags") or []) for o in sb.opportunities()}
    frame = snap.frame
    assert frame["opportunity_id"].is_unique, "an opportunity came twice"
    assert dict(zip(frame["opportunity_id"], map(sorted, frame["tags"]), strict=True)) == expected
    assert frame["confidential"].any() and frame["archived"].any()


# -- the data profiles ------------------------------------------------------------------------


def test_created_profiles_have_their_shapes():
    base = generate_dataset(seed=3, opportunities=4000)
    shapes = {p: apply_created_profile(base, p, seed=3).opportunities for p in CREATED_PROFILES}
    assert shapes["uniform"] is base.opportunities
    last = max(o["createdAt"] for o in shapes["recent"])
    recent = sum(o["createdAt"] > last - 365 * DAY_MS for o in shapes["recent"])
    assert recent / 4000 > 0.55
    bulk = sum(BULK_IMPORT_MS <= o["createdAt"] < BULK_IMPORT_MS + DAY_MS for o in shapes["bulk"])
    assert 0.37 < bulk / 4000 < 0.43
    days = {o["createdAt"] // DAY_MS for o in shapes["sparse"]}
    assert len(days) <= 2 * 45 and max(days) - min(days) > 4 * 365
    for opps in shapes.values():  # same ids, timestamps never before createdAt, sorted
        assert sorted(o["id"] for o in opps) == sorted(o["id"] for o in base.opportunities)
        assert all((o.get("updatedAt") or o["createdAt"]) >= o["createdAt"] for o in opps)
        assert [o["createdAt"] for o in opps] == sorted(o["createdAt"] for o in opps)
    with pytest.raises(ValueError, match="unknown created profile"):
        apply_created_profile(base, "weekly")


def test_sandbox_lists_in_the_order_it_is_told(fresh_sandbox):
    sb = fresh_sandbox(opportunities=300, listing_order="newest")
    created = [o["createdAt"] for o in _client(sb).iter_opportunities(confidentiality="all")]
    assert created == sorted(created, reverse=True) and len(created) == 300
    sb.configure(listing_order="shuffled")
    listed = [o["createdAt"] for o in _client(sb).iter_opportunities(confidentiality="all")]
    assert sorted(listed) == sorted(created) and listed != sorted(listed)
    with pytest.raises(ValueError, match="listing_order"):
        sb.configure(listing_order="random")


# -- exactness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("profile", CREATED_PROFILES)
def test_fetch_is_exact_on_every_profile_in_every_order(fresh_sandbox, profile, order):
    sb = fresh_sandbox(
        seed=5, opportunities=2500, created_profile=profile, listing_order=order, latency_ms=4
    )
    snap = fetch_snapshot(_client(sb), workers=4, progress=False)
    _assert_exact(snap, sb)
    fetch = snap.meta["fetch"]
    # proven, along updatedAt with its nulls placed (as its createdAt, by default)
    assert fetch["order_trusted"] is (order != "shuffled")
    if order in ("created", "newest"):  # cut into windows; each costs at most its partial last page
        assert fetch["windows"] > 1
        assert fetch["requests"] <= 25 + fetch["windows"]


FAULTS = {
    "invalid offset": {"offset_fault_each_listing": 1},
    "server errors": {"fail_rate": 0.25},
    "dropped connections": {"drop_rate": 0.25},
    "429s": {"rate": 20, "burst": 2},  # the client runs at 60/s: another client shares the key
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("profile", CREATED_PROFILES)
def test_fetch_is_exact_under_faults_on_every_profile(fresh_sandbox, profile, fault):
    sb = fresh_sandbox(
        seed=9, opportunities=3000, created_profile=profile, latency_ms=2, **FAULTS[fault]
    )
    client = _client(sb, max_attempts=12, **({"rate": 60, "burst": 6} if fault == "429s" else {}))
    snap = fetch_snapshot(client, workers=4, progress=False)
    _assert_exact(snap, sb)
    injected = sum(sb.stats().get("faults", {}).values()) + client.stats.rate_limited
    assert injected > 0, "no fault was injected"


def test_fetch_without_trusting_the_order_is_exact_and_still_cuts(fresh_sandbox):
    sb = fresh_sandbox(seed=2, opportunities=3000, created_profile="bulk", latency_ms=4)
    client = _client(sb)
    fetched = fetch_opportunities(client, workers=4, progress=False, trust_order=False)
    expected = {o["id"] for o in sb.opportunities()}
    assert set(fetched.items) == expected
    assert fetched.stats["order_trusted"] is False and fetched.stats["windows"] > 1


# -- the fail-safe: pages that look ordered, an order that is not --------------------------------


def _fake_lever(opps: list[dict], key) -> callable:
    """A transport fake listing `opps` sorted by `key`, with Lever's filters and paging."""
    ordered = sorted(opps, key=key)

    def listing(request):
        query = parse_qs(urlsplit(request.url).query)
        lo = int(query.get("created_at_start", [-(10**15)])[0])
        hi = int(query.get("created_at_end", [10**15])[0])
        rows = [o for o in ordered if lo <= o["createdAt"] <= hi]
        return page_answer(rows, query)

    return listing


def _run_fake(opps, key, **kw) -> WindowedListing:
    with responses.RequestsMock() as rsps:
        rsps.add_callback(
            responses.GET, "https://lever.test/v1/opportunities", callback=_fake_lever(opps, key)
        )
        client = LeverClient("https://lever.test/v1", api_key="k", rate=200, burst=200)
        listing = WindowedListing(client, workers=4, now_ms=10**7, **kw)
        listing.run([({}, (None, None))])
    return listing


def test_pages_that_look_created_but_are_updated_order_hand_nothing_on():
    """Listed by updatedAt, each opportunity updated 1 ms after it was created but a few old ones
    changed recently: every page fits createdAt and updatedAt order alike, so neither is proven
    and no window hands its rest on (the scheduler before issue 25 did, and lost some)."""
    opps = [{"id": f"o{i:05d}", "createdAt": i * 1000} for i in range(6000)]
    for opp in opps:
        opp["updatedAt"] = opp["createdAt"] + (10**7 if opp["createdAt"] % 997_000 == 0 else 1)
    listing = _run_fake(opps, key=lambda o: (o["updatedAt"], o["id"]))
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["cuts"] > 0 and listing.stats["handed_on"] == 0
    assert listing.order_trusted is False


def test_an_ordered_listing_hands_on_without_relisting():
    opps: list[dict] = []
    for i in range(6000):  # a gap in the middle, and same-millisecond twins
        created = opps[-1]["createdAt"] if i % 50 == 1 else i * 7 + (5_000_000 if i > 4000 else 0)
        # updatedAt unrelated to the order: the pages prove it is createdAt, not updatedAt
        lag = (i * 37) % 500
        opps.append({"id": f"o{i:05d}", "createdAt": created, "updatedAt": created + lag})
    listing = _run_fake(opps, key=lambda o: (o["createdAt"], o["id"]))
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.order_trusted and listing.stats["relisted"] == 0
    assert listing.stats["handed_on"] > 0
    # a window costs at most its partial last page (twins at a cut are listed twice, kept once)
    assert listing.stats["pages"] <= 60 + listing.stats["windows"]


def test_split_window_keeps_open_ends_and_covers_the_range():
    assert split_window((None, None), 0, 99, 2) == [(None, 49), (50, None)]
    parts = split_window((10, 109), 10, 109, 4)
    assert parts[0][0] == 10 and parts[-1][1] == 109
    assert all(b[0] == a[1] + 1 for a, b in pairwise(parts))
    assert split_window((5, 6), 5, 6, 4) == [(5, 6)]


# -- refresh and the contact_id reads go through the same scheduler ------------------------------


@pytest.mark.parametrize("order", ["created", "shuffled"])
def test_a_refresh_with_much_changed_is_windowed_and_exact(fresh_sandbox, order):
    from toolkit.snapshot.fetch import refresh_snapshot
    from toolkit.snapshot.frame import Snapshot

    sb = fresh_sandbox(seed=4, opportunities=3000, created_profile="recent", latency_ms=3)
    sb.configure(listing_order=order)
    client = _client(sb)
    snap = fetch_snapshot(client, progress=False)
    stale = Snapshot(snap.frame.iloc[:100].reset_index(drop=True), dict(snap.meta, watermark=1))
    for opp_id in list(snap.frame["opportunity_id"][:5]):
        sb.set_tags(opp_id, ["changed since"])
    sb.reset_stats()
    refreshed = refresh_snapshot(client, stale, progress=False)
    _assert_exact(refreshed, sb)
    assert refreshed.meta["refreshed_changed"] == 3000
    assert sb.stats()["max_in_flight"] > 1  # windows listed at once, not one serial chain


def test_verify_reads_contact_batches_concurrently_under_the_limiter(fresh_sandbox, tmp_path):
    from toolkit.remediate.planner import make_plan
    from toolkit.remediate.verify import verify_plan

    sb = fresh_sandbox(seed=8, contacts=600, latency_ms=20)
    client = _client(sb, rate=1000, burst=1000)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=list(CONTACT_LEVEL_TAGS))
    sb.reset_stats()
    bad = verify_plan(client, plan, by="contact", batch=5)
    assert len(bad) == len(plan.rows)  # nothing applied: every add is missing
    batches = -(-plan.rows["contact_id"].nunique() // 5)

    def listings() -> int:  # the sandbox counts a request once its answer is sent: poll
        return sum(sb.stats()["by_route"].get("GET /v1/opportunities", {}).values())

    wait_for(lambda: listings() >= batches, 10, "one listing per batch of contacts")
    assert listings() >= batches > 4  # one listing per batch of contacts, at least
    assert sb.stats()["max_in_flight"] >= 4  # listed at once, not one after another
