"""The fetch's completeness invariant (`toolkit.snapshot.windows`) in every listing order,
adversarial ones included, and with opportunities edited, created and deleted while it runs;
`refresh` and `verify` under every order; the sandbox's orders; doctor's order rows."""

from __future__ import annotations

import random
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from fake_pages import page_answer

from lever_sandbox.config import NULL_UPDATED_AT, NULL_UPDATED_FILTER
from lever_sandbox.data import CONTACT_LEVEL_TAGS
from toolkit.client import LeverClient
from toolkit.snapshot.order import UPDATED_ASC, UPDATED_DESC, OrderEvidence
from toolkit.snapshot.windows import WindowedListing

ORDERS = ("created", "newest", "updated", "updated-desc", "shuffled")
EVERYTHING = ({"confidentiality": "all"}, (None, None))


def _client(sb, **kw) -> LeverClient:
    options = {"rate": 1000, "burst": 1000, "backoff_base": 0.01, "backoff_max": 0.05}
    options.update(kw)
    return LeverClient(sb.base_url, api_key=sb.api_key, **options)


# -- a transport fake listing in any order ------------------------------------------------------


def _fake(opps: list[dict], key) -> callable:
    """Lever's paging and created_at filters over `opps`, listed in the order `key` gives."""
    ordered = sorted(opps, key=key)

    def listing(request):
        query = parse_qs(urlsplit(request.url).query)
        lo = int(query.get("created_at_start", [-(10**15)])[0])
        hi = int(query.get("created_at_end", [10**15])[0])
        since = int(query.get("updated_at_start", [-(10**15)])[0])
        until = int(query.get("updated_at_end", [10**15])[0])
        rows = [  # a null updatedAt: compared as its createdAt
            o
            for o in ordered
            if lo <= o["createdAt"] <= hi
            and since <= (o.get("updatedAt") or o["createdAt"]) <= until
        ]
        return page_answer(rows, query)

    return listing


def _run_fake(opps, key, **kw) -> WindowedListing:
    with responses.RequestsMock() as rsps:
        rsps.add_callback(
            responses.GET, "https://lever.test/v1/opportunities", callback=_fake(opps, key)
        )
        client = LeverClient("https://lever.test/v1", api_key="k", rate=200, burst=200)
        listing = WindowedListing(client, workers=4, now_ms=10**7, **kw)
        listing.run([({}, (None, None))])
    return listing


def _timeline(n: int = 6000, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"o{i:05d}", "createdAt": i * 1000, "updatedAt": i * 1000 + rng.randrange(1, 5000)}
        for i in range(n)
    ]


def test_updated_order_looking_created_never_loses_the_old_ones_edited_recently():
    """The review's case: listed by updatedAt, every opportunity updated 1 ms after it was
    created except 3 old ones edited recently. Every page the fetch reads fits createdAt order;
    the old scheduler handed on at the first page and lost the 3 (with order_trusted True)."""
    opps = [
        {"id": f"o{i:05d}", "createdAt": i * 1000, "updatedAt": i * 1000 + 1} for i in range(6000)
    ]
    for i in (3, 40, 77):  # on the first page's createdAt range, listed last
        opps[i]["updatedAt"] = 10**8 + i
    listing = _run_fake(opps, key=lambda o: (o["updatedAt"], o["id"]))
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["cuts"] > 0  # still listed in parallel


def test_updated_order_with_a_late_disorder_lists_every_range_again():
    """Listed by updatedAt, updatedAt close to createdAt but a few old ones edited recently: the
    pages tell the two orders apart, nothing is handed on, nothing lost."""
    opps = _timeline()
    for i in range(0, 6000, 997):
        opps[i]["updatedAt"] = 10**8 + i
    listing = _run_fake(opps, key=lambda o: (o["updatedAt"], o["id"]))
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["handed_on"] == 0 and not listing.order_trusted


@pytest.mark.parametrize("direction", [1, -1])
def test_a_proven_created_order_hands_on_in_either_direction(direction):
    opps = _timeline()
    for i in range(0, 6000, 50):  # same-millisecond twins at some cuts
        opps[i + 1]["createdAt"] = opps[i]["createdAt"]
    listing = _run_fake(opps, key=lambda o: (direction * o["createdAt"], o["id"]))
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.order_trusted and listing.stats["handed_on"] > 0
    assert listing.stats["relisted"] == 0
    assert listing.stats["pages"] <= 60 + listing.stats["windows"]


def test_an_order_created_on_the_first_pages_and_not_later_lists_every_claim_again():
    """createdAt ascending on the first pages (updatedAt random: createdAt is proven), but past
    the first 2,000 opportunities the order is a hash: a later window's page shows it, and every
    range closed on the order is listed again in full."""
    opps = _timeline()

    def key(o):
        scrambled = o["createdAt"] >= 2_000_000
        return (scrambled, hash(o["id"]) if scrambled else o["createdAt"], o["id"])

    listing = _run_fake(opps, key=key)
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["handed_on"] > 0 and listing.stats["relisted"] > 0
    assert not listing.order_trusted


def test_an_updated_order_that_changes_under_a_hand_ons_filter_lists_every_window_again():
    """Listed by updatedAt (a null one at its createdAt, as the filters compare it), except
    that a query bounded by `updated_at_start` alone comes in another order (a sort that is a
    property of the query). Hand-ons along updatedAt are made; the first window they start
    with that bound shows the other order, and every window closed on it is listed again."""
    opps = _timeline(20000)
    for o in opps[::30]:
        o["updatedAt"] = None
    by_updated = _fake(opps, key=lambda o: (o["updatedAt"] or o["createdAt"], o["id"]))
    by_hash = _fake(opps, key=lambda o: (hash(o["id"]), o["id"]))

    def listing(request):
        query = parse_qs(urlsplit(request.url).query)
        other = "updated_at_start" in query and "updated_at_end" not in query
        return (by_hash if other else by_updated)(request)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, "https://lever.test/v1/opportunities", callback=listing)
        client = LeverClient("https://lever.test/v1", api_key="k", rate=200, burst=200)
        fetch = WindowedListing(client, workers=4, now_ms=10**8)
        items = fetch.run([({}, (None, None))])
    assert sorted(items) == sorted(o["id"] for o in opps)
    assert fetch.stats["handed_on"] > 0 and fetch.stats["relisted"] > 0
    assert not fetch.order_trusted


def test_without_trusting_any_order_an_order_mimicking_created_everywhere_is_exact():
    """An order outside the model (createdAt, but three old ones listed last, updatedAt random)
    mimics createdAt on every page a hand-on reads: `trust_order=False` still lists it all."""
    opps = _timeline()
    late = {f"o{i:05d}" for i in (5, 6, 7)}
    listing = _run_fake(
        opps, key=lambda o: (o["id"] in late, o["createdAt"], o["id"]), trust_order=False
    )
    assert sorted(listing.items) == sorted(o["id"] for o in opps)
    assert listing.stats["handed_on"] == 0


def test_an_order_by_no_timestamp_is_cut_by_what_the_pages_show(fresh_sandbox):
    sb = fresh_sandbox(seed=3, opportunities=3000, created_profile="bulk", listing_order="shuffled")
    listing = WindowedListing(_client(sb), workers=4)
    items = listing.run([EVERYTHING])
    assert set(items) == {o["id"] for o in sb.opportunities()}
    assert listing.stats["windows"] > 1 and listing.stats["handed_on"] == 0


# -- along updatedAt, wherever a null updatedAt stands ---------------------------------------


def _opp(created, updated):
    return {"createdAt": created, "updatedAt": updated}


def test_the_root_along_updated_at_waits_for_the_answer_on_nulls_before_it_is_cut():
    """Cut before the answer, the root's parts list their range again; after it, they hand on.
    The root lists one more page meanwhile (never more than two before it is cut)."""
    from concurrent.futures import Future

    from toolkit.snapshot.cuts import Family, ListedWindow

    client = LeverClient("https://lever.test/v1", api_key="k", rate=10, burst=18)
    listing = WindowedListing(client, workers=4, now_ms=10**9)
    family = Family({}, (None, None))
    root = ListedWindow(family, None, None)
    listing._active.append(root)
    page = [_opp(i * 1000, i * 1000 + 500) for i in range(100)]
    family.evidence.see(None, page)
    root.key, root.position, root.pages_done = UPDATED_ASC, page[-1]["updatedAt"], 1
    root.density, root.left, root.sample = 100 / 99_000, 90.0, [o["createdAt"] for o in page]
    family.null_probe = Future()  # asked, not answered
    assert listing._cut(root) == []
    root.pages_done = 3  # not held longer than two pages
    assert listing._cut(root) != []
    root.pages_done, family.null_probe = 1, None  # answered
    assert listing._cut(root) != []


def test_a_page_without_a_null_updated_at_asks_again_further_back():
    """The page asked for (what was created and updated up to a time) may hold no null one:
    the next ask ends before that page's earliest, up to `NULL_PAGE_ASKS` in all."""
    from concurrent.futures import ThreadPoolExecutor

    from toolkit.client.http import Page
    from toolkit.snapshot.cuts import Family
    from toolkit.snapshot.windows import NULL_PAGE_ASKS

    asked: list[dict] = []
    answers = [
        [_opp(900, 950), _opp(700, 990)],  # no null one: ask again, up to 699
        [_opp(600, None), _opp(500, 650)],  # a null one, matched by both bounds
    ]

    class Client:
        def iter_opportunity_pages(self, **params):
            asked.append(params)
            yield Page(answers[len(asked) - 1], False)

    listing = WindowedListing(Client(), workers=4, now_ms=10**6)
    family = Family({}, (None, None))
    with ThreadPoolExecutor(1) as pool:
        listing._pool = pool
        listing._ask_page(family, 1000)
        family.null_probe.result()
        listing._settle_null_probe(family)  # none: asks again
        assert family.null_filter is None and family.null_probe is not None
        family.null_probe.result()
        listing._settle_null_probe(family)
    assert family.null_filter is True and family.null_pages == 2 < NULL_PAGE_ASKS
    assert [(a["created_at_end"], a["updated_at_start"], a["updated_at_end"]) for a in asked] == [
        (1000, 1, 1000),
        (699, 1, 699),
    ]


def test_the_pages_rule_out_the_places_of_a_null_updated_at():
    evidence = OrderEvidence()
    evidence.see(None, [_opp(1, 2), _opp(3, None), _opp(2, 4), _opp(5, 6)])  # null at its createdAt
    assert evidence.proven == UPDATED_ASC and evidence.nulls[UPDATED_ASC] == {"created"}
    assert not evidence.nulls_listed(UPDATED_ASC, None)  # is the filter matching it?
    assert evidence.nulls_listed(UPDATED_ASC, True)

    first = OrderEvidence()
    first.see(None, [_opp(9, None), _opp(1, None), _opp(2, 3), _opp(1, 5)])  # nulls first, by id
    assert first.nulls[UPDATED_ASC] == {"smallest"}
    assert first.nulls_listed(UPDATED_ASC, None)  # listed before any other: no filter needed

    last = OrderEvidence()
    last.see(None, [_opp(2, 8), _opp(1, 5), _opp(9, None)])  # newest first, the null one last
    assert last.nulls[UPDATED_DESC] == {"smallest"}
    assert not last.nulls_listed(UPDATED_DESC, True)  # at the far end: never listed in time

    unseen = OrderEvidence()
    unseen.see(None, [_opp(1, 2), _opp(2, 9)])
    assert not unseen.nulls_listed(UPDATED_ASC, True)  # none seen: it may stand last


@pytest.mark.parametrize("flt", NULL_UPDATED_FILTER)
@pytest.mark.parametrize("place", NULL_UPDATED_AT)
@pytest.mark.parametrize("order", ["updated", "updated-desc"])
def test_along_updated_at_the_fetch_is_exact_wherever_a_null_stands(
    fresh_sandbox, order, place, flt
):
    """Lever does not say where a null `updatedAt` sorts or which `updated_at` filters match it.
    A hand-on along `updatedAt` bounds the rest with such a filter: it is made only where no
    null one can be left out (not at the far end of the order; at its `createdAt` only if the
    filters were shown to match it so), and the fetch is exact in every combination."""
    sb = fresh_sandbox(
        seed=3,
        opportunities=6000,
        created_profile="bulk",
        listing_order=order,
        null_updated_at=place,
        null_updated_filter=flt,
    )
    listing = WindowedListing(_client(sb), workers=4)
    items = listing.run([EVERYTHING])
    assert set(items) == {o["id"] for o in sb.opportunities()}
    far_end = "largest" if order == "updated" else "smallest"
    safe = place != far_end and (place != "created" or flt == "created")
    assert listing.order_trusted is safe
    if not safe:
        assert listing.stats["handed_on"] == 0
    assert listing.stats["windows"] > 1


# -- changes while the fetch runs ----------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_opportunities_edited_created_and_deleted_during_the_fetch(fresh_sandbox, order):
    """Every opportunity that exists for the whole fetch is in it, once, whatever moved: old ones
    edited mid-fetch jump to the front of an updatedAt-descending listing, past running windows
    (the old scheduler lost them), and are found again by the catch-up."""
    sb = fresh_sandbox(seed=6, opportunities=3000, listing_order=order, latency_ms=2)
    before = sb.opportunities()
    rng = random.Random(order)
    edited = [o["id"] for o in rng.sample(before, 40)]
    deleted = [o["id"] for o in rng.sample([o for o in before if o["id"] not in edited], 10)]
    created: list[str] = []
    seen = {"n": 0, "done": False}

    def midway(new: int) -> None:  # between pages, in the listing's own thread: deterministic
        seen["n"] += new
        if seen["done"] or seen["n"] < 900:
            return
        seen["done"] = True
        for opp_id in edited:
            sb.set_tags(opp_id, ["edited mid-fetch"])
        for opp_id in deleted:
            sb.delete_opportunity(opp_id)
        for i in range(5):
            twin = dict(before[i], id=f"new-{order}-{i}", tags=["created mid-fetch"])
            twin["createdAt"] = twin["updatedAt"] = before[-1]["createdAt"] + 1 + i
            sb.engine.state.insert(twin)
            created.append(twin["id"])

    listing = WindowedListing(_client(sb), workers=4, on_items=midway)
    items = listing.run([EVERYTHING])
    assert seen["done"]
    survivors = {o["id"] for o in before} - set(deleted)
    assert survivors <= set(items), f"lost {sorted(survivors - set(items))[:5]}"
    assert set(items) <= survivors | set(deleted) | set(created)
    if order not in ("created", "newest"):  # not proven createdAt: the catch-up ran
        assert listing.stats["catch_up_pages"] >= 1
        assert all(items[o]["tags"] == ["edited mid-fetch"] for o in edited)


# -- refresh and verify go through the same scheduler, in every order ---------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_refresh_is_exact_in_every_order(fresh_sandbox, order):
    from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot
    from toolkit.snapshot.frame import Snapshot

    sb = fresh_sandbox(seed=4, opportunities=2000, created_profile="recent", listing_order=order)
    client = _client(sb)
    snap = fetch_snapshot(client, progress=False)
    stale = Snapshot(snap.frame.iloc[:100].reset_index(drop=True), dict(snap.meta, watermark=1))
    for opp_id in list(snap.frame["opportunity_id"][:5]):
        sb.set_tags(opp_id, ["changed since"])
    refreshed = refresh_snapshot(client, stale, progress=False)
    expected = {o["id"]: sorted(o.get("tags") or []) for o in sb.opportunities()}
    frame = refreshed.frame
    assert frame["opportunity_id"].is_unique
    assert dict(zip(frame["opportunity_id"], map(sorted, frame["tags"]), strict=True)) == expected


@pytest.mark.parametrize("order", ORDERS)
def test_verify_is_exact_in_every_order(fresh_sandbox, order):
    from toolkit.remediate.planner import make_plan
    from toolkit.remediate.verify import verify_plan
    from toolkit.snapshot.fetch import fetch_snapshot

    sb = fresh_sandbox(seed=8, contacts=400, listing_order=order)
    client = _client(sb)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=list(CONTACT_LEVEL_TAGS))
    done = plan.rows.iloc[: len(plan.rows) // 2]
    for opp_id, group in done.groupby("opportunity_id"):
        current = sb.opportunity(opp_id)["tags"]
        sb.set_tags(opp_id, [*current, *group["tag"]])
    bad = verify_plan(client, plan, by="contact", batch=5)
    assert sorted(bad["opportunity_id"] + bad["tag"]) == sorted(
        plan.rows.iloc[len(plan.rows) // 2 :].pipe(lambda r: r["opportunity_id"] + r["tag"])
    )
    assert set(bad["reason"]) == {"missing"}


# -- the sandbox's orders, and doctor ----------------------------------------------------------


def test_the_sandbox_lists_in_each_order_and_an_edit_moves_only_updated_orders(fresh_sandbox):
    sb = fresh_sandbox(opportunities=300)

    def listed() -> list[dict]:
        return list(_client(sb).iter_opportunities(confidentiality="all"))

    def updated(o: dict) -> int:
        return o["updatedAt"] if o["updatedAt"] is not None else o["createdAt"]

    for order, key, reverse in (
        ("created", lambda o: o["createdAt"], False),
        ("newest", lambda o: o["createdAt"], True),
        ("updated", updated, False),
        ("updated-desc", updated, True),
    ):
        sb.configure(listing_order=order)
        values = [key(o) for o in listed()]
        assert values == sorted(values, reverse=reverse) and len(values) == 300, order
    oldest = min(sb.opportunities(), key=lambda o: o["createdAt"])["id"]
    sb.set_tags(oldest, ["moved"])
    assert listed()[0]["id"] == oldest  # updated-desc: the edit moved it to the front
    sb.configure(listing_order="shuffled")
    created = [o["createdAt"] for o in listed()]
    assert created != sorted(created) and created != sorted(created, reverse=True)
    with pytest.raises(ValueError, match="listing_order must be one of"):
        sb.configure(listing_order="descending")


def test_sandbox_cli_refuses_an_unknown_listing_order(capsys):
    from toolkit.cli import main

    assert main(["sandbox", "--listing-order", "random", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--listing-order: invalid choice: 'random'" in err  # argparse's choices, one line
    assert "'created', 'newest', 'updated', 'updated-desc', 'shuffled'" in err


@pytest.mark.parametrize(
    ("order", "seen"),
    [
        ("created", "createdAt ascending"),
        ("newest", "newest first (createdAt descending)"),
        ("updated", "updatedAt ascending"),
        ("updated-desc", "updatedAt descending"),
        ("shuffled", "by no single timestamp"),
    ],
)
def test_doctor_reports_the_order_it_observes(fresh_sandbox, order, seen):
    from toolkit.doctor.checks import OK
    from toolkit.doctor.report import run_doctor

    sb = fresh_sandbox(listing_order=order)
    report = run_doctor(_client(sb))
    rows = {c.name: c for c in report.checks if c.name.startswith("listing order")}
    assert set(rows) == {"listing order (plain)", "listing order (updated_at_start)"}
    for row in rows.values():
        assert row.observed.startswith(seen) and row.status == OK


@pytest.mark.parametrize(
    ("order", "place", "seen"),
    [
        ("updated", "smallest", "a null updatedAt is listed first"),
        ("updated-desc", "largest", "a null updatedAt is listed first"),
    ],
)
def test_doctor_reports_where_a_null_updated_at_is_listed(fresh_sandbox, order, place, seen):
    from toolkit.doctor.report import run_doctor

    sb = fresh_sandbox(listing_order=order, null_updated_at=place)
    report = run_doctor(_client(sb))
    plain = next(c for c in report.checks if c.name == "listing order (plain)")
    assert seen in plain.observed, plain.observed
