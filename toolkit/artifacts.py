"""Writing report artifacts: each file complete or not at all (temp file, then rename).

Every file is created 0600 in a 0700 folder, whatever the umask: reports hold tags, contact ids
and, when asked for, names and emails. Every CSV is safe to open in a spreadsheet: text cells
that a spreadsheet would run as a formula get the reversible OWASP `'` prefix
(`toolkit.sanitize.csv_cell`; `load_plan` strips it, so `plan.csv` reads back exactly).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.sanitize import csv_safe_frame, private_dir

if TYPE_CHECKING:
    from toolkit.audit import AuditResult

# Columns of the contract in DESIGN.md, in order.
SPLIT_PAIRS_COLUMNS = ["contact_id", "tag", "with_tag", "opportunities"]
MISSING_COLUMNS = ["opportunity_id", "contact_id", "tag"]


def _atomic_write(path: Path, write) -> Path:
    if not path.parent.is_dir():
        private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o600)  # mkstemp's private mode, kept on purpose: reports hold personal data
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
    """Write `frame` as CSV without its index, atomically, formula-safe (`csv_safe_frame`)."""
    safe = csv_safe_frame(frame)
    return _atomic_write(Path(path), lambda h: safe.to_csv(h, index=False))


def audit_summary(result: AuditResult, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON summary: DESIGN.md's integer keys at the top level, then context."""
    summary: dict[str, Any] = {k: int(v) for k, v in result.summary.items()}
    meta = dict(meta or {})
    access = meta.pop("confidential_access", None)  # None: a snapshot without its metadata
    summary["confidential_access"] = None if access is None else bool(access)
    summary["warnings"] = list(meta.pop("warnings", []))
    if "policy_summary" in meta:
        summary["policy"] = dict(meta.pop("policy_summary"), file=meta.get("policy"))
    summary["snapshot"] = meta
    return summary


def contact_people(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per contact with the first known `name` and `email` (for readable reports).

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1", "c1"], "name": [None, "Ada"],
        ...                   "email": ["a@example.com", None]})
        >>> contact_people(f).iloc[0].tolist()
        ['c1', 'Ada', 'a@example.com']
    """
    columns = [c for c in ("name", "email") if c in frame.columns]
    people = frame.dropna(subset=["contact_id"]).groupby("contact_id", sort=False)[columns].first()
    return people.reset_index()


def _with_people(table: pd.DataFrame, people: pd.DataFrame | None) -> pd.DataFrame:
    if people is None:
        return table
    return table.merge(people, on="contact_id", how="left")


def write_audit_artifacts(
    result: AuditResult,
    out_dir: str | os.PathLike,
    meta: dict[str, Any] | None = None,
    people: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write summary.json and the audit's CSVs into `out_dir`; return their paths by name.

    Args:
        result: the audit.
        out_dir: the report folder (created).
        meta: the snapshot's metadata and warnings, for the summary.
        people: `contact_people(frame)` to add `name` and `email` after the contract's columns
            of split_pairs.csv and missing_assignments.csv (pass a redacted frame's people to
            share a report with pseudonyms); None keeps personal data out of the report.
    """
    out = Path(out_dir)
    private_dir(out)
    frames = {
        "split_pairs": _with_people(result.split_pairs[SPLIT_PAIRS_COLUMNS], people),
        "missing_assignments": _with_people(result.missing_assignments[MISSING_COLUMNS], people),
        "tag_statistics": result.tag_statistics,
        "variants": result.variants,
        "evidence": result.evidence,
    }
    paths = {name: write_csv_atomic(out / f"{name}.csv", frame) for name, frame in frames.items()}
    paths["summary"] = write_json_atomic(out / "summary.json", audit_summary(result, meta))
    return paths
