"""Shared pytest fixtures. Each section belongs to one part of the toolkit; keep them apart."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import browser_env
import pytest

from lever_sandbox import Sandbox

# -- sandbox (owner: sandbox) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox for the whole session: 300 contacts (seed 7), no latency, no practical limit.

    Tests that change its config, tags or data must undo that, or use `fresh_sandbox` instead.
    """
    with Sandbox(seed=7, contacts=300, latency_ms=0, rate=1000, burst=1000) as sb:
        yield sb


@pytest.fixture
def fresh_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """A factory: ``fresh_sandbox(**kwargs)`` starts a new `Sandbox`; all are stopped afterwards.

    Defaults: seed 7, 300 contacts, no latency, rate and burst 1000; any kwarg overrides them.
    """
    started: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:
        options: dict[str, Any] = {
            "seed": 7,
            "contacts": 300,
            "latency_ms": 0,
            "rate": 1000,
            "burst": 1000,
        }
        options.update(kwargs)
        sb = Sandbox(**options).start()
        started.append(sb)
        return sb

    yield factory
    for sb in started:
        sb.stop()


@pytest.fixture
def point_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sandbox], Sandbox]:
    """``point_at(sb)``: this test's LEVER_* environment (and the kernels and processes it
    starts) points at the sandbox `sb`, with its full-access key; LEVER_ACCESS_TOKEN unset."""

    def point(sb: Sandbox) -> Sandbox:
        monkeypatch.delenv("LEVER_ACCESS_TOKEN", raising=False)
        for key, value in sb.env().items():
            monkeypatch.setenv(key, value)
        return sb

    return point


@pytest.fixture
def env(fresh_sandbox, point_at, monkeypatch, tmp_path) -> Sandbox:
    """A fresh default sandbox, this test's environment pointed at it, and the current folder
    the test's own temporary one (for CLI tests that write plan.csv, reports, journals)."""
    sb = point_at(fresh_sandbox())
    monkeypatch.chdir(tmp_path)
    return sb


# -- running in parallel (pytest-xdist, `make test` runs `-n 4 --dist loadgroup`) ---------------


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep together on one worker the tests that share something costly to build twice.

    The browser tests share one JupyterLab server and one Chromium (session fixtures); the tests
    of a module with a module-scoped fixture (a wheel, a run of every notebook) share that. Every
    other test is handed to whichever worker is free. Without xdist the marks do nothing.
    """
    for item in items:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if item.path.parent.name == "browser":
            group = "browser"
        elif any(d[-1].scope == "module" for d in defs.values() if d):
            group = item.path.name
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))


# -- secrets (owner: reliability) -----------------------------------------------------------------

_KEYS: set[str] = set()
_SANDBOXES: list[Sandbox] = []


@pytest.fixture(scope="session", autouse=True)
def no_key_in_any_produced_file(tmp_path_factory):
    """After the whole session: no file any test produced holds a sandbox key.

    Every sandbox started in this process records its two keys; at the end every file under
    pytest's temporary folder (reports, executed notebooks, journals, plans, snapshots, logs)
    is read as bytes and searched for them in every form they travel as.
    """
    original = Sandbox.start

    def start(self, *args: Any, **kwargs: Any) -> Sandbox:
        _KEYS.update({self.api_key, self.restricted_api_key})
        _SANDBOXES.append(self)  # its OAuth tokens, refreshed ones included, are read at the end
        return original(self, *args, **kwargs)

    Sandbox.start = start
    try:
        yield
    finally:
        Sandbox.start = original
    root = tmp_path_factory.getbasetemp()
    for sb in _SANDBOXES:
        _KEYS.update(sb.engine.issued_tokens)
        _KEYS.update(sb.engine.oauth_app.secrets())  # OAuth client secret, refresh tokens
    # Real credential forms only: text that looks like a header (the hostile tag
    # "Authorization: Bearer innocentlookingtag") is data, not a leak.
    needles: list[bytes] = []
    for key in _KEYS:  # the key itself, and as it travels: Basic base64("KEY:"), Bearer KEY
        needles += [key.encode(), base64.b64encode(f"{key}:".encode()), f"Bearer {key}".encode()]
    leaks = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaks += [str(path) for needle in needles if needle in data]
    assert not leaks, f"a sandbox key in: {sorted(set(leaks))[:5]}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium from the system's packages, driven by Playwright (headless), one per session.

    One, because sync Playwright cannot be started a second time in a thread while another
    instance runs. Without Chromium or Playwright: a one-line skip saying how to enable it; under
    CI=true a failure (browser_env).
    """
    reason = browser_env.missing()
    if reason is not None:
        browser_env.skip_or_fail(reason)
    from playwright.sync_api import sync_playwright  # a dev extra, only for browser tests

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser_env.chromium_path(), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# -- ledger (owner: ledger) ---------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def ledger_in_tmp(tmp_path_factory):
    """Every real apply, rollback and sync appends to the ledger (LEVER_LEDGER, default in the
    project's reports folder): the tests' writes go to a ledger of their own, subprocesses too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEVER_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite"))
        yield
