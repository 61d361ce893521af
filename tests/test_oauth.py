"""OAuth past the hour: access tokens refreshed before they expire and on a 401, a rotated
refresh token kept (0600, never printed), and long runs (`snapshot`, `apply`, `sync`) that go on
without losing or repeating work. Against the sandbox's token endpoint in each rotation mode,
and against a transport fake for the token endpoint's answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from polling import wait_for

from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.client.oauth import TokenSource, default_state_path
from toolkit.config import OAuthRefresh, load_settings
from toolkit.errors import AuthenticationError, ConfigurationError
from toolkit.policy import Policy
from toolkit.sync.service import SyncService

API = "https://api.example.test/v1"
TOKEN_URL = "https://auth.example.test/oauth/token"
REFRESH = "refresh-" + "r" * 30
SECRET = "client-secret-" + "s" * 20


def settings(refresh: str = REFRESH) -> OAuthRefresh:
    return OAuthRefresh(refresh, "client-1", SECRET, TOKEN_URL)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_answer(access: str, refresh: str | None = None, expires_in: int = 3600) -> dict:
    body = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}
    if refresh:
        body["refresh_token"] = refresh
    return body


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A folder for the OAuth state file, outside pytest's temporary tree: that file is the one
    place a refresh token is meant to be kept, and the session's secret scan reads that tree."""
    with tempfile.TemporaryDirectory(prefix="lever-oauth-state-") as folder:
        yield Path(folder)


@pytest.fixture
def oauth_env(monkeypatch, tmp_path, state_dir):
    """Point the process at a sandbox's OAuth app (no API key) and a private state file."""

    def use(sb) -> dict[str, str]:
        for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        env = {**sb.oauth_env(), "LEVER_OAUTH_STATE": str(state_dir / "state" / "oauth.json")}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        return env

    return use


# -- configuration ------------------------------------------------------------------------------


def test_settings_need_the_three_refresh_values_together():
    with pytest.raises(ConfigurationError) as info:
        load_settings({"LEVER_REFRESH_TOKEN": REFRESH, "LEVER_CLIENT_ID": "c"})
    assert "LEVER_CLIENT_SECRET not set" in str(info.value) and REFRESH not in str(info.value)
    full = {"LEVER_REFRESH_TOKEN": REFRESH, "LEVER_CLIENT_ID": "c", "LEVER_CLIENT_SECRET": SECRET}
    assert load_settings(full).oauth.token_url == "https://auth.lever.co/oauth/token"
    with pytest.raises(ConfigurationError, match="LEVER_API_KEY and OAuth refresh"):
        load_settings({**full, "LEVER_API_KEY": "k" * 20})
    with pytest.raises(ConfigurationError, match="LEVER_TOKEN_URL must use https"):
        load_settings({**full, "LEVER_TOKEN_URL": "http://auth.example.test/oauth/token"})
    assert SECRET not in repr(load_settings(full)) and REFRESH not in repr(load_settings(full))


def test_the_state_file_follows_the_environment(tmp_path):
    assert default_state_path({"LEVER_OAUTH_STATE": str(tmp_path / "x.json")}) == tmp_path / (
        "x.json"
    )
    assert default_state_path({"XDG_STATE_HOME": str(tmp_path)}) == (
        tmp_path / "lever-tag-toolkit" / "oauth.json"
    )


# -- the token source against a fake token endpoint ----------------------------------------------


@responses.activate
def test_refreshes_before_expiry_and_keeps_the_rotated_token_private(tmp_path):
    state = tmp_path / "private" / "oauth.json"
    responses.post(TOKEN_URL, json=token_answer("access-1", "rotated-1", expires_in=100))
    responses.post(TOKEN_URL, json=token_answer("access-2", "rotated-2", expires_in=100))
    clock = Clock()
    source = TokenSource(settings(), session=requests.Session(), state_path=state, clock=clock)
    assert source.token() == ("access-1", 1)
    form = dict(
        pair.split("=") for pair in responses.calls[0].request.body.split("&")
    )  # form-encoded, as Lever documents
    assert form == {
        "grant_type": "refresh_token",
        "client_id": "client-1",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
    }
    assert "Authorization" not in responses.calls[0].request.headers
    clock.now += 89  # 11 s left: more than a tenth of the lifetime, so no refresh yet
    assert source.token() == ("access-1", 1)
    clock.now += 2  # within the last tenth: refreshed with the rotated token
    assert source.token() == ("access-2", 2)
    assert "refresh_token=rotated-1" in responses.calls[1].request.body
    saved = json.loads(state.read_text())
    assert saved["refresh_token"] == "rotated-2" and REFRESH not in state.read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    # A new process started with the same environment starts from the rotated token...
    responses.post(TOKEN_URL, json=token_answer("access-3", "rotated-3"))
    again = TokenSource(settings(), session=requests.Session(), state_path=state)
    assert again.token()[0] == "access-3"
    assert "refresh_token=rotated-2" in responses.calls[2].request.body
    # ...and one given a new refresh token in the environment starts from that one.
    responses.post(TOKEN_URL, json=token_answer("access-4"))
    other = TokenSource(
        settings("a-new-refresh-token-xyz"), session=requests.Session(), state_path=state
    )
    other.token()
    assert "refresh_token=a-new-refresh-token-xyz" in responses.calls[3].request.body


@responses.activate
def test_a_401_refreshes_once_and_the_request_goes_on(tmp_path):
    responses.post(TOKEN_URL, json=token_answer("fresh-token"))
    responses.get(f"{API}/users", status=401, json={"code": "Unauthorized", "message": "expired"})
    responses.get(f"{API}/users", json={"data": [], "hasNext": False})
    client = LeverClient(
        API,
        access_token="stale-token-from-env",
        oauth=TokenSource(
            settings(),
            access_token="stale-token-from-env",
            session=requests.Session(),
            state_path=tmp_path / "o.json",
        ),
        sleep=lambda s: None,
    )
    assert list(client.iter_users()) == []
    sent = [c.request.headers.get("Authorization") for c in responses.calls if API in c.request.url]
    assert sent == ["Bearer stale-token-from-env", "Bearer fresh-token"]
    assert client.tokens.refreshes == 1


@responses.activate
def test_a_refused_fresh_token_stops_with_one_line(tmp_path):
    responses.post(TOKEN_URL, json=token_answer("fresh-token"))
    responses.get(f"{API}/users", status=401, json={"code": "Unauthorized", "message": "no"})
    client = LeverClient(
        API,
        oauth=TokenSource(settings(), session=requests.Session(), state_path=tmp_path / "o.json"),
        sleep=lambda s: None,
    )
    with pytest.raises(AuthenticationError) as info:
        list(client.iter_users())
    text = str(info.value)
    assert "freshly refreshed" in text and "\n" not in text
    assert "fresh-token" not in text and SECRET not in text and REFRESH not in text


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (400, {"error": "invalid_grant"}, AuthenticationError, "refused the refresh token"),
        (401, {"error": "invalid_client"}, AuthenticationError, "invalid_client"),
        (200, {"token_type": "Bearer"}, ConfigurationError, "without an access_token"),
        (404, None, ConfigurationError, "check LEVER_TOKEN_URL"),
    ],
)
def test_token_endpoint_refusals_are_one_line(tmp_path, status, body, error, words):
    responses.post(TOKEN_URL, status=status, json=body) if body else responses.post(
        TOKEN_URL, status=status, body="<html>not here</html>"
    )
    source = TokenSource(settings(), session=requests.Session(), state_path=tmp_path / "o.json")
    with pytest.raises(error) as info:
        source.token()
    assert words in str(info.value) and REFRESH not in str(info.value)
    assert SECRET not in str(info.value)


@responses.activate
def test_another_process_rotated_first(tmp_path):
    """Two processes of one user (a report's kernel and its parent): the second one to refresh
    finds its refresh token spent, and takes the rotated one the first kept."""
    state = tmp_path / "o.json"
    responses.post(TOKEN_URL, json=token_answer("access-a", "rotated-a"))
    first = TokenSource(settings(), session=requests.Session(), state_path=state)
    second = TokenSource(settings(), session=requests.Session(), state_path=state)
    first.token()
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    responses.post(TOKEN_URL, json=token_answer("access-b", "rotated-b"))
    assert second.token()[0] == "access-b"
    assert "refresh_token=rotated-a" in responses.calls[2].request.body


# -- against the sandbox's token endpoint ---------------------------------------------------------


@pytest.mark.parametrize("rotation", ["rotate", "keep", "omit"])
def test_snapshot_command_runs_through_many_expiries(fresh_sandbox, oauth_env, rotation, capsys):
    sb = fresh_sandbox(access_token_max_requests=3, refresh_rotation=rotation)
    env = oauth_env(sb)
    assert main(["snapshot", "--out", "snap.parquet", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    meta = json.loads(Path("snap.parquet.meta.json").read_text())
    assert meta["counts"]["opportunities"] == len(sb.opportunities())
    assert sb.engine.oauth_app.refreshes >= 2  # a token lives three requests
    secrets = [env["LEVER_CLIENT_SECRET"], sb.refresh_token, *sb.engine.issued_tokens]
    produced = captured.out + captured.err + Path("snap.parquet.meta.json").read_text()
    assert not [s for s in secrets if s in produced]
    state = Path(env["LEVER_OAUTH_STATE"])
    assert state.exists() == (rotation == "rotate")


def test_apply_with_expiring_tokens_writes_each_call_once(fresh_sandbox, oauth_env, capsys):
    sb = fresh_sandbox(access_token_max_requests=7)
    oauth_env(sb)
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    calls = len(Path("plan.csv").read_text().splitlines()) - 1
    assert calls > 10
    writes: list[tuple[str, str]] = []
    original = sb.engine.state.change_tags

    def logged(opp_id, add=(), remove=()):
        writes.append((opp_id, "add" if add else "remove"))
        return original(opp_id, add=add, remove=remove)

    sb.engine.state.change_tags = logged
    refreshes = sb.engine.oauth_app.refreshes
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0
    assert len(writes) == len(set(writes)) and writes  # each call written once
    assert sb.engine.oauth_app.refreshes > refreshes + 2
    assert main(["verify", "plan.csv"]) == 0
    journal = Path("j.sqlite").read_bytes()
    assert not [t for t in sb.engine.issued_tokens if t.encode() in journal]
    capsys.readouterr()


def test_without_refresh_settings_a_401_says_what_to_set(fresh_sandbox, monkeypatch, tmp_path):
    sb = fresh_sandbox(access_token_max_requests=2)
    client = LeverClient(sb.base_url, access_token=sb.access_token, sleep=lambda s: None)
    with pytest.raises(AuthenticationError) as info:
        list(client.iter_opportunities(limit=5))
    assert "LEVER_REFRESH_TOKEN" in str(info.value) and sb.access_token not in str(info.value)


def test_a_spent_refresh_token_is_exit_2_with_one_line(fresh_sandbox, oauth_env, capsys):
    sb = fresh_sandbox()
    oauth_env(sb)
    os.environ["LEVER_REFRESH_TOKEN"] = "not-the-sandbox-refresh-token"
    assert main(["snapshot", "--out", "s.parquet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the refresh token (invalid_grant)" in err[0]
    assert "LEVER_REFRESH_TOKEN" in err[0]


# -- sync: two minutes of webhooks and polls with tokens that live 20 s --------------------------

TAG = "Do not contact"
WEBHOOK_SECRET = "whsec-oauth-" + uuid.uuid4().hex


def _sign(token: str, triggered: int) -> str:
    message = f"{token}{triggered}".encode()
    return hmac.new(WEBHOOK_SECRET.encode(), message, hashlib.sha256).hexdigest()


@pytest.mark.slow
def test_sync_runs_two_minutes_on_tokens_that_expire_every_20_s(fresh_sandbox, tmp_path, state_dir):
    sb = fresh_sandbox(contacts=60, access_token_ttl_s=20)
    people: list[str] = []
    by_contact: dict[str, list[dict]] = {}
    for opp in sb.opportunities():
        if opp.get("contact") and not opp.get("isAnonymized"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    for contact, opps in sorted(by_contact.items()):
        for opp in opps:  # the person carries the tag on every opportunity: nothing to do yet
            sb.set_tags(opp["id"], sorted({*opp["tags"], TAG}))
        people.append(contact)
    app = sb.engine.oauth_app
    tokens = TokenSource(
        OAuthRefresh(app.refresh_token, app.client_id, app.client_secret, sb.token_url),
        session=requests.Session(),
        state_path=state_dir / "oauth.json",
    )
    client = LeverClient(sb.base_url, oauth=tokens, rate=1000, burst=1000)
    service = SyncService(
        client,
        Policy(contact_level=(TAG,)),
        tmp_path / "sync.sqlite",
        dry_run=False,
        listen=("127.0.0.1", 0),
        secret=WEBHOOK_SECRET,
        poll_interval=1,
        workers=2,
    ).start()
    created: list[str] = []
    pace = threading.Event()
    try:
        for round_ in range(40):  # 40 new applications over two minutes: six token lifetimes
            contact = people[round_ % len(people)]
            answer = requests.post(
                f"{sb.url}/_sandbox/contacts/{contact}/opportunities",
                auth=(sb.api_key, ""),
                json={"tags": []},
            )
            assert answer.status_code == 201, answer.text
            opp = answer.json()["data"]["id"]
            created.append(opp)
            if round_ % 2 == 0:  # half announced by a webhook, half found by polling only
                token = uuid.uuid4().hex + uuid.uuid4().hex[:16]
                triggered = int(time.time() * 1000)
                body = {
                    "id": str(uuid.uuid4()),
                    "event": "applicationCreated",
                    "triggeredAt": triggered,
                    "token": token,
                    "signature": _sign(token, triggered),
                    "data": {"opportunityId": opp, "contactId": contact},
                }
                delivered = requests.post(f"{service.url}/webhooks/lever", json=body, timeout=10)
                assert delivered.status_code == 200, delivered.text
            pace.wait(3)  # pacing the account's activity over the tokens' lifetimes
        for opp in created:
            wait_for(lambda o=opp: TAG in sb.opportunity(o)["tags"], 30, f"{TAG} on {opp}")
        health = requests.get(f"{service.url}/healthz", timeout=10).json()
    finally:
        service.stop()
    assert health["status"] == "ok", health
    writes = sb.stats()["by_route"].get("POST /v1/opportunities/{id}/addTags", {})
    assert sum(writes.values()) == len(created)  # each new opportunity written once
    assert app.refreshes >= 5  # about every 18 s for two minutes
    journal = (tmp_path / "sync.sqlite").read_bytes()
    assert not [t for t in sb.engine.issued_tokens if t.encode() in journal]
    assert app.refresh_token.encode() not in journal
