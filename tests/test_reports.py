"""toolkit.notebook.helpers and the report/batch commands, on small notebooks built here.

The project's own notebooks are exercised against a sandbox in test_notebooks.py; these tests pin
down the machinery: folders, HTML export, failure naming, parameter checks, batches, the
credential scan.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from toolkit import config, workflows
from toolkit.cli import main
from toolkit.errors import ConfigurationError
from toolkit.notebook import batch, execute, helpers, secrets
from toolkit.notebook import params as nb_params
from toolkit.remediate import outcome
from toolkit.snapshot.frame import Snapshot, frame_from_opportunities
from toolkit.snapshot.store import save_snapshot

FOLDER_NAME = re.compile(r"^\d{8}T\d{6}Z-[A-Za-z0-9._-]+$")


def _notebook(path: Path, *cells: str, params: str = 'x: int = 1  # a number\nname: str = "a"'):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A test report"), p]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture
def ok_notebook(tmp_path: Path) -> Path:
    return _notebook(
        tmp_path / "ok.ipynb",
        "import json\nimport pandas as pd\nfrom toolkit.notebook import charts, helpers as reports",
        "UNIQUE_SOURCE_MARKER = 1\n"
        "charts.split_contacts_bar(pd.DataFrame({'tag': ['a', 'b'], 'split_contacts': [x, 2]}))",
        "open('result.json', 'w').write(json.dumps({'x': x, 'name': name}))\n"
        "pd.DataFrame({'x': [x]})",
    )


@pytest.fixture
def bad_notebook(tmp_path: Path) -> Path:
    return _notebook(
        tmp_path / "bad.ipynb",
        "y = 1",
        "raise ValueError(f'boom {name}')",
        "open('never.txt', 'w').write('never')",
    )


@pytest.fixture(autouse=True)
def _no_credential(monkeypatch):
    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


# -- parameters ---------------------------------------------------------------------------------


def test_check_parameters_accepts_good_values():
    p = nb_params.check_parameters(
        dry_run=False, max_changes=0, tags=["Python"], mode="rename", renames={"py": "Python"}
    )
    assert p.dry_run is False and p["max_changes"] == 0
    assert "dry_run" in p._repr_html_()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"dry_run": "no"}, "dry_run must be true or false, got str 'no'"),
        ({"max_changes": True}, "max_changes must be an integer >= 0"),
        ({"max_changes": -1}, "max_changes must be an integer >= 0"),
        ({"tags": "Python"}, "tags must be a list of non-empty tag strings"),
        ({"tags": ["ok", ""]}, "tags must be a list"),
        ({"mode": "merge"}, "mode must be one of propagate, remove, rename"),
        ({"renames": {"a": 1}}, "renames must be a mapping"),
        ({"policy_path": "no/such/policy.yaml"}, "policy_path: no such file"),
        ({"api_key": "x"}, "credentials are never notebook parameters"),
    ],
)
def test_check_parameters_one_clear_error(params, fragment):
    with pytest.raises(ConfigurationError) as err:
        nb_params.check_parameters(**params)
    message = str(err.value)
    assert message.startswith("bad notebook parameter: ")
    assert fragment in message
    assert "\n" not in message


def test_coerce_parameter_from_cli_text():
    assert nb_params.coerce_parameter("10", "int") == 10
    assert nb_params.coerce_parameter("false", "bool") is False
    assert nb_params.coerce_parameter("[a, b]", "list") == ["a", "b"]
    assert nb_params.coerce_parameter("Python", "list") == ["Python"]
    assert nb_params.coerce_parameter("007", "str") == "007"
    assert nb_params.coerce_parameter("{a: b}", "dict") == {"a": "b"}


def test_validate_run_parameters_before_any_kernel(ok_notebook):
    assert nb_params.validate_run_parameters(ok_notebook, {"x": "5"}) == {"x": 5}
    with pytest.raises(ConfigurationError, match="has no parameter nope"):
        nb_params.validate_run_parameters(ok_notebook, {"nope": 1})
    with pytest.raises(ConfigurationError, match="x must be int, got str 'zz'"):
        nb_params.validate_run_parameters(ok_notebook, {"x": "zz"})


def test_project_notebooks_declare_every_parameter_line():
    """papermill must parse every line of each parameters cell (an '=' in a comment breaks it)."""
    for path in sorted(config.NOTEBOOKS_DIR.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        declared = nb_params.notebook_parameters(path)
        assert len(declared) == len(lines), path.name
        for name in declared:
            assert name in nb_params.PARAMETER_SPEC, f"{path.name}: {name} is not checked"


def test_resolve_notebook_by_alias_stem_and_path(ok_notebook):
    assert nb_params.resolve_notebook("remediate").name == "03-remediate.ipynb"
    assert nb_params.resolve_notebook("02-audit-report").name == "02-audit-report.ipynb"
    assert nb_params.resolve_notebook(ok_notebook) == ok_notebook.resolve()
    with pytest.raises(ConfigurationError, match="no such notebook"):
        nb_params.resolve_notebook("nope")


# -- single runs --------------------------------------------------------------------------------


@pytest.mark.notebook
def test_run_notebook_folder_html_and_artifacts(ok_notebook, tmp_path):
    result = execute.run_notebook(ok_notebook, {"x": 5}, tmp_path / "reports")
    assert result.ok, result.error_message
    assert result.folder.parent == tmp_path / "reports"
    assert FOLDER_NAME.match(result.folder.name) and result.folder.name.endswith("-ok")
    assert result.executed_path == result.folder / "ok.ipynb"
    assert [p.name for p in result.artifacts] == ["result.json"]
    assert json.loads((result.folder / "result.json").read_text()) == {"x": 5, "name": "a"}
    html = result.html_path.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 1  # the chart, embedded
    assert "UNIQUE_SOURCE_MARKER" not in html  # inputs hidden
    assert "A test report" in html  # markdown kept
    executed = nbformat.read(result.executed_path, as_version=4)
    assert executed.metadata["papermill"]["parameters"] == {"x": 5}


@pytest.mark.notebook
def test_failure_names_the_cell_and_keeps_the_partial_notebook(bad_notebook, tmp_path):
    result = execute.run_notebook(bad_notebook, {"name": "zz"}, tmp_path, name="broken")
    assert result.status == execute.FAILED
    assert result.error_cell is not None
    assert "raise ValueError(f'boom {name}')" in result.error_message
    assert "ValueError: boom zz" in result.error_message
    assert re.search(r"cell \d+ \(In \[\d+\]\)", result.error_message)
    assert result.executed_path.exists() and result.html_path.exists()
    assert not (result.folder / "never.txt").exists()  # the run stopped at the failing cell
    nb = nbformat.read(result.executed_path, as_version=4)
    assert any(o.get("ename") == "ValueError" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.notebook
def test_credential_in_a_produced_file_fails_loudly_and_is_redacted(tmp_path, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("LEVER_API_KEY", secret)
    leaky = _notebook(tmp_path / "leaky.ipynb", "import os\nprint(os.environ['LEVER_API_KEY'])")
    with pytest.raises(secrets.SecretLeakError) as err:
        execute.run_notebook(leaky, {}, tmp_path / "out")
    assert secret not in str(err.value)
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()


def test_credential_as_a_parameter_value_is_refused(ok_notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("LEVER_API_KEY", "sk-test-0123456789abcdef")
    ok_notebook_with_str = _notebook(tmp_path / "s.ipynb", "pass", params='name: str = ""')
    with pytest.raises(ConfigurationError, match="contains the Lever credential"):
        execute.run_notebook(ok_notebook_with_str, {"name": "sk-test-0123456789abcdef"}, tmp_path)
    assert not list(tmp_path.glob("*-s"))  # refused before any folder or kernel


def test_resolve_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert nb_params.resolve_output_dir("") == tmp_path  # papermill's cwd: the run folder
    assert nb_params.resolve_output_dir(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.chdir(config.NOTEBOOKS_DIR)
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(nb_params, "_INTERACTIVE_DIR", None)
    first = nb_params.resolve_output_dir("")
    assert first.parent == tmp_path / "reports" and first.name.endswith("-interactive")
    assert nb_params.resolve_output_dir("") == first  # one folder per session


# -- batches ------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("runs: [\n", "YAML syntax error at line"),
        ("- a\n", "must be a mapping"),
        ("runs: []\n", "'runs' must be a non-empty list"),
        ("runs: [{name: a, notebook: audit}]\nextra: 1\n", "unknown key extra"),
        ("runs: [{name: a, notebook: audit, params: {}}]\n", "unknown key params"),
        ("runs: [{name: a b, notebook: audit}]\n", "must be letters, digits"),
        (
            "runs: [{name: a, notebook: audit}, {name: a, notebook: audit}]\n",
            "duplicate run name",
        ),
        ("runs: [{name: a, notebook: nope}]\n", "no such notebook"),
        ("runs: [{name: a, notebook: audit, parameters: {top: many}}]\n", "top must be"),
        ("runs: [{name: a, notebook: audit, parameters: {dry_run: true}}]\n", "no parameter"),
        ("parallel_audits: 0\nruns: [{name: a, notebook: audit}]\n", "parallel_audits"),
    ],
)
def test_load_batch_errors_are_one_line(tmp_path, text, fragment):
    path = _write(tmp_path / "runs.yaml", text)
    with pytest.raises(ConfigurationError) as err:
        batch.load_batch(path)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_batch_groups_consecutive_read_only_runs(tmp_path):
    spec = batch.load_batch(
        _write(
            tmp_path / "runs.yaml",
            "parallel_audits: 2\nruns:\n"
            "  - {name: a1, notebook: audit}\n  - {name: a2, notebook: explore}\n"
            "  - {name: r, notebook: remediate}\n  - {name: a3, notebook: audit}\n",
        )
    )
    groups = batch._groups(spec.runs, spec.parallel_audits)
    assert [[r.name for r in g] for g in groups] == [["a1", "a2"], ["r"], ["a3"]]
    assert [[r.name for r in g] for g in batch._groups(spec.runs, 1)] == [
        ["a1"],
        ["a2"],
        ["r"],
        ["a3"],
    ]


@pytest.mark.notebook
def test_batch_with_a_failing_run_goes_on_and_lists_every_run(
    ok_notebook, bad_notebook, tmp_path, capsys
):
    runs = _write(
        tmp_path / "runs.yaml",
        f"runs:\n  - {{name: first, notebook: {ok_notebook}, parameters: {{x: 3}}}}\n"
        f"  - {{name: broken, notebook: {bad_notebook}}}\n"
        f"  - {{name: last, notebook: {ok_notebook}}}\n",
    )
    code = main(["batch", str(runs), "--out-root", str(tmp_path / "out")])
    assert code == 1
    captured = capsys.readouterr()
    index = Path(captured.out.strip().splitlines()[-1])
    assert index.name == "index.html" and index.is_file()
    assert "1 of 3 runs failed: broken" in captured.err
    with (index.parent / "runs.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["name"], r["status"]) for r in rows] == [
        ("first", "succeeded"),
        ("broken", "failed"),
        ("last", "succeeded"),
    ]
    for row in rows:  # every link resolves
        assert (index.parent / row["html"]).is_file()
        assert (index.parent / row["notebook_out"]).is_file()
    page = index.read_text(encoding="utf-8")
    assert "3 runs, 1 failed" in page and "boom" in page
    assert page.count('class="failed"') == 1


def test_batch_command_bad_file_exits_2(tmp_path, capsys):
    code = main(["batch", str(_write(tmp_path / "r.yaml", "runs: [{nam: x}]\n"))])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("lever-tags: error: r.yaml: run 1: unknown key nam")
    assert len(err.strip().splitlines()) == 1


# -- the report command -------------------------------------------------------------------------


@pytest.mark.notebook
def test_report_command_prints_the_folder(ok_notebook, tmp_path, capsys):
    params = _write(tmp_path / "p.yaml", "x: 2\nname: from-file\n")
    code = main(
        ["report", str(ok_notebook), "-f", str(params), "-p", "x", "9", "--out-root",
         str(tmp_path / "out"), "--name", "nightly"]
    )  # fmt: skip
    assert code == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder.name.endswith("-nightly") and folder.is_dir()
    assert json.loads((folder / "result.json").read_text()) == {"x": 9, "name": "from-file"}


@pytest.mark.notebook
def test_report_command_failure_exit_1_names_the_cell(bad_notebook, tmp_path, capsys):
    code = main(["report", str(bad_notebook), "--out-root", str(tmp_path)])
    assert code == 1
    captured = capsys.readouterr()
    assert "failed at cell" in captured.err and "ValueError: boom a" in captured.err
    assert "partial notebook kept" in captured.err
    assert Path(captured.out.strip()).is_dir()


def test_report_command_bad_parameter_exit_2(ok_notebook, capsys):
    assert main(["report", str(ok_notebook), "-p", "x", "ten"]) == 2
    assert "x must be int, got str 'ten'" in capsys.readouterr().err
    assert main(["report", str(ok_notebook), "-p", "y", "1"]) == 2


def test_repeated_parameter_collects_a_list():
    import argparse

    from toolkit.commands.report import _collect

    args = argparse.Namespace(
        parameters_file=None,
        parameter=[["tags", "Python"], ["tags", "Go"], ["dry_run", "false"]],
    )
    assert _collect(args) == {"tags": ["Python", "Go"], "dry_run": "false"}


# -- notebook helpers ---------------------------------------------------------------------------


def test_make_plan_without_tags_is_empty_not_an_error(tmp_path):
    frame = frame_from_opportunities(
        [{"id": "o1", "contact": "c", "tags": ["a"]}, {"id": "o2", "contact": "c"}]
    )
    snap = save_snapshot(Snapshot(frame), tmp_path / "s.parquet")
    run = workflows.plan_changes(tmp_path / "plan.csv", snapshot_path=snap, allow_nothing=True)
    assert run.plan.rows.empty and run.plan.meta["note"] == "no tags chosen"


def test_project_plan_and_before_after_table():
    frame = pd.DataFrame(
        {"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"], "tags": [["a"], ["b"]]}
    )
    rows = pd.DataFrame(
        {"opportunity_id": ["o2", "o2"], "contact_id": ["c", "c"], "op": ["add", "remove"],
         "tag": ["a", "b"]}
    )  # fmt: skip
    assert outcome.project_plan(frame, rows)["tags"].tolist() == [["a"], ["a"]]
    assert frame["tags"].tolist() == [["a"], ["b"]]  # pure
    table = helpers.compare_summaries({"split_pairs": 2}, {"split_pairs": 0})
    assert table.to_dict("records") == [
        {"metric": "split_pairs", "before": 2, "after": 0, "change": -2}
    ]


def test_write_runs_csv_and_index_escape_html(tmp_path):
    res = execute.RunResult(
        name="r<1>", notebook=Path("x.ipynb"), folder=tmp_path / "r", status=execute.FAILED
    )
    res.error_message = "cell 3: <script>alert(1)</script>"
    page = batch.write_index_html([res], tmp_path / "index.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    batch.write_runs_csv([res], tmp_path / "runs.csv")
    assert "failed" in (tmp_path / "runs.csv").read_text()


# -- the credential scan: every form the key travels as -----------------------------------------

SCAN_KEY = "sk-test-0123456789abcdef"
_B64 = "c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg=="  # base64("sk-test-0123456789abcdef:")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("raw.txt", f"key is {SCAN_KEY}\n"),
        ("basic.log", f"send: b'GET /v1/opportunities HTTP/1.1\\r\\nAuthorization: Basic {_B64}'"),
        ("b64-only.txt", f"token={_B64}"),
        ("bearer.txt", f"Bearer {SCAN_KEY}"),
        ("headers.txt", f"{{'User-Agent': 'x', 'Authorization': 'Basic {_B64}'}}"),
        ("out.ipynb", f'{{"text": "{{\\"Authorization\\": \\"Basic {_B64}\\"}}"}}'),
        ("out.html", f"<pre>{{&#39;Authorization&#39;: &#39;Bearer {SCAN_KEY}&#39;}}</pre>"),
    ],
)
def test_scan_catches_the_key_in_every_form_and_redacts_it(tmp_path, name, text):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / name
    path.write_text(text, encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text("the Authorization header is never written; Basic auth is used", "utf-8")
    assert secrets.scan_for_secrets(tmp_path, [SCAN_KEY]) == [path]
    data = path.read_bytes()
    assert b"[redacted]" in data
    for needle in (SCAN_KEY.encode(), _B64.encode()):
        assert needle not in data
    assert secrets.scan_for_secrets(tmp_path, [SCAN_KEY]) == []  # redacted for good


@pytest.mark.parametrize(
    "text",
    [
        "{'Authorization': 'Basic c29tZS1vdGhlci1rZXk6'}",  # not this process's key
        "tag: Authorization: Bearer innocentlookingtag",  # a tag that looks like a header
    ],
)
def test_scan_matches_real_credentials_only_not_lookalikes(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert secrets.scan_for_secrets(tmp_path, [SCAN_KEY]) == []
    assert path.read_text(encoding="utf-8") == text


def test_scan_covers_the_redaction_salt(tmp_path, monkeypatch):
    monkeypatch.setenv("LEVER_REDACT_SALT", "team-secret-0f3a9c2e7b1d4a65")
    (tmp_path / "a.json").write_text('{"salt": "team-secret-0f3a9c2e7b1d4a65"}', "utf-8")
    assert secrets.scan_for_secrets(tmp_path) == [tmp_path / "a.json"]
    assert b"team-secret" not in (tmp_path / "a.json").read_bytes()


# -- remediation outcome: require_success -------------------------------------------------------


def _apply_result(**kw):
    from toolkit.remediate.result import ApplyResult

    defaults = {"dry_run": False, "journal_path": "j.sqlite", "planned_changes": 4}
    return ApplyResult(**{**defaults, **kw})


def _residual(*opps: str) -> pd.DataFrame:
    n = len(opps)
    return pd.DataFrame(
        {"opportunity_id": list(opps), "contact_id": ["c"] * n, "op": ["add"] * n,
         "tag": ["Go"] * n, "reason": ["missing"] * n}
    )  # fmt: skip


def test_require_success_passes_a_dry_run_and_a_clean_apply():
    assert outcome.require_success(_apply_result(dry_run=True, failed=3), _residual("o1"))
    assert "4 changes applied" in outcome.require_success(_apply_result(applied=4), _residual())


def test_require_success_raises_on_failed_writes_naming_the_first_error():
    outcomes = pd.DataFrame(
        {"state": ["failed", "failed"], "message": ["perform_as: unknown user bogus", "x"]}
    )
    result = _apply_result(failed=4, outcomes=outcomes)
    with pytest.raises(outcome.RemediationFailedError) as err:
        outcome.require_success(result, _residual())
    assert "4 of 4 changes failed (first: perform_as: unknown user bogus)" in str(err.value)
    assert "remediation.json" in str(err.value)


def test_require_success_raises_on_rows_that_do_not_hold_except_drift_drops():
    # verify's one rule: rows the apply's journal left out on purpose keep their reason and
    # do not fail the run; every other row does (as `lever-tags verify` decides)
    ok = _apply_result(applied=3)
    on_purpose = _residual("o1").assign(reason="dropped (drift)")
    assert outcome.require_success(ok, on_purpose)
    with pytest.raises(outcome.RemediationFailedError, match="1 plan rows do not hold"):
        outcome.require_success(ok, pd.concat([on_purpose, _residual("o2")]))
    for counts in ({"not_found": 1}, {"pending": 2}):
        with pytest.raises(outcome.RemediationFailedError):
            outcome.require_success(_apply_result(**counts), _residual())


# -- headless runs: no names unless asked for ---------------------------------------------------


def test_headless_explore_is_redacted_unless_the_caller_chose():
    explore = nb_params.resolve_notebook("explore")
    assert execute.headless_defaults(explore, {}) == {"redact": True}
    assert execute.headless_defaults(explore, {"tags": ["Go"]}) == {"tags": ["Go"], "redact": True}
    assert execute.headless_defaults(explore, {"with_personal": True}) == {"with_personal": True}
    assert execute.headless_defaults(explore, {"redact": False}) == {"redact": False}
    audit = nb_params.resolve_notebook("audit")  # names off by default already
    assert execute.headless_defaults(audit, {}) == {}
    assert execute.HEADLESS_KERNEL_ENV == {
        "LEVER_TOOLKIT_PROGRESS": "0",
        "LEVER_TOOLKIT_RUN": "report",
    }


def test_require_success_names_the_command_that_resumes_this_run(tmp_path):
    from types import SimpleNamespace

    folder = tmp_path / "20250601T020000Z-03-remediate"
    plan = SimpleNamespace(path=folder / "plan.csv")
    outcomes = pd.DataFrame({"state": ["failed"], "message": ["perform_as: unknown user bogus"]})
    result = _apply_result(
        failed=4, outcomes=outcomes, max_changes=1000, journal_path=str(folder / "journal.sqlite")
    )
    with pytest.raises(outcome.RemediationFailedError) as err:
        outcome.require_success(result, _residual(), plan)
    expected = (
        f"lever-tags apply {folder}/plan.csv --yes --journal {folder}/journal.sqlite "
        "--max-changes 1000 --retry-failed"
    )
    assert expected in str(err.value)
    assert "--perform-as" in str(err.value)
    assert "rerunning with the same journal_path resumes" not in str(err.value)
    # pending changes only (a killed run): a plain resume, refused calls need no retry
    pending = _apply_result(pending=2, journal_path=str(folder / "journal.sqlite"))
    assert outcome.resume_command(pending, plan).endswith("journal.sqlite")


# -- report/batch paths: from the caller's folder, checked before any kernel ---------------------


def _fake_run(monkeypatch, tmp_path):
    """Replace run_notebook by a recorder: these tests are about what the command passes it."""
    calls: list[dict] = []

    def fake(notebook, parameters, out_root=None, name=None, **kw):
        calls.append(dict(parameters))
        return execute.RunResult(name="x", notebook=Path(notebook), folder=tmp_path)

    monkeypatch.setattr(execute, "run_notebook", fake)
    return calls


def test_report_relative_paths_are_taken_from_the_current_folder(tmp_path, monkeypatch, capsys):
    calls = _fake_run(monkeypatch, tmp_path)
    (tmp_path / "pol.yaml").write_text("version: 1\ncontact_level: [Go]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEVER_API_KEY", "a-test-key")  # remediate reads Lever: checked up front
    code = main(
        ["report", "remediate", "-p", "policy_path", "pol.yaml", "-p", "journal_path",
         "runs/j.sqlite", "-p", "output_dir", "out", "-p", "dry_run", "true"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert calls == [
        {
            "policy_path": str(tmp_path / "pol.yaml"),
            "journal_path": str(tmp_path / "runs" / "j.sqlite"),
            "output_dir": str(tmp_path / "out"),
            "dry_run": "true",
        }
    ]


def test_report_missing_input_file_exit_2_before_any_kernel(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    for name in ("policy_path", "snapshot_path"):
        code = main(["report", "audit", "-p", name, "nope.file", "--out-root", str(out)])
        err = capsys.readouterr().err
        assert code == 2
        assert err == f"lever-tags: error: {name}: no such file {tmp_path / 'nope.file'}\n"
    assert not out.exists()  # nothing written, no kernel started


def test_batch_paths_are_taken_from_the_batch_files_folder(tmp_path, monkeypatch, capsys):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "pol.yaml").write_text("version: 1\ncontact_level: [Go]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the batch file's folder
    runs = _write(
        jobs / "runs.yaml",
        "runs:\n  - name: fix\n    notebook: remediate\n"
        "    parameters: {policy_path: pol.yaml, journal_path: j.sqlite}\n",
    )
    spec = batch.load_batch(runs)
    assert spec.runs[0].parameters == {
        "policy_path": str(jobs / "pol.yaml"),
        "journal_path": str(jobs / "j.sqlite"),
    }
    # one rule: a path that exists only from the project root is not looked for there
    old_style = _write(
        jobs / "old.yaml",
        "runs:\n  - name: old-style\n    notebook: remediate\n"
        "    parameters: {policy_path: notebooks/demo-policy.yaml}\n",
    )
    with pytest.raises(ConfigurationError, match="policy_path: no such file"):
        batch.load_batch(old_style)
    missing = _write(
        jobs / "bad.yaml",
        "runs:\n  - {name: fix, notebook: remediate, parameters: {snapshot_path: s.parquet}}\n",
    )
    out = tmp_path / "out"
    assert main(["batch", str(missing), "--out-root", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"lever-tags: error: bad.yaml: run 1 (fix): snapshot_path: no such file "
        f"{jobs / 's.parquet'}\n"
    )
    assert not out.exists()


def test_out_root_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    plan = tmp_path / "plan.csv"
    plan.write_text("x\n", encoding="utf-8")
    runs = _write(tmp_path / "runs.yaml", "runs: [{name: a, notebook: audit}]\n")
    for argv in (["report", "audit"], ["batch", str(runs)]):
        for root in (plan, plan / "sub"):
            assert main([*argv, "--out-root", str(root)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"lever-tags: error: --out-root {root} is not a folder")
            assert len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigurationError, match="not a folder"):  # the library says it too
        execute.run_notebook("audit", {}, plan)


def test_parallel_audits_default_to_one_as_in_the_example_batch(tmp_path):
    # one key, one rate limit: parallel audits that fetch only meet 429s (docs/usage.md)
    example = batch.load_batch(config.NOTEBOOKS_DIR / "example-runs.yaml")
    assert example.parallel_audits == 1
    assert batch.BatchSpec(runs=[]).parallel_audits == 1
    spec = batch.load_batch(_write(tmp_path / "r.yaml", "runs: [{name: a, notebook: audit}]\n"))
    assert spec.parallel_audits == 1
    assert batch._groups(spec.runs * 2, spec.parallel_audits) == [spec.runs, spec.runs]
