"""Hostile data (issue 10): every report, CSV, journal and widget safe to open and share.

A sandbox seeded with `hostile_dataset` (`lever-tags sandbox --hostile`) plants script, markup,
spreadsheet formulas, mathtext, template syntax, terminal escapes and a tag that looks like a
credential header on some but not all opportunities of several contacts. Every notebook runs
through `lever-tags report` (with and without names) and `lever-tags batch`; plan, apply,
verify and rollback run with hostile tags. The produced files are then checked as text, as
parsed HTML and, when Chromium is installed, in a headless browser.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import re
import sqlite3
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from bs4 import BeautifulSoup

from lever_sandbox import Sandbox
from lever_sandbox.data import HOSTILE_EMAILS, HOSTILE_NAMES, HOSTILE_TAGS, hostile_dataset
from toolkit import errors, workflows
from toolkit.cli import main
from toolkit.errors import BadRequestError
from toolkit.notebook import execute, secrets
from toolkit.notebook import params as nb_params
from toolkit.notebook.explorer import TagExplorer
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import JournalError
from toolkit.remediate.plan import PLAN_COLUMNS
from toolkit.remediate.planfile import load_plan
from toolkit.sanitize import (
    FORMULA_STARTS,
    MAX_TAG_LENGTH,
    csv_cell,
    csv_safe_frame,
    csv_uncell,
    tag_problem,
)
from toolkit.scrub import scrub, secret_forms

BEARER_TAG = "Authorization: Bearer innocentlookingtag"
# The hostile tags Lever would accept from the toolkit (no control characters).
PLANNABLE = [t for t in HOSTILE_TAGS if tag_problem(t) is None]
RAW_PAYLOADS = ("<script>alert", "<img src=x onerror", "<svg onload")
OPPORTUNITY_LINK = re.compile(r'<a href="https?://[^"/<>\s]+/candidates/[0-9a-zA-Z%._~-]+"')
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""",
    re.IGNORECASE,
)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def umask_022():
    old = os.umask(0o022)  # the usual umask: files would be 0644 unless made private
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def hostile_sb(umask_022):
    sb = Sandbox(dataset=hostile_dataset(seed=7, contacts=200), rate=1000, burst=1000)
    sb.start()
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sb.env().items():
            mp.setenv(key, value)
        mp.delenv("LEVER_ACCESS_TOKEN", raising=False)
        mp.delenv("LEVER_REDACT_SALT", raising=False)
        yield sb
    sb.stop()


@pytest.fixture(scope="module")
def runs(hostile_sb, tmp_path_factory):
    """Every notebook through `lever-tags report` and `lever-tags batch`, on hostile data."""
    root = tmp_path_factory.mktemp("hostile-runs")
    params = root / "explore.yaml"
    params.write_text(yaml.safe_dump({"tags": PLANNABLE[:6], "min_opportunities": 2}))
    out = root / "out"
    codes = {
        "explore-names": main(
            ["report", "explore", "-f", str(params), "-p", "with_personal", "true",
             "--name", "explore-names", "--out-root", str(out)]
        ),
        "explore-redacted": main(
            ["report", "explore", "-f", str(params), "--name", "explore-redacted",
             "--out-root", str(out)]
        ),
    }  # fmt: skip
    batch = root / "runs.yaml"
    batch.write_text(
        yaml.safe_dump(
            {
                "runs": [
                    {"name": "audit-names", "notebook": "audit",
                     "parameters": {"with_personal": True, "top": 40}},
                    {"name": "audit-plain", "notebook": "audit", "parameters": {"top": 40}},
                    {"name": "remediate-bearer", "notebook": "remediate",
                     "parameters": {"tags": [BEARER_TAG, HOSTILE_TAGS[0], HOSTILE_TAGS[3]],
                                    "dry_run": False}},
                ]
            }
        )
    )  # fmt: skip
    codes["batch"] = main(["batch", str(batch), "--out-root", str(out)])
    return out, codes


def _files(root: Path, suffix: str) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{suffix}") if p.is_file())


def _run_folder(out: Path, name: str) -> Path:
    (folder,) = [p for p in out.rglob(f"*-{name}") if p.is_dir()]
    return folder


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _unsafe_html(markup: str) -> list[str]:
    """What in `markup` could run or load: script elements, on* handlers, javascript: links,
    external references. Empty when safe."""
    soup = BeautifulSoup(markup, "html.parser")
    found = [f"<script> {s.get('src', '')}" for s in soup.find_all("script")]
    for el in soup.find_all(True):
        for attr, value in el.attrs.items():
            if attr.lower().startswith("on"):
                found.append(f"<{el.name} {attr}>")
            if attr.lower() in ("href", "src") and "javascript:" in str(value).lower():
                found.append(f"<{el.name} {attr}=javascript:>")
        if el.name in ("iframe", "object", "embed", "base", "svg", "math"):
            found.append(f"<{el.name}>")
    found += [f"raw {p!r}" for p in RAW_PAYLOADS if p in markup]
    # A link that opens an opportunity in Lever ("people to check") loads nothing: allowed.
    loads = OPPORTUNITY_LINK.sub("<a", markup)
    found += [f"external {m.group()!r}" for m in EXTERNAL.finditer(loads)]
    return found


# -- the seed -------------------------------------------------------------------------------------


def test_hostile_seed_plants_split_strings_everywhere():
    ds = hostile_dataset(seed=7, contacts=200)
    by_contact: dict[str, list[list[str]]] = {}
    for opp in ds.opportunities:
        by_contact.setdefault(opp.get("contact") or "", []).append(opp["tags"])
    for tag in HOSTILE_TAGS:
        split = [c for c, tags in by_contact.items() if c and 0 < sum(tag in t for t in tags) <
                 len(tags)]  # fmt: skip
        assert len(split) >= 3, tag
    names = {o["name"] for o in ds.opportunities}
    emails = {e for o in ds.opportunities for e in o["emails"]}
    assert set(HOSTILE_NAMES) <= names and set(HOSTILE_EMAILS) <= emails
    assert hostile_dataset(seed=7, contacts=200).to_dict() == ds.to_dict()  # deterministic


# -- reports: HTML, executed notebooks, CSVs, modes -----------------------------------------------


def test_every_run_succeeds_on_hostile_data(runs):
    out, codes = runs
    assert codes == {"explore-names": 0, "explore-redacted": 0, "batch": 0}, codes
    (runs_csv,) = _files(out, "runs.csv")
    with runs_csv.open(encoding="utf-8") as handle:
        assert {r["status"] for r in csv.DictReader(handle)} == {"succeeded"}


def test_no_html_report_or_index_holds_an_executable_payload(runs):
    out, _ = runs
    pages = _files(out, ".html")
    assert len(pages) == 6  # 2 explore, 2 audit, 1 remediate, the batch index
    text = {p: p.read_text(encoding="utf-8") for p in pages}
    for page, markup in text.items():
        assert _unsafe_html(markup) == [], page
        assert 'http-equiv="Content-Security-Policy"' in markup, page
        assert "script-src 'none'" in markup, page
        assert "&lt;table" not in markup and "&lt;style" not in markup, page  # tables intact
    everything = "\n".join(text.values())
    for name in ("explore-names", "audit-names"):  # the payloads are there, as text
        page = text[next(p for p in pages if f"-{name}" in str(p.parent))]
        assert html.escape(HOSTILE_TAGS[1], quote=False) in page or (
            html.escape(HOSTILE_TAGS[1]) in page
        ), name
    assert html.escape(HOSTILE_NAMES[0], quote=False) in everything  # a name, escaped
    explore = text[next(p for p in pages if "-explore-names" in str(p.parent))]
    grid = BeautifulSoup(explore, "html.parser").select_one("table.tag-coverage")
    assert grid is not None and grid.select("thead th") and grid.select("tbody td")
    assert "cdnjs" not in everything and "require.js" not in everything
    assert "mathjax" not in everything.lower()


def test_no_executed_notebook_output_holds_an_executable_payload(runs):
    out, _ = runs
    notebooks = _files(out, ".ipynb")
    assert len(notebooks) == 5
    seen_payload = False
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                markup = output.get("data", {}).get("text/html")
                if markup is None:
                    continue
                markup = "".join(markup) if isinstance(markup, list) else markup
                assert _unsafe_html(markup) == [], (path.name, markup[:300])
                seen_payload |= "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert seen_payload  # the hostile tags reached the outputs, escaped


def test_every_csv_for_people_is_formula_safe_and_reads_back_exactly(runs):
    out, _ = runs
    sheets = _files(out, ".csv")
    names = {p.name for p in sheets}
    assert {"split_pairs.csv", "missing_assignments.csv", "tag_statistics.csv", "plan.csv",
            "outcomes.csv", "runs.csv"} <= names  # fmt: skip
    for sheet in sheets:
        with sheet.open(encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.reader(handle), 1):
                for cell in row:
                    if _is_number(cell):
                        continue  # a number (-0.5) is a value, not a formula
                    assert not cell.startswith(FORMULA_STARTS), (sheet.name, line, cell)
    split = _run_folder(out, "audit-names") / "split_pairs.csv"
    with split.open(encoding="utf-8", newline="") as handle:
        tags = {csv_uncell(r["tag"]) for r in csv.DictReader(handle)}
    assert set(HOSTILE_TAGS) <= tags  # every hostile tag, exact after csv_uncell


def test_every_produced_file_is_private_under_umask_022(runs):
    out, _ = runs
    assert os.umask(0o022) == 0o022  # still the usual umask
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_a_remediation_of_the_bearer_tag_keeps_its_journal_and_plan_intact(runs, hostile_sb):
    out, _ = runs
    folder = _run_folder(out, "remediate-bearer")
    journal = folder / "journal.sqlite"
    with sqlite3.connect(journal) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert BEARER_TAG.encode() in journal.read_bytes()  # data, not a "leak": never rewritten
    plan = load_plan(folder / "plan.csv")
    assert BEARER_TAG in set(plan.rows["tag"]) and b"[redacted]" not in journal.read_bytes()
    remediation = json.loads((folder / "remediation.json").read_text())
    assert remediation["succeeded"] and remediation["apply"]["applied"] > 0
    holders = [o for o in hostile_sb.opportunities() if BEARER_TAG in o["tags"]]
    assert len(holders) > 3  # propagated


# -- in a browser ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_payload_fires_in_headless_chromium(runs, hostile_sb, tmp_path, browser):
    """Every report (as produced, and again with its CSP removed, so the escaping alone is what
    holds) and the explorer's widget HTML (set as innerHTML, as `widgets.HTML` does), in the
    session's Chromium (tests/conftest.py: one-line skip without it, a failure under CI=true)."""
    out, _ = runs
    pages = _files(out, ".html")
    csp = re.compile(r"<meta[^>]*Content-Security-Policy[^>]*>", re.IGNORECASE)
    bare = []
    for i, page in enumerate(pages):
        copy = tmp_path / f"bare-{i}.html"
        copy.write_text(csp.sub("", page.read_text(encoding="utf-8")), encoding="utf-8")
        bare.append(copy)
    snap = workflows.open_snapshot(personal="names")
    explorer = TagExplorer(snap.frame, tags=PLANNABLE[:6])
    explorer.search.value = ""
    widget_html = [explorer.grid_view.value, explorer.stats_view.value, explorer.plan_view.value,
                   explorer.status.value]  # fmt: skip
    assert "&lt;img src=x onerror=alert(12)&gt;" in explorer.grid_view.value  # a name, escaped
    fired: list[str] = []
    requests_out: list[str] = []
    context = browser.new_context()
    try:
        context.route(
            re.compile(r"^(?!file:|data:|about:).*"),
            lambda route: (requests_out.append(route.request.url), route.abort()),
        )
        tab = context.new_page()
        tab.on("dialog", lambda d: (fired.append(d.message), d.dismiss()))
        for page in [*pages, *bare]:
            tab.goto(page.as_uri(), wait_until="load")
            tab.wait_for_timeout(150)  # let onerror/onload handlers run, if any were there
            assert tab.evaluate("document.querySelectorAll('script').length") == 0, page
        tab.set_content("<div id='w'></div>")
        for markup in widget_html:
            tab.evaluate("m => { document.getElementById('w').innerHTML = m; }", markup)
            tab.wait_for_timeout(150)
        assert tab.evaluate("document.querySelectorAll('#w img[onerror]').length") == 0
        payloads_fired = list(fired)
        # the control: the same harness does see a payload that is not escaped
        tab.evaluate("m => { document.getElementById('w').innerHTML = m; }",
                     "<img src=x onerror=\"alert('control')\">")  # fmt: skip
        tab.wait_for_timeout(300)
    finally:
        context.close()
    assert payloads_fired == [], f"payloads fired: {payloads_fired}"
    assert fired == ["control"]
    assert requests_out == [], f"a report loaded something from elsewhere: {requests_out[:3]}"


# -- plan, apply, verify, rollback with hostile tags ----------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path, umask_022, point_at):
    sb = Sandbox(dataset=hostile_dataset(seed=11, contacts=200), rate=1000, burst=1000).start()
    point_at(sb)
    monkeypatch.chdir(tmp_path)
    yield sb
    sb.stop()


def _tag_sets(sb: Sandbox) -> dict[str, list[str]]:
    return {o["id"]: list(o.get("tags") or []) for o in sb.opportunities()}


def test_hostile_tags_plan_apply_verify_rollback_round_trip(cli_env, capsys):
    sb = cli_env
    before = _tag_sets(sb)
    argv = ["plan", "--out", "plan.csv"]
    for tag in PLANNABLE:
        argv += ["--tag", tag]
    assert main(argv) == 0
    rows = load_plan("plan.csv").rows
    assert set(rows["tag"]) == set(PLANNABLE)  # exact, after the CSV escaping
    with open("plan.csv", encoding="utf-8", newline="") as handle:
        cells = [c for row in csv.reader(handle) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    assert "'=HYPERLINK(" in "".join(cells)  # escaped for people, read back exactly above
    capsys.readouterr()
    assert main(["apply", "plan.csv"]) == 0  # dry run, tags printed in the table
    assert "\x1b" not in capsys.readouterr().out
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 0
    assert f"apply: {len(rows)} applied, 0 failed" in capsys.readouterr().out
    assert main(["verify", "plan.csv"]) == 0
    after = _tag_sets(sb)
    for opp, op, tag in zip(rows["opportunity_id"], rows["op"], rows["tag"], strict=True):
        assert op == "add" and tag in after[opp]  # byte for byte in "Lever"
    with sqlite3.connect("j.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert stat.S_IMODE(os.stat("j.sqlite").st_mode) == 0o600
    assert secrets.scan_for_secrets(Path.cwd()) == []  # the Bearer tag is data
    assert main(["rollback", "--journal", "j.sqlite", "--yes"]) == 0
    assert _tag_sets(sb) == before  # exactly, order included
    with sqlite3.connect("j.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("a\x00b", "control character U+0000"),
        ("two\nlines", "control character U+000A"),
        ("\x1b[31mred\x1b[0m", "control character U+001B"),
        ("   ", "empty tag"),
        ("x" * 100_000, "100,000 characters"),
        ("y" * 200_000, "200,000 characters"),  # beyond csv's default field limit (131,072)
    ],
)
def test_bad_plan_tags_are_refused_before_any_write(cli_env, capsys, tag, why):
    sb = cli_env
    before = _tag_sets(sb)
    opp = next(o for o in sb.opportunities() if o.get("contact"))
    with open("plan.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLAN_COLUMNS)
        writer.writerow([opp["id"], opp["contact"], "add", "Python"])
        writer.writerow([opp["id"], opp["contact"], "add", tag])
    sb.reset_stats()
    capsys.readouterr()
    assert main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lever-tags: error:") and err.count("\n") == 1 and why in err
    assert len(err) < 600 and "\x1b" not in err and "\x00" not in err
    assert sb.stats()["writes"] == 0 and _tag_sets(sb) == before
    assert not Path("j.sqlite").exists()
    if tag.strip():
        assert main(["plan", "--tag", tag, "--out", "p2.csv"]) == 2
        assert not Path("p2.csv").exists()


def test_plan_csv_escaping_round_trips_every_tricky_start():
    tricky = ["=1", "+1", "-1", "@a", "\t=1", "'", "'=1", "''=1", "'x", "''", "-", "=", "ok"]
    for value in tricky:
        assert csv_uncell(csv_cell(value)) == value
        assert not csv_cell(value).startswith(FORMULA_STARTS)
    assert MAX_TAG_LENGTH == 255


@pytest.mark.parametrize("dtype", ["category", "string", "object"])
def test_csv_safe_frame_escapes_every_tricky_start_and_leaves_the_input_alone(dtype):
    import numpy as np
    import pandas as pd

    tricky = ["=1", "+1", "-1", "@a", "\t=1", "'", "'=1", "''=1", "'x", "''", "-", "=", "ok"]
    frame = pd.DataFrame({"tag": tricky, "n": range(-1, len(tricky) - 1)}).astype({"tag": dtype})
    before = frame.copy()
    safe = csv_safe_frame(frame)
    assert safe["tag"].astype(object).tolist() == [csv_cell(v) for v in tricky]
    assert safe["n"].tolist() == frame["n"].tolist()  # a negative number is a number
    pd.testing.assert_frame_equal(frame, before)  # the input is not changed
    # a categorical with nothing to escape (a million ids) is passed through, not copied
    ids = pd.DataFrame({"id": pd.Categorical(["b", "a", "b"])})
    passed = csv_safe_frame(ids)["id"]
    assert np.shares_memory(passed.array.codes, ids["id"].array.codes)


# -- secrets: scrubbed where they enter -----------------------------------------------------------

KEY = "sk-live-hostile-0123456789abcdef"


class _EchoHandler(BaseHTTPRequestHandler):
    """A 'Lever' that lists one opportunity and answers every write with a 400 quoting the
    request's Authorization header (and the key inside it) back."""

    opp: ClassVar[dict] = {
        "id": "opp-1",
        "contact": "c-1",
        "tags": ["Python"],
        "archived": None,
        "isAnonymized": False,
        "createdAt": 1,
        "updatedAt": 2,
        "confidentiality": "non-confidential",
        "name": "Ada",
        "emails": [],
    }

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _echo(self) -> None:
        auth = self.headers.get("Authorization", "")
        decoded = ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode()
        message = f"bad header {auth!r} ({decoded}); headers: {dict(self.headers)}"
        self._send(400, {"code": "BadRequest", "message": message})

    def do_GET(self):
        if self.path.startswith("/v1/opportunities/"):
            self._send(200, {"data": self.opp})
        elif self.path.startswith("/v1/opportunities"):
            self._send(200, {"data": [self.opp], "hasNext": False})
        else:
            self._echo()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._echo()


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("variable", ["LEVER_API_KEY", "LEVER_ACCESS_TOKEN"])
def test_a_server_echoing_the_authorization_header_never_leaks_the_key(
    echo_server, monkeypatch, tmp_path, capsys, variable
):
    from toolkit.client import LeverClient

    monkeypatch.delenv("LEVER_API_KEY", raising=False)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv(variable, KEY)
    monkeypatch.setenv("LEVER_BASE_URL", echo_server)
    monkeypatch.chdir(tmp_path)
    forms = secret_forms(KEY)
    client = LeverClient.from_env(max_attempts=1)
    with pytest.raises(BadRequestError) as err:
        client.add_tags("opp-1", ["Go"])
    text = f"{err.value}\n{err.value!r}\n{err.value.message}"
    assert "bad header" in text and "[redacted]" in text
    assert not [f for f in forms if f in text]
    with open("plan.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([PLAN_COLUMNS, ["opp-1", "c-1", "add", BEARER_TAG]])
    code = main(["apply", "plan.csv", "--yes", "--journal", "j.sqlite"])
    printed = capsys.readouterr()
    assert code == 1  # the write failed, and says why
    assert "bad header" in printed.out + printed.err
    produced = printed.out + printed.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            produced += path.read_bytes().decode("utf-8", "replace")
    assert not [f for f in forms if f in produced]
    assert BEARER_TAG in produced  # the tag itself is kept: data, not a credential


def test_scrub_knows_every_form_and_leaves_lookalikes_alone():
    b64 = base64.b64encode(f"{KEY}:".encode()).decode()
    text = f"raw {KEY} basic {b64} bearer Bearer {KEY} tag {BEARER_TAG}"
    clean = scrub(text, [KEY])
    assert KEY not in clean and b64 not in clean and BEARER_TAG in clean


def test_the_after_run_scan_never_edits_a_binary_file(tmp_path):
    db = tmp_path / "journal.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (v text)")
        conn.execute("insert into t values (?)", (f"oops {KEY}",))
    (tmp_path / "tag.csv").write_text(f"tag\n{BEARER_TAG}\n", encoding="utf-8")
    (tmp_path / "log.txt").write_text(f"key {KEY}\n", encoding="utf-8")
    data = db.read_bytes()
    assert sorted(secrets.scan_for_secrets(tmp_path, [KEY])) == [db, tmp_path / "log.txt"]
    assert db.read_bytes() == data  # intact: still a database
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert (tmp_path / "tag.csv").read_text(encoding="utf-8") == f"tag\n{BEARER_TAG}\n"
    assert KEY not in (tmp_path / "log.txt").read_text(encoding="utf-8")


# -- parameters, names, lock file -----------------------------------------------------------------

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEVER_API_KEY", KEY)
    code = main(["report", "remediate", "-p", "renames", BOMB, "--out-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "aliases" in err and err.count("\n") == 1
    params = tmp_path / "p.yaml"
    params.write_text(BOMB)
    assert main(["report", "audit", "-f", str(params), "--out-root", str(tmp_path)]) == 2
    assert "aliases" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [params]  # nothing but the file given
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ncontact_level: [Python]\n" + BOMB)
    assert main(["plan", "--policy", str(policy), "--out", str(tmp_path / "plan.csv")]) == 2
    assert "aliases" in capsys.readouterr().err
    assert not (tmp_path / "plan.csv").exists()


def test_parameter_problems_are_short_whatever_the_value():
    problems = nb_params.parameter_problems({"max_changes": ["x" * 10_000] * 10_000})
    assert len(problems) == 1 and len(problems[0]) < 300


@pytest.mark.parametrize("name", ["run\n", "run\r\n", "a/b", "", "-x", "x" * 101])
def test_run_names_must_match_whole(name):
    with pytest.raises(errors.ConfigurationError, match="run name"):
        execute._check_name(name)


def test_the_lock_file_never_follows_a_symlink_nor_truncates_a_link(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    journal = tmp_path / "j.sqlite"
    lock = tmp_path / "j.sqlite.lock"
    lock.symlink_to(precious)
    with pytest.raises(JournalError, match="symlink"):
        Journal(journal)
    assert precious.read_text() == "keep me\n"
    lock.unlink()
    os.link(precious, lock)  # a hard link: truncating it would truncate the other name
    with pytest.raises(JournalError, match="plain file"):
        Journal(journal)
    assert precious.read_text() == "keep me\n"
    lock.unlink()
    with Journal(journal) as j:
        assert j.lock_path.exists()
        assert stat.S_IMODE(os.stat(j.lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600


def test_sandbox_cli_offers_the_hostile_seed():
    from toolkit.cli import build_parser

    args = build_parser().parse_args(["sandbox", "--hostile", "--contacts", "200"])
    assert args.hostile is True
