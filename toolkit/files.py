"""Files the toolkit writes: each complete or not at all (temp file, then rename), and the one
rule for sidecar names (`plan.csv` -> `plan.meta.json`)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's private 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented JSON, atomically."""
    return _atomic_write(
        Path(path), lambda h: h.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    )


def write_csv_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write `frame` as CSV without its index, atomically."""
    return _atomic_write(Path(path), lambda h: frame.to_csv(h, index=False))


def sidecar(path: str | os.PathLike, suffix: str) -> Path:
    """The one rule for files that belong to another: `plan.csv` -> `plan<suffix>` beside it.

    Example:
        >>> sidecar("runs/plan.csv", ".journal.sqlite").as_posix()
        'runs/plan.journal.sqlite'
        >>> sidecar("runs/plan", ".meta.json").as_posix()
        'runs/plan.meta.json'
    """
    path = Path(path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + suffix)
