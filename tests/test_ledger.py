"""The ledger: an apply, a partial rollback and a short sync run land in one append-only,
hash-chained ledger whose export has every field filled; an edited row is named by verify."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from polling import wait_for

from toolkit import __version__, workflows
from toolkit.cli import main
from toolkit.client import LeverClient
from toolkit.ledger.store import FIELDS, Ledger
from toolkit.remediate.stops import StopRequest

SYNC_TAG = "Ledger sync tag"


def ledger_rows(path: Path, source: str | None = None) -> int:
    if not path.exists():
        return 0
    with Ledger(path) as ledger:
        frame = ledger.frame()
    return int((frame["source"] == source).sum()) if source else len(frame)


@pytest.fixture
def world(fresh_sandbox, monkeypatch, tmp_path):
    sb = fresh_sandbox(seed=11, contacts=120, latency_ms=20)
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    ledger = tmp_path / "audit" / "ledger.sqlite"
    monkeypatch.setenv("LEVER_LEDGER", str(ledger))
    monkeypatch.chdir(tmp_path)
    return sb, ledger


def sync_until_it_writes(sb, tmp_path: Path, user: dict, ledger: Path) -> None:
    """`lever-tags sync --yes` (polling) until a new tagged opportunity is propagated; SIGTERM."""
    policy = tmp_path / "sync-policy.yaml"
    policy.write_text(f"version: 1\ncontact_level: ['{SYNC_TAG}']\n")
    argv = [sys.executable, "-m", "toolkit.cli", "sync", "--policy", str(policy), "--yes"]
    argv += ["--journal", str(tmp_path / "sync.sqlite"), "--poll-interval", "1"]
    argv += ["--perform-as", user["id"], "--operator", "svc-sync", "--reason", "CHG-7 sync"]
    proc = subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "sync.sqlite").exists(), 30, "the sync service to start")
        contact = next(
            c
            for c in sorted({o["contact"] for o in sb.opportunities() if o.get("contact")})
            if len([o for o in sb.opportunities() if o.get("contact") == c]) >= 2
            and not any(o.get("isAnonymized") for o in sb.opportunities() if o.get("contact") == c)
        )
        answer = requests.post(
            f"{sb.url}/_sandbox/contacts/{contact}/opportunities",
            auth=(sb.api_key, ""),
            json={"tags": [SYNC_TAG]},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        wait_for(lambda: ledger_rows(ledger, "sync") >= 2, 60, "sync's writes in the ledger")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_apply_partial_rollback_and_sync_land_in_one_ledger(world, tmp_path, capsys):
    sb, ledger = world
    user = sb.users[1]
    tags = ["--tag", "Python", "--tag", "Do not contact", "--tag", "Boomerang", "--tag", "Go"]
    assert main(["plan", *tags, "--out", "plan.csv"]) == 0
    apply = ["apply", "plan.csv", "--yes", "--journal", "j.sqlite", "--perform-as", user["id"]]
    assert main([*apply, "--operator", "alice", "--reason", "CHG-1 propagate Python"]) == 0
    applied = ledger_rows(ledger)
    assert applied >= 5 and ledger_rows(ledger, "apply") == applied  # enough calls to split

    # a partial rollback: stopped (as by SIGTERM) once a few of its writes are in the ledger
    stop = StopRequest()
    watcher = threading.Thread(
        target=lambda: (
            wait_for(lambda: ledger_rows(ledger) >= applied + 3, 60, "3 rollback rows"),
            stop.request(signal.SIGTERM),
        ),
        daemon=True,
    )
    watcher.start()
    result = workflows.roll_back(
        LeverClient.from_env(),
        "j.sqlite",
        dry_run=False,
        workers=1,
        stop=stop,
        operator="bob",
        reason="CHG-2 undo part",
    )
    watcher.join(60)
    assert result.stopped
    rolled = ledger_rows(ledger, "rollback")
    assert 3 <= rolled < applied

    sync_until_it_writes(sb, tmp_path, user, ledger)

    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    today = datetime.now(UTC).date().isoformat()
    capsys.readouterr()
    assert main(["ledger", "export", "--since", today, "--csv", "export.csv"]) == 0
    with open("export.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["source"] for r in rows} == {"apply", "rollback", "sync"}
    assert len(rows) == ledger_rows(ledger)
    for row in rows:
        empty = [name for name in FIELDS if not row[name].strip()]
        assert not empty, (row["seq"], row["source"], empty)
        assert row["toolkit_version"] == __version__
        assert row["perform_as"] == user["id"] and row["perform_as_name"] == user["name"]
        assert row["host"] == sb.base_url.split("/")[2] and row["outcome"] == "done"
    by_source = {r["source"]: r for r in rows}
    assert by_source["apply"]["operator"] == "alice"
    assert by_source["rollback"]["reason"] == "CHG-2 undo part"
    assert by_source["sync"]["operator"] == "svc-sync"
    # a propagation names where the tag was copied from: an opportunity of the same contact
    first = by_source["apply"]
    assert first["op"] == "add" and first["tags"].strip('[]"') in first["copied_from"]
    contact_of = {o["id"]: o.get("contact") for o in sb.opportunities()}
    source_opp = first["copied_from"].split('"')[3]
    assert contact_of[source_opp] == contact_of[first["opportunity_id"]] == first["contact_id"]
    assert main(["ledger", "export", "--since", "2999-01-01", "--csv", "none.csv"]) == 0
    with open("none.csv", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == []

    # append-only, and an edited row is named
    assert main(["ledger", "verify"]) == 0
    assert "chain" in capsys.readouterr().out
    db = sqlite3.connect(ledger)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE ledger SET reason = 'nothing to see' WHERE seq = 5")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM ledger WHERE seq = 5")
    db.execute("DROP TRIGGER ledger_no_update")  # a tamperer with write access to the file
    db.execute("UPDATE ledger SET reason = 'nothing to see' WHERE seq = 5")
    db.commit()
    db.close()
    assert main(["ledger", "verify"]) == 1
    out = capsys.readouterr().out
    assert "row 5 does not chain" in out and len(out.strip().splitlines()) == 1


def test_ledger_bad_input_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEVER_LEDGER", str(tmp_path / "missing.sqlite"))
    assert main(["ledger", "verify"]) == 2
    assert "ledger not found" in capsys.readouterr().err
    (tmp_path / "l.sqlite").write_text("not sqlite")
    assert main(["ledger", "verify", "--ledger", str(tmp_path / "l.sqlite")]) == 2
    assert "not a usable ledger" in capsys.readouterr().err
    Ledger(tmp_path / "ok.sqlite").close()
    assert (
        main(["ledger", "export", "--since", "yesterday", "--ledger", str(tmp_path / "ok.sqlite")])
        == 2
    )
    assert "--since 'yesterday' is not a date" in capsys.readouterr().err


def test_a_deleted_row_breaks_the_chain_at_the_next_one(tmp_path):
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        for i in range(4):
            ledger.append({"opportunity_id": f"o{i}", "op": "add", "tags": ["x"]})
        assert ledger.verify() == (4, None)
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER ledger_no_delete")
    db.execute("DELETE FROM ledger WHERE seq = 2")
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        _count, broken = ledger.verify()
    assert broken is not None and broken.seq == 3 and "row 2 is missing" in broken.why
