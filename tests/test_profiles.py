"""Profiles: `--profile NAME` takes an account's key and base URL from the environment variables
its profile names, and one batch over two profiles (two sandboxes) gives one index with both."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from toolkit.cli import main


@pytest.fixture
def two_accounts(fresh_sandbox, monkeypatch, tmp_path):
    eu, us = fresh_sandbox(seed=7, contacts=40), fresh_sandbox(seed=8, contacts=60)
    for var in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN", "LEVER_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LEVER_EU_API_KEY", eu.api_key)
    monkeypatch.setenv("LEVER_EU_BASE_URL", eu.base_url)
    monkeypatch.setenv("LEVER_US_API_KEY", us.api_key)
    profiles = {
        "profiles": {
            "eu": {"key_env": "LEVER_EU_API_KEY", "base_url_env": "LEVER_EU_BASE_URL"},
            "us": {
                "key_env": "LEVER_US_API_KEY",
                "base_url": us.base_url,
                "reports": "reports-us",
            },
        }
    }
    (tmp_path / "profiles.yaml").write_text(yaml.safe_dump(profiles), encoding="utf-8")
    monkeypatch.setenv("LEVER_PROFILES", str(tmp_path / "profiles.yaml"))
    monkeypatch.chdir(tmp_path)
    return eu, us


def test_one_batch_over_two_profiles_gives_one_index_with_both(two_accounts, capsys):
    eu, us = two_accounts
    runs = {
        "parallel_audits": 2,
        "runs": [
            {"name": "audit-eu", "notebook": "02-audit-report.ipynb", "profile": "eu"},
            {"name": "audit-us", "notebook": "02-audit-report.ipynb", "profile": "us"},
        ],
    }
    Path("runs.yaml").write_text(yaml.safe_dump(runs), encoding="utf-8")
    assert main(["batch", "runs.yaml", "--out-root", "out", "--timeout", "300"]) == 0
    index = Path(capsys.readouterr().out.strip().splitlines()[-1])
    page = index.read_text(encoding="utf-8")
    assert "<td>eu</td>" in page and "<td>us</td>" in page
    with open(index.parent / "runs.csv", encoding="utf-8") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    assert rows["audit-eu"]["profile"] == "eu" and rows["audit-us"]["profile"] == "us"
    for name, sb in (("audit-eu", eu), ("audit-us", us)):
        summary = json.loads((index.parent / rows[name]["folder"] / "summary.json").read_text())
        assert summary["opportunities"] == len(sb.opportunities())  # each read its own account
    assert len(eu.opportunities()) != len(us.opportunities())


def test_a_plan_of_one_profile_applied_with_the_others_exits_2(two_accounts, capsys):
    _eu, us = two_accounts
    assert main(["--profile", "eu", "plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    us.reset_stats()
    assert main(["--profile", "us", "apply", "plan.csv", "--yes"]) == 2
    assert "another Lever account" in capsys.readouterr().err
    assert us.stats()["requests"] == 0  # refused before any request


def test_bad_profiles_exit_2_with_one_line(two_accounts, capsys, monkeypatch):
    assert main(["--profile", "asia", "audit", "--out", "r"]) == 2
    assert "no profile 'asia'" in capsys.readouterr().err
    monkeypatch.delenv("LEVER_US_API_KEY")
    assert main(["--profile", "us", "audit", "--out", "r"]) == 2
    err = capsys.readouterr().err
    assert "LEVER_US_API_KEY is not set" in err and len(err.strip().splitlines()) == 1
    Path("profiles.yaml").write_text("profiles: {eu: {key: x}}\n", encoding="utf-8")
    assert main(["--profile", "eu", "audit", "--out", "r"]) == 2
    assert "profiles.yaml" in capsys.readouterr().err
