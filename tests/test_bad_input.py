"""Bad input, each refused with one clear line, exit code 2, and nothing written (issue 7).

"Nothing written" is checked twice: the sandbox saw no tag write, and the command left no
output file behind (no report folder, no plan, no journal).
"""

from __future__ import annotations

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from toolkit.cli import main

NO_KEY = "no Lever credential"


@pytest.fixture
def env(monkeypatch, sandbox, tmp_path, point_at):
    point_at(sandbox)
    monkeypatch.chdir(tmp_path)
    sandbox.reset_stats()
    return sandbox


def _refused(capsys, argv, *fragments: str, forbidden: tuple[str, ...] = ()) -> str:
    before = {p for p in Path.cwd().rglob("*")}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lever-tags: error:"), err
    assert "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    for secret in forbidden:
        assert secret not in err
    created = {p for p in Path.cwd().rglob("*")} - before
    assert not created, f"left behind: {sorted(str(p) for p in created)}"
    return err


def _writes(sb) -> int:
    return sb.stats()["writes"]


# -- credentials and base URL -----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--out", "report"],
        ["snapshot", "--out", "s.parquet"],
        ["plan", "--tag", "Python", "--out", "plan.csv"],
        ["verify", "given.csv"],
    ],
    ids=["audit", "snapshot", "plan", "verify"],
)
def test_no_key(env, monkeypatch, capsys, argv):
    monkeypatch.delenv("LEVER_API_KEY")
    Path("given.csv").write_text("opportunity_id,contact_id,op,tag\no1,c1,add,x\n")
    _refused(capsys, argv, NO_KEY, "LEVER_API_KEY")


def test_key_and_token_together(env, monkeypatch, capsys):
    monkeypatch.setenv("LEVER_ACCESS_TOKEN", "tok")
    _refused(capsys, ["audit", "--out", "r"], "unset one of them")


def test_wrong_key(env, monkeypatch, capsys):
    monkeypatch.setenv("LEVER_API_KEY", "not-the-key-7c1d")
    _refused(capsys, ["audit", "--out", "r"], "401", "LEVER_API_KEY", forbidden=("7c1d",))


def test_unreachable_base_url(env, monkeypatch, capsys):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("LEVER_BASE_URL", f"http://127.0.0.1:{port}/v1")
    _refused(capsys, ["audit", "--out", "r"], "cannot reach", f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/v1", "https://", "api.lever.co/v1", "http://api.lever.co/v1"]
)
def test_malformed_base_url(env, monkeypatch, capsys, url):
    monkeypatch.setenv("LEVER_BASE_URL", url)
    _refused(capsys, ["audit", "--out", "r"], "LEVER_BASE_URL")


def test_base_url_with_credentials_is_refused_without_echoing_them(env, monkeypatch, capsys):
    monkeypatch.setenv("LEVER_BASE_URL", "http://secret-user:pw@127.0.0.1:1/v1")
    _refused(capsys, ["audit", "--out", "r"], forbidden=("secret-user", "pw@"))


class _NotLever(BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, str, bytes]]] = {
        "/html/v1/opportunities": (200, "text/html", b"<html><body>Welcome</body></html>"),
        "/json/v1/opportunities": (200, "application/json", b'{"status": "ok"}'),
        "/list/v1/opportunities": (200, "application/json", b"[1, 2, 3]"),
        "/missing/v1/opportunities": (404, "text/html", b"<h1>Not Found</h1>"),
    }

    def do_GET(self):
        status, kind, body = self.answers.get(self.path.split("?")[0], (404, "text/html", b""))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def not_lever():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotLever)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("prefix", "fragment"),
    [
        ("html", "text/html, not Lever's JSON"),
        ("json", "no 'data' array"),
        ("list", "not a Lever object"),
        ("missing", "text/html, not Lever's JSON"),
    ],
)
def test_a_base_url_that_is_not_lever(env, monkeypatch, capsys, not_lever, prefix, fragment):
    monkeypatch.setenv("LEVER_BASE_URL", f"{not_lever}/{prefix}/v1")
    _refused(capsys, ["audit", "--out", "r"], fragment, "LEVER_BASE_URL")


# -- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("contact_level: [Python\nnever_touch: x\n", ("policy.yaml", "line")),
        ("contact_levels: [Python]\n", ("contact_levels", "contact_level")),
        ("contact_level: Python\n", ("contact_level", "list")),
        ("- just\n- a list\n", ("policy.yaml", "mapping")),
        ("include_archived: maybe\n", ("include_archived",)),
    ],
    ids=["yaml-syntax", "unknown-key", "not-a-list", "not-a-mapping", "not-a-bool"],
)
@pytest.mark.parametrize("command", ["audit", "plan"])
def test_bad_policy_files(env, capsys, text, fragments, command):
    Path("policy.yaml").write_text(text)
    out = ["--out", "report"] if command == "audit" else ["--out", "plan.csv"]
    _refused(capsys, [command, "--policy", "policy.yaml", *out], *fragments)
    assert _writes(env) == 0


def test_missing_policy_file(env, capsys):
    _refused(capsys, ["audit", "--policy", "nope.yaml", "--out", "r"], "nope.yaml")


def test_bad_snapshot_file(env, capsys):
    Path("snap.parquet").write_text("not parquet at all")
    _refused(capsys, ["audit", "--snapshot", "snap.parquet", "--out", "r"], "snap.parquet")


def test_out_is_a_file(env, capsys):
    Path("taken").write_text("x")
    _refused(capsys, ["audit", "--out", "taken"], "taken")


@pytest.fixture
def saved_plan(env, capsys):
    """A real plan for one tag, made from the session sandbox (not applied)."""
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    capsys.readouterr()
    return Path("plan.csv")


def _edit_plan(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda lines: [lines[0].replace("op,", ""), *lines[1:]], "missing column"),
        (lambda lines: [*lines, lines[1].replace(",add,", ",merge,")], "unknown op"),
        (lambda lines: [*lines, lines[1]], "duplicate row"),
        (lambda lines: [*lines, "00000000-dead-beef,c0,add,Python"], "do not exist"),
        (lambda lines: [lines[0]] + [line + ",extra" for line in lines[1:2]], "fields"),
    ],
    ids=["missing-column", "unknown-op", "duplicate", "unknown-id", "ragged"],
)
@pytest.mark.parametrize("yes", [False, True], ids=["dry-run", "yes"])
def test_bad_plan_csv(env, capsys, saved_plan, edit, fragment, yes):
    _edit_plan(saved_plan, edit)
    argv = ["apply", "plan.csv", "--journal", "run.sqlite"] + (["--yes"] if yes else [])
    _refused(capsys, argv, fragment)
    assert _writes(env) == 0 and not Path("run.sqlite").exists()


def test_hand_written_plan_with_ids_that_do_not_exist(env, capsys):
    real = env.opportunities()[0]
    Path("mine.csv").write_text(
        "opportunity_id,contact_id,op,tag\n"
        f"{real['id']},{real.get('contact') or ''},add,Python\n"
        "11111111-2222-3333-4444-555555555555,c9,add,Python\n"
    )
    _refused(capsys, ["apply", "mine.csv", "--yes", "--journal", "j.sqlite"], "do not exist")
    assert _writes(env) == 0 and not Path("j.sqlite").exists()


def test_more_changes_than_max_changes(env, capsys, saved_plan):
    rows = len(saved_plan.read_text().splitlines()) - 1
    argv = ["apply", "plan.csv", "--yes", "--journal", "j.sqlite", "--max-changes", str(rows - 1)]
    _refused(capsys, argv, "--max-changes", "nothing was written")
    assert _writes(env) == 0 and not Path("j.sqlite").exists()


@pytest.mark.parametrize(
    "argv, last_line",
    [
        (
            ["sandbox", "--port", "70000"],
            "lever-tags: error: --port must be between 0 and 65535 (got 70000)",
        ),
        (["sandbox", "--fail-rate", "2"], "lever-tags: error: --fail-rate must be between 0 and 1"),
        (["audit"], "lever-tags audit: error: the following arguments are required: --out"),
        (["apply"], "lever-tags apply: error: the following arguments are required: PLAN"),
        (
            ["plan", "--mode", "merge", "--tag", "x", "--out", "p.csv"],
            "lever-tags plan: error: argument --mode: invalid choice: 'merge'",
        ),
        (["nonsense"], "lever-tags: error: argument COMMAND: invalid choice: 'nonsense'"),
    ],
    ids=["port", "fail-rate", "audit-no-out", "apply-no-plan", "unknown-mode", "unknown-command"],
)
def test_bad_arguments(env, capsys, argv, last_line):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(last_line), err  # the line that names what is wrong
    assert not list(Path.cwd().iterdir())


def test_a_refused_run_prints_no_key_even_verbose(env, monkeypatch, capsys):
    key = env.api_key
    basic = base64.b64encode(f"{key}:".encode()).decode()
    monkeypatch.setenv("LEVER_BASE_URL", env.base_url.replace("/v1", "/nope"))
    err = _refused(capsys, ["-v", "audit", "--out", "r"], "LEVER_BASE_URL")
    assert key not in err and basic not in err


@pytest.mark.parametrize("command", ["snapshot", "plan"])
def test_out_is_a_folder(env, capsys, command):
    Path("taken").mkdir()
    extra = ["--tag", "Python"] if command == "plan" else []
    before = env.stats()["requests"]
    _refused(capsys, [command, *extra, "--out", "taken"], "is a folder")
    assert env.stats()["requests"] == before  # refused before fetching anything


def test_a_tag_that_the_account_does_not_use_is_warned_about(env, capsys):
    assert main(["plan", "--tag", "Pythn", "--out", "plan.csv"]) == 0
    err = capsys.readouterr().err
    assert "tag 'Pythn' is not used in this account; close matches: 'Python'" in err
