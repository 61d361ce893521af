"""The three notebooks, executed for real against a local sandbox.

- papermill runs (through `toolkit.notebook.helpers.run_notebook`) with non-default parameters;
- nbval (`--nbval-lax`) over every notebook in `notebooks/`, with their defaults: a child pytest
  whose kernels get the session sandbox's LEVER_BASE_URL / LEVER_API_KEY from the environment;
- a batch of the real notebooks with one failing run;
- the HTML reports carry the charts as images; no produced file contains the key.

Kernels inherit this process's environment, so each test points LEVER_* at a sandbox with
monkeypatch before it starts one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from papermill import execute_notebook
from papermill.exceptions import PapermillExecutionError
from reference import reference_audit, split_pairs_of

from toolkit import audit, config
from toolkit.cli import main
from toolkit.errors import ConfigurationError
from toolkit.notebook import execute
from toolkit.snapshot.frame import Snapshot, frame_from_opportunities
from toolkit.snapshot.store import save_snapshot

pytestmark = pytest.mark.notebook

DEMO_POLICY = "notebooks/demo-policy.yaml"


@pytest.fixture
def lever_env(sandbox, monkeypatch, point_at):
    """The session sandbox's credential in the environment the kernels inherit."""
    point_at(sandbox)
    return sandbox


def _no_key_anywhere(folder: Path, key: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"the key leaked into {path}"


def _images(html_path: Path) -> int:
    return html_path.read_text(encoding="utf-8").count('src="data:image/png;base64,')


def _tags_by_opportunity(sb) -> dict[str, list[str]]:
    return {o["id"]: sorted(o.get("tags") or []) for o in sb.opportunities()}


def test_explore_headless_leaves_static_tables(lever_env, tmp_path):
    result = execute.run_notebook(
        "explore",
        {
            "tags": ["Python", "Go"],
            "search": "redacted.invalid",  # search sees the pseudonymous emails
            "min_opportunities": 2,
            "include_archived": False,
            "redact": True,
        },
        tmp_path,
    )
    assert result.ok, result.error_message
    nb = nbformat.read(result.executed_path, as_version=4)
    html_outputs = [
        o["data"]["text/html"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    text = "\n".join(html_outputs)
    assert "tag-coverage" in text  # the styled grid as a static table
    assert "split_rate" in text  # per-tag statistics
    assert "opportunities" in text  # plan preview
    assert "Person-" in text  # redacted names label the grid
    widget_views = [
        o for c in nb.cells for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]  # fmt: skip
    assert widget_views  # the explorer itself is in the notebook too
    real_name = next(o["name"] for o in lever_env.opportunities() if o.get("name"))
    assert real_name not in result.html_path.read_text(encoding="utf-8")
    _no_key_anywhere(result.folder, lever_env.api_key)


def test_audit_report_artifacts_charts_and_redaction(lever_env, tmp_path):
    out = tmp_path / "artifacts"
    result = execute.run_notebook(
        "02-audit-report.ipynb",
        {
            "output_dir": str(out),
            "include_archived": False,
            "with_personal": True,
            "redact": True,
            "policy_path": DEMO_POLICY,
            "top": 5,
        },
        tmp_path / "reports",
        name="audit-active",
    )
    assert result.ok, result.error_message
    summary = json.loads((out / "summary.json").read_text())
    for key in audit.SUMMARY_KEYS:
        assert isinstance(summary[key], int)
    # the numbers from plain loops over the sandbox's own data, not from the code under test
    expected = reference_audit(lever_env.opportunities(), include_archived=False)["summary"]
    assert {k: summary[k] for k in expected} == expected
    for name in ("split_pairs", "missing_assignments", "tag_statistics", "variants", "evidence"):
        assert (out / f"{name}.csv").is_file()
    assert {p.name for p in (out / "charts").iterdir()} == {
        "split-contacts.png",
        "opportunities-per-contact.png",
        "coverage-heatmap.png",
    }
    page = result.html_path.read_text(encoding="utf-8")
    assert _images(result.html_path) == 3  # the three charts, embedded
    # alternative text: the title, then what the chart shows (with a policy: contact-level tags)
    assert 'alt="Contact-level tags with the most split contacts (top 5). Horizontal bars' in page
    assert 'alt="Tag coverage of the most affected contacts. Heatmap: ' in page
    names = {o["name"] for o in lever_env.opportunities() if o.get("name")}
    assert not [n for n in names if n in page]  # redacted: no real name in the report
    _no_key_anywhere(tmp_path, lever_env.api_key)


def test_audit_report_from_a_saved_snapshot(tmp_path, sandbox, monkeypatch):
    # no credential at all: loading a snapshot needs none
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN", "LEVER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    frame = frame_from_opportunities(sandbox.opportunities())
    path = save_snapshot(Snapshot(frame, {"host": "saved"}), tmp_path / "snap.parquet")
    result = execute.run_notebook("audit", {"snapshot_path": str(path)}, tmp_path)
    assert result.ok, result.error_message
    summary = json.loads((result.folder / "summary.json").read_text())
    expected = reference_audit(sandbox.opportunities())["summary"]
    assert summary["split_pairs"] == expected["split_pairs"]


def test_remediate_dry_run_writes_nothing(lever_env, tmp_path):
    before = _tags_by_opportunity(lever_env)
    result = execute.run_notebook("remediate", {"tags": ["Python"], "max_changes": 1000}, tmp_path)
    assert result.ok, result.error_message
    assert _tags_by_opportunity(lever_env) == before
    data = json.loads((result.folder / "remediation.json").read_text())
    assert data["dry_run"] is True and data["apply"]["applied"] == 0
    assert data["plan"]["add"] > 0
    assert data["after"]["split_pairs"] == 0  # projected
    assert data["after_is"].startswith("projected")
    assert not (result.folder / "journal.sqlite").exists()
    assert _images(result.html_path) == 3  # plan, before/after, per tag


def test_remediate_apply_on_a_fresh_sandbox(fresh_sandbox, monkeypatch, tmp_path, point_at):
    sb = fresh_sandbox()
    point_at(sb)
    journal = tmp_path / "runs" / "go.sqlite"
    result = execute.run_notebook(
        "remediate",
        {"tags": ["Go"], "dry_run": False, "max_changes": 1000, "journal_path": str(journal)},
        tmp_path,
    )
    assert result.ok, result.error_message
    data = json.loads((result.folder / "remediation.json").read_text())
    assert data["dry_run"] is False and data["ok"] is True
    assert data["apply"]["applied"] == data["plan"]["add"] > 0
    assert data["residual_rows"] == 0
    assert data["after"]["split_pairs"] == 0
    assert journal.is_file()
    assert not split_pairs_of(sb.opportunities(), "Go")
    _no_key_anywhere(tmp_path, sb.api_key)


def test_remediate_refuses_a_plan_larger_than_max_changes(
    fresh_sandbox, monkeypatch, tmp_path, point_at
):
    sb = fresh_sandbox()
    point_at(sb)
    before = _tags_by_opportunity(sb)
    result = execute.run_notebook(
        "remediate", {"tags": ["Python"], "dry_run": False, "max_changes": 1}, tmp_path
    )
    assert result.status == execute.FAILED
    assert "max-changes 1" in result.error_message or "max_changes" in result.error_message
    assert "workflows.apply_changes(" in result.error_message  # the failing cell is named
    assert _tags_by_opportunity(sb) == before


def test_wrong_typed_parameter_fails_clearly(lever_env, tmp_path):
    # through toolkit.notebook.helpers: refused before a kernel starts
    with pytest.raises(ConfigurationError, match="max_changes must be"):
        execute.run_notebook("remediate", {"max_changes": "ten"}, tmp_path)
    # straight through papermill: the check cell fails with one clear line
    nb = config.NOTEBOOKS_DIR / "03-remediate.ipynb"
    with pytest.raises(PapermillExecutionError) as err:
        execute_notebook(
            str(nb),
            str(tmp_path / "out.ipynb"),
            parameters={"mode": "merge"},
            progress_bar=False,
            cwd=str(tmp_path),
            kernel_name="python3",
        )
    assert err.value.ename == "ConfigurationError"
    assert "mode must be one of propagate, remove, rename" in err.value.evalue
    assert "check_parameters" in err.value.source


def test_batch_of_real_notebooks_with_one_failing_run(lever_env, tmp_path, capsys):
    bad_policy = tmp_path / "bad-policy.yaml"
    bad_policy.write_text("version: 1\ncontact_level: Python\n", encoding="utf-8")
    runs = tmp_path / "runs.yaml"
    runs.write_text(
        "parallel_audits: 2\n"
        "runs:\n"
        "  - {name: audit-all, notebook: audit}\n"
        "  - {name: audit-active, notebook: audit, parameters: {include_archived: false}}\n"
        "  - name: bad-policy\n    notebook: remediate\n"
        f"    parameters: {{policy_path: {bad_policy}}}\n"
        "  - {name: preview, notebook: remediate, parameters: {tags: [Go]}}\n",
        encoding="utf-8",
    )
    code = main(["batch", str(runs), "--out-root", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    index = Path(captured.out.strip().splitlines()[-1])
    table = pd.read_csv(index.parent / "runs.csv")
    assert table[["name", "status"]].values.tolist() == [
        ["audit-all", "succeeded"],
        ["audit-active", "succeeded"],
        ["bad-policy", "failed"],
        ["preview", "succeeded"],
    ]
    error = table.loc[table["name"] == "bad-policy", "error"].item()
    assert "ConfigurationError" in error and "contact_level" in error
    # the two audits ran side by side, each in its own folder with its own result (papermill's
    # process-wide chdir once started both kernels in one folder)
    for name, archived in (("audit-all", True), ("audit-active", False)):
        folder = index.parent / table.loc[table["name"] == name, "folder"].item()
        summary = json.loads((folder / "summary.json").read_text())
        expected = reference_audit(lever_env.opportunities(), include_archived=archived)["summary"]
        assert summary["opportunities"] == expected["opportunities"], name
    page = index.read_text(encoding="utf-8")
    assert page.count("report</a>") == 4
    _no_key_anywhere(tmp_path, lever_env.api_key)


@pytest.mark.slow
def test_nbval_over_every_notebook(sandbox, tmp_path):
    """`pytest --nbval-lax notebooks/` in a child process, kernels pointed at the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEVER_")}
    env.update(sandbox.env())
    env["LEVER_REPORTS_DIR"] = str(tmp_path / "reports")  # interactive outputs go here
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-sanitize-with", str(Path(__file__).with_name("nbval_sanitize.cfg")),
        "-o", "addopts=", "-o", "testpaths=", "--timeout", "600",
        str(config.NOTEBOOKS_DIR),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=config.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "failed" not in proc.stdout, tail
    notebooks = sorted(p.name for p in config.NOTEBOOKS_DIR.glob("*.ipynb"))
    assert len(notebooks) == 4
    _no_key_anywhere(tmp_path, sandbox.api_key)


def test_committed_notebooks_are_clean_and_have_no_definitions():
    for path in sorted(config.NOTEBOOKS_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, path.name
            for line in cell.source.splitlines():
                assert not line.lstrip().startswith(("def ", "class ")), f"{path.name}: {line}"
            for word in ("api_key", "LEVER_API_KEY", "access_token"):
                assert word not in cell.source, f"{path.name} mentions {word}"


def test_remediate_rename_mode_previews_variant_fixes(lever_env, tmp_path):
    result = execute.run_notebook(
        "remediate", {"mode": "rename", "renames": {"python": "Python"}}, tmp_path
    )
    assert result.ok, result.error_message
    plan = pd.read_csv(result.folder / "plan.csv")
    assert set(plan["op"]) == {"add", "remove"}
    assert set(plan.loc[plan["op"] == "remove", "tag"]) == {"python"}
    assert set(plan.loc[plan["op"] == "add", "tag"]) == {"Python"}
    assert json.loads((result.folder / "remediation.json").read_text())["dry_run"] is True


_PROGRESS = re.compile(r"\[\d+:\d\d(?:<[^\]]*)?, [^\]]*/s\]|FloatProgress")


def _progress_outputs(nb) -> list[str]:
    """Outputs that are tqdm bars (text `[00:01<00:02, 3.2it/s]` or a FloatProgress widget)."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            if _PROGRESS.search(text):
                found.append(text[:120])
    return found


def test_headless_explore_report_publishes_no_names_no_bars_no_salt(lever_env, tmp_path, capsys):
    """`lever-tags report explore` with no parameters: pseudonyms (under the secret salt, which
    is written nowhere), no progress bar in the report."""
    from toolkit.redact import pseudonym

    salt = "team-secret-0f3a9c2e7b1d4a65"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LEVER_TOOLKIT_PROGRESS", raising=False)
        mp.setenv("LEVER_REDACT_SALT", salt)
        code = main(["report", "explore", "--out-root", str(tmp_path)])
        expected = {pseudonym(o["name"]) for o in lever_env.opportunities() if o.get("name")}
    assert code == 0, capsys.readouterr().err
    folder = Path(capsys.readouterr().out.strip())
    executed = folder / "01-explore-tag-coverage.ipynb"
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata["papermill"]["parameters"] == {"redact": True}
    page = (folder / "01-explore-tag-coverage.html").read_text(encoding="utf-8")
    raw = executed.read_text(encoding="utf-8")
    names = {o["name"] for o in lever_env.opportunities() if o.get("name")}
    assert not [n for n in names if n in page or n in raw]  # no real name anywhere
    assert [p for p in expected if p in page]  # pseudonyms under the secret salt label the grid
    assert "secret salt (LEVER_REDACT_SALT)" in page
    assert _progress_outputs(nb) == []  # the snapshot fetch showed no bar
    for path in folder.rglob("*"):
        if path.is_file():
            assert salt.encode() not in path.read_bytes(), path
    _no_key_anywhere(folder, lever_env.api_key)


def test_remediate_with_failed_writes_exits_1_keeps_artifacts_fails_the_batch(
    fresh_sandbox, monkeypatch, tmp_path, capsys, point_at
):
    """A real apply whose every write fails (a deactivated perform_as user): report exit 1 naming
    the last cell, every artifact written; a batch marks it failed; the same run done right
    exits 0."""
    sb = fresh_sandbox()
    gone = sb.users[1]["id"]  # known to GET /users/{id}, refused by the writes
    sb.deactivate_user(gone)
    point_at(sb)
    before = _tags_by_opportunity(sb)
    # Rust: 5 missing assignments, so the rate-limited writes (10/s, as Lever) stay quick
    params = ["-p", "tags", "Rust", "-p", "dry_run", "false", "-p", "max_changes", "1000"]
    bad = [*params, "-p", "perform_as", gone]

    code = main(["report", "remediate", *bad, "--out-root", str(tmp_path / "bad")])
    captured = capsys.readouterr()
    assert code == 1
    assert "workflows.require_success(result, residual, plan)" in captured.err
    assert "RemediationFailedError" in captured.err and "changes failed" in captured.err
    assert "perform_as" in captured.err  # the first failure's reason
    folder = Path(captured.out.strip())
    data = json.loads((folder / "remediation.json").read_text())
    assert data["ok"] is False and data["succeeded"] is False and data["problems"]
    assert data["apply"]["failed"] == data["plan"]["add"] > 0
    for name in ("plan.csv", "outcomes.csv", "journal.sqlite", "03-remediate.html"):
        assert (folder / name).is_file(), name
    assert _images(folder / "03-remediate.html") == 3
    nb = nbformat.read(folder / "03-remediate.ipynb", as_version=4)
    assert _progress_outputs(nb) == []  # neither the fetch nor the apply showed a bar
    assert _tags_by_opportunity(sb) == before

    runs = tmp_path / "runs.yaml"
    runs.write_text(
        "runs:\n  - name: bogus\n    notebook: remediate\n    parameters:\n"
        f"      {{tags: [Rust], dry_run: false, max_changes: 1000, perform_as: {gone}}}\n",
        encoding="utf-8",
    )
    assert main(["batch", str(runs), "--out-root", str(tmp_path / "batch")]) == 1
    index = Path(capsys.readouterr().out.strip().splitlines()[-1])
    table = pd.read_csv(index.parent / "runs.csv")
    assert table[["name", "status"]].values.tolist() == [["bogus", "failed"]]
    assert "require_success" in table["error"].item()

    code = main(["report", "remediate", *params, "--out-root", str(tmp_path / "good")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads((Path(captured.out.strip()) / "remediation.json").read_text())
    assert data["succeeded"] is True and data["problems"] == [] and data["apply"]["applied"] > 0
    assert not split_pairs_of(sb.opportunities(), "Rust")
    _no_key_anywhere(tmp_path, sb.api_key)


def test_failed_remediation_resumes_from_its_folder_with_the_named_command(
    fresh_sandbox, monkeypatch, tmp_path, capsys, point_at
):
    """After a bad perform_as, the error and remediation.json name `lever-tags apply <run
    folder>/plan.csv --yes --journal <run folder>/journal.sqlite ... --retry-failed`; that command,
    with a valid --perform-as, finishes this very run from the folder's plan and journal (its
    snapshot file removed) and retries the refused calls; run again, it has nothing left to do."""
    import shlex

    sb = fresh_sandbox()
    gone = sb.users[1]["id"]  # known to GET /users/{id}, refused by the writes
    sb.deactivate_user(gone)
    point_at(sb)
    params = ["-p", "tags", "Rust", "-p", "dry_run", "false", "-p", "max_changes", "1000"]
    code = main(["report", "remediate", *params, "-p", "perform_as", gone,
                 "--out-root", str(tmp_path)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    folder = Path(captured.out.strip())
    data = json.loads((folder / "remediation.json").read_text())
    command = data["resume_command"]
    assert command == (
        f"lever-tags apply {folder / 'plan.csv'} --yes --journal {folder / 'journal.sqlite'} "
        "--max-changes 1000 --retry-failed"
    )
    assert command in " ".join(captured.err.split())
    for snapshot in folder.glob("*.parquet"):  # the resume needs no snapshot file
        snapshot.unlink()

    user = sb.users[0]["id"]
    argv = [*shlex.split(command)[1:], "--perform-as", user]
    assert main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "5 failed calls retried" in out and "perform_as changed on resume" in out
    assert not split_pairs_of(sb.opportunities(), "Rust")
    assert main(argv) == 0  # resumed again: every write already done
    _no_key_anywhere(tmp_path, sb.api_key)
