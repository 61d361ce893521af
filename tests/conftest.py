"""Shared pytest fixtures. Each section belongs to one part of the toolkit; keep them apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from toolkit.sandbox import Sandbox

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
