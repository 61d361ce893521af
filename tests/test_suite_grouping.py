"""`make test` runs on 4 workers with `--dist loadgroup`: tests that share something costly (one
JupyterLab and one Chromium for the browser tests; a module-scoped wheel or notebook run) must
run on one worker, or each worker builds its own beside the others.

pytest-xdist carries a test's group to its scheduler as a suffix of the node id
(``...::test@group``). With pytest 9.2 the suffix no longer takes (pytest-xdist issue #1386):
the tests were spread over every worker, four JupyterLabs and four Chromiums ran at once, and
the browser reload test failed in 2 of 9 fresh-clone runs. This module's tests share a module-scoped
fixture, so `tests/conftest.py` puts them in one group; under xdist they check it took.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def module_resource() -> str:
    """Something the module's tests share (which is what puts them in one group)."""
    return "shared"


def _under_loadgroup(config: pytest.Config) -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) and bool(config.getvalue("loadgroup"))


@pytest.mark.parametrize("case", ["first", "second"])
def test_a_module_scoped_fixture_keeps_its_tests_on_one_worker(
    module_resource: str, case: str, request: pytest.FixtureRequest
) -> None:
    assert module_resource == "shared"
    marks = [m.args[0] for m in request.node.iter_markers("xdist_group")]
    assert marks == ["test_suite_grouping.py"], "tests/conftest.py marks the module's group"
    if not _under_loadgroup(request.config):
        pytest.skip("not on xdist workers with --dist loadgroup (make test runs that way)")
    assert request.node.nodeid.endswith("@test_suite_grouping.py"), (
        f"{request.node.nodeid}: the group did not reach xdist's scheduler; this pytest and "
        "pytest-xdist do not work together (pytest-xdist #1386): install the dev extra's pins"
    )
