"""`lever-tags sync` end to end against the sandbox: webhooks, polling, refusals, crash, stop."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from polling import wait_for
from sync_helpers import TAG, admin, contacts_with

from toolkit.client import LeverClient
from toolkit.policy import Policy
from toolkit.sync import tag_contact
from toolkit.sync.service import SyncService
from toolkit.sync.store import SyncJournal
from toolkit.sync.webhook import WebhookRefused, parse_webhook, verify_signature

SECRET = "whsec-test-" + uuid.uuid4().hex
ROOT = Path(__file__).resolve().parents[1]


def new_opportunity(sb, contact: str, tags: list[str] | None = None) -> str:
    answer = admin(sb, "POST", f"/contacts/{contact}/opportunities", {"tags": tags or []})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["id"]


def subscribe(sb, url: str, **body: Any) -> dict:
    answer = admin(
        sb,
        "POST",
        "/webhooks",
        {
            "url": url,
            "signatureToken": SECRET,
            "events": ["applicationCreated", "candidateStageChange"],
            **body,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def has_tag(sb, opp_id: str, tag: str = TAG) -> bool:
    return tag in (sb.opportunity(opp_id) or {}).get("tags", [])


def sign(token: str, triggered: int, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{token}{triggered}".encode(), hashlib.sha256).hexdigest()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture
def sb(fresh_sandbox):
    return fresh_sandbox(contacts=60)


@pytest.fixture
def service_factory(sb, tmp_path):
    started: list[SyncService] = []

    def factory(policy: Policy | None = None, **kwargs: Any) -> SyncService:
        options: dict[str, Any] = {
            "dry_run": False,
            "listen": ("127.0.0.1", 0),
            "secret": SECRET,
            "poll_interval": 0,
            "workers": 2,
        }
        options.update(kwargs)
        client = LeverClient(sb.base_url, api_key=sb.api_key)
        service = SyncService(
            client,
            policy or Policy(contact_level=(TAG,)),
            options.pop("journal", tmp_path / "sync.sqlite"),
            **options,
        ).start()
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()


def writes_sent(sb) -> int:
    by_route = sb.stats()["by_route"]
    return sum(sum(v.values()) for k, v in by_route.items() if k.startswith("POST /v1/"))


# -- webhooks -------------------------------------------------------------------------------------


def test_webhook_new_opportunity_gets_the_tag_within_seconds(sb, service_factory):
    service = service_factory()
    [(contact, opps)] = contacts_with(sb, 1)
    subscribe(sb, f"{service.url}/webhooks/lever")
    sb.reset_stats()
    opp = new_opportunity(sb, contact)
    wait_for(lambda: has_tag(sb, opp), 10, "the tag on the new opportunity")
    assert all(has_tag(sb, o) for o in opps)
    # one listing of the contact and one addTags: the fewest calls
    wait_for(lambda: service.health()["queue_depth"] == 0, 5, "an empty queue")
    routes = sb.stats()["by_route"]
    assert sum(routes.get("GET /v1/opportunities", {}).values()) == 1
    assert writes_sent(sb) == 1
    text = requests.get(f"{service.url}/metrics").text
    assert metric(text, "lever_sync_events_received_total", source="webhook") == 1
    assert metric(text, "lever_sync_writes_total", op="add", outcome="done") == 1
    assert metric(text, "lever_sync_contacts_checked_total") == 1
    assert metric(text, "lever_sync_lag_seconds_count") == 1
    health = requests.get(f"{service.url}/healthz").json()
    assert health["status"] == "ok" and health["queue_depth"] == 0


def test_forged_replayed_and_duplicate_webhooks_change_nothing(sb, service_factory):
    service = service_factory()
    url = f"{service.url}/webhooks/lever"
    (contact, _opps), (other, _) = contacts_with(sb, 2)
    # forged: the sandbox signs with a wrong key, and retries like Lever (every answer 401)
    sub = subscribe(sb, url, faults={"badSignature": True}, retryDelaysMs=[50, 50])
    forged = new_opportunity(sb, contact)
    wait_for(
        lambda: len(admin(sb, "GET", "/webhooks/deliveries").json()["data"]) == 3,
        10,
        "three refused attempts",
    )
    attempts = admin(sb, "GET", "/webhooks/deliveries").json()["data"]
    assert [a["status"] for a in attempts] == [401, 401, 401]
    # missing signature, not JSON, too large (a replayed body: tests/test_webhooks_lever.py)
    now = int(time.time() * 1000)
    unsigned = {
        "id": str(uuid.uuid4()),
        "event": "applicationCreated",
        "triggeredAt": now,
        "token": "abc",
        "signature": None,
        "data": {"opportunityId": forged, "contactId": contact},
    }
    assert requests.post(url, json=unsigned).status_code == 401
    assert requests.post(url, data=b"{not json").status_code == 400
    assert requests.post(url, data=b"x" * (70 * 1024)).status_code == 413
    # a refused webhook is never queued, so nothing can be on its way: check right away
    assert not has_tag(sb, forged)
    assert writes_sent(sb) == 0
    with SyncJournal(service.journal_path, lock=False, create=False) as journal:
        assert journal.sync_table("sync_inbox").empty
    # duplicates: the same delivery three times is stored and processed once
    admin(sb, "POST", f"/webhooks/{sub['id']}", {"faults": {"duplicates": 2}})
    sb.reset_stats()
    dup = new_opportunity(sb, other)
    wait_for(lambda: has_tag(sb, dup), 10, "the tag on the duplicated event's opportunity")
    wait_for(
        lambda: (
            sum(
                1
                for a in admin(sb, "GET", "/webhooks/deliveries").json()["data"]
                if a["status"] == 200
            )
            == 3
        ),
        10,
        "three 200 answers",
    )
    wait_for(lambda: service.health()["queue_depth"] == 0, 5, "an empty queue")
    assert writes_sent(sb) == 1
    with SyncJournal(service.journal_path, lock=False, create=False) as journal:
        assert len(journal.sync_table("sync_inbox")) == 1
    text = requests.get(f"{service.url}/metrics").text
    assert metric(text, "lever_sync_events_refused_total", reason="signature") == 4
    assert metric(text, "lever_sync_events_refused_total", reason="duplicate") == 2
    assert metric(text, "lever_sync_events_refused_total", reason="too_large") == 1
    assert metric(text, "lever_sync_events_received_total", source="webhook") == 1


def test_receiver_down_then_up_gets_the_retried_delivery(sb, service_factory, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    [(contact, _opps)] = contacts_with(sb, 1)
    subscribe(sb, f"http://127.0.0.1:{port}/webhooks/lever", retryDelaysMs=[300] * 30)
    opp = new_opportunity(sb, contact)
    wait_for(lambda: admin(sb, "GET", "/webhooks/deliveries").json()["data"], 5, "a failed attempt")
    assert admin(sb, "GET", "/webhooks/deliveries").json()["data"][0]["status"] is None
    service_factory(listen=("127.0.0.1", port))
    wait_for(lambda: has_tag(sb, opp), 15, "the tag after the retried delivery")


def test_late_delivery_outside_the_replay_window_is_refused(sb, service_factory):
    service = service_factory(replay_window=0.3)
    [(contact, _opps)] = contacts_with(sb, 1)
    subscribe(sb, f"{service.url}/webhooks/lever", faults={"lateMs": 800}, retryDelaysMs=[])
    opp = new_opportunity(sb, contact)
    wait_for(lambda: admin(sb, "GET", "/webhooks/deliveries").json()["data"], 5, "the delivery")
    assert admin(sb, "GET", "/webhooks/deliveries").json()["data"][0]["status"] == 400
    assert not has_tag(sb, opp)


# -- polling --------------------------------------------------------------------------------------


def test_polling_alone_tags_the_new_opportunity(sb, service_factory):
    service = service_factory(listen=None, secret=None, poll_interval=1)
    [(contact, _opps)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)  # no subscription: no webhook at all
    wait_for(lambda: has_tag(sb, opp), 10, "the tag by polling")
    # a person adds a contact-level tag to one opportunity: polling spreads it
    other_contact, other_opps = contacts_with(sb, 2)[1]
    for o in other_opps:
        sb.set_tags(o["id"] if isinstance(o, dict) else o, [])
    extra = new_opportunity(sb, other_contact)
    admin(sb, "POST", f"/opportunities/{extra}/changeTags", {"add": [TAG]})
    wait_for(lambda: all(has_tag(sb, o) for o in other_opps), 10, "the tag spread by polling")
    assert service.health()["last_poll"] is not None


# -- safety ---------------------------------------------------------------------------------------


def test_dry_run_writes_nothing_and_journals_what_it_would(sb, service_factory):
    service = service_factory(dry_run=True)
    [(contact, _opps)] = contacts_with(sb, 1)
    subscribe(sb, f"{service.url}/webhooks/lever")
    sb.reset_stats()
    opp = new_opportunity(sb, contact)

    def would_write():
        with SyncJournal(service.journal_path, lock=False, create=False) as journal:
            writes = journal.sync_table("sync_writes")
        return None if writes.empty else [writes]

    [writes] = wait_for(would_write, 10, "the dry-run journal row")
    assert writes["state"].tolist() == ["dry_run"]
    assert writes["opportunity_id"].tolist() == [opp]
    assert writes_sent(sb) == 0
    assert not has_tag(sb, opp)


def _touch(sb, opp_id: str, add=(), remove=()) -> None:
    body = {"add": list(add), "remove": list(remove), "event": "candidateStageChange"}
    assert admin(sb, "POST", f"/opportunities/{opp_id}/changeTags", body).status_code == 200


def test_removal_is_reported_not_propagated_by_default(sb, service_factory):
    service = service_factory()
    subscribe(sb, f"{service.url}/webhooks/lever")
    contact, _ = contacts_with(sb, 1)[0]
    opps = [o for o in (new_opportunity(sb, contact), new_opportunity(sb, contact))]
    wait_for(lambda: all(has_tag(sb, o) for o in opps), 10, "the tags")
    wait_for(lambda: service.health()["queue_depth"] == 0, 5, "an empty queue")
    sb.reset_stats()
    _touch(sb, opps[0], remove=[TAG])
    text = wait_for(
        lambda: (
            (t := requests.get(f"{service.url}/metrics").text)
            and metric(t, "lever_sync_removals_detected_total", action="report")
            and t
        ),
        10,
        "the removal reported",
    )
    wait_for(lambda: service.health()["queue_depth"] == 0, 5, "an empty queue")
    assert not has_tag(sb, opps[0])  # not re-added
    assert has_tag(sb, opps[1])  # not removed from the others
    assert writes_sent(sb) == 0
    assert metric(text, "lever_sync_removals_detected_total", action="propagate") == 0

    # the next event for that contact still writes nothing: once its check has finished (the
    # counter moves after the check's writes, if any, were sent)
    def checks() -> float:
        page = requests.get(f"{service.url}/metrics").text
        return metric(page, "lever_sync_contacts_checked_total")

    checked = checks()
    _touch(sb, opps[1])
    wait_for(lambda: checks() > checked, 10, "the next event's check")
    assert writes_sent(sb) == 0 and not has_tag(sb, opps[0])


def test_removal_propagates_when_the_policy_says_so(sb, service_factory):
    policy = Policy(contact_level=(TAG,), on_removal="propagate")
    service = service_factory(policy=policy)
    subscribe(sb, f"{service.url}/webhooks/lever")
    contact, first = contacts_with(sb, 1)[0]
    opp = new_opportunity(sb, contact)
    wait_for(lambda: has_tag(sb, opp), 10, "the tag")
    _touch(sb, opp, remove=[TAG])
    wait_for(lambda: not any(has_tag(sb, o) for o in first), 10, "the removal propagated")


def test_change_cap_holds_and_pauses(sb, service_factory):
    service = service_factory(max_changes_per_hour=2)
    subscribe(sb, f"{service.url}/webhooks/lever")
    picked = contacts_with(sb, 3)
    new = [new_opportunity(sb, contact) for contact, _ in picked]
    wait_for(lambda: sum(has_tag(sb, o) for o in new) == 2, 10, "two tagged")
    wait_for(lambda: service.health()["status"] == "paused", 5, "the pause")
    health = service.health()
    assert health["change_cap"]["used_last_hour"] == 2
    assert health["change_cap"]["paused_until"] is not None
    assert health["queue_depth"] == 1
    assert sum(has_tag(sb, o) for o in new) == 2
    text = requests.get(f"{service.url}/metrics").text
    assert metric(text, "lever_sync_cap_paused") == 1
    assert metric(text, "lever_sync_changes_total", op="add") == 2


def test_the_cap_survives_a_restart(sb, service_factory, tmp_path):
    journal = tmp_path / "capped.sqlite"
    first = service_factory(max_changes_per_hour=1, journal=journal)
    subscribe(sb, f"{first.url}/webhooks/lever")
    (c1, _), (c2, _) = contacts_with(sb, 2)
    o1 = new_opportunity(sb, c1)
    wait_for(lambda: has_tag(sb, o1), 10, "the first tag")
    first.stop()
    second = service_factory(
        max_changes_per_hour=1, journal=journal, listen=None, secret=None, poll_interval=0.5
    )
    o2 = new_opportunity(sb, c2)
    wait_for(lambda: second.health()["status"] == "paused", 10, "the pause after restart")
    assert not has_tag(sb, o2)


# -- the public function --------------------------------------------------------------------------


def test_tag_contact_uses_the_fewest_calls_and_is_idempotent(sb):
    client = LeverClient(sb.base_url, api_key=sb.api_key)
    contact, opps = contacts_with(sb, 1)[0]
    for o in opps:
        sb.set_tags(o, ["Python"])
    new = new_opportunity(sb, contact, ["Python"])
    result = tag_contact(client, new, [TAG, "Boomerang"])
    assert result.contact_id == contact
    assert [w.state for w in result.writes] == ["done"] * (len(opps) + 1)
    assert result.requests == 2 + len(opps) + 1  # read, list, one write per opportunity
    assert all({TAG, "Boomerang"} <= set(sb.opportunity(o)["tags"]) for o in [*opps, new])
    again = tag_contact(client, new, [TAG], contact_id=contact)
    assert again.writes == [] and again.requests == 1
    with pytest.raises(ValueError):
        tag_contact(client, new, TAG)


# -- webhook checks (pure) ------------------------------------------------------------------------


def test_signature_check_is_exact():
    now = int(time.time() * 1000)
    good = sign("tok", now)
    assert verify_signature(SECRET, "tok", now, good)
    assert verify_signature(SECRET, "tok", now, good.upper())
    assert not verify_signature(SECRET, "tok", now + 1, good)
    assert not verify_signature(SECRET + "x", "tok", now, good)
    assert not verify_signature("", "tok", now, good)
    body = {"id": "w", "event": "applicationCreated", "triggeredAt": now, "token": "tok"}
    body["data"] = {"opportunityId": "o"}
    with pytest.raises(WebhookRefused) as refused:
        parse_webhook(json.dumps({**body, "signature": "00"}).encode(), SECRET)
    assert refused.value.status == 401 and SECRET not in str(refused.value)
    future = now + 10 * 60 * 1000
    with pytest.raises(WebhookRefused, match="future"):  # only with an age limit (an option)
        parse_webhook(
            json.dumps({**body, "triggeredAt": future, "signature": sign("tok", future)}).encode(),
            SECRET,
            replay_window_s=300,
        )
    event = parse_webhook(json.dumps({**body, "signature": good}).encode(), SECRET)
    assert (event.opportunity_id, event.contact_id) == ("o", None)


# -- the command: crash, stop, bad input ----------------------------------------------------------


# How long a child `lever-tags sync` may take to print a line: it bounds a failure, never a
# success (a loaded 2-core machine running the suite on 4 workers starts Python slowly).
START_S = 90


class SyncProcess:
    """`lever-tags sync` in a child process, its output read line by line."""

    def __init__(self, sb, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        policy = tmp_path / "policy.yaml"
        policy.write_text(f"version: 1\ncontact_level: ['{TAG}']\n")
        self.journal = tmp_path / "sync.sqlite"
        full_env = {**os.environ, **sb.env(), "LEVER_WEBHOOK_SECRET": SECRET, **(env or {})}
        full_env.pop("LEVER_TOOLKIT_FAILPOINTS", None) if not env else None
        argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
        argv += ["--journal", str(self.journal), *args]
        self.proc = subprocess.Popen(
            argv,
            env=full_env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_line(self, pattern: str, timeout: float = START_S) -> re.Match:
        def found() -> re.Match | None:
            while not self.lines.empty():
                match = re.search(pattern, self.lines.get_nowait())
                if match:
                    return match
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"exited with no line matching {pattern!r}: {self._tail()}")
            return None

        try:
            return wait_for(found, timeout, f"a line matching {pattern!r}")
        except AssertionError as exc:
            if "timed out" not in str(exc):
                raise
            raise AssertionError(f"{exc}: {self._tail()}") from None

    def _tail(self) -> str:
        return "".join(self.output)[-2000:]

    def url(self) -> str:
        return self.wait_line(r"listening on (http://\S+)").group(1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def processes():
    started: list[SyncProcess] = []
    yield started
    for p in started:
        p.kill()


def test_kill_9_after_accepting_before_processing_loses_nothing(sb, tmp_path, processes):
    [(contact, _opps)] = contacts_with(sb, 1)
    args = ("--listen", "127.0.0.1:0", "--poll-interval", "0", "--yes")
    crashing = SyncProcess(
        sb, tmp_path, *args, env={"LEVER_TOOLKIT_FAILPOINTS": "sync_before_process"}
    )
    processes.append(crashing)
    url = crashing.url()
    subscribe(sb, f"{url}/webhooks/lever", retryDelaysMs=[])  # no redelivery: recovery must do it
    opp = new_opportunity(sb, contact)
    assert crashing.proc.wait(15) == -signal.SIGKILL
    attempts = admin(sb, "GET", "/webhooks/deliveries").json()["data"]
    assert len(attempts) == 1  # one delivery, no retry (its 200 may or may not have left)
    with SyncJournal(crashing.journal, lock=False, create=False) as journal:
        inbox = journal.sync_table("sync_inbox")
    assert inbox["state"].tolist() == ["processing"]  # stored and taken, never checked
    assert not has_tag(sb, opp)
    restarted = SyncProcess(sb, tmp_path, *args)
    processes.append(restarted)
    restarted.url()
    wait_for(lambda: has_tag(sb, opp), 15, "the tag after the restart")
    restarted.proc.send_signal(signal.SIGTERM)
    assert restarted.proc.wait(15) == 0
    text = "".join(restarted.output)
    assert "recovered after an unclean stop: 1 queued events" in text
    assert SECRET not in text and SECRET.encode() not in restarted.journal.read_bytes()
    assert oct(restarted.journal.stat().st_mode & 0o777) == "0o600"


def test_kill_9_after_storing_before_answering_is_redelivered_and_processed_once(
    sb, tmp_path, processes
):
    [(contact, _opps)] = contacts_with(sb, 1)
    crashing = SyncProcess(
        sb,
        tmp_path,
        *("--listen", "127.0.0.1:0", "--poll-interval", "0", "--yes"),
        env={"LEVER_TOOLKIT_FAILPOINTS": "sync_after_accept"},
    )
    processes.append(crashing)
    url = crashing.url()
    port = url.rsplit(":", 1)[1]
    # 60 s of redeliveries: on a loaded machine the restart alone can take 15 s
    subscribe(sb, f"{url}/webhooks/lever", retryDelaysMs=[500] * 120)
    opp = new_opportunity(sb, contact)
    assert crashing.proc.wait(15) == -signal.SIGKILL  # stored, never answered
    # Lever retries the same delivery (same id) to the same URL: the restarted service finds it
    # already stored, answers 200 duplicate, and processes the stored event once
    restarted = SyncProcess(
        sb, tmp_path, "--listen", f"127.0.0.1:{port}", "--poll-interval", "0", "--yes"
    )
    processes.append(restarted)
    restarted.url()
    wait_for(lambda: has_tag(sb, opp), 15, "the tag after the restart")
    wait_for(
        lambda: any(
            a["status"] == 200 for a in admin(sb, "GET", "/webhooks/deliveries").json()["data"]
        ),
        15,
        "the redelivery answered",
    )
    restarted.proc.send_signal(signal.SIGTERM)
    assert restarted.proc.wait(15) == 0
    with SyncJournal(restarted.journal, lock=False, create=False) as journal:
        inbox = journal.sync_table("sync_inbox")
        writes = journal.sync_table("sync_writes")
    assert len(inbox) == 1 and inbox["state"].tolist() == ["done"]
    assert writes["state"].tolist() == ["done"]


def test_sigterm_stops_cleanly_and_keeps_the_queue(sb, tmp_path, processes):
    p = SyncProcess(sb, tmp_path, "--poll-interval", "3600", "--yes")
    processes.append(p)
    p.wait_line("polling every")
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(15) == 0
    assert "stopped; queued events are kept" in "".join(p.output)
    assert "Traceback" not in "".join(p.output)
    with SyncJournal(p.journal, lock=True, create=False) as journal:  # the lock was released
        assert journal.run()["status"] == "stopped"
        assert journal.table("sessions")["status"].tolist() == ["stopped"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--listen", "127.0.0.1:0"), {"LEVER_WEBHOOK_SECRET": ""}, "LEVER_WEBHOOK_SECRET"),
        (("--listen", "nonsense"), {}, "HOST:PORT"),
        (("--poll-interval", "0"), {}, "--poll-interval"),
        (("--max-changes-per-hour", "0"), {}, "--max-changes-per-hour"),
        (("--listen", "127.0.0.1:0"), {"LEVER_WEBHOOK_SECRET": "x"}, "at least 16 characters"),
        (
            ("--listen", "127.0.0.1:0"),
            {"LEVER_WEBHOOK_SECRET": "tagAdded=" + SECRET},
            "EVENT is not a Lever",
        ),
        (("--poll-interval", "nan"), {}, "--poll-interval"),
        (("--listen", "127.0.0.1:0", "--replay-window", "inf"), {}, "--replay-window"),
        (("--register-webhooks", "https://h.example/webhooks/lever"), {}, "needs --listen"),
        (
            ("--listen", "127.0.0.1:0", "--register-webhooks", "http://h.example/x"),
            {},
            "HTTPS",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(sb, tmp_path, args, env, message):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    full_env = {**os.environ, **sb.env(), "LEVER_WEBHOOK_SECRET": SECRET, **env}
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy), *args]
    done = subprocess.run(
        argv, env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert SECRET not in done.stderr


def test_a_policy_without_contact_level_tags_is_refused(sb, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("never_touch: [Full-time]\n")
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
    done = subprocess.run(
        argv, env={**os.environ, **sb.env()}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "nothing to sync" in done.stderr


# -- the report -----------------------------------------------------------------------------------


@pytest.mark.notebook
def test_sync_activity_report_over_a_real_journal(sb, service_factory, tmp_path, monkeypatch):
    from toolkit.notebook import execute

    service = service_factory(max_changes_per_hour=1)
    subscribe(sb, f"{service.url}/webhooks/lever")
    (c1, _), (c2, _) = contacts_with(sb, 2)
    first = new_opportunity(sb, c1)
    wait_for(lambda: has_tag(sb, first), 10, "the first tag")
    new_opportunity(sb, c2)  # held back by the cap
    wait_for(lambda: service.health()["status"] == "paused", 5, "the pause")
    service.stop()
    monkeypatch.setenv("LEVER_WEBHOOK_SECRET", SECRET)
    result = execute.run_notebook(
        "sync-activity", {"journal_path": str(service.journal_path)}, tmp_path / "reports"
    )
    assert result.ok, result.error_message
    summary = pd.read_csv(result.folder / "sync_summary.csv", dtype=str)
    summary = dict(zip(summary["measure"], summary["value"], strict=True))
    assert summary["events from webhooks"] == "2"
    assert summary["writes"] == "1" and summary["events waiting"] == "1"
    per_tag = (result.folder / "sync_writes_per_tag.csv").read_text()
    assert TAG in per_tag
    for path in result.folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


# -- the queue ------------------------------------------------------------------------------------


def test_events_for_one_contact_coalesce_and_are_never_checked_twice_at_once(tmp_path):
    with SyncJournal(tmp_path / "q.sqlite") as journal:
        assert journal.enqueue_webhook("w1", "applicationCreated", 1, "c1", "o1")
        assert not journal.enqueue_webhook("w1", "applicationCreated", 1, "c1", "o1")
        assert journal.enqueue_webhook("w2", "candidateStageChange", 2, "c1", "o2")
        assert journal.enqueue_contact("c2")
        assert not journal.enqueue_contact("c2")  # one waiting check is enough
        first = journal.claim()
        assert (first.contact_id, first.opportunity_ids) == ("c1", ["o1", "o2"])
        journal.enqueue_webhook("w3", "applicationCreated", 3, "c1", "o3")
        second = journal.claim()
        assert second.contact_id == "c2"  # c1 is being processed: its new event waits
        assert journal.claim() is None
        journal.finish(first)
        assert journal.claim().opportunity_ids == ["o3"]
        assert journal.queue_depth() == (2, 2)  # c2 and c1 in process
    # a crash while processing: recover puts the rows back
    with SyncJournal(tmp_path / "q.sqlite") as journal:
        assert journal.recover() == (2, 0)
        assert journal.queue_depth() == (2, 2)


def test_a_full_queue_answers_503_so_lever_retries(sb, service_factory):
    service = service_factory(max_queue=0)
    [(contact, _opps)] = contacts_with(sb, 1)
    subscribe(sb, f"{service.url}/webhooks/lever", retryDelaysMs=[])
    opp = new_opportunity(sb, contact)
    wait_for(lambda: admin(sb, "GET", "/webhooks/deliveries").json()["data"], 5, "the delivery")
    assert admin(sb, "GET", "/webhooks/deliveries").json()["data"][0]["status"] == 503
    assert not has_tag(sb, opp)
    text = requests.get(f"{service.url}/metrics").text
    assert metric(text, "lever_sync_events_refused_total", reason="queue_full") == 1


def test_a_refused_credential_stops_the_service_with_exit_2(sb, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    env = {**os.environ, **sb.env(), "LEVER_API_KEY": "not-the-key"}
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
    argv += ["--poll-interval", "1", "--journal", str(tmp_path / "j.sqlite"), "--yes"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("lever-tags: error:")
    assert "Traceback" not in done.stderr and "not-the-key" not in done.stderr + done.stdout


def test_a_port_in_use_is_bad_input(sb, tmp_path):
    import socket

    policy = tmp_path / "policy.yaml"
    policy.write_text(f"contact_level: ['{TAG}']\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, **sb.env(), "LEVER_WEBHOOK_SECRET": SECRET}
        argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy)]
        argv += ["--listen", f"127.0.0.1:{port}", "--journal", str(tmp_path / "j.sqlite")]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_webhook_without_contact_id_reads_the_opportunity_once(sb, service_factory):
    service = service_factory()
    [(contact, _opps)] = contacts_with(sb, 1)
    opp = new_opportunity(sb, contact)  # no subscription: the test sends the webhook itself
    sb.reset_stats()
    now = int(time.time() * 1000)
    body = {
        "id": str(uuid.uuid4()),
        "event": "candidateStageChange",
        "triggeredAt": now,
        "token": "t0k",
        "signature": sign("t0k", now),
        "data": {"opportunityId": opp},
    }
    assert requests.post(f"{service.url}/webhooks/lever", json=body).status_code == 200
    wait_for(lambda: has_tag(sb, opp), 10, "the tag")
    routes = sb.stats()["by_route"]
    assert sum(routes.get("GET /v1/opportunities/{id}", {}).values()) == 1


def test_the_sandbox_and_the_sync_side_share_no_code():
    import ast

    def imports(path: Path) -> set[str]:
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        return found

    sandbox = sorted((ROOT / "lever_sandbox").glob("*.py"))
    sync = sorted((ROOT / "toolkit" / "sync").glob("*.py"))
    assert len(sandbox) > 5 and len(sync) > 5
    for path in sandbox:
        foreign = {m for m in imports(path) if m.split(".")[0] == "toolkit"}
        assert not foreign, f"{path.name} imports {foreign}"
    for path in sync:
        foreign = {m for m in imports(path) if m.split(".")[0] == "lever_sandbox"}
        assert not foreign, f"{path.name} imports {foreign}"


def test_policy_on_removal_is_report_or_propagate(tmp_path):
    from toolkit.errors import ConfigurationError
    from toolkit.policy import load_policy

    path = tmp_path / "p.yaml"
    path.write_text("contact_level: [Python]\non_removal: delete\n")
    with pytest.raises(ConfigurationError, match=r"on_removal.*report or propagate") as info:
        load_policy(path)
    assert "\n" not in str(info.value)
    path.write_text("contact_level: [Python]\non_removal: propagate\n")
    assert load_policy(path).on_removal == "propagate"
    assert Policy(contact_level=("Python",)).on_removal == "report"
    assert "on_removal" not in Policy(contact_level=("Python",)).to_dict()  # unchanged output


def test_sandbox_webhook_admin_routes_refuse_bad_input(sb):
    assert admin(sb, "POST", "/webhooks", {"url": "ftp://x"}).status_code == 400
    assert (
        admin(sb, "POST", "/webhooks", {"url": "http://x", "events": ["tagAdded"]}).status_code
        == 400
    )
    assert (
        admin(sb, "POST", "/webhooks", {"url": "http://x", "faults": {"nope": 1}}).status_code
        == 400
    )
    assert (
        admin(sb, "POST", "/webhooks", {"url": "http://x", "retryDelaysMs": [-1]}).status_code
        == 400
    )
    assert admin(sb, "POST", "/webhooks/unknown", {"faults": {}}).status_code == 404
    assert admin(sb, "DELETE", "/webhooks/unknown").status_code == 404
    assert admin(sb, "POST", "/contacts/unknown/opportunities", {}).status_code == 404
    opp = sb.opportunities()[0]["id"]
    assert admin(sb, "POST", f"/opportunities/{opp}/changeTags", {"add": "x"}).status_code == 400
    answer = admin(sb, "POST", f"/opportunities/{opp}/changeTags", {"event": "tagAdded"})
    assert answer.status_code == 400
    no_key = requests.post(f"{sb.url}/_sandbox/webhooks", json={"url": "http://x"})
    assert no_key.status_code == 401
    restricted = requests.post(
        f"{sb.url}/_sandbox/webhooks", json={"url": "http://x"}, auth=(sb.restricted_api_key, "")
    )
    assert restricted.status_code == 401


def test_activity_csvs_escape_a_formula_tag_once(tmp_path):
    from toolkit.sanitize import csv_uncell
    from toolkit.sync.activity import WRITE_COLUMNS, SyncActivity, write_activity_artifacts

    row = dict.fromkeys(WRITE_COLUMNS)
    row.update(id=1, op="add", tags=["=HYPERLINK(1)", "Python"], state="done")
    activity = SyncActivity(path=None, writes=pd.DataFrame([row], columns=WRITE_COLUMNS))
    paths = write_activity_artifacts(activity, tmp_path)
    cells = pd.read_csv(paths["per_tag"], dtype=str)["tag"].tolist()
    assert "'=HYPERLINK(1)" in cells  # one apostrophe: a spreadsheet shows the text
    assert sorted(csv_uncell(c) for c in cells) == ["=HYPERLINK(1)", "Python"]
