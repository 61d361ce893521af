"""`lever-tags snapshot` and `lever-tags audit` end to end against the sandbox."""

from __future__ import annotations

import json

import openpyxl
import pandas as pd
import pytest
from reference import reference_audit

from toolkit.cli import main

# The contract of docs/architecture.md, written out here rather than imported from the engine:
# a test that read the code's own list could not notice the list changing.
SUMMARY_KEYS = [
    "opportunities",
    "contacts",
    "multi_opportunity_contacts",
    "split_contacts",
    "split_pairs",
    "missing_assignments",
]


@pytest.fixture
def env(monkeypatch, sandbox, point_at):
    point_at(sandbox)
    return sandbox


def _read(out):
    summary = json.loads((out / "summary.json").read_text())
    pairs = pd.read_csv(out / "split_pairs.csv", dtype=str, keep_default_na=False)
    missing = pd.read_csv(out / "missing_assignments.csv", dtype=str, keep_default_na=False)
    return summary, pairs, missing


@pytest.mark.parametrize("exclude_archived", [False, True])
def test_audit_numbers_equal_the_sandbox_data(env, tmp_path, capsys, exclude_archived):
    out = tmp_path / "report"
    argv = ["audit", "--out", str(out)] + (["--exclude-archived"] if exclude_archived else [])
    assert main(argv) == 0
    summary, pairs, missing = _read(out)
    expected = reference_audit(env.opportunities(), include_archived=not exclude_archived)
    assert list(summary)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS  # the file starts with them
    assert {k: summary[k] for k in SUMMARY_KEYS} == expected["summary"]
    assert all(isinstance(summary[k], int) for k in SUMMARY_KEYS)
    assert list(pairs.columns) == ["contact_id", "tag", "with_tag", "opportunities"]
    assert list(missing.columns) == ["opportunity_id", "contact_id", "tag"]
    assert set(zip(pairs["contact_id"], pairs["tag"], strict=True)) == expected["pairs"]
    got_missing = set(
        zip(missing["opportunity_id"], missing["contact_id"], missing["tag"], strict=True)
    )
    assert got_missing == expected["missing"]
    assert summary["confidential_access"] is True
    assert expected["summary"]["split_pairs"] > 0  # the sandbox data has gaps to find
    assert "split pairs" in capsys.readouterr().out


def test_audit_counts_confidential_opportunities(env, tmp_path):
    out = tmp_path / "r"
    assert main(["audit", "--out", str(out)]) == 0
    summary, _, _ = _read(out)
    confidential = [o for o in env.opportunities() if o.get("confidentiality") == "confidential"]
    assert confidential and summary["opportunities"] == len(env.opportunities())


def test_snapshot_then_offline_audit_and_fail_on_gaps(env, tmp_path):
    snap = tmp_path / "snap.parquet"
    assert main(["snapshot", "--out", str(snap)]) == 0
    assert snap.is_file() and (tmp_path / "snap.parquet.meta.json").is_file()
    online, offline = tmp_path / "online", tmp_path / "offline"
    assert main(["audit", "--out", str(online)]) == 0
    assert main(["audit", "--snapshot", str(snap), "--out", str(offline), "--fail-on-gaps"]) == 1
    assert _read(online)[0]["split_pairs"] == _read(offline)[0]["split_pairs"]
    assert main(["snapshot", "--out", str(snap), "--refresh"]) == 0


def test_restricted_key_audits_non_confidential_data_with_a_warning(
    env, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LEVER_API_KEY", env.restricted_api_key)
    out = tmp_path / "r"
    assert main(["audit", "--out", str(out)]) == 0
    summary, _, _ = _read(out)
    public = [o for o in env.opportunities() if o.get("confidentiality") != "confidential"]
    assert summary["opportunities"] == len(public)
    assert summary["confidential_access"] is False and summary["warnings"]
    assert "confidential" in capsys.readouterr().err


def test_with_names_and_redact(env, tmp_path):
    named, redacted = tmp_path / "named", tmp_path / "redacted"
    assert main(["audit", "--out", str(named), "--with-names"]) == 0
    assert main(["audit", "--out", str(redacted), "--redact"]) == 0
    _, pairs, _ = _read(named)
    assert list(pairs.columns) == [
        "contact_id",
        "tag",
        "with_tag",
        "opportunities",
        "name",
        "email",
    ]
    real_names = {o["name"] for o in env.opportunities() if o.get("name")}
    real_emails = {e for o in env.opportunities() for e in o.get("emails") or []}
    assert set(pairs["name"]) & real_names
    _, rpairs, rmissing = _read(redacted)
    assert rpairs["name"].str.startswith("Person-").all()
    emails = rpairs["email"][rpairs["email"] != ""]  # anonymized people have none
    assert len(emails) and emails.str.endswith("@redacted.invalid").all()
    # the same contact always gets the same pseudonym, in both files
    by_contact = dict(zip(rpairs["contact_id"], rpairs["name"], strict=True))
    for contact, name in zip(rmissing["contact_id"], rmissing["name"], strict=True):
        assert by_contact[contact] == name
    for path in redacted.iterdir():
        text = _text_of(path)
        assert not any(n in text for n in real_names), f"a real name in {path.name}"
        assert not any(e in text for e in real_emails), f"a real email in {path.name}"
    assert json.loads((redacted / "summary.json").read_text())["snapshot"]["personal_data"] == (
        "pseudonyms"
    )


def test_audit_without_names_writes_no_personal_data(env, tmp_path):
    out = tmp_path / "plain"
    assert main(["audit", "--out", str(out)]) == 0
    real_names = {o["name"] for o in env.opportunities() if o.get("name") and len(o["name"]) > 4}
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not any(n in text for n in real_names), f"a name in {path.name}"


def test_empty_account_gives_a_valid_empty_report(fresh_sandbox, monkeypatch, tmp_path, point_at):
    sb = fresh_sandbox(contacts=0)
    point_at(sb)
    out = tmp_path / "empty"
    assert main(["audit", "--out", str(out)]) == 0
    summary, pairs, missing = _read(out)
    assert {k: summary[k] for k in SUMMARY_KEYS} == dict.fromkeys(SUMMARY_KEYS, 0)
    assert pairs.empty and list(pairs.columns) == ["contact_id", "tag", "with_tag", "opportunities"]
    assert missing.empty and list(missing.columns) == ["opportunity_id", "contact_id", "tag"]


def test_redact_with_a_secret_salt_writes_no_trace_of_it(env, tmp_path, monkeypatch):
    salt = "a-secret-salt-9f3e1c2b7d"
    out_public, out_secret = tmp_path / "public", tmp_path / "secret"
    assert main(["audit", "--out", str(out_public), "--redact"]) == 0
    monkeypatch.setenv("LEVER_REDACT_SALT", salt)
    assert main(["audit", "--out", str(out_secret), "--redact"]) == 0
    public, secret = _read(out_public)[1], _read(out_secret)[1]
    assert set(public["name"]).isdisjoint(secret["name"])  # other pseudonyms under the secret
    assert secret["name"].str.fullmatch(r"Person-[0-9a-f]{12}").all()
    for path in out_secret.iterdir():
        assert salt not in _text_of(path)
    summary = json.loads((out_secret / "summary.json").read_text())
    assert "secret salt" in summary["snapshot"]["redaction"]


def test_fail_on_gaps_with_a_policy_counts_only_its_contact_level_tags(
    fresh_sandbox, monkeypatch, tmp_path, capsys, point_at
):
    sb = fresh_sandbox(seed=8, contacts=120)
    point_at(sb)
    (tmp_path / "policy.yaml").write_text("contact_level: [Python]\n")
    audit = ["audit", "--policy", str(tmp_path / "policy.yaml"), "--fail-on-gaps"]
    assert main([*audit, "--out", str(tmp_path / "before")]) == 1
    plan = tmp_path / "plan.csv"
    assert main(["plan", "--tag", "Python", "--out", str(plan)]) == 0
    assert main(["apply", str(plan), "--yes", "--journal", str(tmp_path / "j.sqlite")]) == 0
    capsys.readouterr()
    assert main([*audit, "--out", str(tmp_path / "after")]) == 0  # posting tags stay split
    summary = json.loads((tmp_path / "after" / "summary.json").read_text())
    assert summary["split_pairs"] > 0 and summary["policy"]["contact_level_split_pairs"] == 0
    assert "0 split pairs on the policy's 1 contact-level tags" in capsys.readouterr().out


def test_a_snapshot_without_archived_ones_is_audited_as_such(env, tmp_path):
    snap = tmp_path / "active.parquet"
    assert main(["snapshot", "--out", str(snap), "--exclude-archived"]) == 0
    assert main(["audit", "--snapshot", str(snap), "--out", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["snapshot"]["include_archived"] is False


def test_report_files_are_private_whatever_the_umask(env, tmp_path):
    """Reports hold contact ids and tags, and names when asked for (issue 10): 0600 in a 0700
    folder the audit creates, under the usual umask 022 as under a strict one."""
    import os
    import stat

    for umask, name in ((0o022, "r"), (0o077, "s")):
        old = os.umask(umask)
        try:
            out = tmp_path / name / "deeper"
            assert main(["audit", "--out", str(out)]) == 0
        finally:
            os.umask(old)
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
        for path in out.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def _text_of(path):
    """A report file's text; a work-list workbook's cell values (it is a zip of XML)."""
    if path.suffix != ".xlsx":
        return path.read_text(encoding="utf-8")
    book = openpyxl.load_workbook(path, read_only=True)
    return "\n".join(
        str(v) for ws in book.worksheets for r in ws.iter_rows(values_only=True) for v in r
    )
