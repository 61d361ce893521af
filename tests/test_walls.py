"""The walls of docs/architecture.md, checked in a fresh interpreter: what a module loads when it
is imported AND used, seen in `sys.modules`."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLIENT_SIDE = ("requests", "urllib3", "tenacity", "toolkit.client")
REMEDIATION_SIDE = ("toolkit.remediate", "toolkit.workflows", "toolkit.snapshot.fetch")


def _loaded(code: str) -> set[str]:
    """The modules loaded after running `code` in a new interpreter."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _hits(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


PURE_USE = """
import tempfile, pathlib
import pandas as pd
from toolkit.audit import run_audit
from toolkit.audit.report import write_audit_artifacts
from toolkit.policy import load_policy, policy_tag_warnings
from toolkit.remediate.planner import make_plan, replan
from toolkit.remediate.planfile import load_plan, save_plan
from toolkit.snapshot.frame import frame_from_opportunities, fingerprint
from toolkit.snapshot.store import load_snapshot, save_snapshot
from toolkit.snapshot.frame import Snapshot

folder = pathlib.Path(tempfile.mkdtemp())
frame = frame_from_opportunities([
    {"id": "o1", "contact": "c", "tags": ["Python"], "createdAt": 1, "updatedAt": 2},
    {"id": "o2", "contact": "c", "tags": [], "createdAt": 1, "updatedAt": 2},
])
(folder / "p.yaml").write_text("version: 1\\ncontact_level: [Python]\\n")
policy = load_policy(folder / "p.yaml")
policy_tag_warnings(policy, ["Python"])
result = run_audit(frame, policy=policy)
write_audit_artifacts(result, folder / "audit", {})
save_snapshot(Snapshot(frame), folder / "s.parquet")
snap = load_snapshot(folder / "s.parquet")
plan = make_plan(snap, policy=policy, created_at="2025-01-01T00:00:00+00:00")
replan(plan, {"o2": ["Python"]})
save_plan(plan, folder / "plan.csv")
assert len(load_plan(folder / "plan.csv").rows) == 1
fingerprint(frame)
"""


def test_audit_policy_and_plan_never_load_the_client_even_when_used():
    loaded = _loaded(PURE_USE)
    assert "pandas" in loaded and "toolkit.remediate.planner" in loaded  # it did run
    assert _hits(loaded, CLIENT_SIDE) == []


def test_the_client_never_loads_pandas():
    loaded = _loaded(
        """
        from toolkit.client import LeverClient
        client = LeverClient(base_url="http://127.0.0.1:9/v1", api_key="k")
        client.stats.as_dict()
        """
    )
    assert "requests" in loaded
    assert _hits(loaded, ("pandas", "numpy", "pyarrow")) == []


def test_the_sandbox_shares_no_code_with_the_client_or_the_remediation_side():
    loaded = _loaded(
        """
        from lever_sandbox import Sandbox
        with Sandbox(seed=1, contacts=5) as sb:
            sb.opportunities()
        """
    )
    assert "tornado" in loaded
    assert sorted(m for m in loaded if m == "toolkit" or m.startswith("toolkit.")) == []
    assert _hits(loaded, CLIENT_SIDE + REMEDIATION_SIDE) == []


@pytest.mark.parametrize(
    "module",
    [
        "toolkit.audit",
        "toolkit.policy",
        "toolkit.remediate.planner",
        "toolkit.snapshot.frame",
    ],
)
def test_importing_a_pure_module_loads_no_client(module):
    assert _hits(_loaded(f"import {module}"), CLIENT_SIDE) == []


# -- conventions of docs/architecture.md -----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("toolkit", "lever_sandbox")
MAX_LINES = 520  # "no module much over ~500 lines"
EXEMPT = {"lever_sandbox/data.py"}  # the synthetic data generator: mostly word lists


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_is_much_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(p.relative_to(ROOT)) not in EXEMPT
    }
    assert long == {}


def _local_imports_without_a_reason(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Import | ast.ImportFrom):
                continue
            row = inner.lineno - 1
            # A comment on the import's line, or on the lines just above its block of imports.
            while row > 0 and lines[row - 1].strip().startswith(("import ", "from ")):
                row -= 1
            said = "#" in lines[inner.lineno - 1] or (
                row > 0 and lines[row - 1].strip().startswith("#")
            )
            if not said:
                found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_every_function_local_import_says_why():
    missing = [hit for p in _modules() for hit in _local_imports_without_a_reason(p)]
    assert missing == []


def _private_imports(path: Path) -> list[str]:
    """`from toolkit.x import _name`: a module reaching into another's private names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGES):
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.endswith("__")  # dunders: public
            ]
    return found


def test_no_module_imports_another_modules_private_names():
    """A leading underscore means private to its module; what two modules share is named."""
    assert [hit for p in _modules() for hit in _private_imports(p)] == []
