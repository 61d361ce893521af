"""Progress bars: on in terminals and Jupyter, off in headless runs, overridable."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from toolkit.progress import ENV, OutputBar, progress_bar, progress_enabled


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def plain(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stderr", _Stream(False))


def test_headless_is_quiet_and_a_terminal_shows_a_bar(plain, monkeypatch):
    assert progress_enabled() is False
    assert progress_bar().disable
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    assert progress_enabled() is True


def test_a_jupyter_kernel_shows_a_bar(plain, monkeypatch):
    shell = SimpleNamespace(kernel=None)
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    assert progress_enabled() is False  # IPython in a terminal
    shell.kernel = object()
    assert progress_enabled() is True


def test_environment_and_explicit_choice_override(plain, monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    monkeypatch.setenv(ENV, "0")
    assert progress_enabled() is False
    assert progress_enabled(True) is True
    monkeypatch.setenv(ENV, "1")
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    assert progress_enabled() is True
    assert progress_enabled(False) is False


class _Handle:
    def __init__(self) -> None:
        self.shown: list[dict] = []

    def update(self, data: dict, raw: bool = False) -> None:
        self.shown.append(data)


def test_jupyter_bar_is_text_that_survives_a_reload(plain, monkeypatch):
    """In a kernel the bar is a display handle updated with text, never a widget: after the
    bar ends, the output holds one plain line (a widget would be 'model not found' on reload)."""
    import importlib

    ipython_display = importlib.import_module("IPython.display")
    handle = _Handle()
    created = []

    def display(data, raw=False, display_id=False):
        created.append(data)
        return handle

    monkeypatch.setattr(ipython_display, "display", display)
    shell = SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    bar = progress_bar(total=3, desc="opportunities", unit=" opp", mininterval=0)
    assert isinstance(bar, OutputBar)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert created == [{"text/plain": ""}]
    assert all(set(d) == {"text/plain"} for d in handle.shown)  # text only: no widget model
    final = handle.shown[-1]["text/plain"]
    assert final.startswith("opportunities: 100%") and "3/3" in final
