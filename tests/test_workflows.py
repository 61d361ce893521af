"""The CLI and the notebooks share one use-case layer (`toolkit.workflows`): from the same snapshot
and policy they write the same files, for an audit and for a remediation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit import workflows
from toolkit.cli import main
from toolkit.errors import ConfigurationError
from toolkit.notebook import execute
from toolkit.remediate.journal_views import journal_frame
from toolkit.snapshot.frame import frame_from_opportunities

AUDIT_FILES = (
    "split_pairs.csv",
    "missing_assignments.csv",
    "tag_statistics.csv",
    "variants.csv",
    "evidence.csv",
)
PLAN_FILES = ("plan.csv", "plan.skipped.csv", "plan.before.json")
# The journal columns that say what a run did (not when, nor how many attempts it took).
JOURNAL_COLUMNS = ["opportunity_id", "contact_id", "op", "tags", "before_tags", "state"]


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\n"
        "contact_level: [Python, Go, Do not contact, Boomerang, NoSuchTag]\n"
        "never_touch: [interview, offer]\n"
        "include_archived: false\n",
        encoding="utf-8",
    )
    return path


def test_cli_audit_and_notebook_02_write_the_same_summary_and_csvs(sandbox, tmp_path, point_at):
    point_at(sandbox)
    snapshot, policy = tmp_path / "snap.parquet", _policy(tmp_path)
    assert main(["snapshot", "--out", str(snapshot), "--with-personal"]) == 0
    cli, nb = tmp_path / "cli", tmp_path / "nb"
    argv = ["audit", "--snapshot", str(snapshot), "--policy", str(policy), "--redact"]
    assert main([*argv, "--out", str(cli)]) == 0
    result = execute.run_notebook(
        "audit",
        {
            "snapshot_path": str(snapshot),
            "policy_path": str(policy),
            "redact": True,
            "output_dir": str(nb),
        },
        tmp_path / "reports",
    )
    assert result.ok, result.error_message

    cli_summary = json.loads((cli / "summary.json").read_text())
    assert cli_summary["policy"]["contact_level_tags"] == 5  # the section the notebook lacked
    assert any("NoSuchTag" in w for w in cli_summary["warnings"])
    assert cli_summary["snapshot"]["include_archived"] is False  # the policy decided
    assert json.loads((nb / "summary.json").read_text()) == cli_summary
    for name in AUDIT_FILES:
        assert (nb / name).read_bytes() == (cli / name).read_bytes(), name
    assert b"Person-" in (cli / "split_pairs.csv").read_bytes()  # pseudonyms, in both


def _tags(sandbox) -> dict[str, list[str]]:
    frame = frame_from_opportunities(sandbox.opportunities())
    return dict(zip(frame["opportunity_id"], map(sorted, frame["tags"]), strict=True))


def _journal(path: Path):
    frame = journal_frame(path)[JOURNAL_COLUMNS]
    frame = frame.assign(tags=frame["tags"].map(sorted), before_tags=frame["before_tags"].map(str))
    return frame.sort_values(["opportunity_id", "op"]).reset_index(drop=True)


def test_cli_and_notebook_03_plan_and_apply_the_same_remediation(fresh_sandbox, tmp_path, point_at):
    # Two sandboxes with the same seed hold the same account; one is remediated from the CLI,
    # the other by the notebook, both from one snapshot and one policy. The second serves on
    # the first one's port once it is stopped, as one account always answers at one host.
    by_cli = fresh_sandbox(contacts=120)
    before = _tags(by_cli)
    snapshot, policy = tmp_path / "snap.parquet", _policy(tmp_path)
    cli, nb = tmp_path / "cli", tmp_path / "nb"
    cli.mkdir()

    point_at(by_cli)
    assert main(["snapshot", "--out", str(snapshot)]) == 0
    argv = ["plan", "--snapshot", str(snapshot), "--policy", str(policy)]
    assert main([*argv, "--out", str(cli / "plan.csv")]) == 0
    apply = ["apply", str(cli / "plan.csv"), "--yes", "--max-changes", "5000"]
    assert main([*apply, "--journal", str(cli / "journal.sqlite")]) == 0

    after_cli = _tags(by_cli)
    by_cli.stop()
    by_notebook = point_at(fresh_sandbox(contacts=120, port=by_cli.port))
    assert _tags(by_notebook) == before
    result = execute.run_notebook(
        "remediate",
        {
            "snapshot_path": str(snapshot),
            "policy_path": str(policy),
            "dry_run": False,
            "max_changes": 5000,
            "output_dir": str(nb),
        },
        tmp_path / "reports",
    )
    assert result.ok, result.error_message

    for name in PLAN_FILES:
        assert (nb / name).read_bytes() == (cli / name).read_bytes(), name
    cli_meta = json.loads((cli / "plan.meta.json").read_text())
    nb_meta = json.loads((nb / "plan.meta.json").read_text())
    assert cli_meta["counts"]["rows"] > 0 and cli_meta["counts"]["skipped"] > 0
    for meta in (cli_meta, nb_meta):
        meta.pop("created_at")
    assert nb_meta == cli_meta
    assert _journal(nb / "journal.sqlite").equals(_journal(cli / "journal.sqlite"))
    assert _tags(by_notebook) == after_cli
    assert json.loads((nb / "remediation.json").read_text())["succeeded"] is True


@pytest.mark.parametrize("mode", ["propagate", "remove"])
def test_plan_requests_are_refused_before_anything_is_fetched(mode, tmp_path, monkeypatch):
    # No credential and no snapshot: a request that cannot be planned fails on its own terms.
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="no tags to plan"):
        workflows.plan_changes(tmp_path / "plan.csv", mode=mode)
    with pytest.raises(ConfigurationError, match="renames: only for mode rename"):
        workflows.plan_changes(tmp_path / "plan.csv", mode=mode, tags=["x"], renames={"a": "b"})


def test_a_dry_run_without_credentials_is_the_same_in_the_cli_and_notebook_03(
    sandbox, tmp_path, point_at, monkeypatch, capsys
):
    # One rule (workflows.client_for): from a saved snapshot, a dry run plans and previews
    # without any Lever access and says the drift check was skipped; a real run refuses.
    point_at(sandbox)
    snapshot, policy = tmp_path / "snap.parquet", _policy(tmp_path)
    assert main(["snapshot", "--out", str(snapshot)]) == 0
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN", "LEVER_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    cli, nb = tmp_path / "cli", tmp_path / "nb"
    cli.mkdir()
    argv = ["plan", "--snapshot", str(snapshot), "--policy", str(policy)]
    assert main([*argv, "--out", str(cli / "plan.csv")]) == 0
    capsys.readouterr()
    assert main(["apply", str(cli / "plan.csv")]) == 0
    err = capsys.readouterr().err
    assert "note: no drift check: no Lever access" in err and "LEVER_API_KEY" in err
    assert main(["apply", str(cli / "plan.csv"), "--yes"]) == 2  # a real run needs the key

    params = {"snapshot_path": str(snapshot), "policy_path": str(policy), "output_dir": str(nb)}
    result = execute.run_notebook("remediate", params, tmp_path / "reports")
    assert result.ok, result.error_message
    for name in PLAN_FILES:
        assert (nb / name).read_bytes() == (cli / name).read_bytes(), name
    summary = json.loads((nb / "remediation.json").read_text())
    assert summary["dry_run"] is True and summary["succeeded"] is True
    assert "no drift check: no Lever access" in result.html_path.read_text(encoding="utf-8")

    real = execute.run_notebook("remediate", {**params, "dry_run": False}, tmp_path / "r2")
    assert not real.ok and "LEVER_API_KEY" in real.error_message
