"""Snapshots on disk: the frame as Parquet, the metadata as `<file>.meta.json` beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.errors import ConfigurationError
from toolkit.files import read_json, sidecar
from toolkit.sanitize import create_private, private_dir
from toolkit.snapshot.frame import COLUMNS, Snapshot, fingerprint, safe_watermark, typed_frame

SNAPSHOT_IN_FOLDER = "snapshot.parquet"  # an audit folder that kept its snapshot (batches)


def meta_path(path: str | os.PathLike) -> Path:
    """Where the metadata of the snapshot at `path` lives: `snap.parquet.meta.json` beside it.

    The snapshot keeps its suffix in the sidecar's name (`toolkit.files.sidecar`), so a snapshot
    and a plan of the same stem (`run.parquet`, `run.csv`) never share a meta file.
    """
    return sidecar(path, ".meta.json", keep_suffix=True)


def save_snapshot(snapshot: Snapshot, path: str | os.PathLike) -> Path:
    """Write the frame as Parquet and the metadata as JSON, each atomically."""
    path = Path(path)
    private_dir(path.parent)  # folders it creates: 0700; files: 0600 (names, emails, tags)
    tmp = path.with_name(f".{path.name}.tmp")
    create_private(tmp)
    snapshot.frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    meta_tmp = path.with_name(f".{path.name}.meta.tmp")
    create_private(meta_tmp)
    meta_tmp.write_text(json.dumps(snapshot.meta, indent=2, sort_keys=True, default=str))
    os.replace(meta_tmp, meta_path(path))
    return path


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a snapshot written by `save_snapshot`.

    Raises:
        ConfigurationError: the file is missing or is not a snapshot.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(
            f"snapshot file not found: {path} (write one with `lever-tags snapshot --out {path}`)"
        )
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise ConfigurationError(
            f"{path} is not a Parquet snapshot ({type(exc).__name__})"
        ) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"{path} is not a snapshot: missing columns {', '.join(missing)}")
    meta: dict[str, Any] = {}
    if meta_path(path).is_file():
        meta = read_json(meta_path(path))
    frame = typed_frame(frame)
    meta.setdefault("fingerprint", fingerprint(frame))
    meta.setdefault("watermark", safe_watermark(frame))
    return Snapshot(frame, meta)
