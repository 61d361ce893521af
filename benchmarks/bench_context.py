"""The snapshot's context columns at scale: memory of owner, stage, posting, origin and archived
reason (ids and texts) over a million opportunities, as categoricals and as plain strings.

    .venv/bin/python benchmarks/bench_context.py                 # 1,000,000 opportunities
    .venv/bin/python benchmarks/bench_context.py --write-docs    # also update docs/benchmarks.md

The columns are drawn like a real account's: 60 owners (users), 12 stages, 400 postings, 8
origins, 10 archive reasons (30% archived), with random version-4 UUIDs as ids, and converted by
the snapshot's own `typed_frame` (categoricals), then compared with the same columns as pandas
strings (what the frame would hold without categoricals).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from docs_section import write_section  # noqa: E402

from toolkit.snapshot.frame import CONTEXT_COLUMNS, typed_frame  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Snapshot context columns"


def _ids(rng: np.random.Generator, k: int) -> np.ndarray:
    return np.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(k)], object)


def context_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """The snapshot's columns with `n` rows, context drawn as described above (strings)."""
    rng = np.random.default_rng(seed)
    owners, postings, reasons = _ids(rng, 60), _ids(rng, 400), _ids(rng, 10)
    stages = np.array([f"stage-{i}" for i in range(12)], object)
    archived = rng.random(n) < 0.3
    reason_at = rng.integers(0, 10, n)
    posting_at = rng.integers(0, 400, n)
    stage_at = rng.integers(0, 12, n)
    columns = {
        "owner_id": owners[rng.integers(0, 60, n)],
        "stage_id": stages[stage_at],
        "stage": np.array([f"Stage {i}" for i in range(12)], object)[stage_at],
        "posting_id": postings[posting_at],
        "posting": np.array([f"Posting title {i}" for i in range(400)], object)[posting_at],
        "origin": np.array([f"origin-{i}" for i in range(8)], object)[rng.integers(0, 8, n)],
        "archived_reason_id": np.where(archived, reasons[reason_at], None),
        "archived_reason": np.where(
            archived, np.array([f"Reason {i}" for i in range(10)], object)[reason_at], None
        ),
    }
    frame = pd.DataFrame(
        {
            "opportunity_id": _ids(rng, n),
            "contact_id": _ids(rng, n),
            "tags": pd.Series([[] for _ in range(n)], dtype=object),
            "archived": archived,
            "archived_at": pd.array([None] * n, dtype="Int64"),
            "confidential": False,
            "anonymized": False,
            "created_at": pd.array([None] * n, dtype="Int64"),
            "updated_at": pd.array([None] * n, dtype="Int64"),
            **columns,
        }
    )
    return frame


def _mib(frame: pd.DataFrame) -> float:
    return float(frame.memory_usage(deep=True, index=False).sum()) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    raw = context_frame(args.opportunities)
    started = time.perf_counter()
    typed = typed_frame(raw)
    seconds = time.perf_counter() - started
    as_strings = raw[CONTEXT_COLUMNS].astype("string")
    whole = typed.drop(columns=["tags"])
    n = args.opportunities
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs"]
    shown = " ".join(["benchmarks/bench_context.py", *forwarded])
    section = "\n".join(
        [
            SECTION,
            "",
            f"Command: `.venv/bin/python {shown}`.",
            "",
            f"The eight context columns (`toolkit.snapshot.frame.CONTEXT_COLUMNS`) over {n:,} "
            "opportunities: 60 owners, 12 stages, 400 postings, 8 origins, 10 archive reasons "
            "(30% archived), ids as random UUIDs.",
            "",
            "| what | MiB |",
            "|---|---:|",
            f"| **context columns as categoricals (the snapshot's dtype)** | "
            f"**{_mib(typed[CONTEXT_COLUMNS]):.1f}** |",
            f"| the same as pandas strings | {_mib(as_strings):.1f} |",
            f"| the rest of the frame without `tags` (ids, flags, times) | "
            f"{_mib(whole.drop(columns=CONTEXT_COLUMNS)):.1f} |",
            "",
            f"`typed_frame` (strings to categoricals, all columns) took {seconds:.2f} s.",
            "",
        ]
    )
    print(section)
    if args.write_docs:
        write_section(DOCS, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
