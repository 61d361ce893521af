"""Progress bars: on in terminals and Jupyter, off in headless runs, overridable."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from toolkit.progress import ENV, progress_bar, progress_enabled


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
