"""Start-up benchmark: what `lever-tags COMMAND --help` costs before any work is done.

    .venv/bin/python benchmarks/bench_startup.py                  # audit --help, 7 runs
    .venv/bin/python benchmarks/bench_startup.py --write-docs     # also update docs/benchmarks.md
    .venv/bin/python benchmarks/bench_startup.py --before /tmp/old --write-docs  # and a baseline

`--before DIR` also measures another checkout (e.g. `git archive ed4b632 | tar -x -C DIR`, the
tree before the one-way imports) and writes it as a row of its own.

Each run is a fresh `python -m toolkit.cli audit --help` process (interpreter start included);
the wall time is the median of `--repeat` runs. The imported-module count is `len(sys.modules)`
after `main(["audit", "--help"])` in a fresh interpreter, with the heavy libraries it loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from docs_section import command_line, write_section  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Start-up"
HEAVY = ("pandas", "numpy", "pyarrow", "requests", "tornado", "prometheus_client", "papermill")
COUNT = """
import json, sys
from toolkit.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print(json.dumps({"modules": len(sys.modules), "heavy": heavy}))
"""


def measure(root: Path, argv: list[str], repeat: int) -> dict:
    """Median wall time of `python -m toolkit.cli ARGV` and the modules that run imports."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "toolkit.cli", *argv],
            env=env,
            cwd=root,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        times.append(time.perf_counter() - start)
    code = COUNT.replace("HEAVY", repr(json.dumps(HEAVY)))
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": statistics.median(times), **counted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="also measure this checkout (a baseline)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    argv = ["audit", "--help"]
    rows = {"this tree": measure(ROOT, argv, args.repeat)}
    if args.before:
        rows = {
            f"`{args.before}` (before)": measure(args.before.resolve(), argv, args.repeat),
            **rows,
        }
    print(json.dumps(rows))
    if args.write_docs:
        table = "".join(
            f"| {name} | {got['seconds']:.2f} s | {got['modules']} | "
            f"{', '.join(got['heavy']) or 'none of ' + ', '.join(HEAVY)} |\n"
            for name, got in rows.items()
        )
        write_section(
            DOCS,
            SECTION,
            f"{SECTION}\n\n"
            f"Command: `{command_line('bench_startup.py')}`. Machine: {os.cpu_count()} CPUs "
            f"(shared), Python {sys.version.split()[0]}.\n\n"
            "| `lever-tags audit --help` | wall (median) | modules | heavy libraries loaded |\n"
            "|---|---|---|---|\n" + table,
        )


if __name__ == "__main__":
    main()
