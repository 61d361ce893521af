"""A batch file of runs as a use case: load it, run it, and say what went wrong.

`lever-tags batch` parses arguments, prints each run as it ends and the problems, and posts them
(`--notify`); which outcomes are problems (a failed run; split pairs when `fail_on_gaps`) is
decided here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from toolkit.notebook.batch import BatchResult, BatchSpec, load_batch, run_batch
from toolkit.notebook.execute import RunResult, check_out_root


@dataclass
class BatchRun:
    """A finished batch and the problems that make it fail (empty: it succeeded)."""

    batch: BatchResult
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def open_batch(runs: str | os.PathLike, out_root: str | os.PathLike | None = None) -> BatchSpec:
    """The batch file, checked, and the output root checked: refused before any run.

    Raises:
        ConfigurationError: a bad batch file, or an output root that is a file (exit 2).
    """
    spec = load_batch(runs)
    if out_root:
        check_out_root(out_root)
    return spec


def batch_problems(batch: BatchResult, fail_on_gaps: bool) -> list[str]:
    """The failed runs, and with `fail_on_gaps` the runs that found split pairs, one phrase each."""
    problems = []
    failed = batch.failed
    if failed:
        problems.append(
            f"{len(failed)} of {len(batch.results)} runs failed: "
            + ", ".join(r.name for r in failed)
        )
    gaps = batch.with_gaps() if fail_on_gaps else []
    if gaps:
        problems.append("split pairs found by " + ", ".join(f"{r.name} ({n})" for r, n in gaps))
    return problems


def run_batch_file(
    spec: BatchSpec,
    out_root: str | os.PathLike | None = None,
    *,
    fail_on_gaps: bool = False,
    progress: Callable[[RunResult], None] | None = None,
    execution_timeout: int | None = 900,
) -> BatchRun:
    """Run every run of the batch (one index page); `fail_on_gaps` or the file's own
    `fail_on_gaps` makes split pairs a problem."""
    batch = run_batch(spec, out_root, progress=progress, execution_timeout=execution_timeout)
    return BatchRun(batch, batch_problems(batch, fail_on_gaps or spec.fail_on_gaps))


__all__ = ["BatchRun", "batch_problems", "open_batch", "run_batch_file"]
