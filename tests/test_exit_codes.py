"""One error tree with the exit code on each class (toolkit/errors.py), and Lever failing after
the retries exits 3, not 2 ("bad input"): the CLI against a transport fake (`responses`)."""

from __future__ import annotations

import inspect
import json
import re

import pytest
import requests
import responses

from toolkit import errors
from toolkit.cli import main
from toolkit.client import LeverClient

BASE = "https://api.lever.co/v1"


@pytest.fixture
def lever(monkeypatch, tmp_path):
    """A fake Lever at BASE, a key in the environment, retries that do not sleep."""
    monkeypatch.setenv("LEVER_API_KEY", "exit-code-test-key")
    monkeypatch.setenv("LEVER_BASE_URL", BASE)
    monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    original = LeverClient.from_env.__func__

    def from_env(cls, environ=None, **kwargs):
        return original(cls, environ, **{"sleep": lambda seconds: None, **kwargs})

    monkeypatch.setattr(LeverClient, "from_env", classmethod(from_env))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        yield fake


def _run(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_a_server_error_that_outlasts_the_retries_exits_3(lever, capsys):
    lever.add(responses.GET, re.compile(r".*"), status=503, json={"message": "down"})
    code, err = _run(capsys, ["audit", "--out", "report"])
    assert code == 3, err
    assert err.startswith("lever-tags: error:") and "\n" not in err
    assert "HTTP 503" in err and "try again later" in err
    assert len(lever.calls) > 1  # it did retry before giving up


def test_a_rate_limit_that_outlasts_the_retries_exits_3(lever, capsys):
    lever.add(responses.GET, re.compile(r".*"), status=429, json={"message": "slow down"})
    code, err = _run(capsys, ["snapshot", "--out", "s.parquet"])
    assert code == 3, err
    assert "HTTP 429" in err and "try again later" in err


def test_a_connection_lost_after_lever_answered_exits_3(lever, capsys):
    page = {"data": [], "hasNext": True, "next": "%5B%22o1%22%5D"}
    answered = {"n": 0}

    def answer(request):
        answered["n"] += 1
        if answered["n"] == 1:
            return (200, {}, json.dumps(page))
        raise requests.ConnectionError("connection reset by peer")

    lever.add_callback(responses.GET, re.compile(r".*"), callback=answer)
    code, err = _run(capsys, ["audit", "--out", "report"])
    assert code == 3, err
    assert "cannot reach" in err and "try again later" in err


def test_bad_input_still_exits_2(lever, capsys):
    lever.add(responses.GET, re.compile(r".*"), status=401, json={"message": "bad key"})
    code, err = _run(capsys, ["audit", "--out", "report"])
    assert code == 2 and "HTTP 401" in err and "try again later" not in err


def _classes() -> list[type]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]


def test_one_root_and_an_exit_code_on_every_class():
    assert {c for c in _classes() if not issubclass(c, errors.ToolkitError)} == set()
    codes = {c.__name__: c.exit_code for c in _classes()}
    assert set(codes.values()) <= {1, 2, 3}
    assert codes["ServerError"] == codes["RateLimitedError"] == codes["ConnectionFailedError"] == 3
    assert codes["BaseUrlUnreachableError"] == codes["AuthenticationError"] == 2
    assert codes["RemediationFailedError"] == 1 and codes["ConfigurationError"] == 2


@pytest.mark.parametrize(
    "module, name",
    [
        ("toolkit.remediate.plan", "PlanError"),
        ("toolkit.remediate.journal_schema", "JournalError"),
        ("toolkit.remediate.outcome", "RemediationFailedError"),
        ("toolkit.notebook.secrets", "SecretLeakError"),
        ("toolkit.sync.webhook", "WebhookRefused"),
        ("toolkit.demo", "DemoError"),
        ("toolkit.commands", "UsageError"),
        ("toolkit.cli", "UsageError"),
    ],
)
def test_the_moved_classes_keep_their_old_names(module, name):
    assert getattr(__import__(module, fromlist=[name]), name) is getattr(errors, name)


def test_library_errors_name_fields_and_the_cli_words_them_as_flags(tmp_path, monkeypatch, capsys):
    from toolkit import workflows

    for name in ("LEVER_API_KEY", "LEVER_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(errors.PlanError) as raised:  # a notebook or library caller
        workflows.plan_changes(tmp_path / "p.csv", mode="remove", tags=["x"], renames={"a": "b"})
    assert str(raised.value) == "renames: only for mode rename"
    argv = ["plan", "--mode", "remove", "--tag", "x", "--rename", "a=b", "--out", "p.csv"]
    code, err = _run(capsys, argv)
    assert code == 2 and err == "lever-tags: error: --rename OLD=NEW: only for --mode rename"
    code, err = _run(capsys, ["plan", "--out", "p.csv"])
    assert err == "lever-tags: error: no tags to plan: give --tag T or --policy FILE"
