"""`lever-tags plan --contacts FILE`: a list of people (contact ids or emails) on the sandbox."""

from __future__ import annotations

import csv

import pytest

from lever_sandbox import Sandbox
from lever_sandbox.data import generate_dataset
from toolkit.cli import main
from toolkit.remediate.planfile import load_plan

TAG = "Compliance hold"  # on nobody yet: every opportunity of a listed person gets it


def people_dataset():
    """The sandbox's data, with two people sharing one email (as a household or a typo does)."""
    ds = generate_dataset(seed=7, contacts=300)
    by_contact = {}
    for opp in ds.opportunities:
        if opp.get("contact") and not opp.get("isAnonymized") and opp.get("emails"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    ids = sorted(by_contact)
    owner, twin = ids[0], ids[1]
    shared = by_contact[owner][0]["emails"][0]
    for opp in by_contact[twin]:
        opp["emails"] = [shared]
    ds.contacts[twin]["emails"] = [shared]
    return ds, by_contact, ids, shared


@pytest.fixture
def account(monkeypatch, tmp_path):
    ds, by_contact, ids, shared = people_dataset()
    with Sandbox(dataset=ds, latency_ms=0, rate=1000, burst=1000) as sb:
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
        monkeypatch.chdir(tmp_path)
        yield sb, by_contact, ids, shared


def forty_rows(by_contact, ids, shared):
    """25 known emails (one upper-cased), 5 known contact ids, 5 unknown emails, 2 unknown ids,
    and the shared email 3 times: 40 rows."""
    known_by_email = ids[2:27]
    known_by_id = ids[27:32]
    lines = [by_contact[c][0]["emails"][0] for c in known_by_email]
    lines[3] = lines[3].upper()  # emails match whatever their case
    lines += known_by_id
    lines += [f"nobody{i}@example.net" for i in range(5)]
    lines += ["0000-not-a-contact", "ffff-not-a-contact"]
    lines += [shared, shared.upper(), shared]
    assert len(lines) == 40
    return lines, set(known_by_email) | set(known_by_id)


def check_plan(path, known, by_contact):
    plan = load_plan(path)
    assert set(plan.rows["contact_id"]) == known  # exactly the known people
    every = {o["id"] for c in known for o in by_contact[c]}
    assert set(plan.rows["opportunity_id"]) == every and set(plan.rows["op"]) == {"add"}
    with open(path.replace(".csv", ".skipped.csv"), newline="", encoding="utf-8") as handle:
        skipped = list(csv.DictReader(handle))
    reasons = [row["reason"] for row in skipped]
    assert len(reasons) == 10
    assert sum("no contact has this email" in r for r in reasons) == 5
    assert sum("no such contact in the snapshot" in r for r in reasons) == 2
    assert sum("email shared by several contacts (ambiguous)" in r for r in reasons) == 3
    assert "contacts file line 36 (0000-not-a-contact)" in reasons[5]
    assert {row["tag"] for row in skipped} == {TAG}
    return plan


def test_forty_rows_plan_exactly_the_known_people(account, tmp_path, capsys):
    sb, by_contact, ids, shared = account
    lines, known = forty_rows(by_contact, ids, shared)
    (tmp_path / "people.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # emails through Lever (GET /opportunities?email=): the fetched snapshot holds no emails
    argv = ["plan", "--contacts", "people.txt", "--mode", "add", "--tag", TAG]
    assert main([*argv, "--out", "plan.csv"]) == 0
    out = capsys.readouterr().out
    assert "skipped: 10 (" in out and "5 contacts file: no contact has this email" in out
    plan = check_plan("plan.csv", known, by_contact)
    assert plan.meta["emails_matched_through"] == "lever"

    # emails through the snapshot's personal data: no listing at all (the one users listing is
    # the check that the snapshot belongs to this key's account)
    assert main(["snapshot", "--with-personal", "--out", "snap.parquet"]) == 0
    sb.reset_stats()
    assert main([*argv, "--snapshot", "snap.parquet", "--out", "offline.csv"]) == 0
    assert set(sb.stats()["by_route"]) <= {"GET /v1/users"}, sb.stats()["by_route"]
    offline = check_plan("offline.csv", known, by_contact)
    assert offline.meta["emails_matched_through"] == "snapshot"
    assert offline.rows.equals(plan.rows)

    # the same review, journal, verify and rollback as every plan
    before = {o["id"]: list(o["tags"]) for o in sb.opportunities()}
    assert main(["apply", "plan.csv", "--yes", "--max-changes", "1000"]) == 0
    assert main(["verify", "plan.csv"]) == 0
    for contact in known:
        assert all(TAG in sb.opportunity(o["id"])["tags"] for o in by_contact[contact])
    assert not any(TAG in o["tags"] for o in sb.opportunities() if o.get("contact") not in known)
    assert main(["rollback", "--journal", "plan.journal.sqlite", "--yes"]) == 0
    assert {o["id"]: list(o["tags"]) for o in sb.opportunities()} == before


def test_a_csv_column_and_the_other_modes(account, tmp_path):
    _, by_contact, ids, _ = account
    rows = [("Ada", by_contact[ids[5]][0]["emails"][0]), ("Bob", ids[6])]
    with open(tmp_path / "people.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("name", "Email"), *rows])
    assert main(["snapshot", "--out", "snap.parquet"]) == 0
    common = ["--contacts", "people.csv", "--snapshot", "snap.parquet"]
    # remove: only these people lose the tag
    tags = {t for o in by_contact[ids[5]] + by_contact[ids[6]] for t in o["tags"]}
    tag = sorted(tags)[0]
    assert main(["plan", *common, "--mode", "remove", "--tag", tag, "--out", "remove.csv"]) == 0
    removed = load_plan("remove.csv")
    assert set(removed.rows["contact_id"]) <= {ids[5], ids[6]} and len(removed.rows)
    # propagate: the split tags of these people only
    assert main(["plan", *common, "--tag", "Python", "--out", "propagate.csv"]) == 0
    assert set(load_plan("propagate.csv").rows["contact_id"]) <= {ids[5], ids[6]}


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "no such file"),
        ("\n# nobody\n", [], "no contact ids or emails"),
        ("name,phone\nAda,555\n", [], "needs a contact_id or email column"),
        (b"caf\xe9@example.com\n", [], "not a UTF-8 text file"),
        ("c1\n", ["--mode", "add"], "no tags to plan"),
    ],
)
def test_bad_contacts_files(tmp_path, monkeypatch, capsys, content, extra, message):
    """Refused in one line before anything is fetched (no credentials are set)."""
    monkeypatch.chdir(tmp_path)
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if isinstance(content, bytes):
        (tmp_path / "people.txt").write_bytes(content)
    elif content is not None:
        (tmp_path / "people.txt").write_text(content, encoding="utf-8")
    tags = [] if extra else ["--tag", TAG]
    argv = ["plan", "--contacts", "people.txt", *tags, "--out", "plan.csv", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "plan.csv").exists()


def test_add_needs_a_list_of_people(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "--mode", "add", "--tag", TAG, "--out", "plan.csv"]) == 2
    assert "--mode add needs --contacts FILE" in capsys.readouterr().err
