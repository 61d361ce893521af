"""Alerts: `--notify URL` on audit, apply and batch (and `notify:` in a batch file) posts one short
Slack-compatible JSON message to a local receiver on failure or when split pairs are found; the
Prometheus alert rules of docs/sync.md name only metrics the sync service exposes."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from toolkit.cli import main
from toolkit.sync.metrics import SyncMetrics

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "Planted <!channel> & flagged"


@pytest.fixture
def receiver():
    """An incoming-webhook stand-in on loopback: the JSON bodies it was sent."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(fresh_sandbox, point_at, monkeypatch, tmp_path):
    sb = point_at(fresh_sandbox(contacts=60))
    monkeypatch.chdir(tmp_path)
    return sb


def two_opportunity_contact(sb) -> list[dict]:
    by_contact: dict[str, list[dict]] = {}
    for opp in sb.opportunities():
        if opp.get("contact") and not opp.get("isAnonymized"):
            by_contact.setdefault(opp["contact"], []).append(opp)
    return next(opps for _, opps in sorted(by_contact.items()) if len(opps) == 2)


def assert_clean(text: str, sb) -> None:
    """No key, no person's name, email or contact id in a message."""
    assert sb.api_key not in text
    for opp in sb.opportunities():
        assert not opp.get("contact") or opp["contact"] not in text
        assert opp["id"] not in text
        assert not opp.get("name") or opp["name"] not in text
        for email in opp.get("emails") or []:
            assert email not in text


def test_a_planted_split_posts_exactly_one_escaped_message(env, receiver, capsys):
    sb = env
    url, bodies = receiver
    Path("policy.yaml").write_text(
        yaml.safe_dump({"version": 1, "contact_level": [PLANTED]}), encoding="utf-8"
    )
    audit = ["audit", "--out", "r", "--policy", "policy.yaml", "--notify", url]
    assert main(audit) == 0
    assert bodies == []  # nothing found: nothing posted
    first, _second = two_opportunity_contact(sb)
    sb.set_tags(first["id"], [*first.get("tags", []), PLANTED])
    assert main(audit) == 0
    assert len(bodies) == 1 and set(bodies[0]) == {"text"}
    text = bodies[0]["text"]
    assert "1 split pairs (Planted &lt;!channel&gt; &amp; flagged: 1)" in text
    assert "<!channel>" not in text and sb.base_url.split("/")[2] in text
    assert_clean(text, sb)
    assert main([*audit, "--notify-above", "1"]) == 0  # below the threshold: quiet
    assert len(bodies) == 1


def test_a_failed_batch_run_posts_exactly_one_message(env, receiver, monkeypatch, capsys):
    url, bodies = receiver
    with socket.socket() as probe:  # an address where nothing listens: the run fails
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("LEVER_BASE_URL", f"http://127.0.0.1:{probe.getsockname()[1]}/v1")
    Path("runs.yaml").write_text(
        yaml.safe_dump(
            {
                "notify": "env:TEAM_WEBHOOK",
                "fail_on_gaps": True,
                "runs": [{"name": "nightly-audit", "notebook": "02-audit-report.ipynb"}],
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("TEAM_WEBHOOK", url)
    assert main(["batch", "runs.yaml", "--out-root", "out", "--timeout", "120"]) == 1
    assert len(bodies) == 1
    text = bodies[0]["text"]
    assert text.startswith("lever-tags batch runs.yaml: 1 of 1 runs failed: nightly-audit")
    assert "index: " in text and url not in capsys.readouterr().err
    assert_clean(text, env)


def test_apply_refused_posts_the_reason(env, receiver, capsys):
    url, bodies = receiver
    assert main(["plan", "--tag", "Python", "--out", "plan.csv"]) == 0
    meta = json.loads(Path("plan.meta.json").read_text())
    meta["snapshot"]["account"]["users"] = ["0" * 16]  # as if made on another account
    Path("plan.meta.json").write_text(json.dumps(meta))
    assert main(["apply", "plan.csv", "--yes", "--notify", url]) == 2
    assert len(bodies) == 1 and "another Lever account" in bodies[0]["text"]
    assert bodies[0]["text"].startswith("lever-tags apply plan.csv: failed: ")


@pytest.mark.parametrize(
    "value", ["ftp://example.com/hook", "http://hooks.example.com/x", "env:NOT_SET_ANYWHERE"]
)
def test_a_bad_notify_url_is_refused_before_anything_runs(env, capsys, value):
    sb = env
    sb.reset_stats()
    assert main(["audit", "--out", "r", "--notify", value]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--notify" in err
    assert "hooks.example.com/x" not in err  # the URL (a secret) is not echoed
    assert sb.stats()["requests"] == 0


def _rules() -> list[dict]:
    text = (ROOT / "docs" / "sync.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    docs = [yaml.safe_load(b) for b in blocks]
    groups = [g for d in docs if isinstance(d, dict) for g in d.get("groups", [])]
    return [rule for group in groups for rule in group["rules"]]


def _exposed() -> set[str]:
    """Every series name the sync service's /metrics can show."""
    names = set()
    for line in SyncMetrics().render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":  # the TYPE line names it with or without _total
                base = name.removesuffix("_total")
                names.update({base + "_total", base + "_created"})
            elif kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count", "_created"))
            else:
                names.add(name)
    return names


def test_the_prometheus_alert_rules_name_only_metrics_that_exist():
    rules = _rules()
    alerts = {r["alert"] for r in rules}
    assert {
        "LeverSyncQueueStale",
        "LeverSyncFailures",
        "LeverSyncCapPaused",
        "LeverSyncPollTooOld",
    } <= alerts
    exposed = _exposed()
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        named = set(re.findall(r"\blever_sync_[a-z_]+", rule["expr"]))
        assert named, rule["alert"]
        assert named <= exposed, (rule["alert"], named - exposed)
