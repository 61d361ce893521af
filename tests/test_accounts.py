"""The right account: a plan, journal or snapshot from one Lever account is refused with another's
key before any write (two sandboxes with different seeds stand in for two accounts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.client.account import AccountMismatchError, account_of
from toolkit.policy import Policy
from toolkit.sync.service import SyncService
from toolkit.sync.store import SyncJournal


@pytest.fixture
def accounts(fresh_sandbox, monkeypatch, tmp_path):
    """Two sandboxes (accounts EU and US); the environment points at EU; cwd is tmp_path."""
    eu, us = fresh_sandbox(seed=7, contacts=120), fresh_sandbox(seed=8, contacts=120)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)

    def use(sb) -> None:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)

    use(eu)
    return eu, us, use


def posts(sb) -> int:
    return sum(sum(v.values()) for k, v in sb.stats()["by_route"].items() if k.startswith("POST"))


def refused(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_fingerprint_is_stable_and_tells_the_accounts_apart(accounts):
    eu, us, _ = accounts
    a = account_of(LeverClient(eu.base_url, api_key=eu.api_key))
    again = account_of(LeverClient(eu.base_url, api_key=eu.api_key))
    b = account_of(LeverClient(us.base_url, api_key=us.api_key))
    assert a == again and a["fingerprint"] and a["fingerprint"] != b["fingerprint"]
    assert not set(a["users"]) & set(b["users"])
    assert eu.api_key not in json.dumps(a)


def test_plan_of_one_account_applied_with_the_others_key_exits_2_before_any_write(accounts, capsys):
    _eu, us, use = accounts
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    meta = json.loads(Path("plan.meta.json").read_text())
    assert meta["snapshot"]["account"]["fingerprint"]
    assert main(["apply", "plan.csv", "--yes", "--journal", "eu.sqlite"]) == 0
    capsys.readouterr()

    use(us)
    us.reset_stats()
    for argv in (
        ["apply", "plan.csv"],
        ["apply", "plan.csv", "--yes", "--journal", "us.sqlite"],
        ["verify", "plan.csv"],
        ["rollback", "--journal", "eu.sqlite"],
        ["rollback", "--journal", "eu.sqlite", "--yes"],
        ["plan", "--tag", "Python", "--snapshot", "plan.snapshot.parquet", "--out", "p2.csv"],
    ):
        refused(capsys, argv, "another Lever account")
    stats = us.stats()
    # another host is another account: refused before any request
    assert stats["requests"] == 0 and stats["by_route"] == {}
    assert not Path("us.sqlite").exists() and not Path("p2.csv").exists()


def test_same_host_other_account_is_refused_by_the_fingerprint(accounts, capsys):
    _eu, us, use = accounts
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    meta = json.loads(Path("plan.meta.json").read_text())
    # as if both accounts were served by api.lever.co: only the fingerprint tells them apart
    meta["snapshot"]["account"]["host"] = meta["snapshot"]["host"] = us.base_url.split("/")[2]
    Path("plan.meta.json").write_text(json.dumps(meta))
    use(us)
    us.reset_stats()
    argv = ["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]
    refused(capsys, argv, "another Lever account")
    assert posts(us) == 0
    # on one host only the fingerprint tells the accounts apart: one users listing, no more
    assert set(us.stats()["by_route"]) == {"GET /v1/users"}


def test_a_plan_that_records_no_account_stops_in_the_dry_run(accounts, capsys):
    eu, us, use = accounts
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    meta = json.loads(Path("plan.meta.json").read_text())
    del meta["snapshot"]["account"]  # a plan from an older toolkit
    # on one host (another host is refused before any request): only the sample can tell
    meta["snapshot"]["host"] = us.base_url.split("/")[2]
    Path("plan.meta.json").write_text(json.dumps(meta))
    use(us)
    us.reset_stats()
    refused(capsys, ["apply", "plan.csv"], "wrong account?", "nothing was written")
    refused(capsys, ["apply", "plan.csv", "--yes", "--journal", "j.sqlite"], "wrong account?")
    assert posts(us) == 0 and not Path("j.sqlite").exists()
    # on its own account (and host) the same plan passes the sample check
    meta["snapshot"]["host"] = eu.base_url.split("/")[2]
    Path("plan.meta.json").write_text(json.dumps(meta))
    use(eu)
    assert main(["apply", "plan.csv"]) == 0


def test_a_journal_resumed_with_another_accounts_key_is_refused(accounts, capsys):
    _eu, us, use = accounts
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    meta = json.loads(Path("plan.meta.json").read_text())
    del meta["snapshot"]["account"]
    Path("plan.meta.json").write_text(json.dumps(meta))
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0
    capsys.readouterr()
    use(us)
    us.reset_stats()
    argv = ["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]
    refused(capsys, argv, "another Lever account")
    assert posts(us) == 0


def test_a_sync_journal_records_its_account_and_refuses_another(accounts, tmp_path):
    eu, us, _ = accounts
    journal, policy = tmp_path / "sync.sqlite", Policy(contact_level=("Python",))

    def service(sb) -> SyncService:
        client = LeverClient(sb.base_url, api_key=sb.api_key)
        return SyncService(client, policy, journal, poll_interval=3600)

    service(eu).start().stop()
    with SyncJournal(journal, create=False) as store:
        params = store.run()["params"]
    eu_account = account_of(LeverClient(eu.base_url, api_key=eu.api_key))
    assert params["host"] == eu.base_url.split("/")[2] and params["account"] == eu_account

    us.reset_stats()
    with pytest.raises(AccountMismatchError, match="another Lever account: it was made on"):
        service(us).start()
    assert us.stats()["requests"] == 0  # another host: refused before any request

    with SyncJournal(journal, create=False) as store:  # as if both were served by one host
        store.update_params(host=us.base_url.split("/")[2])
    with pytest.raises(AccountMismatchError, match="another Lever account"):
        service(us).start()
    assert set(us.stats()["by_route"]) == {"GET /v1/users"}  # the fingerprint, no write
