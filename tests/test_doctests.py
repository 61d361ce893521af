"""Every example in a docstring runs: each module of the toolkit and of the sandbox that has one
is doctested here, and only here (once)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import lever_sandbox
import toolkit

PACKAGES = {
    "toolkit.": Path(toolkit.__file__).parent,
    "lever_sandbox.": Path(lever_sandbox.__file__).parent,
}
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _runnable_examples(name: str) -> int:
    """How many examples a module has that are not marked +SKIP (those need a server)."""
    module = importlib.import_module(name)
    return sum(
        not example.options.get(doctest.SKIP)
        for test in doctest.DocTestFinder().find(module)
        for example in test.examples
    )


MODULES = sorted(
    info.name
    for prefix, root in PACKAGES.items()
    for info in pkgutil.walk_packages([str(root)], prefix=prefix)
    if not info.name.endswith("__main__") and _runnable_examples(info.name)
)


def test_the_modules_with_examples_are_found():
    # A guard for the parametrisation below: an empty list would make it test nothing.
    expected = {
        "toolkit.audit.tables",
        "toolkit.policy",
        "toolkit.remediate.planner",
        "lever_sandbox.config",
    }
    assert expected <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    failures, attempted = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert attempted >= _runnable_examples(name)
    assert failures == 0, f"{failures} docstring example(s) in {name} failed (see output above)"
