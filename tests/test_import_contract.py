"""The import contract (`[tool.importlinter]` in pyproject.toml) holds, and docs/architecture.md's
"What may load what" is the contract, rendered: the doc cannot disagree with what is checked.

    .venv/bin/python tests/test_import_contract.py --write   # regenerate the doc's section
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
START = "<!-- generated from [tool.importlinter] in pyproject.toml: do not edit by hand -->"
END = "<!-- end of the generated section -->"


def _names(modules: list[str]) -> str:
    return ", ".join(f"`{m}`" for m in modules)


def render(config: dict) -> str:
    """The contracts as Markdown, in the order pyproject.toml declares them.

    Example:
        >>> print(render({"contracts": [{"name": "N", "type": "forbidden",
        ...     "source_modules": ["a"], "forbidden_modules": ["b", "c"]}]}))
        - **N**: `a` may not load `b`, `c`.
    """
    lines = []
    for c in config["contracts"]:
        kind = c["type"]
        if kind == "layers":
            lines.append(f"- **{c['name']}** (top to bottom; `|` = independent of each other):")
            lines.append("")
            lines.append("  | layer | modules |")
            lines.append("  |---|---|")
            for n, layer in enumerate(c["layers"], 1):
                modules = " \\| ".join(f"`{m.strip()}`" for m in layer.split("|"))
                lines.append(f"  | {n} | {modules} |")
            lines.append("")
        elif kind == "forbidden":
            src, bad = _names(c["source_modules"]), _names(c["forbidden_modules"])
            lines.append(f"- **{c['name']}**: {src} may not load {bad}.")
        elif kind == "independence":
            lines.append(f"- **{c['name']}**: {_names(c['modules'])} load none of each other.")
        elif kind == "acyclic_siblings":
            lines.append(f"- **{c['name']}**: within {_names(c['ancestors'])}.")
        else:
            raise ValueError(f"render() does not know contracts of type {kind!r}")
    return "\n".join(lines).rstrip("\n")


def _contract() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]


def _section(text: str) -> str:
    assert START in text and END in text, f"{DOC.name} lost its generated section markers"
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def test_the_architecture_doc_is_the_import_contract():
    assert _section(DOC.read_text(encoding="utf-8")) == render(_contract()), (
        "docs/architecture.md disagrees with pyproject.toml's import contract: "
        "run .venv/bin/python tests/test_import_contract.py --write"
    )


def test_the_import_contract_holds():
    done = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


HEAVY = ("pandas", "numpy", "pyarrow", "requests", "tornado", "prometheus_client", "papermill")


def test_the_command_line_loads_no_heavy_module_before_a_command_runs():
    """`lever-tags audit --help` (every parser built) imports none of what the commands need."""
    code = (
        "import json, sys\n"
        "from toolkit.cli import main\n"
        "try:\n    main(['audit', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "toolkit" in loaded and "lever_sandbox" in loaded  # the parsers were built
    assert sorted(loaded & set(HEAVY)) == []


def _write() -> None:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render(_contract())}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        _write()
    else:
        sys.exit(__doc__)
