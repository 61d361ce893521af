"""Issue 11: right against the real Lever. The toolkit against every sandbox mode that imitates an
undocumented Lever behaviour, and `lever-tags doctor` listing exactly the modes that differ."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import requests
import responses

from lever_sandbox.process import SandboxProcess
from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.doctor.report import run_doctor
from toolkit.errors import AuthenticationError, UnexpectedResponseError
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.journal_views import journal_frame, journal_written_ids
from toolkit.remediate.plan import PlanError
from toolkit.remediate.planner import make_plan
from toolkit.remediate.verify import verify_failures, verify_plan
from toolkit.snapshot.fetch import fetch_snapshot, refresh_snapshot

TAGS = ["Python", "Do not contact", "Boomerang"]
CONTACTS = 150


def client_for(sb, **kw) -> LeverClient:
    options = {"rate": 1000, "burst": 1000, "backoff_base": 0.01, "backoff_max": 0.05}
    options.update(kw)
    if "access_token" not in options:
        options.setdefault("api_key", sb.api_key)
    return LeverClient(sb.base_url, **options)


def tag_sets(sb) -> dict[str, set[str]]:
    return {o["id"]: set(o.get("tags") or []) for o in sb.opportunities()}


@pytest.fixture
def cli_env(fresh_sandbox, monkeypatch, tmp_path, point_at):
    def start(**modes):
        sb = fresh_sandbox(contacts=CONTACTS, **modes)
        point_at(sb)
        monkeypatch.chdir(tmp_path)
        return sb

    return start


# -- doctor: exactly the modes that differ ------------------------------------------------------

MODES = {
    "defaults": ({}, set()),
    "perform_as 404": ({"perform_as_status": 404}, {"write with a wrong perform_as"}),
    "writes keep updatedAt": (
        {"tag_writes_bump_updated_at": False},
        {"tag write moves updatedAt"},
    ),
    "restricted key filtered": ({"confidential_denied": "filter"}, {"key sees confidential data"}),
    "hasNext without next": ({"omit_next": "once"}, {"hasNext without next"}),
    "expiring OAuth token": ({"access_token_max_requests": 8}, {"credential stays valid"}),
    # Shapes and answers Lever does not document are reported (warn / seen), never differences:
    "deleted items {id, deletedAt}": ({"deleted_shape": "minimal"}, set()),
    "deleted items as ids": ({"deleted_shape": "id"}, set()),
    "invalid offset with 200": ({"offset_error_status": 200}, set()),
}

# What doctor's table says in each mode, beside the differences: (row, status, observed part).
OBSERVED = {
    "defaults": [
        ("deleted opportunities list", "ok", "opportunity + deletedBy + deletedAt"),
        ("offset token with another query", "seen", "HTTP 400: Invalid offset token"),
    ],
    "deleted items {id, deletedAt}": [
        ("deleted opportunities list", "warn", "{deletedAt, id}"),
    ],
    "deleted items as ids": [("deleted opportunities list", "warn", "{id}")],
    "invalid offset with 200": [
        ("offset token with another query", "seen", "HTTP 200: Invalid offset token"),
    ],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_doctor_lists_exactly_the_behaviours_that_differ(fresh_sandbox, tmp_path, mode):
    modes, expected = MODES[mode]
    sb = fresh_sandbox(contacts=CONTACTS, **modes)
    sb.delete_opportunity(sb.opportunities()[3]["id"])  # something for the deleted listing
    if "confidential_denied" in modes:
        client = client_for(sb, api_key=sb.restricted_api_key)
    elif "access_token_max_requests" in modes:
        client = client_for(sb, access_token=sb.access_token)
    else:
        client = client_for(sb)
    before = tag_sets(sb)
    report = run_doctor(
        client,
        write_test=sb.opportunities()[0]["id"],
        journal_dir=tmp_path,
        perform_as=sb.users[0]["id"],
    )
    differing = {c.name for c in report.differences}
    assert differing == expected, report.table()
    assert report.exit_code == (1 if expected else 0)
    rows = {c.name: c for c in report.checks}
    for name, status, observed in OBSERVED.get(mode, []):
        assert rows[name].status == status and observed in rows[name].observed, report.table()
    assert report.requests <= 45  # a few dozen, write test included
    assert tag_sets(sb) == before  # the throwaway tag was added and removed


def test_doctor_read_only_restricted_key_with_403_is_not_a_difference(fresh_sandbox):
    sb = fresh_sandbox(contacts=CONTACTS)
    report = run_doctor(client_for(sb, api_key=sb.restricted_api_key))
    rows = {c.name: c for c in report.checks}
    assert report.exit_code == 0 and rows["key sees confidential data"].status == "warn"
    assert rows["tag write moves updatedAt"].status == "skipped"
    assert sb.stats()["writes"] == 0 and report.requests <= 35


def test_doctor_cli_exit_codes_and_json(cli_env, capsys):
    sb = cli_env(omit_next="once")
    assert main(["doctor", "--json", "doctor.json"]) == 1
    captured = capsys.readouterr()
    assert "hasNext without next" in captured.err and "doctor.json" in captured.err
    sent = Path("doctor.json").read_text()
    assert json.loads(sent)["differences"] == ["hasNext without next"]
    assert sb.api_key not in sent and sb.api_key not in captured.out
    opp = sb.opportunities()[0]["id"]
    assert main(["doctor", "--write-test", opp]) == 2  # refused without --yes
    assert "--yes" in capsys.readouterr().err and sb.stats()["writes"] == 0
    sb.configure(omit_next="never")
    assert main(["doctor"]) == 0
    assert "every behaviour the toolkit relies on holds" in capsys.readouterr().out


def test_doctor_cli_bad_key_is_bad_configuration(cli_env, monkeypatch, capsys):
    cli_env()
    monkeypatch.setenv("LEVER_API_KEY", "not-a-key")
    assert main(["doctor"]) == 2
    assert "401" in capsys.readouterr().err


# -- 1. a wrong perform_as ----------------------------------------------------------------------


def test_wrong_perform_as_answered_404_exits_2_before_any_write(cli_env, capsys):
    sb = cli_env(perform_as_status=404)
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    assert main(["apply", "plan.csv", "--yes", "--perform-as", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "--perform-as nobody" in err and "nothing was written" in err
    assert sb.stats()["writes"] == 0 and not Path("plan.journal.sqlite").exists()


def test_a_write_404_is_confirmed_by_a_read_not_taken_for_a_deletion(
    fresh_sandbox, tmp_path, monkeypatch
):
    sb = fresh_sandbox(contacts=CONTACTS, perform_as_status=404)
    client = client_for(sb)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=TAGS)
    with pytest.raises(PlanError, match="no such user"):  # a dry run checks it too
        apply_plan(client, plan, dry_run=True, perform_as="x")
    # a user removed after the pre-flight check: only the writes see it
    monkeypatch.setattr("toolkit.remediate.apply.check_perform_as", lambda client, user: None)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j", perform_as="x")
    assert result.not_found == 0 and result.failed == len(plan.rows)
    frame = journal_frame(tmp_path / "j")
    assert set(frame["state"]) == {"failed"}
    assert all("the opportunity exists" in m for m in frame["message"])
    assert result.permanent_failures == len(plan.calls())  # --retry-failed fixes them later


# -- 2. hasNext without next: never a silent undercount ----------------------------------------


def test_audit_never_undercounts_when_next_is_missing(cli_env):
    sb = cli_env(omit_next="once")
    assert main(["audit", "--out", "audit"]) == 0
    summary = json.loads(Path("audit/summary.json").read_text())
    assert summary["opportunities"] == len(sb.opportunities())
    sb.configure(omit_next="always")
    with pytest.raises(UnexpectedResponseError, match="without a 'next' token"):
        list(client_for(sb).iter_opportunities(confidentiality="all"))  # one listing, 3 pages
    # windows of one page each need no token: complete; otherwise an error, never fewer
    code = main(["audit", "--out", "audit2"])
    if code == 0:
        summary = json.loads(Path("audit2/summary.json").read_text())
        assert summary["opportunities"] == len(sb.opportunities())
    else:
        assert code == 2 and not Path("audit2/summary.json").exists()


# -- 3. drift by current tags, whatever updatedAt does -------------------------------------------


def test_propagate_plan_does_not_respread_a_tag_removed_after_the_plan(fresh_sandbox, tmp_path):
    sb = fresh_sandbox(contacts=CONTACTS, tag_writes_bump_updated_at=False)
    client = client_for(sb)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=["Python"])
    target = plan.rows[plan.rows["op"] == "add"].iloc[0]
    contact = target["contact_id"]
    sources = [
        o for o, e in plan.before.items() if e["contact_id"] == contact and "Python" in e["tags"]
    ]
    assert sources
    for opp in sources:  # the recruiter removes the tag from the person; updatedAt stays
        before = sb.opportunity(opp)
        sb.set_tags(opp, [t for t in before["tags"] if t != "Python"])
        assert sb.opportunity(opp)["updatedAt"] == before["updatedAt"]
    dry = apply_plan(client, plan, dry_run=True)
    assert set(dry.dropped["opportunity_id"]) >= {target["opportunity_id"]}
    assert any(n.startswith("drift check: re-read") for n in dry.notes)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j")
    assert result.ok
    people = [o for o in sb.opportunities() if o.get("contact") == contact]
    assert not any("Python" in (o.get("tags") or []) for o in people)
    assert verify_failures(verify_plan(client, plan, tmp_path / "j")).empty


def _expire_midway(sb, tmp_path, plan, after: int):
    """Apply with an OAuth token that expires after `after` requests: the run stops, journaled."""
    sb.configure(access_token_max_requests=after)
    client = client_for(sb, access_token=sb.access_token)
    with pytest.raises(AuthenticationError) as info:
        apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j", workers=2)
    assert "refresh it" in str(info.value) and "resumes" in str(info.value)
    assert sb.access_token not in str(info.value)
    frame = journal_frame(tmp_path / "j")
    assert (frame["state"] == "pending").any() and (frame["state"] == "done").any()
    return frame


def test_oauth_expiry_mid_apply_stops_cleanly_and_resume_completes_exactly(fresh_sandbox, tmp_path):
    sb = fresh_sandbox(contacts=CONTACTS)
    plan = make_plan(fetch_snapshot(client_for(sb), progress=False), tags=TAGS)
    writes = []
    original = sb.engine.state.change_tags

    def logged(opp_id, add=(), remove=()):
        writes.append((opp_id, "add" if add else "remove"))
        return original(opp_id, add=add, remove=remove)

    sb.engine.state.change_tags = logged
    _expire_midway(sb, tmp_path, plan, after=len(plan.calls()) // 2 + 4)
    sb.configure(access_token_max_requests=0)
    fresh = client_for(sb, access_token=sb.refresh_access_token())
    result = apply_plan(fresh, plan, dry_run=False, journal_path=tmp_path / "j")
    assert result.ok and result.resumed
    assert len(writes) == len(set(writes)) == len(plan.calls())  # each call written once
    assert verify_plan(fresh, plan).empty


def test_resume_skips_an_opportunity_anonymized_or_changed_since_the_kill(fresh_sandbox, tmp_path):
    sb = fresh_sandbox(contacts=CONTACTS, tag_writes_bump_updated_at=False)
    plan = make_plan(fetch_snapshot(client_for(sb), progress=False), tags=TAGS)
    frame = _expire_midway(sb, tmp_path, plan, after=len(plan.calls()) // 3 + 4)
    pending = frame[(frame["state"] == "pending") & (frame["op"] == "add")]
    anonymized, changed = pending["opportunity_id"].iloc[0], pending["opportunity_id"].iloc[-1]
    assert anonymized != changed
    state = sb.engine.state  # test-side hook: Lever anonymizes the person meanwhile
    with state.lock:
        state._opps[anonymized]["isAnonymized"] = True
    before_anonymized = set(sb.opportunity(anonymized)["tags"])
    call = pending[pending["opportunity_id"] == changed].iloc[0]
    sb.set_tags(changed, sorted(set(sb.opportunity(changed)["tags"]) | set(call["tags"])))
    sb.configure(access_token_max_requests=0)
    client = client_for(sb, access_token=sb.refresh_access_token())
    sb.reset_stats()
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j")
    assert result.ok and result.resumed
    assert set(sb.opportunity(anonymized)["tags"]) == before_anonymized  # never written
    after = journal_frame(tmp_path / "j").set_index(["opportunity_id", "op"])
    assert after.loc[(anonymized, "add"), "state"] == "noop"
    assert "anonymized" in after.loc[(anonymized, "add"), "message"]
    assert after.loc[(changed, "add"), "state"] == "noop"  # already there: nothing written
    bad = verify_plan(client, plan, tmp_path / "j")
    assert verify_failures(bad).empty


def test_resume_does_not_respread_a_tag_removed_from_the_person_since_the_kill(
    fresh_sandbox, tmp_path
):
    sb = fresh_sandbox(contacts=CONTACTS, tag_writes_bump_updated_at=False)
    plan = make_plan(fetch_snapshot(client_for(sb), progress=False), tags=TAGS)
    frame = _expire_midway(sb, tmp_path, plan, after=len(plan.calls()) // 3 + 4)
    untouched = frame.groupby("contact_id")["state"].agg(lambda s: set(s) == {"pending"})
    pending = frame[(frame["op"] == "add") & frame["contact_id"].map(untouched)]
    target = pending.iloc[0]  # a person none of whose calls ran before the kill
    contact, removed = target["contact_id"], set(target["tags"])
    for opp in sb.opportunities():  # the recruiter removes the tags from the person
        if opp.get("contact") == contact and removed & set(opp["tags"]):
            sb.set_tags(opp["id"], [t for t in opp["tags"] if t not in removed])
    sb.configure(access_token_max_requests=0)
    client = client_for(sb, access_token=sb.refresh_access_token())
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j")
    assert result.ok and result.resumed
    people = [o for o in sb.opportunities() if o.get("contact") == contact]
    assert not any(removed & set(o["tags"]) for o in people)
    after = journal_frame(tmp_path / "j").set_index(["opportunity_id", "op"])
    assert after.loc[(target["opportunity_id"], "add"), "state"] == "noop"
    assert verify_failures(verify_plan(client, plan, tmp_path / "j")).empty


def test_a_restricted_key_applying_a_plan_with_confidential_rows_records_403s(
    fresh_sandbox, tmp_path
):
    from lever_sandbox import CONTACT_LEVEL_TAGS

    sb = fresh_sandbox()
    snap = fetch_snapshot(client_for(sb), progress=False)
    plan = make_plan(snap, tags=list(CONTACT_LEVEL_TAGS))
    secret = {o["id"] for o in sb.opportunities() if o["confidentiality"] == "confidential"}
    touched = set(plan.rows["opportunity_id"]) & secret
    assert touched
    restricted = client_for(sb, api_key=sb.restricted_api_key)
    result = apply_plan(restricted, plan, dry_run=False, journal_path=tmp_path / "j")
    frame = journal_frame(tmp_path / "j")
    refused = frame[frame["opportunity_id"].isin(touched)]
    assert set(refused["state"]) == {"failed"} and set(refused["status"]) == {403}
    assert result.failed == int(plan.rows["opportunity_id"].isin(touched).sum())
    assert set(frame.loc[~frame["opportunity_id"].isin(touched), "state"]) <= {"done", "noop"}


# -- 3b/5. refresh after the toolkit's own writes, and deletions --------------------------------


@pytest.mark.parametrize("shape", ["documented", "minimal", "id"])
def test_refresh_after_apply_without_updatedat_bumps_and_drops_deleted(
    fresh_sandbox, tmp_path, shape
):
    sb = fresh_sandbox(contacts=CONTACTS, tag_writes_bump_updated_at=False, deleted_shape=shape)
    client = client_for(sb)
    snap = fetch_snapshot(client, progress=False)
    plan = make_plan(snap, tags=["Python"])
    assert apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j").ok
    gone = snap.frame["opportunity_id"].iloc[5]
    sb.delete_opportunity(gone)
    truth = {o["id"]: sorted(o.get("tags") or []) for o in sb.opportunities()}

    def state(s):
        return dict(zip(s.frame["opportunity_id"], map(sorted, s.frame["tags"]), strict=True))

    blind = refresh_snapshot(client, snap, progress=False)
    assert gone not in set(blind.frame["opportunity_id"])  # the deleted listing
    assert state(blind) != truth  # without the journal the writes stay invisible
    written = journal_written_ids([tmp_path / "j"])
    fixed = refresh_snapshot(client, snap, written=written, progress=False)
    assert state(fixed) == truth
    assert fixed.meta["refreshed_deleted"] == 1
    assert not any("deleted opportunities" in w for w in fixed.meta["warnings"])


def test_snapshot_refresh_cli_takes_journals(cli_env, capsys):
    cli_env(tag_writes_bump_updated_at=False)
    assert main(["snapshot", "--out", "snap.parquet"]) == 0
    assert main(["snapshot", "--out", "snap.parquet", "--journal", "nope.sqlite"]) == 2
    assert "--refresh" in capsys.readouterr().err
    assert main(["snapshot", "--out", "snap.parquet", "--refresh", "--journal", "no.sqlite"]) == 2
    assert "no such file" in capsys.readouterr().err


# -- 4. a restricted key silently filtered ------------------------------------------------------


def test_restricted_key_filtered_silently_says_confidential_access_unknown(cli_env, monkeypatch):
    sb = cli_env(confidential_denied="filter")
    monkeypatch.setenv("LEVER_API_KEY", sb.restricted_api_key)
    assert main(["audit", "--out", "audit"]) == 0
    summary = json.loads(Path("audit/summary.json").read_text())
    assert summary["confidential_access"] is None
    assert any("confidential_access is unknown" in w for w in summary["warnings"])
    non_confidential = [o for o in sb.opportunities() if o["confidentiality"] != "confidential"]
    assert summary["opportunities"] == len(non_confidential)


# -- 7. EU redirects -----------------------------------------------------------------------------


@responses.activate
def test_a_redirect_names_the_base_url_to_set():
    responses.get(
        "https://api.lever.co/v1/opportunities",
        status=301,
        headers={"Location": "https://api.eu.lever.co/v1/opportunities"},
    )
    client = LeverClient("https://api.lever.co/v1", api_key="k")
    with pytest.raises(UnexpectedResponseError) as info:
        list(client.iter_opportunities())
    assert "set LEVER_BASE_URL=https://api.eu.lever.co/v1" in str(info.value)


# -- 8. the sandbox is at least as strict as Lever ----------------------------------------------


def test_offset_tokens_have_lever_shape_and_are_passed_back_encoded_once_more(sandbox):
    first = requests.get(
        sandbox.base_url + "/opportunities", auth=(sandbox.api_key, ""), timeout=10
    ).json()
    token = first["next"]
    assert token.startswith("%5B1%2C") and token.endswith("%5D")
    ok = requests.get(
        sandbox.base_url + "/opportunities",
        params={"offset": token},  # requests encodes it once more: %255B...
        auth=(sandbox.api_key, ""),
        timeout=10,
    )
    assert "%255B" in ok.request.url and ok.status_code == 200
    raw = requests.get(  # the token decoded once (not re-encoded): refused like Lever's
        f"{sandbox.base_url}/opportunities?offset={token}", auth=(sandbox.api_key, ""), timeout=10
    )
    assert raw.status_code == 400 and "Invalid offset token" in raw.json()["message"]


@pytest.mark.parametrize("rotation", ["rotate", "keep", "omit"])
def test_expired_token_is_refused_until_refreshed_at_the_token_endpoint(fresh_sandbox, rotation):
    sb = fresh_sandbox(contacts=20, access_token_max_requests=2, refresh_rotation=rotation)
    old, app = sb.access_token, sb.engine.oauth_app
    bearer = {"Authorization": f"Bearer {old}"}
    codes = [requests.get(f"{sb.base_url}/users", headers=bearer, timeout=10).status_code]
    codes += [requests.get(f"{sb.base_url}/users", headers=bearer, timeout=10).status_code]
    expired = requests.get(f"{sb.base_url}/users", headers=bearer, timeout=10)
    assert codes == [200, 200] and expired.status_code == 401
    assert expired.json()["message"] == "Invalid or expired access token"
    spent = sb.refresh_token
    form = {
        "grant_type": "refresh_token",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "refresh_token": spent,
    }
    issued = requests.post(sb.token_url, data=form, timeout=10)  # form-encoded, as Lever's
    body = issued.json()
    assert issued.status_code == 200 and body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600 and "offline_access" in body["scope"]
    new = body["access_token"]
    assert new != old and new == sb.access_token
    fresh = requests.get(
        f"{sb.base_url}/users", headers={"Authorization": f"Bearer {new}"}, timeout=10
    )
    assert fresh.status_code == 200
    assert requests.get(f"{sb.base_url}/users", headers=bearer, timeout=10).status_code == 401
    again = requests.post(sb.token_url, data=form, timeout=10)
    if rotation == "rotate":  # a new refresh token; the spent one is refused
        assert body["refresh_token"] != spent and again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
    elif rotation == "keep":
        assert body["refresh_token"] == spent and again.status_code == 200
    else:
        assert "refresh_token" not in body and again.status_code == 200
    wrong_client = requests.post(sb.token_url, data={**form, "client_secret": "x"}, timeout=10)
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"
    wrong_grant = requests.post(sb.token_url, data={**form, "grant_type": "password"}, timeout=10)
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert sb.stats()["requests"] == 5  # the token endpoint is not one of the API's requests


def test_unknown_user_and_perform_as_404_bodies_are_lever_shaped(fresh_sandbox):
    sb = fresh_sandbox(contacts=20, perform_as_status=404)
    r = requests.get(f"{sb.base_url}/users/nobody", auth=(sb.api_key, ""), timeout=10)
    assert r.status_code == 404
    assert r.json() == {"code": "ResourceNotFound", "message": "users nobody was not found"}
    opp = sb.opportunities()[0]["id"]
    w = requests.post(
        f"{sb.base_url}/opportunities/{opp}/addTags",
        params={"perform_as": "nobody"},
        json={"tags": ["x"]},
        auth=(sb.api_key, ""),
        timeout=10,
    )
    assert w.status_code == 404 and w.json()["message"] == "users nobody was not found"


def test_sandbox_cli_mode_flags_reach_doctor(tmp_path):
    """`lever-tags sandbox` with every mode flag; doctor lists each one (and only those)."""
    env = dict(os.environ, LEVER_SANDBOX_KEY="cli-mode-key-123")
    args = ["--contacts", "150", "--rate", "1000", "--burst", "1000"]
    args += ["--perform-as-status", "404", "--no-updated-at-bump", "--omit-next", "once"]
    args += ["--deleted-shape", "id", "--offset-error-status", "200"]
    lever_tags_sandbox = (sys.executable, "-m", "toolkit.cli", "sandbox")
    with SandboxProcess(*args, command=lever_tags_sandbox, env=env) as sandbox:
        assert sandbox.api_key == "cli-mode-key-123"
        client = LeverClient(sandbox.base_url, api_key="cli-mode-key-123")
        opp = next(client.iter_opportunities(archived=True))["id"]  # not doctor's listing
        user = next(client.iter_users())["id"]
        report = run_doctor(client, write_test=opp, journal_dir=tmp_path, perform_as=user)
        assert {c.name for c in report.differences} == {
            "write with a wrong perform_as",
            "tag write moves updatedAt",
            "hasNext without next",
        }, report.table()
        rows = {c.name: c for c in report.checks}
        assert rows["offset token with another query"].observed.startswith("HTTP 200")
    assert sandbox.returncode == 0
