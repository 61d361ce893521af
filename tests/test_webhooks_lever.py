"""`lever-tags sync` against webhooks as Lever documents them (issue 19, issue 20 finding 2).

The sandbox sends what Lever's documentation shows: one webhook per event, each with its own
48-character signature token, made through ``/v1/webhooks``; deliveries without ``id`` (the
``sendIds: false`` mode); the settings page's test request (``candidateHired``, ``data: {}``);
retries five times with growing delays (scaled down by ``retryScale``); old deliveries
(``backdateMs``: a retry or a "Rerun" hours later).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import requests
import responses
from polling import wait_for
from test_sync import SyncProcess, admin, contacts_with, has_tag, new_opportunity, writes_sent

from toolkit.client import LeverClient
from toolkit.policy import Policy
from toolkit.sync import tag_contact
from toolkit.sync.poller import poll_once
from toolkit.sync.registration import register_webhooks
from toolkit.sync.service import SyncService
from toolkit.sync.store import SyncJournal
from toolkit.sync.webhook import WebhookRefused, WebhookSecrets, parse_webhook

TAG = "Do not contact"
THREE = ("applicationCreated", "candidateStageChange", "candidateArchiveChange")


@pytest.fixture
def sb(fresh_sandbox):
    sandbox = fresh_sandbox(contacts=60)
    settings(sandbox, sendIds=False, retryScale=0.0001)  # Lever's documented body: no id
    return sandbox


def settings(sb, **body: Any) -> dict:
    answer = admin(sb, "POST", "/webhooks/settings", body)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client_of(sb) -> LeverClient:
    return LeverClient(sb.base_url, api_key=sb.api_key)


def make_webhooks(sb, url: str, events=THREE) -> dict[str, dict]:
    """One webhook per event through Lever's public API: {event: created webhook}."""
    client = client_of(sb)
    return {e: client.create_webhook({"url": url, "event": e}) for e in events}


def deliveries(sb) -> list[dict]:
    return admin(sb, "GET", "/webhooks/deliveries").json()["data"]


def inbox(service: SyncService):
    with SyncJournal(service.journal_path, lock=False, create=False) as journal:
        return journal.sync_table("sync_inbox")


@pytest.fixture
def start(sb, tmp_path):
    """start(events) -> (service, {event: webhook}): webhooks made first, then the service on
    their port with ``LEVER_WEBHOOK_SECRET``-style ``EVENT=TOKEN`` pairs; polling off."""
    started: list[SyncService] = []

    def factory(events=THREE, **kwargs: Any) -> tuple[SyncService, dict[str, dict]]:
        port = free_port()
        hooks = make_webhooks(sb, f"http://127.0.0.1:{port}/webhooks/lever", events)
        pairs = ",".join(f"{e}={h['configuration']['signatureToken']}" for e, h in hooks.items())
        options: dict[str, Any] = {"dry_run": False, "poll_interval": 0, "workers": 2}
        options.update(kwargs)
        service = SyncService(
            client_of(sb),
            Policy(contact_level=(TAG,)),
            options.pop("journal", tmp_path / "sync.sqlite"),
            listen=("127.0.0.1", port),
            secret=WebhookSecrets.parse(pairs),
            **options,
        ).start()
        started.append(service)
        return service, hooks

    yield factory
    for service in started:
        service.stop()


# -- three events, three tokens, no id -------------------------------------------------------------


def test_three_events_each_signed_with_its_own_token_without_id_close_the_gap(sb, start):
    service, hooks = start()
    tokens = {h["configuration"]["signatureToken"] for h in hooks.values()}
    assert len(tokens) == 3 and all(len(t) == 48 for t in tokens)
    (a, _), (_b, b_opps), (_c, c_opps) = contacts_with(sb, 3)
    for opp in [*b_opps, *c_opps]:
        sb.set_tags(opp, [])
    # applicationCreated: a new application of a known person
    new = new_opportunity(sb, a)
    wait_for(lambda: has_tag(sb, new), 10, "the tag on the new application")
    # candidateStageChange / candidateArchiveChange: a person tags one opportunity, then works it
    for contact_opps, event in ((b_opps, "candidateStageChange"), (c_opps, THREE[2])):
        body = {"add": [TAG], "event": event}
        assert admin(sb, "POST", f"/opportunities/{contact_opps[0]}/changeTags", body).ok
        wait_for(lambda o=contact_opps: all(has_tag(sb, x) for x in o), 10, f"the tag by {event}")
    sent = deliveries(sb)
    assert {d["event"] for d in sent} == set(THREE)
    assert all(d["status"] == 200 and "id" not in d["body"] for d in sent)
    assert len({d["subscription"] for d in sent}) == 3  # three webhooks, three tokens
    assert service.health()["last_poll"] is None  # polling was off


def test_the_settings_page_test_request_answers_200_and_queues_nothing(sb, start):
    service, hooks = start()
    for hook in hooks.values():  # each webhook's test button: candidateHired, data {}, no id
        assert admin(sb, "POST", f"/webhooks/{hook['id']}/test").status_code == 202
    wait_for(lambda: len(deliveries(sb)) == 3, 10, "three test requests")
    sent = deliveries(sb)
    assert [d["status"] for d in sent] == [200, 200, 200]
    assert all(d["body"]["event"] == "candidateHired" and d["body"]["data"] == {} for d in sent)
    assert inbox(service).empty
    # a forged test request is still refused
    body = {**sent[0]["body"], "signature": "0" * 64}
    assert requests.post(f"{service.url}/webhooks/lever", json=body).status_code == 401


def test_a_delivery_retried_two_hours_after_triggered_at_is_processed(sb, start):
    _service, hooks = start(events=("applicationCreated",))
    hook = hooks["applicationCreated"]
    admin(sb, "POST", f"/webhooks/{hook['id']}", {"faults": {"backdateMs": 2 * 3600 * 1000}})
    [(contact, _)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)
    wait_for(lambda: has_tag(sb, opp), 10, "the tag from a two-hour-old delivery")
    [sent] = deliveries(sb)
    assert sent["body"]["triggeredAt"] < time.time() * 1000 - 2 * 3600 * 1000 + 60_000
    assert sent["status"] == 200


def test_one_delivery_sent_three_times_writes_once(sb, start):
    service, hooks = start(events=("applicationCreated",))
    hook = hooks["applicationCreated"]
    admin(sb, "POST", f"/webhooks/{hook['id']}", {"faults": {"duplicates": 2}})
    [(contact, _)] = contacts_with(sb, 1)
    sb.reset_stats()
    opp = new_opportunity(sb, contact)
    wait_for(lambda: len(deliveries(sb)) == 3, 10, "three copies")
    wait_for(lambda: has_tag(sb, opp), 10, "the tag")
    wait_for(lambda: service.health()["queue_depth"] == 0, 10, "an empty queue")
    assert [d["status"] for d in deliveries(sb)] == [200, 200, 200]
    assert writes_sent(sb) == 1
    assert len(inbox(service)) == 1  # no id: the signed token found the copies


def test_forged_deliveries_change_nothing(sb, start):
    service, hooks = start(events=("applicationCreated", "candidateStageChange"))
    hook = hooks["applicationCreated"]
    admin(sb, "POST", f"/webhooks/{hook['id']}", {"faults": {"badSignature": True}})
    admin(sb, "POST", f"/webhooks/{hook['id']}", {"retryDelaysMs": [0, 0]})
    [(contact, _)] = contacts_with(sb, 1)
    sb.reset_stats()
    opp = new_opportunity(sb, contact)
    wait_for(lambda: len(deliveries(sb)) == 3, 10, "three refused attempts")
    assert [d["status"] for d in deliveries(sb)] == [401, 401, 401]
    # signed with another webhook's token: its own event's token decides
    now = int(time.time() * 1000)
    other = hooks["candidateStageChange"]["configuration"]["signatureToken"]
    token = uuid.uuid4().hex
    body = {
        "event": "applicationCreated",
        "triggeredAt": now,
        "token": token,
        "signature": _sign(other, token, now),
        "data": {"opportunityId": opp, "contactId": contact},
    }
    assert requests.post(f"{service.url}/webhooks/lever", json=body).status_code == 401
    assert writes_sent(sb) == 0 and not has_tag(sb, opp)
    assert inbox(service).empty


def test_a_captured_body_replayed_with_a_fresh_id_is_refused_even_after_a_restart(
    sb, start, tmp_path
):
    settings(sb, sendIds=True)
    service, _hooks = start(events=("applicationCreated",))
    (contact, _), (victim, victim_opps) = contacts_with(sb, 2)
    opp = new_opportunity(sb, contact)
    wait_for(lambda: has_tag(sb, opp), 10, "the genuine delivery's tag")
    [captured] = deliveries(sb)
    for opp_id in victim_opps:
        sb.set_tags(opp_id, [])
    url = f"{service.url}/webhooks/lever"
    replay = {**captured["body"], "id": str(uuid.uuid4())}
    replay["data"] = {"opportunityId": victim_opps[0], "contactId": victim}
    answer = requests.post(url, json=replay)
    assert answer.status_code == 200 and answer.json()["status"] == "duplicate"
    port = service.port
    service.stop()
    again = SyncService(
        client_of(sb),
        Policy(contact_level=(TAG,)),
        tmp_path / "sync.sqlite",
        dry_run=False,
        listen=("127.0.0.1", port),
        secret=service.secrets,
        poll_interval=0,
    ).start()
    try:
        replay["id"] = str(uuid.uuid4())
        assert requests.post(f"{again.url}/webhooks/lever", json=replay).json() == {
            "status": "duplicate"
        }
        assert len(inbox(again)) == 1
    finally:
        again.stop()
    assert not any(has_tag(sb, o) for o in victim_opps)


def _sign(key: str, token: str, triggered: int) -> str:
    return hmac.new(key.encode(), f"{token}{triggered}".encode(), hashlib.sha256).hexdigest()


# -- intake rules (pure) ---------------------------------------------------------------------------

KEY = "k" * 48


def _body(**changes: Any) -> bytes:
    now = int(time.time() * 1000)
    body = {"event": "applicationCreated", "triggeredAt": now, "token": "a" * 48}
    body["data"] = {"opportunityId": "o-1", "contactId": "c-1"}
    body.update(changes)
    body["signature"] = _sign(KEY, body["token"], body["triggeredAt"])
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "what"),
    [
        ({"data": {"opportunityId": ".."}}, "data.opportunityId"),
        ({"data": {"opportunityId": "a/b"}}, "data.opportunityId"),
        ({"data": {"contactId": "%2e%2e"}}, "data.contactId"),
        ({"data": {"opportunityId": "x" * 101}}, "data.opportunityId"),
        ({"id": "../../etc"}, "id"),
        ({"event": "../x"}, "event"),
        ({"event": "e" * 65}, "event"),
        ({"event": None}, "event"),
        ({"data": ["o-1"]}, "data"),
    ],
)
def test_intake_refuses_path_like_and_over_long_values(changes, what):
    with pytest.raises(WebhookRefused) as refused:
        parse_webhook(_body(**changes), KEY)
    assert refused.value.status == 400 and what in refused.value.message
    assert KEY not in refused.value.message


def test_intake_accepts_lever_s_documented_bodies_and_checks_the_event_s_token():
    secrets = WebhookSecrets.parse(f"applicationCreated={KEY}, {'p' * 20}")
    event = parse_webhook(_body(), secrets)  # Lever's example: no id
    assert (event.id, event.opportunity_id, event.contact_id, event.test) == (
        None,
        "o-1",
        "c-1",
        False,
    )
    old = _body(triggeredAt=int(time.time() * 1000) - 14 * 24 * 3600 * 1000)  # a "Rerun"
    assert parse_webhook(old, secrets).event == "applicationCreated"
    with pytest.raises(WebhookRefused, match="older"):  # an age limit, when asked for
        parse_webhook(old, secrets, replay_window_s=3600)
    # an event not named is checked against the plain token, not the others
    with pytest.raises(WebhookRefused) as refused:
        parse_webhook(_body(event="candidateStageChange"), secrets)
    assert refused.value.status == 401
    test = parse_webhook(_body(event="candidateHired", data={}), secrets)  # the test button
    assert test.test and test.opportunity_id is None


def test_webhook_secrets_parse_rules_and_never_show_a_token():
    pairs = WebhookSecrets.parse(f"applicationCreated={KEY},contactUpdated={'z' * 16},{'p' * 16}")
    assert pairs.for_event("contactUpdated") == ("z" * 16,)
    assert pairs.for_event("candidateHired") == ("p" * 16,)
    assert KEY not in repr(pairs) and KEY not in str(pairs)
    for bad, message in [
        ("short", "at least 16"),
        (f"applicationCreated={'x' * 15}", "at least 16"),
        (f"tagAdded={KEY}", "not a Lever webhook event"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            WebhookSecrets.parse(bad)
        assert "x" * 15 not in str(info.value) and "\n" not in str(info.value)
    assert not WebhookSecrets.parse("  , ")


@pytest.fixture
def processes():
    started: list[SyncProcess] = []
    yield started
    for p in started:
        p.kill()


# -- registration ----------------------------------------------------------------------------------


def test_register_webhooks_then_a_new_application_is_tagged_with_no_token_by_hand(
    sb, tmp_path, processes
):
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/lever"
    args = ("--listen", f"127.0.0.1:{port}", "--register-webhooks", url, "--poll-interval", "0")
    proc = SyncProcess(sb, tmp_path, *args, "--yes", env={"LEVER_WEBHOOK_SECRET": ""})
    processes.append(proc)
    proc.wait_line(r"Lever webhooks to .*applicationCreated")
    listed = list(client_of(sb).list_webhooks())
    assert sorted(w["event"] for w in listed) == sorted(
        ["applicationCreated", "candidateStageChange", "candidateArchiveChange", "contactUpdated"]
    )
    assert all(w["url"] == url and "signatureToken" not in json.dumps(w) for w in listed)
    [(contact, _)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)
    wait_for(lambda: has_tag(sb, opp), 10, "the tag through a registered webhook")
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(15) == 0
    with SyncJournal(proc.journal, lock=False, create=False) as journal:
        tokens = [t for ts in journal.webhook_tokens().values() for t in ts]
    assert len(tokens) == 4 and all(t not in "".join(proc.output) for t in tokens)
    assert oct(proc.journal.stat().st_mode & 0o777) == "0o600"
    # registering again finds them (same ids, same tokens)
    with SyncJournal(proc.journal) as journal:
        again = register_webhooks(client_of(sb), journal, url)
        assert {r["action"] for r in again} == {"kept"}
    # --unregister-webhooks deletes them and forgets the tokens
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(tmp_path / "policy.yaml")]
    argv += ["--journal", str(proc.journal), "--unregister-webhooks"]
    done = subprocess.run(
        argv, env={**os.environ, **sb.env()}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert list(client_of(sb).list_webhooks()) == []
    with SyncJournal(proc.journal, lock=False, create=False) as journal:
        assert journal.webhook_tokens() == {}


def test_register_replaces_a_webhook_whose_token_it_does_not_have(sb, tmp_path):
    url = "http://127.0.0.1:9/webhooks/lever"
    stranger = client_of(sb).create_webhook({"url": url, "event": "applicationCreated"})
    settings(sb, createShape="flat")  # the other plausible answer shape

    with SyncJournal(tmp_path / "j.sqlite") as journal:
        done = register_webhooks(client_of(sb), journal, url, ("applicationCreated",))
        assert [r["action"] for r in done] == ["replaced"]
        assert done[0]["webhook_id"] != stranger["id"]
        assert [w["id"] for w in client_of(sb).list_webhooks()] == [done[0]["webhook_id"]]


def test_sandbox_webhooks_api_refuses_bad_input_and_retries_five_times(sb):
    client = client_of(sb)
    url = f"{sb.base_url}/webhooks"
    auth = (sb.api_key, "")
    for body in (
        {"url": "http://x.example/h", "event": "applicationCreated"},  # not HTTPS
        {"url": "https://x.example/h", "event": "tagAdded"},
        {
            "url": "https://x.example/h",
            "event": "contactUpdated",
            "configuration": {"conditions": {"origins": ["applied"]}},
        },
    ):
        assert requests.post(url, json=body, auth=auth).status_code == 400
    assert requests.get(url).status_code == 401
    assert requests.delete(f"{url}/nope", auth=auth).status_code == 404
    dead = f"http://127.0.0.1:{free_port()}/webhooks/lever"
    client.create_webhook({"url": dead, "event": "applicationCreated"})
    [(contact, _)] = contacts_with(sb, 1)
    new_opportunity(sb, contact)
    wait_for(lambda: len(deliveries(sb)) == 6, 20, "the first attempt and five retries")
    at = [d["at"] for d in deliveries(sb)]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert gaps[-1] > gaps[0]  # longer and longer
    assert sb.engine.webhooks.pending() == 0


# -- perform_as, 404s, polling ---------------------------------------------------------------------


def test_a_wrong_perform_as_is_refused_at_start_before_serving(sb, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
    argv += ["--listen", "127.0.0.1:0", "--perform-as", "no-such-user", "--yes"]
    argv += ["--journal", str(tmp_path / "j.sqlite")]
    env = {**os.environ, **sb.env(), "LEVER_WEBHOOK_SECRET": KEY}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--perform-as no-such-user" in done.stderr and "listening" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_write_404_is_confirmed_by_a_read_before_calling_it_deleted(fresh_sandbox):
    sb = fresh_sandbox(contacts=30, perform_as_status=404)  # a wrong perform_as answers 404
    [(contact, _opps)] = contacts_with(sb, 1)
    new = new_opportunity(sb, contact)
    sb.reset_stats()
    result = tag_contact(client_of(sb), new, [TAG], perform_as="no-such-user")
    assert [w.state for w in result.writes] == ["failed"]  # not "not_found": it exists
    assert "exists" in result.writes[0].message
    assert sum(sb.stats()["by_route"]["GET /v1/opportunities/{id}"].values()) == 2  # + the check


BASE = "https://api.lever.example/v1"


@responses.activate
def test_the_poll_watermark_comes_from_levers_clock_and_a_merge_queues_both_contacts(tmp_path):
    lever_now = int(time.time() * 1000) - 3600 * 1000  # this host runs an hour ahead of Lever
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(lever_now / 1000))
    opp = {"id": "o1", "contact": "new-c", "tags": [], "createdAt": 1, "updatedAt": lever_now}
    responses.get(
        f"{BASE}/opportunities", json={"data": [opp], "hasNext": False}, headers={"Date": date}
    )
    client = LeverClient(BASE, api_key="k" * 20)
    with SyncJournal(tmp_path / "j.sqlite") as journal:
        journal.remember([("o1", "old-c", [], "--")])
        result = poll_once(client, journal, (TAG,))
        queued = set(journal.sync_table("sync_inbox")["contact_id"])
        mark = int(journal.get_state("watermark"))
    assert queued == {"old-c", "new-c"}  # the merge: both the old and the new contact
    assert lever_now - 5_000 <= mark <= lever_now + 1_000 and result.watermark == mark
    [listing] = [c.request.url for c in responses.calls if "updated_at_start=" in c.request.url]
    start = int(listing.split("updated_at_start=")[1].split("&")[0])
    assert start <= lever_now  # the first listing starts on Lever's clock, not an hour ahead


def test_the_sandbox_command_refuses_a_bad_webhook_retry_scale(tmp_path):
    argv = [sys.executable, "-m", "toolkit.cli", "sandbox", "--port", "0"]
    for scale in ("0", "nan", "-1"):
        done = subprocess.run(
            [*argv, "--webhook-retry-scale", scale], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and "--webhook-retry-scale" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_the_report_secret_scan_knows_each_webhook_token(monkeypatch):
    from toolkit.notebook.secrets import secret_values  # loads the notebook package: only here

    first, second = "f" * 48, "s" * 20
    monkeypatch.setenv("LEVER_WEBHOOK_SECRET", f"applicationCreated={first}, {second}")
    found = secret_values()
    assert first in found and second in found


def test_register_at_a_new_url_deletes_the_webhooks_made_for_the_old_one(sb, tmp_path):
    old, new = "http://127.0.0.1:9/old", "http://127.0.0.1:9/new"
    with SyncJournal(tmp_path / "j.sqlite") as journal:
        register_webhooks(client_of(sb), journal, old, ("applicationCreated",))
        register_webhooks(client_of(sb), journal, new, ("applicationCreated",))
        assert [w["url"] for w in client_of(sb).list_webhooks()] == [new]
        assert [r["url"] for r in journal.registered_webhooks()] == [new]
