"""What changed between two snapshots or two audit folders (`lever-tags diff`, batches)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from toolkit.audit import run_audit
from toolkit.audit.diff import (
    AuditDiff,
    AuditSide,
    diff_sides,
    diff_summary,
    side_from_audit,
    tag_counts,
    variant_spellings,
)
from toolkit.audit.report import contact_people
from toolkit.errors import ConfigurationError
from toolkit.files import write_csv_atomic, write_json_atomic
from toolkit.sanitize import csv_uncell
from toolkit.snapshot.store import SNAPSHOT_IN_FOLDER, load_snapshot


def contact_names(frame: pd.DataFrame) -> dict[str, str]:
    """{contact_id: name} of a snapshot frame with names (or pseudonyms)."""
    people = contact_people(frame)
    names = people["name"].astype("string").fillna("")
    return dict(zip(people["contact_id"].astype(str), names, strict=True))


def snapshot_side(path: str | os.PathLike, with_names: bool = False) -> AuditSide:
    """A side from a snapshot file: audited here (archived ones as the snapshot was taken)."""
    snap = load_snapshot(path)
    include_archived = snap.info.include_archived is not False
    result = run_audit(snap.frame, include_archived=include_archived)
    names = contact_names(snap.frame) if with_names and "name" in snap.frame.columns else {}
    return side_from_audit(result, names)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigurationError(f"{path.parent}: not an audit folder (no {path.name})")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return frame.map(csv_uncell)


def folder_side(folder: str | os.PathLike, with_names: bool = False) -> AuditSide:
    """A side from an audit folder: its kept snapshot if any, else its CSVs (then a pair split
    again cannot be told from a new one)."""
    folder = Path(folder)
    if (folder / SNAPSHOT_IN_FOLDER).is_file():
        return snapshot_side(folder / SNAPSHOT_IN_FOLDER, with_names)
    split = _read_csv(folder / "split_pairs.csv")
    names = {}
    if with_names and "name" in split.columns:
        names = dict(zip(split["contact_id"], split["name"], strict=True))
    return AuditSide(
        split=split[["contact_id", "tag"]],
        tags=tag_counts(_read_csv(folder / "tag_statistics.csv")),
        variants=variant_spellings(_read_csv(folder / "variants.csv")),
        names=names,
    )


def open_side(path: str | os.PathLike, with_names: bool = False) -> AuditSide:
    """A snapshot file or an audit folder, as one side of a diff."""
    path = Path(path)
    if path.is_dir():
        return folder_side(path, with_names)
    if not path.exists():
        raise ConfigurationError(f"{path}: no such snapshot or audit folder")
    return snapshot_side(path, with_names)


def diff_audits(
    old: str | os.PathLike,
    new: str | os.PathLike,
    *,
    with_names: bool = False,
    out: str | os.PathLike | None = None,
) -> tuple[AuditDiff, dict[str, Path]]:
    """Compare two snapshots or audit folders; with `out`, write `changes.csv`, `per_tag.csv`
    and `since_last_run.json` there. Names only with `with_names` (and when the sides hold
    them)."""
    diff = diff_sides(open_side(old, with_names), open_side(new, with_names))
    paths: dict[str, Path] = {}
    if out is not None:
        paths = write_diff(diff, out)
    return diff, paths


def write_diff(diff: AuditDiff, out: str | os.PathLike) -> dict[str, Path]:
    out = Path(out)
    changes = (
        diff.changes
        if diff.changes["name"].astype(bool).any()
        else diff.changes.drop(columns="name")
    )
    return {
        "changes": write_csv_atomic(out / "changes.csv", changes),
        "per_tag": write_csv_atomic(out / "per_tag.csv", diff.per_tag),
        "since_last_run": write_json_atomic(out / "since_last_run.json", diff_summary(diff)),
    }
