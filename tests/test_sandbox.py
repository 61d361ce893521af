"""The sandbox server, exercised through the real `LeverClient` over loopback.

The session-scoped `sandbox` fixture is shared and read-only here; every test that writes,
changes faults or limits uses `fresh_sandbox`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from polling import wait_for

from lever_sandbox import (
    CONTACT_LEVEL_TAGS,
    INVALID_OFFSET_MESSAGE,
    Sandbox,
    generate_dataset,
    is_archived,
)
from lever_sandbox import cli as sandbox_cli
from lever_sandbox.config import SandboxConfig
from lever_sandbox.process import MODULE_COMMAND, SandboxProcess, SandboxStartError
from toolkit.client import LeverClient
from toolkit.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidOffsetTokenError,
    NotFoundError,
    PermissionDeniedError,
)


def client_for(sb: Sandbox, **kwargs) -> LeverClient:
    options = {"api_key": sb.api_key, "rate": 1000, "burst": 1000, "sleep": lambda s: None}
    options.update(kwargs)
    if "access_token" in kwargs:
        options.pop("api_key")
    return LeverClient(sb.base_url, **options)


def raw(sb: Sandbox, method: str, path: str, key: str | None = "", **kwargs) -> requests.Response:
    """A plain request (no client logic); key "" = the full key, None = no credential."""
    auth = None if key is None else ((key or sb.api_key), "")
    root = sb.url if path.startswith("/_sandbox") else sb.base_url
    return requests.request(method, root + path, auth=auth, timeout=10, **kwargs)


def ids(opps) -> list[str]:
    return [o["id"] for o in opps]


def only(opps, **where) -> set[str]:
    return {o["id"] for o in opps if all(fn(o) for fn in where.values())}


# -- the data generator -------------------------------------------------------------------------


def test_generator_is_deterministic_and_seed_dependent():
    a = generate_dataset(seed=3, contacts=120)
    b = generate_dataset(seed=3, contacts=120)
    c = generate_dataset(seed=4, contacts=120)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert ids(a.opportunities) != ids(c.opportunities)
    assert len(generate_dataset(seed=3, opportunities=777).opportunities) == 777


def test_generator_plants_what_the_toolkit_must_handle():
    ds = generate_dataset(seed=7, contacts=2000)
    opps = ds.opportunities
    per_contact = Counter(o["contact"] for o in opps if o.get("contact"))
    mean = sum(per_contact.values()) / len(per_contact)
    assert 1.5 <= mean <= 2.1
    assert max(per_contact.values()) <= 8
    assert Counter(per_contact.values())[1] > len(per_contact) / 2
    n = len(opps)
    confidential = sum(o["confidentiality"] == "confidential" for o in opps)
    assert 0.03 * n < confidential < 0.09 * n
    anonymized = [o for o in opps if o["isAnonymized"]]
    assert anonymized and all(o["name"] == "Anonymized" and not o["emails"] for o in anonymized)
    assert any(o["updatedAt"] is None for o in opps)
    assert any("contact" not in o or o["contact"] is None for o in opps)
    assert any(o.get("archived") for o in opps)
    legacy = [o for o in opps if "archivedAt" in o]
    assert legacy and all("archived" not in o and is_archived(o) for o in legacy)
    tags = Counter(t for o in opps for t in o["tags"])
    assert {"Full-time", "München", "東京"} <= set(tags)
    assert {" python", "PYTHON", "Do Not Contact", "Do not  contact"} & set(tags)
    assert any(not name.isascii() for name in {o["name"] for o in opps})
    domains = {e.rsplit("@", 1)[1] for o in opps for e in o["emails"]}
    assert domains <= {"example.com", "example.org"}
    # a contact-level tag on some but not all of a contact's opportunities
    by_contact: dict[str, list[set[str]]] = {}
    for o in opps:
        if o.get("contact"):
            by_contact.setdefault(o["contact"], []).append(set(o["tags"]))
    split = [
        (c, t)
        for c, sets in by_contact.items()
        if len(sets) > 1
        for t in CONTACT_LEVEL_TAGS
        if 0 < sum(t in s for s in sets) < len(sets)
    ]
    assert len(split) > 50
    assert len(ds.users) >= 3
    assert opps == sorted(opps, key=lambda o: (o["createdAt"], o["id"]))


def test_generator_makes_exactly_the_opportunities_asked_for():
    # its speed is measured in benchmarks/, not timed here
    ds = generate_dataset(seed=1, opportunities=50_000)
    assert len(ds.opportunities) == 50_000
    assert len({o["id"] for o in ds.opportunities}) == 50_000


# -- listings and filters -----------------------------------------------------------------------


def test_full_listing_equals_dataset_exactly_once(sandbox):
    listed = list(client_for(sandbox).iter_opportunities(confidentiality="all"))
    assert len(listed) == len(set(ids(listed)))
    assert listed == sandbox.opportunities()


def test_ten_thousand_opportunities_listed_exactly_once(fresh_sandbox):
    sb = fresh_sandbox(seed=11, opportunities=10_000)
    client = client_for(sb)
    listed = ids(client.iter_opportunities(confidentiality="all"))
    assert len(listed) == 10_000
    assert Counter(listed) == Counter(ids(sb.opportunities()))
    assert client.stats.requests == 100


def test_confidentiality_default_all_confidential(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    default = set(ids(client.iter_opportunities()))
    assert default == only(everything, c=lambda o: o["confidentiality"] == "non-confidential")
    conf = set(ids(client.iter_opportunities(confidentiality="confidential")))
    assert conf == only(everything, c=lambda o: o["confidentiality"] == "confidential")
    assert conf and default.isdisjoint(conf)
    assert len(everything) == len(default) + len(conf)


def test_restricted_key_gets_403_for_confidential_data(sandbox):
    client = client_for(sandbox, api_key=sandbox.restricted_api_key)
    assert len(list(client.iter_opportunities())) > 0
    for value in ("all", "confidential"):
        with pytest.raises(PermissionDeniedError) as info:
            list(client.iter_opportunities(confidentiality=value))
        assert info.value.status == 403 and info.value.code == "Forbidden"
    secret = next(o for o in sandbox.opportunities() if o["confidentiality"] == "confidential")
    with pytest.raises(PermissionDeniedError):
        client.get_opportunity(secret["id"])


def test_tag_filter_is_a_case_sensitive_union(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    python = set(ids(client.iter_opportunities(confidentiality="all", tag="Python")))
    assert python == only(everything, t=lambda o: "Python" in o["tags"])
    upper = set(ids(client.iter_opportunities(confidentiality="all", tag="PYTHON")))
    assert upper == only(everything, t=lambda o: "PYTHON" in o["tags"])
    assert upper and python.isdisjoint(upper)  # the seed plants PYTHON apart from Python
    union = set(ids(client.iter_opportunities(confidentiality="all", tag=["Python", "Go"])))
    assert union == only(everything, t=lambda o: {"Python", "Go"} & set(o["tags"]))
    assert union > python
    assert list(client.iter_opportunities(confidentiality="all", tag="python-nope")) == []


def test_contact_id_filter_and_expand_contact(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    contact = Counter(o.get("contact") for o in everything if o.get("contact")).most_common(1)[0][0]
    mine = list(client.iter_opportunities(confidentiality="all", contact_id=contact))
    assert set(ids(mine)) == only(everything, c=lambda o: o.get("contact") == contact)
    assert len(mine) > 1
    expanded = list(
        client.iter_opportunities(confidentiality="all", contact_id=contact, expand="contact")
    )
    assert all(o["contact"]["id"] == contact for o in expanded)
    assert expanded[0]["contact"] == client.get_contact(contact)
    assert {"name", "emails", "phones", "headline", "location"} <= set(expanded[0]["contact"])
    orphan = next(o for o in everything if not o.get("contact"))
    got = client.get_opportunity(orphan["id"], expand="contact")
    assert not got.get("contact")


def test_archived_filter_counts_both_shapes(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    archived = set(ids(client.iter_opportunities(confidentiality="all", archived=True)))
    active = set(ids(client.iter_opportunities(confidentiality="all", archived=False)))
    assert archived == only(everything, a=is_archived)
    assert any("archivedAt" in o for o in everything if o["id"] in archived)
    assert active == set(ids(everything)) - archived
    with pytest.raises(BadRequestError):
        list(client.iter_opportunities(archived="maybe"))


def test_time_windows_are_inclusive_milliseconds(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    pick = everything[len(everything) // 2]
    created = pick["createdAt"]
    got = set(
        ids(
            client.iter_opportunities(
                confidentiality="all", created_at_start=created, created_at_end=created
            )
        )
    )
    assert pick["id"] in got
    assert got == only(everything, c=lambda o: o["createdAt"] == created)
    lo, hi = everything[10]["createdAt"], everything[60]["createdAt"]
    window = set(
        ids(
            client.iter_opportunities(confidentiality="all", created_at_start=lo, created_at_end=hi)
        )
    )
    assert window == only(everything, c=lambda o: lo <= o["createdAt"] <= hi)

    # updatedAt, with null updatedAt compared by createdAt (documented in state.py)
    def updated(o):
        return o["createdAt"] if o["updatedAt"] is None else o["updatedAt"]

    stamp = sorted(updated(o) for o in everything)[len(everything) // 3]
    since = set(ids(client.iter_opportunities(confidentiality="all", updated_at_start=stamp)))
    assert since == only(everything, u=lambda o: updated(o) >= stamp)
    until = set(ids(client.iter_opportunities(confidentiality="all", updated_at_end=stamp)))
    assert until == only(everything, u=lambda o: updated(o) <= stamp)
    assert since & until  # the boundary item is in both
    null = next(o for o in everything if o["updatedAt"] is None)
    assert null["id"] in set(
        ids(
            client.iter_opportunities(
                confidentiality="all",
                updated_at_start=null["createdAt"],
                updated_at_end=null["createdAt"],
            )
        )
    )


def test_email_filter_is_case_insensitive(sandbox):
    client = client_for(sandbox)
    everything = sandbox.opportunities()
    target = next(o for o in everything if o["emails"])
    email = target["emails"][0]
    got = set(ids(client.iter_opportunities(confidentiality="all", email=email.upper())))
    assert got == only(everything, e=lambda o: email in o["emails"])
    assert target["id"] in got


def test_limit_bounds_unknown_params_and_small_pages(sandbox):
    for bad in (0, 101, "ten"):
        r = raw(sandbox, "GET", "/opportunities", params={"limit": bad})
        assert r.status_code == 400 and r.json()["code"] == "InvalidRequest"
    r = raw(sandbox, "GET", "/opportunities", params={"limit": 5, "stage_id": "x", "zzz": "1"})
    assert r.status_code == 200 and len(r.json()["data"]) == 5 and r.json()["hasNext"]
    listed = ids(client_for(sandbox).iter_opportunities(confidentiality="all", limit=7))
    assert listed == ids(sandbox.opportunities())


# -- offset tokens ------------------------------------------------------------------------------


def test_offset_tokens_belong_to_their_query(sandbox):
    first = raw(sandbox, "GET", "/opportunities", params={"limit": 3, "archived": "true"}).json()
    token = first["next"]
    same = raw(
        sandbox, "GET", "/opportunities", params={"limit": 3, "archived": "true", "offset": token}
    )
    assert same.status_code == 200
    assert set(ids(same.json()["data"])).isdisjoint(ids(first["data"]))
    for params in (
        {"limit": 3, "archived": "false", "offset": token},
        {"limit": 4, "archived": "true", "offset": token},
        {"limit": 3, "offset": token},
        {"limit": 3, "archived": "true", "offset": token[:-2] + "xx"},
        {"limit": 3, "archived": "true", "offset": "0.1414895548650.nonsense"},
    ):
        r = raw(sandbox, "GET", "/opportunities", params=params)
        assert r.status_code == 400
        assert r.json() == {"code": "InvalidRequest", "message": INVALID_OFFSET_MESSAGE}
    # the client maps it onto InvalidOffsetTokenError
    with pytest.raises(InvalidOffsetTokenError):
        client_for(sandbox)._request("GET", "/opportunities", params={"limit": 3, "offset": token})


def test_invalid_offset_token_can_answer_200(fresh_sandbox):
    sb = fresh_sandbox(offset_error_status=200)
    token = raw(sb, "GET", "/opportunities", params={"limit": 2}).json()["next"]
    r = raw(sb, "GET", "/opportunities", params={"limit": 3, "offset": token})
    assert r.status_code == 200
    assert r.json()["message"] == INVALID_OFFSET_MESSAGE and "data" not in r.json()


def test_pages_stay_stable_under_concurrent_writes(fresh_sandbox):
    sb = fresh_sandbox()
    client = client_for(sb)
    everything = sb.opportunities()
    seen = []
    for i, opp in enumerate(client.iter_opportunities(confidentiality="all", limit=10)):
        seen.append(opp["id"])
        if i % 7 == 0:  # write behind and ahead of the cursor while listing
            sb.set_tags(everything[(i * 13) % len(everything)]["id"], ["moved"])
    assert seen == ids(everything)


# -- auth ---------------------------------------------------------------------------------------


def test_auth_failures_and_bearer(sandbox):
    r = raw(sandbox, "GET", "/opportunities", key=None)
    assert r.status_code == 401 and r.json()["code"] == "Unauthorized"
    with pytest.raises(AuthenticationError) as info:
        list(client_for(sandbox, api_key="wrong-key").iter_opportunities())
    assert info.value.status == 401 and "wrong-key" not in str(info.value)
    r = requests.get(
        sandbox.base_url + "/opportunities",
        headers={"Authorization": "Basic !!!notbase64"},
        timeout=10,
    )
    assert r.status_code == 401
    # Bearer is for the OAuth access token only; an API key sent as Bearer is refused (Lever)
    bearer = client_for(sandbox, access_token=sandbox.access_token)
    assert len(list(bearer.iter_opportunities(confidentiality="all"))) == len(
        sandbox.opportunities()
    )
    with pytest.raises(AuthenticationError):
        list(client_for(sandbox, access_token=sandbox.api_key).iter_opportunities())
    r = requests.get(sandbox.base_url + "/users", auth=(sandbox.access_token, ""), timeout=10)
    assert r.status_code == 401  # and the token is no Basic user name either
    assert sandbox.api_key not in repr(sandbox)


# -- faults and limits --------------------------------------------------------------------------


def test_server_errors_are_recovered(fresh_sandbox):
    sb = fresh_sandbox(fail_rate=0.3)
    client = client_for(sb, max_attempts=30)
    assert ids(client.iter_opportunities(confidentiality="all", limit=25)) == ids(
        sb.opportunities()
    )
    stats = sb.stats()
    assert stats["faults"]["server_error"] > 0
    assert client.stats.server_errors == stats["faults"]["server_error"]
    assert {"500", "502", "503"} & set(stats["by_status"])


def test_dropped_connections_are_recovered(fresh_sandbox):
    sb = fresh_sandbox(drop_rate=0.3)
    client = client_for(sb, max_attempts=30)
    assert ids(client.iter_opportunities(confidentiality="all", limit=25)) == ids(
        sb.opportunities()
    )
    assert sb.stats()["faults"]["dropped"] > 0
    assert client.stats.connection_errors == sb.stats()["faults"]["dropped"]


@pytest.mark.parametrize("status", [400, 200])
def test_offset_faults_restart_the_listing(fresh_sandbox, status):
    # A restart re-reads from page one, and the client gives up after 5 restarts: 6 pages at
    # 25 % under seed 4 (the dice are deterministic) meet two faults and then finish.
    sb = fresh_sandbox(seed=4, contacts=60, offset_fault_rate=0.25, offset_error_status=status)
    client = client_for(sb)
    assert ids(client.iter_opportunities(confidentiality="all", limit=20)) == ids(
        sb.opportunities()
    )
    assert sb.stats()["faults"]["offset_token"] > 0
    assert client.stats.listing_restarts == sb.stats()["faults"]["offset_token"]
    sb.configure(offset_fault_rate=1.0)
    with pytest.raises(InvalidOffsetTokenError):  # every page after the first fails: bounded
        list(client.iter_opportunities(confidentiality="all", limit=20))


def test_faults_are_deterministic_under_the_seed(fresh_sandbox):
    def statuses(sb):
        out = []
        for _ in range(40):
            try:
                out.append(raw(sb, "GET", "/opportunities", params={"limit": 1}).status_code)
            except requests.ConnectionError:
                out.append("dropped")
        return out

    a = statuses(fresh_sandbox(seed=5, contacts=20, fail_rate=0.3, drop_rate=0.1))
    b = statuses(fresh_sandbox(seed=5, contacts=20, fail_rate=0.3, drop_rate=0.1))
    assert a == b and set(a) - {200}


def test_faults_never_touch_admin_routes(fresh_sandbox):
    sb = fresh_sandbox(fail_rate=1.0, drop_rate=0.0)
    assert raw(sb, "GET", "/opportunities").status_code in (500, 502, 503)
    for _ in range(5):
        assert raw(sb, "GET", "/_sandbox/stats").status_code == 200


def test_burst_gets_429_and_the_client_recovers(fresh_sandbox):
    sb = fresh_sandbox(rate=5, burst=3)
    codes = [raw(sb, "GET", "/users").status_code for _ in range(10)]
    assert codes[:3] == [200, 200, 200] and codes.count(429) >= 5
    r = raw(sb, "GET", "/users")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.json()["code"] == "TooManyRequests"
    assert sb.stats()["rate_limited"] == codes.count(429) + 1
    # per key: the restricted key has its own bucket
    assert raw(sb, "GET", "/users", key=sb.restricted_api_key).status_code == 200
    # and one key has one bucket however it is presented (another password)
    other_password = requests.get(sb.base_url + "/users", auth=(sb.api_key, "x"), timeout=10)
    assert other_password.status_code == 429
    sb.configure(retry_after=True, rate=0.5, burst=1)
    raw(sb, "GET", "/users")
    r = raw(sb, "GET", "/users")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    # a client that ignores the limit (rate 1000) is answered 429 and backs off until done
    # (2 pages a second after 2 at once: the 3rd of 6 pages is early unless a page takes 0.5 s)
    sb.configure(retry_after=False, rate=2, burst=2)
    sb.reset_stats()
    client = LeverClient(
        sb.base_url, api_key=sb.api_key, rate=1000, burst=1000, backoff_base=0.05, max_attempts=20
    )
    assert ids(client.iter_opportunities(confidentiality="all", limit=100)) == ids(
        sb.opportunities()
    )
    assert client.stats.rate_limited > 0
    assert sb.stats()["rate_limited"] == client.stats.rate_limited


def test_the_default_client_spends_levers_burst_without_a_429(fresh_sandbox):
    # Lever's bucket: 10 a second, bursts of 20 [doc]. A default client sends all but two of
    # them at once (the first second of a fetch; the two are for requests that arrive closer
    # together than they were sent) and paces the rest.
    sb = fresh_sandbox(rate=10, burst=20, latency_ms=300, jitter_ms=0)
    client = LeverClient(sb.base_url, api_key=sb.api_key, max_attempts=1)
    assert client.limiter.burst == 20 - 2
    together = threading.Barrier(20)

    def one_user(_: int) -> dict:
        together.wait(timeout=30)  # all 20 ask at once
        return next(client.iter_users())

    with ThreadPoolExecutor(20) as pool:
        assert len(list(pool.map(one_user, range(20)))) == 20
    assert sb.stats()["rate_limited"] == 0 and client.stats.rate_limited == 0
    # two wait, 0.1 + 0.2 s at most (a burst of 10 waits 0.1 + 0.2 + ... + 1.0 = 5.5 s)
    assert client.stats.throttle_seconds <= 0.3 + 1e-6


def test_concurrent_requests_overlap_their_latency(fresh_sandbox):
    sb = fresh_sandbox(latency_ms=200, jitter_ms=0)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=50))
    session.auth = (sb.api_key, "")
    barrier = threading.Barrier(50)

    def one(_):
        barrier.wait()
        return session.get(sb.base_url + "/opportunities", params={"limit": 10}, timeout=10)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(one, range(50)))
    assert all(a.status_code == 200 for a in answers)
    # Overlap proven by the server's own count, not by wall time (a loaded machine would make
    # a time bar flaky): a server that handled them one by one would never have 2 in flight.
    # The seconds are in benchmarks/bench_sandbox_concurrency.py.
    assert sb.stats()["max_in_flight"] >= 25


# -- writes -------------------------------------------------------------------------------------


def test_tag_writes_bump_updated_at_and_show_in_listings(fresh_sandbox):
    sb = fresh_sandbox()
    client = client_for(sb)
    user = sb.users[0]["id"]
    opp = next(o for o in sb.opportunities() if o["updatedAt"] is None)
    before = int(time.time() * 1000)
    data = client.add_tags(opp["id"], ["Python", "Zoë's pick"], perform_as=user)
    # appended in order, each once, the tags it had kept (Python may already have been there)
    assert data["tags"] == [
        *opp["tags"],
        *(t for t in ["Python", "Zoë's pick"] if t not in opp["tags"]),
    ]
    assert data["updatedAt"] >= before
    stamp = data["updatedAt"]
    again = client.add_tags(opp["id"], ["Python"])  # already there: a no-op answered 200
    assert again["tags"] == data["tags"] and again["updatedAt"] > stamp
    removed = client.remove_tags(opp["id"], ["Zoë's pick", "never-there"])
    assert "Zoë's pick" not in removed["tags"]
    recent = ids(client.iter_opportunities(confidentiality="all", updated_at_start=stamp))
    assert opp["id"] in recent
    assert sb.opportunity(opp["id"])["tags"] == removed["tags"]
    assert sb.stats()["writes"] == 3


def test_tag_write_errors(fresh_sandbox):
    sb = fresh_sandbox()
    client = client_for(sb)
    opp = sb.opportunities()[0]
    path = f"/opportunities/{opp['id']}/addTags"
    for body in ({}, {"tags": []}, {"tags": [""]}, {"tags": "Python"}, {"tags": [1]}, []):
        r = raw(sb, "POST", path, json=body)
        assert r.status_code == 400, body
        assert r.json()["code"] == "InvalidRequest"
    r = raw(sb, "POST", path, data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    with pytest.raises(BadRequestError):
        client.add_tags(opp["id"], ["x"], perform_as="not-a-user")
    with pytest.raises(NotFoundError) as info:
        client.add_tags("00000000-0000-4000-8000-000000000000", ["x"])
    assert info.value.code == "ResourceNotFound"
    assert sb.opportunity(opp["id"])["tags"] == opp["tags"]
    assert sb.stats()["writes"] == 0


def test_deleted_and_unknown_ids_are_404(fresh_sandbox):
    sb = fresh_sandbox()
    client = client_for(sb)
    victim = sb.opportunities()[5]
    assert client.get_opportunity(victim["id"])["id"] == victim["id"]
    sb.delete_opportunity(victim["id"])
    with pytest.raises(NotFoundError):
        client.get_opportunity(victim["id"])
    with pytest.raises(NotFoundError):
        client.remove_tags(victim["id"], ["x"])
    assert victim["id"] not in ids(client.iter_opportunities(confidentiality="all"))
    with pytest.raises(NotFoundError):
        client.get_contact("nobody")
    r = raw(sb, "GET", "/no/such/path")
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"


def test_anonymized_opportunities_accept_writes_like_lever(fresh_sandbox):
    sb = fresh_sandbox(contacts=1000)
    anon = next(o for o in sb.opportunities() if o["isAnonymized"])
    assert "Python" in client_for(sb).add_tags(anon["id"], ["Python"])["tags"]


def test_deprecated_candidate_endpoints(fresh_sandbox):
    sb = fresh_sandbox()
    client = client_for(sb)
    opp = sb.opportunities()[1]
    with pytest.warns(DeprecationWarning):
        data = client.add_candidate_tags(opp["id"], ["Boomerang"])
    assert "Boomerang" in data["tags"]
    with pytest.warns(DeprecationWarning):
        data = client.remove_candidate_tags(opp["id"], ["Boomerang"])
    assert "Boomerang" not in data["tags"]
    r = raw(sb, "POST", f"/candidates/{opp['id']}/addTags", json={"tags": ["x"]})
    assert r.status_code == 200 and r.headers.get("Deprecation") == "true"


# -- other resources ----------------------------------------------------------------------------


def test_tags_users_and_contacts(sandbox):
    client = client_for(sandbox)
    expected = Counter(t for o in sandbox.opportunities() for t in o["tags"])
    assert {t["text"]: t["count"] for t in client.iter_tags()} == dict(expected)
    # paginated like every list
    texts, offset = [], None
    while True:
        params = {"limit": 10, **({"offset": offset} if offset else {})}
        page = raw(sandbox, "GET", "/tags", params=params).json()
        texts += [t["text"] for t in page["data"]]
        if not page["hasNext"]:
            break
        offset = page["next"]
    assert texts == sorted(expected)
    users = list(client.iter_users())
    assert users == sandbox.users
    assert list(client.iter_users(email=users[1]["email"].upper())) == [users[1]]
    opp = next(o for o in sandbox.opportunities() if o.get("contact") and o["emails"])
    contact = client.get_contact(opp["contact"])
    assert contact["name"] == opp["name"] and contact["emails"] == opp["emails"]


# -- admin routes -------------------------------------------------------------------------------


def test_admin_routes(fresh_sandbox):
    sb = fresh_sandbox()
    assert raw(sb, "GET", "/_sandbox/stats", key=None).status_code == 401
    assert raw(sb, "GET", "/_sandbox/stats", key=sb.restricted_api_key).status_code == 401
    raw(sb, "GET", "/opportunities")
    stats = raw(sb, "GET", "/_sandbox/stats").json()
    assert stats["by_route"]["GET /v1/opportunities"] == {"200": 1}
    assert stats["requests"] == 1 and stats["opportunities"] == len(sb.opportunities())
    opp_id = sb.opportunities()[0]["id"]
    for kind in ("opportunities", "candidates"):  # each write counted under its own route
        for action in ("addTags", "removeTags"):
            raw(sb, "POST", f"/{kind}/{opp_id}/{action}", json={"tags": ["Counted"]})
    routes = sb.stats()["by_route"]
    for kind in ("opportunities", "candidates"):
        for action in ("addTags", "removeTags"):
            assert routes[f"POST /v1/{kind}/{{id}}/{action}"] == {"200": 1}, routes
    assert raw(sb, "POST", "/_sandbox/reset").status_code == 200
    assert sb.stats()["requests"] == 0
    config = raw(sb, "POST", "/_sandbox/config", json={"latency_ms": 5, "fail_rate": 0.5}).json()
    assert config["latency_ms"] == 5 and sb.config.fail_rate == 0.5
    assert raw(sb, "POST", "/_sandbox/config", json={"bogus": 1}).status_code == 400
    assert raw(sb, "POST", "/_sandbox/config", json={"fail_rate": 3}).status_code == 400
    dump = raw(sb, "GET", "/_sandbox/opportunities").json()["data"]
    assert dump == sb.opportunities()
    target = dump[3]
    r = raw(sb, "POST", f"/_sandbox/opportunities/{target['id']}/tags", json={"tags": ["a", "b"]})
    assert r.status_code == 200 and sb.opportunity(target["id"])["tags"] == ["a", "b"]
    assert sb.opportunity(target["id"])["updatedAt"] > (target["updatedAt"] or 0)
    assert raw(sb, "DELETE", f"/_sandbox/opportunities/{target['id']}").status_code == 200
    assert sb.opportunity(target["id"]) is None
    assert raw(sb, "DELETE", f"/_sandbox/opportunities/{target['id']}").status_code == 404
    assert sb.stats()["admin_writes"] == 2


def test_python_helpers_are_thread_safe(fresh_sandbox):
    sb = fresh_sandbox()
    everything = ids(sb.opportunities())
    client = client_for(sb)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            sb.set_tags(everything[i % len(everything)], [f"t{i}"])
            sb.stats()
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3):
            assert ids(client.iter_opportunities(confidentiality="all", limit=30)) == everything
    finally:
        stop.set()
        thread.join()


# -- persistence and lifecycle ------------------------------------------------------------------


def test_state_file_round_trip(tmp_path, fresh_sandbox):
    path = tmp_path / "state" / "sandbox.json"
    sb = fresh_sandbox(contacts=40, state_file=path)
    assert path.exists()
    opp = sb.opportunities()[0]
    client_for(sb).add_tags(opp["id"], ["Survives"])
    gone = sb.opportunities()[1]["id"]
    sb.delete_opportunity(gone)
    before = sb.opportunities()
    # the background save lands within ~50 ms
    wait_for(lambda: "Survives" in path.read_text(encoding="utf-8"), 10, "the background save")
    sb.stop()
    assert sorted(p.name for p in path.parent.iterdir()) == ["sandbox.json"]  # no temp files
    again = fresh_sandbox(seed=999, contacts=5, state_file=path)  # the file wins
    assert again.opportunities() == before
    assert "Survives" in again.opportunity(opp["id"])["tags"]
    # the deletion too: still listed by GET /opportunities/deleted, still a 404 to read
    deleted = raw(again, "GET", "/opportunities/deleted").json()["data"]
    assert [d["id"] for d in deleted] == [gone] and deleted[0]["deletedAt"] > 0
    assert raw(again, "GET", f"/opportunities/{gone}").status_code == 404
    path.write_text("not json")
    with pytest.raises(ValueError):
        Sandbox(state_file=path)


def test_stop_leaves_no_thread_or_socket():
    sb = Sandbox(seed=1, contacts=10).start()
    port, thread = sb.port, sb._thread
    raw(sb, "GET", "/users")
    sb.stop()
    assert not thread.is_alive() and thread not in threading.enumerate()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    sb.stop()  # idempotent


LEVER_TAGS_SANDBOX = (sys.executable, "-m", "toolkit.cli", "sandbox")
FRONTS = {"python -m lever_sandbox": MODULE_COMMAND, "lever-tags sandbox": LEVER_TAGS_SANDBOX}


@pytest.mark.parametrize("front", FRONTS)
def test_cli_prints_two_lines_serves_and_exits_cleanly(front):
    env = dict(os.environ, LEVER_SANDBOX_KEY="cli-test-key-123")
    sandbox = SandboxProcess(
        "--contacts", "30", command=FRONTS[front], env=env, stderr=subprocess.PIPE
    )
    with sandbox:
        assert sandbox.base_url.startswith("http://127.0.0.1:") and sandbox.base_url.endswith("/v1")
        assert sandbox.api_key == "cli-test-key-123"
        assert sandbox.output == []  # the two lines came first
        client = LeverClient(sandbox.base_url, api_key="cli-test-key-123")
        assert len(list(client.iter_users())) >= 3
    assert sandbox.returncode == 0  # SIGTERM: a clean stop
    assert sandbox.output == []  # nothing after the two lines
    assert "cli-test-key-123" not in sandbox.stderr_text
    assert "opportunities at http://127.0.0.1:" in sandbox.stderr_text  # it did say where


@pytest.mark.parametrize("front", FRONTS)
def test_cli_rejects_bad_values(front):
    prefix = {"python -m lever_sandbox": "lever-sandbox", "lever-tags sandbox": "lever-tags"}
    cases = {
        "--rate": ("0", "--rate must be > 0 (got 0)"),
        "--fail-rate": ("1.5", "--fail-rate must be between 0 and 1 (got 1.5)"),
        "--port": ("70000", "--port must be between 0 and 65535 (got 70000)"),
        "--access-token-ttl": ("0", "--access-token-ttl must be > 0 (got 0)"),
    }
    for flag, (value, message) in cases.items():
        proc = subprocess.run(
            [*FRONTS[front], flag, value], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2, flag
        assert proc.stderr == f"{prefix[front]}: error: {message}\n" and proc.stdout == ""


def test_sandbox_process_reports_a_start_that_fails():
    with pytest.raises(SandboxStartError, match="exited with status 2"):
        SandboxProcess("--burst", "0").start()


def test_the_options_are_the_config_fields():
    """Every SandboxConfig field has its flag, with the field's default (declared once)."""
    parser = argparse.ArgumentParser()
    sandbox_cli.add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    for f in dataclasses.fields(SandboxConfig):
        assert defaults[f.name] == f.default, f.name
    assert sandbox_cli.settings(parser.parse_args([])) == dataclasses.asdict(SandboxConfig())
