"""Apply, verify and rollback against the real sandbox over loopback (and `responses` fakes for
the exact-request checks)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from reference import write_log

from toolkit.audit import split_pairs
from toolkit.client import LeverClient
from toolkit.errors import AuthenticationError
from toolkit.remediate.apply import apply_plan
from toolkit.remediate.drift import check_drift
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import JournalError
from toolkit.remediate.journal_views import journal_frame, journal_summary
from toolkit.remediate.plan import REASON_DRIFT_PRESENT, REASON_DRIFT_SOURCE, PlanError
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.remediate.planner import make_plan
from toolkit.remediate.rollback import inverse_plan, rollback
from toolkit.remediate.verify import verify_failures, verify_on_purpose, verify_plan
from toolkit.snapshot.fetch import fetch_snapshot

TAGS = ["Python", "Do not contact", "Boomerang"]


def make_client(sb, **kw) -> LeverClient:
    options = {"rate": 1000, "burst": 1000, "backoff_base": 0.01, "backoff_max": 0.05}
    options.update(kw)
    return LeverClient(sb.base_url, api_key=sb.api_key, **options)


def tag_sets(sb) -> dict[str, set[str]]:
    return {o["id"]: set(o.get("tags") or []) for o in sb.opportunities()}


def expected_after(before: dict[str, set[str]], plan) -> dict[str, set[str]]:
    after = {k: set(v) for k, v in before.items()}
    for opp, op, tag in plan.rows[["opportunity_id", "op", "tag"]].itertuples(index=False):
        if op == "add":
            after[opp].add(tag)
        else:
            after[opp].discard(tag)
    return after


@pytest.fixture
def world(fresh_sandbox, tmp_path):
    """A fresh sandbox, a client, its snapshot, and a saved propagate plan for TAGS."""
    sb = fresh_sandbox()
    client = make_client(sb)
    snap = fetch_snapshot(client, progress=False)
    plan = make_plan(snap, tags=TAGS)
    save_plan(plan, tmp_path / "plan.csv")
    return sb, client, snap, load_plan(tmp_path / "plan.csv"), tmp_path


def test_propagate_closes_the_gaps_and_changes_nothing_else(world):
    sb, client, _snap, plan, tmp = world
    before = tag_sets(sb)
    log = write_log(sb)
    sb.reset_stats()
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")

    assert result.ok and result.applied == len(plan.rows) > 20
    assert tag_sets(sb) == expected_after(before, plan)  # no other tag changed anywhere
    fresh = fetch_snapshot(client, progress=False).frame
    assert split_pairs(fresh)["tag"].isin(TAGS).sum() == 0
    # one write call per (opportunity, op) group; retries counted apart
    groups = plan.rows.groupby(["opportunity_id", "op"]).ngroups
    assert sb.stats()["writes"] == result.calls == groups == len(log)
    assert set(log.values()) == {1}
    assert result.attempts == result.calls + result.stats.get("retries", 0)
    assert verify_plan(client, plan).empty


def test_dry_run_sends_zero_writes(world):
    sb, client, _snap, plan, tmp = world
    sb.reset_stats()
    result = apply_plan(client, plan, journal_path=tmp / "j.sqlite")
    assert result.dry_run and result.planned_changes == len(plan.rows)
    assert result.changes_by_tag["opportunities"].sum() == len(plan.rows)
    stats = sb.stats()
    assert stats["writes"] == 0
    assert not any(route.startswith("POST") for route in stats["by_route"])
    assert not (tmp / "j.sqlite").exists()


def test_max_changes_refuses_a_larger_plan(world):
    sb, client, _snap, plan, tmp = world
    sb.reset_stats()
    with pytest.raises(PlanError, match="more than --max-changes 3"):
        apply_plan(client, plan, dry_run=False, max_changes=3, journal_path=tmp / "j.sqlite")
    assert sb.stats()["requests"] == 0
    assert not (tmp / "j.sqlite").exists()
    result = apply_plan(
        client, plan, dry_run=False, max_changes=len(plan.rows), journal_path=tmp / "j.sqlite"
    )
    assert result.ok


def test_remove_mode(fresh_sandbox, tmp_path):
    sb = fresh_sandbox()
    client = make_client(sb)
    plan = make_plan(fetch_snapshot(client, progress=False), mode="remove", tags=["Python"])
    before = tag_sets(sb)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j.sqlite")
    assert result.ok and result.applied == len(plan.rows) > 0
    after = tag_sets(sb)
    assert after == expected_after(before, plan)
    anonymized = {o["id"] for o in sb.opportunities() if o.get("isAnonymized")}
    assert all("Python" not in tags for opp, tags in after.items() if opp not in anonymized)


def test_rename_mode_and_rollback_restore_exact_sets(fresh_sandbox, tmp_path):
    sb = fresh_sandbox()
    client = make_client(sb)
    snap = fetch_snapshot(client, progress=False)
    plan = make_plan(snap, mode="rename", tags=["Python"])
    assert set(plan.meta["renames"].values()) == {"Python"}
    assert {"add", "remove"} == set(plan.rows["op"])
    before = tag_sets(sb)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j.sqlite")
    assert result.ok
    after = tag_sets(sb)
    assert after == expected_after(before, plan)
    variants = set(plan.meta["renames"])
    assert not any(tags & variants for opp, tags in after.items() if opp in plan.before)

    sb.reset_stats()
    undone = rollback(client, tmp_path / "j.sqlite", dry_run=False)
    assert undone.ok and undone.kind == "rollback"
    assert tag_sets(sb) == before
    assert journal_summary(tmp_path / "j.rollback.sqlite")["kind"] == "rollback"
    # rolling back again does nothing new (resumed, finished)
    again = rollback(client, tmp_path / "j.sqlite", dry_run=False)
    assert again.calls == 0 and tag_sets(sb) == before


def test_rollback_keeps_tags_that_were_there_before(world):
    sb, client, _snap, plan, tmp = world
    before = tag_sets(sb)
    # Someone adds a planned tag by hand between plan and apply: it was there before the run.
    opp, tag = plan.rows.iloc[0][["opportunity_id", "tag"]]
    sb.set_tags(opp, sorted(before[opp] | {tag}))
    before_run = tag_sets(sb)
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    preview = rollback(client, tmp / "j.sqlite")
    assert preview.dry_run and preview.planned_changes == len(plan.rows) - 1
    rollback(client, tmp / "j.sqlite", dry_run=False)
    assert tag_sets(sb) == before_run
    assert tag in tag_sets(sb)[opp]


def test_drift_is_replanned_not_clobbered(world):
    sb, client, _snap, plan, tmp = world
    rows = plan.rows
    adds = rows[rows["op"] == "add"]
    # 1) a planned add already done by someone, with an extra tag of theirs
    a_opp, a_tag = adds.iloc[0][["opportunity_id", "tag"]]
    a_tags = sorted(set(plan.before[a_opp]["tags"]) | {a_tag, "Added by hand"})
    sb.set_tags(a_opp, a_tags)
    # 2) another planned opportunity edited by hand (a tag removed, one added)
    b_opp = next(o for o in adds["opportunity_id"] if o != a_opp)
    b_before = plan.before[b_opp]["tags"]
    b_tags = [*b_before[1:], "Edited by hand"]
    sb.set_tags(b_opp, b_tags)
    # 3) a contact whose only source of the tag lost it: the tag must not come back
    by_contact = {}
    for opp, entry in plan.before.items():
        by_contact.setdefault(entry["contact_id"], []).append(opp)
    c_row = next(
        r
        for r in adds.itertuples(index=False)
        if r.opportunity_id not in (a_opp, b_opp)
        and sum(r.tag in plan.before[o]["tags"] for o in by_contact[r.contact_id]) == 1
        and len(adds[(adds.contact_id == r.contact_id) & (adds.tag == r.tag)]) == 1
    )
    source = next(o for o in by_contact[c_row.contact_id] if c_row.tag in plan.before[o]["tags"])
    sb.set_tags(source, [t for t in plan.before[source]["tags"] if t != c_row.tag])

    drift = check_drift(client, plan)
    assert {a_opp, b_opp, source} <= set(drift.loc[drift["changed"], "opportunity_id"])
    log = write_log(sb)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    now = tag_sets(sb)
    assert now[a_opp] == set(a_tags) and (a_opp, "add") not in log
    b_added = set(rows.loc[rows["opportunity_id"] == b_opp, "tag"])
    assert now[b_opp] == set(b_tags) | b_added  # their edit kept, our tags added
    assert c_row.tag not in now[c_row.opportunity_id]
    reasons = dict(zip(result.dropped["opportunity_id"], result.dropped["reason"], strict=True))
    assert reasons[a_opp] == REASON_DRIFT_PRESENT
    assert reasons[c_row.opportunity_id] == REASON_DRIFT_SOURCE
    assert result.skipped >= 2 and result.ok
    drift_rows = Journal(tmp / "j.sqlite", lock=False).table("drift")
    assert {a_opp, b_opp, source} <= set(drift_rows["opportunity_id"])


def test_deleted_opportunity_is_recorded_and_the_run_goes_on(world):
    sb, client, _snap, plan, tmp = world
    gone = plan.rows.iloc[0]["opportunity_id"]
    sb.delete_opportunity(gone)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    n_gone = int((plan.rows["opportunity_id"] == gone).sum())
    assert result.not_found == n_gone and not result.ok
    assert result.applied == len(plan.rows) - n_gone
    frame = journal_frame(tmp / "j.sqlite")
    assert set(frame.loc[frame["state"] == "not_found", "opportunity_id"]) == {gone}
    assert int(frame.loc[frame["state"] == "not_found", "status"].iloc[0]) == 404


def test_faults_429_5xx_and_drops_still_exactly_right(world):
    sb, _client, _snap, plan, tmp = world
    before = tag_sets(sb)
    log = write_log(sb)
    sb.configure(rate=40, burst=5, fail_rate=0.15, drop_rate=0.1)
    # the client asks at twice the rate the server allows: bursts of 429s
    client = make_client(sb, rate=80, burst=10, backoff_base=0.02, backoff_max=0.2, max_attempts=30)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite", workers=8)
    stats = sb.stats()
    sb.configure(rate=1000, burst=1000, fail_rate=0, drop_rate=0)
    assert result.ok, result.outcomes.loc[result.outcomes["state"] != "done", "message"].tolist()
    assert stats["rate_limited"] > 0 and stats["faults"]["server_error"] > 0
    assert stats["faults"]["dropped"] > 0
    assert tag_sets(sb) == expected_after(before, plan)
    groups = plan.rows.groupby(["opportunity_id", "op"]).ngroups
    assert result.calls == groups == len(log) and set(log.values()) == {1}
    assert result.attempts > result.calls  # retries counted apart
    assert result.attempts - result.calls == result.stats["retries"]


def test_interrupted_run_resumes_without_repeating(world):
    sb, client, _snap, plan, tmp = world
    before = tag_sets(sb)
    log = write_log(sb)

    class Interrupting(LeverClient):
        calls = 0

        def add_tags(self, *args, **kwargs):
            Interrupting.calls += 1
            if Interrupting.calls == 6:
                raise KeyboardInterrupt
            return super().add_tags(*args, **kwargs)

    flaky = Interrupting(sb.base_url, api_key=sb.api_key, rate=1000, burst=1000)
    with pytest.raises(KeyboardInterrupt):
        apply_plan(flaky, plan, dry_run=False, journal_path=tmp / "j.sqlite", workers=1)
    first = journal_summary(tmp / "j.sqlite")
    done_first = first["calls_by_state"]["done"]
    assert done_first >= 5 and first["calls_by_state"]["intent"] == 1
    done_before = {k for k, v in log.items() if v}
    assert len(done_before) == done_first

    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    assert result.resumed and result.ok
    assert result.calls == len(plan.calls()) - done_first
    assert tag_sets(sb) == expected_after(before, plan)
    assert set(log.values()) == {1} and done_before <= set(log)


def test_intent_whose_write_landed_is_checked_not_repeated(world):
    sb, client, _snap, plan, tmp = world
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    with Journal(tmp / "j.sqlite") as journal:  # as if killed right after the write
        journal._db.execute("UPDATE calls SET state = 'intent' WHERE id IN (1, 2)")
        journal._db.execute("UPDATE run SET status = 'aborted'")
    log = write_log(sb)
    sb.reset_stats()
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    assert result.resumed and result.ok and result.calls == 0 and not log
    # checked by the resume's one drift read (by contact_id), not by a read per call
    assert sb.stats()["by_route"] == {"GET /v1/opportunities": {"200": 1}}
    assert journal_summary(tmp / "j.sqlite")["status"] == "finished"


def test_journal_refuses_another_plan_and_a_second_run(world):
    _sb, client, snap, plan, tmp = world
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    other = make_plan(snap, tags=["Go"])
    with pytest.raises(JournalError, match="another apply run"):
        apply_plan(client, other, dry_run=False, journal_path=tmp / "j.sqlite")
    with Journal(tmp / "j.sqlite"), pytest.raises(JournalError, match="another run holds"):
        apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")


def test_the_key_never_reaches_the_journal(world):
    sb, client, _snap, plan, tmp = world
    user = sb.users[0]["id"]
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite", perform_as=user)
    for path in tmp.iterdir():
        if path.is_file():
            assert sb.api_key.encode() not in path.read_bytes(), path


def test_workers_overlap_under_the_shared_limiter(fresh_sandbox, tmp_path):
    sb = fresh_sandbox(latency_ms=30)
    client = make_client(sb, rate=200, burst=10)
    plan = make_plan(fetch_snapshot(client, progress=False), tags=TAGS)
    sb.reset_stats()
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j", workers=6)
    assert result.ok
    assert 2 <= sb.stats()["max_in_flight"] <= 6
    assert sb.stats()["rate_limited"] == 0


# -- exact requests (responses fakes) ---------------------------------------------------------

BASE = "https://api.example.test/v1"


def fake_plan(tmp_path, n=3):
    path = tmp_path / "plan.csv"
    lines = ["opportunity_id,contact_id,op,tag"]
    for i in range(n):
        lines += [f"o{i},c,add,Python", f"o{i},c,add,Go", f"o{i},c,remove,Old"]
    path.write_text("\n".join(lines) + "\n")
    return load_plan(path)  # no sidecars: no watermark, so drift reads each by id


def add_reads(rsps, n):
    opps = [{"id": f"o{i}", "contact": "c", "tags": ["Old"]} for i in range(n)]
    rsps.get(f"{BASE}/opportunities", json={"data": opps, "hasNext": False})  # the drift read
    for i in range(n):
        rsps.get(f"{BASE}/opportunities/o{i}", json={"data": opps[i]})
    rsps.get(f"{BASE}/users/user-7", json={"data": {"id": "user-7"}})
    # the account check (toolkit.client.account): the account's users
    rsps.get(f"{BASE}/users", json={"data": [{"id": "u1", "createdAt": 1}], "hasNext": False})


@responses.activate
def test_perform_as_on_every_write_and_one_call_per_opportunity_and_op(tmp_path):
    plan = fake_plan(tmp_path)
    add_reads(responses, 3)
    for i in range(3):
        for action in ("addTags", "removeTags"):
            responses.post(f"{BASE}/opportunities/o{i}/{action}", json={"data": {"id": f"o{i}"}})
    client = LeverClient(BASE, api_key="k", rate=1000, burst=1000)
    result = apply_plan(
        client, plan, dry_run=False, journal_path=tmp_path / "j", perform_as="user-7", workers=2
    )
    assert result.ok and result.calls == 6
    posts = [c.request for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 6
    for request in posts:
        assert parse_qs(urlsplit(request.url).query) == {"perform_as": ["user-7"]}
    bodies = {urlsplit(r.url).path: r.body for r in posts}
    assert bodies["/v1/opportunities/o0/addTags"] == b'{"tags": ["Python", "Go"]}'
    # adds go before removes on one opportunity
    paths = [urlsplit(r.url).path for r in posts]
    assert paths.index("/v1/opportunities/o1/addTags") < paths.index(
        "/v1/opportunities/o1/removeTags"
    )


@responses.activate
def test_403_is_recorded_and_401_stops_at_once(tmp_path):
    plan = fake_plan(tmp_path, n=4)
    add_reads(responses, 4)
    responses.post(
        f"{BASE}/opportunities/o0/addTags",
        status=403,
        json={"code": "Forbidden", "message": "tag creation is locked"},
    )
    responses.post(f"{BASE}/opportunities/o0/removeTags", json={})
    responses.post(
        f"{BASE}/opportunities/o1/addTags",
        status=401,
        json={"code": "Unauthorized", "message": "Invalid API key"},
    )
    client = LeverClient(BASE, api_key="k", rate=1000, burst=1000)
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        apply_plan(client, plan, dry_run=False, journal_path=tmp_path / "j", workers=1)
    frame = journal_frame(tmp_path / "j")
    states = dict(zip(frame["opportunity_id"] + "/" + frame["op"], frame["state"], strict=True))
    assert states["o0/add"] == "failed" and states["o0/remove"] == "done"
    assert states["o1/add"] == "pending"  # stopped before it could write: retried on resume
    assert {states[f"o{i}/{op}"] for i in (2, 3) for op in ("add", "remove")} == {"pending"}
    failed = frame[frame["state"] == "failed"].iloc[0]
    assert (int(failed["status"]), failed["code"]) == (403, "Forbidden")
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 3
    assert journal_summary(tmp_path / "j")["status"] == "aborted"


def test_inverse_plan_removes_only_what_the_run_added(tmp_path):
    import pandas as pd

    path = tmp_path / "j.sqlite"
    rows = pd.DataFrame(
        {"opportunity_id": ["o1"], "contact_id": ["c"], "op": ["add"], "tag": ["a"]}
    )
    with Journal(path) as journal:
        journal.init_run(kind="apply", plan_sha256="s", plan_meta={}, params={}, plan_rows=rows)
        journal.record_planning(
            [
                {"opportunity_id": "o1", "op": "add", "tags": ["a", "b"], "before_tags": ["b"]},
                {"opportunity_id": "o1", "op": "remove", "tags": ["x", "y"], "before_tags": ["x"]},
                {"opportunity_id": "o2", "op": "add", "tags": ["a"], "before_tags": []},
                {"opportunity_id": "o3", "op": "add", "tags": ["a"], "before_tags": []},
            ]
        )
        calls = journal.calls()
        journal.mark_outcome(calls[0].id, "done", wrote=True)
        journal.mark_outcome(calls[1].id, "done", wrote=True)
        journal.mark_outcome(calls[2].id, "failed", status=403, wrote=True)
        journal.mark_outcome(calls[3].id, "failed", status=503, wrote=True)
    inverse = inverse_plan(path)
    assert inverse.rows.values.tolist() == [
        ["o1", "", "remove", "a"],  # b was there before: it stays
        ["o1", "", "add", "x"],  # y was not there before: not re-added
        ["o3", "", "remove", "a"],  # a 503 after retries may have landed
    ]


def test_verify_by_contact_listings_and_by_id_agree(world):
    sb, client, _snap, plan, tmp = world
    assert len(verify_plan(client, plan, by="contact")) == len(plan.rows)  # nothing applied yet
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    sb.reset_stats()
    assert verify_plan(client, plan, by="contact", batch=50).empty
    routes = sb.stats()["by_route"]
    contacts = plan.rows["contact_id"].nunique()
    assert sum(routes["GET /v1/opportunities"].values()) <= -(-contacts // 50) + 1
    assert verify_plan(client, plan, by="id").empty
    opp, tag = plan.rows.iloc[0][["opportunity_id", "tag"]]
    sb.set_tags(opp, [t for t in tag_sets(sb)[opp] if t != tag])
    for by in ("contact", "id"):
        bad = verify_plan(client, plan, by=by)
        assert bad[["opportunity_id", "tag", "reason"]].values.tolist() == [[opp, tag, "missing"]]


# -- review fixes ---------------------------------------------------------------------------


def append_rows(plan, lines: list[str]):
    """Edit a saved plan by hand (as a reviewer would) and load it again."""
    with open(plan.path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return load_plan(plan.path)


def other_contacts_opportunity(sb, plan) -> dict:
    """A real, writable opportunity of a contact the plan does not touch."""
    touched = {e.get("contact_id") for e in plan.before.values()}
    return next(
        o
        for o in sb.opportunities()
        if o["id"] not in plan.before
        and o.get("contact")
        and o["contact"] not in touched
        and not o.get("isAnonymized")
    )


def test_a_hand_added_row_for_another_contact_is_read_once_applied_and_rolled_back(world):
    sb, client, _snap, plan, tmp = world
    extra = other_contacts_opportunity(sb, plan)
    edited = append_rows(plan, [f"{extra['id']},{extra['contact']},add,Hand added"])
    before = tag_sets(sb)
    sb.reset_stats()
    preview = apply_plan(client, edited)
    assert preview.dry_run and preview.planned_changes == len(plan.rows) + 1
    result = apply_plan(client, edited, dry_run=False, journal_path=tmp / "j.sqlite")
    assert result.ok and result.applied == len(plan.rows) + 1
    assert tag_sets(sb)[extra["id"]] == before[extra["id"]] | {"Hand added"}
    # read once per invocation (dry run and real run), before anything was written
    reads = sb.stats()["by_route"].get("GET /v1/opportunities/{id}", {})
    assert sum(reads.values()) == 2
    # the before-state read then is what rollback relies on: only the added tag goes
    calls = journal_frame(tmp / "j.sqlite").set_index("opportunity_id")
    assert calls.loc[extra["id"], "before_tags"] == list(extra.get("tags") or [])
    rollback(client, tmp / "j.sqlite", dry_run=False)
    assert tag_sets(sb) == before


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
def test_a_hand_added_id_that_does_not_exist_is_refused_before_any_journal(world, dry_run):
    sb, client, _snap, plan, tmp = world
    edited = append_rows(plan, ["00000000-0000-0000-0000-00000000dead,c9,add,Python"])
    sb.reset_stats()
    with pytest.raises(PlanError, match=r"1 opportunity id.* do not exist in Lever") as info:
        apply_plan(client, edited, dry_run=dry_run, journal_path=tmp / "j.sqlite")
    assert "\n" not in str(info.value) and "nothing was written" in str(info.value)
    assert sb.stats()["writes"] == 0
    assert not (tmp / "j.sqlite").exists() and not (tmp / "j.sqlite.lock").exists()


def test_max_changes_dry_run_previews_and_says_a_real_run_would_be_refused(world):
    sb, client, _snap, plan, tmp = world
    sb.reset_stats()
    result = apply_plan(client, plan, max_changes=3, journal_path=tmp / "j.sqlite")
    assert result.dry_run and result.planned_changes == len(plan.rows)
    assert result.over_max_changes
    text = "\n".join(result.summary_lines())
    assert "a real run would be refused by --max-changes 3" in text
    assert sb.stats()["writes"] == 0 and not (tmp / "j.sqlite").exists()
    within = apply_plan(client, plan, max_changes=len(plan.rows))
    assert not within.over_max_changes
    assert "refused" not in "\n".join(within.summary_lines())


def a_user_id(client) -> str:
    return next(iter(client.iter_users()))["id"]


def test_retry_failed_after_a_bad_perform_as(world):
    sb, client, _snap, plan, tmp = world
    nobody = sb.users[1]["id"]  # deactivated: GET /users/{id} finds it, the writes refuse it
    sb.deactivate_user(nobody)
    before = tag_sets(sb)
    log = write_log(sb)
    journal = tmp / "j.sqlite"
    bad = apply_plan(client, plan, dry_run=False, journal_path=journal, perform_as=nobody)
    groups = len(plan.calls())
    assert bad.failed == len(plan.rows) and not log  # 400 each: nothing written
    assert bad.permanent_failures == groups
    assert "--retry-failed" in bad.summary_lines()[-1]
    # someone fixes one opportunity by hand meanwhile: the retry must not claim that tag
    opp, tag = plan.rows.iloc[0][["opportunity_id", "tag"]]
    sb.set_tags(opp, sorted(before[opp] | {tag}))
    by_hand = tag_sets(sb)
    user = a_user_id(client)

    plain = apply_plan(client, plan, dry_run=False, journal_path=journal, perform_as=user)
    assert plain.resumed and plain.calls == 0 and plain.failed == len(plan.rows)
    assert any("perform_as" in note and user in note for note in plain.notes)
    assert journal_summary(journal)["params"]["perform_as"] == user  # journaled, not silent

    retried = apply_plan(client, plan, dry_run=False, journal_path=journal, retry_failed=True)
    assert retried.ok and retried.resumed and retried.retried == groups
    assert tag_sets(sb) == expected_after(before, plan)
    assert set(log.values()) == {1}  # each (opportunity, op) written once, by the retry
    frame = journal_frame(journal).set_index(["opportunity_id", "op"])
    assert frame["state"].value_counts().to_dict().get("failed", 0) == 0
    with Journal(journal, lock=False) as j:
        events = j.events()
    retries = events[events["kind"] == "retry"]
    assert len(retries) == groups and set(retries["detail"].map(lambda d: d["status"])) == {400}
    sessions = events[events["kind"] == "session"]["detail"].tolist()
    assert [s["perform_as"] for s in sessions] == [nobody, user, user]
    # rollback keeps the tag that was put there by hand before the retry
    rollback(client, journal, dry_run=False)
    assert tag_sets(sb) == by_hand


def drop_a_source(sb, plan):
    """Remove, by hand, the only source of one planned add: the apply drops that row."""
    adds = plan.rows[plan.rows["op"] == "add"]
    by_contact: dict[str, list[str]] = {}
    for opp, entry in plan.before.items():
        by_contact.setdefault(entry["contact_id"], []).append(opp)
    row = next(
        r
        for r in adds.itertuples(index=False)
        if sum(r.tag in plan.before[o]["tags"] for o in by_contact[r.contact_id]) == 1
        and len(adds[(adds.contact_id == r.contact_id) & (adds.tag == r.tag)]) == 1
    )
    source = next(o for o in by_contact[row.contact_id] if row.tag in plan.before[o]["tags"])
    sb.set_tags(source, [t for t in plan.before[source]["tags"] if t != row.tag])
    return row


def test_verify_with_the_journal_reports_rows_dropped_for_drift_apart(world):
    sb, client, _snap, plan, tmp = world
    row = drop_a_source(sb, plan)
    result = apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    assert result.ok and len(result.dropped) == 1

    plain = verify_plan(client, plan)  # existing callers: unchanged
    assert plain["reason"].tolist() == ["missing"]
    bad = verify_plan(client, plan, journal_path=tmp / "j.sqlite")
    assert bad[["opportunity_id", "tag", "reason"]].values.tolist() == [
        [row.opportunity_id, row.tag, "dropped (drift)"]
    ]
    assert verify_failures(bad).empty and len(verify_on_purpose(bad)) == 1
    # a row that should hold and does not still fails
    opp, tag = plan.rows[plan.rows["opportunity_id"] != row.opportunity_id].iloc[0][
        ["opportunity_id", "tag"]
    ]
    sb.set_tags(opp, [t for t in tag_sets(sb)[opp] if t != tag])
    bad = verify_plan(client, plan, journal_path=tmp / "j.sqlite")
    assert verify_failures(bad)[["opportunity_id", "reason"]].values.tolist() == [[opp, "missing"]]
    assert len(verify_on_purpose(bad)) == 1


def test_verify_refuses_another_plans_journal(world):
    _sb, client, snap, plan, tmp = world
    apply_plan(client, plan, dry_run=False, journal_path=tmp / "j.sqlite")
    other = make_plan(snap, tags=["Go"])
    with pytest.raises(JournalError, match="another plan"):
        verify_plan(client, other, journal_path=tmp / "j.sqlite")


def test_drift_check_sees_a_change_made_right_after_the_snapshot(fresh_sandbox):
    """docs/architecture.md: the run checks that what it touches has not changed since the snapshot.

    One record carries an updatedAt ahead of the clock (skew, an import): a change made right
    after the snapshot then has an updatedAt *below* the newest one in the data. A watermark
    taken from the newest updatedAt would miss it; the safe watermark must not.
    """
    from lever_sandbox.protocol import now_ms
    from toolkit.snapshot.frame import watermark

    sb = fresh_sandbox()
    client = make_client(sb)
    counts: dict[str, int] = {}
    for o in sb.opportunities():
        counts[o.get("contact") or o["id"]] = counts.get(o.get("contact") or o["id"], 0) + 1
    lonely = next(o["id"] for o in sb.opportunities() if counts[o.get("contact") or o["id"]] == 1)
    state = sb.engine.state  # test-side hook: stamp one untouched record an hour ahead
    with state.lock:
        state._opps[lonely]["updatedAt"] = now_ms() + 3_600_000
    snap = fetch_snapshot(client, progress=False)
    plan = make_plan(snap, tags=TAGS)
    assert lonely not in plan.before
    target = plan.rows.iloc[0]["opportunity_id"]
    sb.set_tags(target, [*plan.before[target]["tags"], "Changed right after"])
    changed_at = next(o["updatedAt"] for o in sb.opportunities() if o["id"] == target)
    assert changed_at < watermark(snap.frame)  # below the newest updatedAt in the data
    assert plan.watermark is not None and plan.watermark <= changed_at

    drift = check_drift(client, plan)
    assert target in set(drift.loc[drift["changed"], "opportunity_id"])
    # an updatedAt-based check from the newest updatedAt (the old watermark) would have missed
    # it; the drift check compares current tags, so no watermark can hide it
    from dataclasses import replace

    old_meta = {
        **plan.meta,
        "snapshot": {**plan.meta["snapshot"], "watermark": watermark(snap.frame)},
    }
    missed = check_drift(client, replace(plan, meta=old_meta))
    assert target in set(missed.loc[missed["changed"], "opportunity_id"])
