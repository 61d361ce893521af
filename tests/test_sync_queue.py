"""`lever-tags sync` under attack and outage: the queue, its retries, the listener, the metrics.

Issue 20's findings 3, 4, 5, 7 and the sync parts of 9: poison events fail at once, an outage
keeps every acknowledged event (across a restart too), a flood for one contact never shuts the
door on the others, slow connections never lock Lever or /healthz out, metric labels are
bounded, /healthz says when the service is degraded, intervals must be finite.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from polling import wait_for
from sync_helpers import TAG, admin, contacts_with

from toolkit.client import LeverClient
from toolkit.errors import BadRequestError
from toolkit.policy import Policy
from toolkit.sync import listener as listener_module
from toolkit.sync.listener import BoundedHTTPServer, is_loopback
from toolkit.sync.metrics import SyncMetrics
from toolkit.sync.retry import MAX_STRIKES
from toolkit.sync.service import SyncService
from toolkit.sync.store import SyncJournal

SECRET = "whsec-queue-" + uuid.uuid4().hex
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}  # the backoff scaled down: minutes in ms


def new_opportunity(sb, contact: str) -> str:
    """A new opportunity without the tag (no webhook subscription: the test sends them)."""
    answer = admin(sb, "POST", f"/contacts/{contact}/opportunities", {"tags": []})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["id"]


def has_tag(sb, opp_id: str) -> bool:
    return TAG in (sb.opportunity(opp_id) or {}).get("tags", [])


def signed(contact: str | None, opp: str | None, *, event: str = "applicationCreated") -> dict:
    """A webhook body signed as Lever signs it (HMAC of token + triggeredAt)."""
    token, triggered = uuid.uuid4().hex, int(time.time() * 1000)
    signature = hmac.new(SECRET.encode(), f"{token}{triggered}".encode(), hashlib.sha256)
    data = {k: v for k, v in (("contactId", contact), ("opportunityId", opp)) if v}
    return {
        "id": str(uuid.uuid4()),
        "event": event,
        "triggeredAt": triggered,
        "token": token,
        "signature": signature.hexdigest(),
        "data": data,
    }


def inbox(service: SyncService):
    with SyncJournal(service.journal_path, lock=False, create=False) as journal:
        return journal.sync_table("sync_inbox")


def listings(sb) -> int:
    return sum(sb.stats()["by_route"].get("GET /v1/opportunities", {}).values())


@pytest.fixture
def sb(fresh_sandbox):
    return fresh_sandbox(contacts=60)


@pytest.fixture
def start(sb, tmp_path):
    """``start(**options)``: a SyncService on loopback against the sandbox; all stopped after."""
    started: list[SyncService] = []

    def factory(client: LeverClient | None = None, **kwargs: Any) -> SyncService:
        options: dict[str, Any] = {
            "dry_run": False,
            "listen": ("127.0.0.1", 0),
            "secret": SECRET,
            "poll_interval": 0,
            "workers": 2,
            **FAST,
        }
        options.update(kwargs)
        # the client's own retries kept short too: a failed check comes back in milliseconds
        client = client or LeverClient(
            sb.base_url, api_key=sb.api_key, max_attempts=2, backoff_base=0.01, backoff_max=0.02
        )
        service = SyncService(
            client,
            Policy(contact_level=(TAG,)),
            options.pop("journal", tmp_path / "sync.sqlite"),
            **options,
        ).start()
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()


# -- finding 3: poison events ---------------------------------------------------------------------


@pytest.mark.parametrize("poison", ["..", ".", "a/../../addTags", "x" * 5000, "bad id\n"])
def test_a_poison_id_fails_at_once_without_a_traceback(sb, start, poison, caplog):
    """An id that is not one fails on its first check (it looped past 300 attempts, logging a
    traceback each time); a genuine event queued behind it is processed."""
    caplog.set_level(logging.INFO, logger="toolkit.sync")
    service = start(workers=1)
    now = int(time.time() * 1000)
    service.journal.enqueue_webhook("poison", "applicationCreated", now, None, poison)
    [(contact, _opps)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)
    service.journal.enqueue_webhook("genuine", "applicationCreated", now, contact, opp)
    service.wake()
    wait_for(lambda: has_tag(sb, opp), 10, "the genuine event processed")
    wait_for(lambda: (inbox(service)["state"] == "failed").any(), 10, "the poison event failed")
    rows = inbox(service)
    poisoned = rows[rows["webhook_id"] == "poison"].iloc[0]
    assert poisoned["state"] == "failed" and poisoned["attempts"] == 1
    assert "not an id" in poisoned["message"]
    assert not any(r.exc_info for r in caplog.records)
    wait_for(lambda: service.health()["queue_depth"] == 0, 10, "an empty queue")
    health = service.health()
    assert health["status"] == "ok", health["problems"]  # the event's fault, not the service's


def test_a_lever_4xx_fails_at_once(sb, start, monkeypatch):
    """A 400 for one opportunity (Lever refusing the request itself) is not retried."""
    service = start(workers=1)
    real = service.client.get_opportunity

    def refusing(opp_id: str, **params: Any) -> dict:
        if opp_id == "refused-by-lever":
            raise BadRequestError("Invalid opportunity", status=400, method="GET", path="/x")
        return real(opp_id, **params)

    monkeypatch.setattr(service.client, "get_opportunity", refusing)
    service.journal.enqueue_webhook(
        "w400", "applicationCreated", int(time.time() * 1000), None, "refused-by-lever"
    )
    service.wake()
    wait_for(lambda: (inbox(service)["state"] == "failed").all(), 10, "the event failed")
    row = inbox(service).iloc[0]
    assert row["attempts"] == 1 and "HTTP 400" in row["message"]


def test_an_unexpected_error_is_retried_a_bounded_number_of_times_with_one_traceback(
    sb, start, monkeypatch, caplog
):
    """A bug (not Lever's error) fails the event after MAX_STRIKES checks, one traceback."""
    caplog.set_level(logging.INFO, logger="toolkit.sync")
    service = start(workers=1)
    [(contact, _opps)] = contacts_with(sb, 1)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(service.checker, "check", broken)
    service.journal.enqueue_webhook(
        "bug", "applicationCreated", int(time.time() * 1000), contact, None
    )
    service.wake()
    wait_for(lambda: (inbox(service)["state"] == "failed").all(), 20, "the event failed")
    row = inbox(service).iloc[0]
    assert row["strikes"] == MAX_STRIKES and row["attempts"] == MAX_STRIKES
    assert "unexpected KeyError" in row["message"]
    assert sum(1 for r in caplog.records if r.exc_info) == 1


# -- finding 5: an outage with webhooks only ------------------------------------------------------


def test_a_lever_outage_in_webhooks_only_mode_loses_no_acknowledged_event(sb, start, tmp_path):
    """Lever fails every request (5xx), then drops every connection, far longer than the old
    8-attempt limit (the backoff scaled down: 40 tries stand for hours at the 300 s cap); the
    service is restarted in the middle; when Lever returns, every event answered 200 is
    processed and none failed."""
    *picked, (late_contact, _) = contacts_with(sb, 4)
    new = [new_opportunity(sb, contact) for contact, _ in picked]
    sb.configure(fail_rate=1.0)
    service = start()
    for (contact, _), opp in zip(picked, new, strict=True):
        body = signed(contact, opp)
        assert requests.post(f"{service.url}/webhooks/lever", json=body).status_code == 200
    wait_for(lambda: inbox(service)["attempts"].min() >= 20, 60, "20 failed tries of each event")
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "degraded"
    assert any("failed in a row" in p for p in health["problems"])
    assert "HTTP 5" in health["last_error"]  # asked from loopback: the text is there
    assert set(inbox(service)["state"]) <= {"queued", "processing"}
    # a webhook still gets in during the outage: waiting rows do not fill the 503 cap
    late = new_opportunity(sb, late_contact)
    reply = requests.post(f"{service.url}/webhooks/lever", json=signed(late_contact, late))
    assert reply.status_code == 200
    new.append(late)
    service.stop()  # a restart in the middle of the outage
    sb.configure(fail_rate=0.0, drop_rate=1.0)  # now Lever is unreachable
    service = start()
    wait_for(lambda: inbox(service)["attempts"].min() >= 40, 60, "40 failed tries of each")
    assert set(inbox(service)["state"]) <= {"queued", "processing"}
    assert not any(has_tag(sb, o) for o in new)
    sb.configure(drop_rate=0.0)  # Lever is back
    wait_for(lambda: all(has_tag(sb, o) for o in new), 30, "every event processed")
    wait_for(lambda: (inbox(service)["state"] == "done").all(), 10, "every row done")
    wait_for(lambda: service.health()["status"] == "ok", 10, "healthy again")


def test_a_restart_retries_waiting_events_at_once(sb, start, tmp_path):
    """Rows waiting out a long backoff are due again when the service starts."""
    [(contact, _opps)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)
    sb.configure(fail_rate=1.0)
    service = start(backoff_base=3600.0, backoff_max=3600.0)  # the next try in an hour
    assert requests.post(f"{service.url}/webhooks/lever", json=signed(contact, opp)).ok
    wait_for(lambda: inbox(service)["attempts"].min() >= 1, 20, "a failed try")
    service.stop()
    sb.configure(fail_rate=0.0)
    start()
    wait_for(lambda: has_tag(sb, opp), 10, "the event processed right after the restart")


# -- finding 3 (the flood) and finding 2's load test: signed duplicates ---------------------------


def test_a_flood_of_signed_duplicates_never_shuts_out_a_genuine_webhook(fresh_sandbox, start):
    """300 copies of one signed delivery for one contact (fresh ids, as an attacker replays a
    captured body) with a 503 cap of 3 contacts: the genuine webhook for another contact still
    gets 200 and is processed, and the flood costs a handful of checks, one write."""
    sb = fresh_sandbox(contacts=60, latency_ms=100)  # checks slower than the flood arrives
    (victim, _), (other, _) = contacts_with(sb, 2)
    victim_opp, other_opp = new_opportunity(sb, victim), new_opportunity(sb, other)
    service = start(
        client=LeverClient(sb.base_url, api_key=sb.api_key), max_queue=3, workers=1, poll_interval=0
    )
    sb.reset_stats()
    captured = signed(victim, victim_opp)
    url = f"{service.url}/webhooks/lever"
    with requests.Session() as http:
        answers = [http.post(url, json={**captured, "id": str(uuid.uuid4())}) for _ in range(300)]
        assert {a.status_code for a in answers} == {200}
        genuine = http.post(url, json=signed(other, other_opp))
    assert genuine.status_code == 200, genuine.text
    wait_for(lambda: has_tag(sb, other_opp) and has_tag(sb, victim_opp), 30, "both tagged")
    wait_for(lambda: service.health()["queue_depth"] == 0, 30, "an empty queue")
    by_route = sb.stats()["by_route"]
    writes = sum(sum(v.values()) for k, v in by_route.items() if k.startswith("POST /v1/"))
    assert writes == 2  # one per contact, however many copies
    assert listings(sb) <= 30  # the copies coalesce: a check per batch, not per copy


# -- finding 7: metric labels ---------------------------------------------------------------------


def test_metric_event_labels_are_bounded():
    metrics = SyncMetrics()
    for index in range(1000):
        metrics.events_received.labels(source="webhook", event=f"evil{index}" * 50).inc()
    metrics.events_received.labels("webhook", "candidateHired").inc()
    text = metrics.render().decode()
    assert 'event="other"' in text and 'event="candidateHired"' in text
    assert "evil" not in text and len(text) < 10_000


def test_webhooks_with_made_up_events_add_no_series(sb, start):
    service = start()
    [(contact, _opps)] = contacts_with(sb, 1)
    before = len(requests.get(f"{service.url}/metrics").content)
    for index in range(40):
        body = signed(contact, None, event=f"madeUp{index:02d}{uuid.uuid4().hex}")
        assert requests.post(f"{service.url}/webhooks/lever", json=body).status_code < 500
    text = requests.get(f"{service.url}/metrics").text
    assert "madeUp" not in text
    assert len(text) < before + 2_000


# -- /healthz -------------------------------------------------------------------------------------


def test_healthz_is_degraded_with_reasons_and_hides_errors_from_afar(sb, start):
    service = start(max_queue=1, stale_after=60.0)
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "ok" and health["problems"] == []
    sb.configure(fail_rate=1.0)
    [(contact, _opps)] = contacts_with(sb, 1)
    hour_ago = int(time.time() * 1000) - 3_600_000
    service.journal.enqueue_webhook("old", "applicationCreated", hour_ago, contact, None)
    service.wake()
    wait_for(lambda: service.health()["last_error"], 20, "a failed check")
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "degraded"
    assert any("oldest queued event" in p for p in health["problems"])
    assert any("failed in a row" in p for p in health["problems"])
    assert isinstance(health["last_error"], str)
    proxied = requests.get(f"{service.url}/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.json()["last_error"] is True  # only that there is one, not its text
    assert "HTTP" not in proxied.text


def test_healthz_is_degraded_when_the_queue_is_full(sb, start):
    service = start(max_queue=0)
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "degraded"
    assert any("queue is full" in p for p in health["problems"])


# -- finding 4: slow connections ------------------------------------------------------------------


def test_a_half_open_connection_is_closed_after_the_header_timeout(start):
    service = start(header_timeout=0.5)
    with socket.create_connection(("127.0.0.1", service.port)) as conn:
        conn.sendall(b"POST /webhooks/lever HTTP/1.1\r\nHost: x\r\n")  # never finished
        conn.settimeout(15)
        assert conn.recv(1024) == b""  # closed by the server (tornado's default: an hour)


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_300_slow_connections_leave_healthz_and_webhooks_answering(sb, tmp_path):
    """`lever-tags sync` with 256 descriptors and 300 half-open connections (the headers never
    end): /healthz and a genuine webhook still answer, and the log stays small (at the
    descriptor limit it used to log 133 MB in 12 s)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    [(contact, _opps)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)
    log_path = tmp_path / "sync.log"
    env = {**os.environ, **sb.env(), "LEVER_WEBHOOK_SECRET": SECRET}
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy), "--yes"]
    argv += ["--journal", str(tmp_path / "sync.sqlite"), "--listen", "127.0.0.1:0"]
    argv += ["--poll-interval", "0"]
    slow: list[socket.socket] = []
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_low_fd_limit
        )
    try:
        found = wait_for(
            lambda: "listening on" in log_path.read_text() and log_path.read_text(),
            30,
            "the service listening",
        )
        url = next(w for w in found.split() if w.startswith("http://127.0.0.1:"))
        port = int(url.rsplit(":", 1)[1])
        for _ in range(300):  # bounded: 300 connections, each a few bytes, then silence
            conn = socket.socket()
            conn.settimeout(5)
            try:
                conn.connect(("127.0.0.1", port))
                conn.sendall(b"POST /webhooks/lever HTTP/1.1\r\nHost: x\r\nContent-Le")
            except OSError:  # the backlog is full: the server stopped accepting
                conn.close()
                break
            slow.append(conn)
        assert len(slow) >= 250
        health = requests.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
        reply = requests.post(f"{url}/webhooks/lever", json=signed(contact, opp), timeout=10)
        assert reply.status_code == 200
        wait_for(lambda: has_tag(sb, opp), 15, "the genuine webhook processed")
    finally:
        for conn in slow:
            conn.close()
        proc.terminate()
        proc.wait(20)
    assert log_path.stat().st_size < 200_000
    assert "Traceback" not in log_path.read_text()


# -- finding 9 (sync): limits and the listening address -------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--poll-interval", "nan"),
        ("--poll-interval", "inf"),
        ("--poll-interval", "-1"),
        ("--replay-window", "nan"),
        ("--replay-window", "inf"),
        ("--replay-window", "-5"),
    ],
)
def test_intervals_must_be_finite_and_positive(sb, tmp_path, flag, value):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
    argv += ["--journal", str(tmp_path / "s.sqlite"), f"{flag}={value}"]
    done = subprocess.run(
        argv, env={**os.environ, **sb.env()}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert flag in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not Path(tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("name", ["poll_interval", "replay_window", "backoff_max", "stale_after"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_the_service_refuses_non_finite_intervals(sb, tmp_path, name, value):
    client = LeverClient(sb.base_url, api_key=sb.api_key)
    with pytest.raises(ValueError, match=name):
        SyncService(client, Policy(contact_level=(TAG,)), tmp_path / "s.sqlite", **{name: value})


def test_loopback_addresses_are_told_apart():
    assert all(map(is_loopback, ["127.0.0.1", "127.9.9.9", "::1", "localhost", "::ffff:127.0.0.1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "example.org"]))


def test_an_old_journal_gains_the_strikes_column(tmp_path):
    """A journal from before strikes were counted opens and gains the column."""
    path = tmp_path / "old.sqlite"
    with SyncJournal(path) as journal:
        journal._db.execute("ALTER TABLE sync_inbox DROP COLUMN strikes")
    with SyncJournal(path) as journal:
        assert journal.enqueue_contact("c1")
        assert journal.sync_table("sync_inbox")["strikes"].tolist() == [0]
        assert journal.queue_depth() == (1, 1)


class _NoDescriptors(socket.socket):
    """A listening socket whose accept() always fails as at the open-file limit."""

    calls = 0

    def accept(self):  # type: ignore[override]
        type(self).calls += 1
        raise OSError(errno.EMFILE, "Too many open files")


def test_accept_errors_pause_the_listener_and_are_logged_once(caplog):
    """At the descriptor limit the accept loop pauses instead of spinning (and logging a
    traceback per try: 133 MB in 12 s)."""
    caplog.set_level(logging.WARNING, logger="toolkit.sync")
    listener = _NoDescriptors()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    client = socket.create_connection(listener.getsockname())  # pending: readable at once

    async def run() -> None:
        server = BoundedHTTPServer(lambda request: None)
        server.configure_limits(8)
        server.add_sockets([listener])
        await asyncio.sleep(0.5)
        server.stop()

    # In a thread of its own: an earlier test of the session may have left an event loop
    # running in this one, and asyncio.run() refuses to start inside it.
    worker = threading.Thread(target=asyncio.run, args=(run(),))
    try:
        worker.start()
        worker.join(30)
    finally:
        client.close()
    assert not worker.is_alive()
    assert 1 <= _NoDescriptors.calls <= 10  # one try per pause of 0.1 s, not a busy loop
    lines = [r for r in caplog.records if "accepting a connection failed" in r.getMessage()]
    assert len(lines) == 1 and not lines[0].exc_info


def test_a_non_loopback_address_gets_the_tls_proxy_warning(start, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="toolkit.sync")
    monkeypatch.setattr(listener_module, "is_loopback", lambda host: False)
    start()  # binds 127.0.0.1 all the same: no test listens beyond loopback
    assert any("TLS-terminating proxy" in r.getMessage() for r in caplog.records)
