"""Plan files: `plan.csv` and its sidecars (`toolkit.files.sidecar`), written atomically.

plan.csv              the rows, exactly the docs/architecture.md columns
plan.meta.json        mode, tags, policy, snapshot fingerprint/watermark/account, counts,
                      digest, sources (propagate: where each added tag is copied from)
plan.skipped.csv      the skipped rows with their reason
plan.before.json      {opportunity_id: {"contact_id": ..., "tags": [...]}} the plan assumed
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.errors import ConfigurationError
from toolkit.files import read_json, sidecar, write_csv_atomic, write_json_atomic
from toolkit.remediate.plan import (
    OPS,
    PLAN_COLUMNS,
    SKIPPED_COLUMNS,
    Plan,
    PlanError,
    check_plan_tags,
    empty_rows,
    rows_digest,
    rows_frame,
)
from toolkit.remediate.planmeta import PlanMeta
from toolkit.sanitize import csv_uncell, short_repr


def meta_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.meta.json`."""
    return sidecar(path, ".meta.json")


def skipped_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.skipped.csv`."""
    return sidecar(path, ".skipped.csv")


def before_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.before.json`."""
    return sidecar(path, ".before.json")


def snapshot_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.snapshot.parquet` (where `lever-tags plan` saves its fresh fetch)."""
    return sidecar(path, ".snapshot.parquet")


def _read_rows(path: Path) -> pd.DataFrame:
    """Plan rows from `path`; cells pass `csv_uncell` (the OWASP `'` written by `save`)."""
    if csv.field_size_limit() < PLAN_FIELD_LIMIT:
        csv.field_size_limit(PLAN_FIELD_LIMIT)
    line = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise PlanError(f"{path}: empty file; expected columns {', '.join(PLAN_COLUMNS)}")
            header = [h.strip() for h in header]
            missing = [c for c in PLAN_COLUMNS if c not in header]
            if missing:
                raise PlanError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"a plan has columns {', '.join(PLAN_COLUMNS)}"
                )
            index = [header.index(c) for c in PLAN_COLUMNS]
            records = []
            for line, record in enumerate(reader, start=2):
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise PlanError(f"{path}:{line}: {len(record)} fields, expected {len(header)}")
                opp, contact, op, tag = (csv_uncell(record[i]) for i in index)
                opp, contact, op = opp.strip(), contact.strip(), op.strip()
                if not opp:
                    raise PlanError(f"{path}:{line}: empty opportunity_id")
                if op not in OPS:
                    raise PlanError(
                        f"{path}:{line}: unknown op {short_repr(op)} (use add or remove)"
                    )
                if not tag:
                    raise PlanError(f"{path}:{line}: empty tag")
                check_plan_tags([tag], f"{path}:{line}: ")
                records.append((opp, contact, op, tag, line))
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise PlanError(f"{path}:{line + 1}: not a plan CSV ({exc})") from None
    frame = rows_frame(records, [*PLAN_COLUMNS, "line"])
    if frame.empty:
        return empty_rows(PLAN_COLUMNS)
    dup = frame.duplicated(["opportunity_id", "op", "tag"], keep="first")
    if dup.any():
        first = frame[dup].iloc[0]
        raise PlanError(
            f"{path}:{first['line']}: duplicate row ({first['opportunity_id']}, {first['op']}, "
            f"{first['tag']!r})"
        )
    both = frame.duplicated(["opportunity_id", "tag"], keep=False)
    if both.any():
        first = frame[both].iloc[0]
        raise PlanError(
            f"{path}:{first['line']}: tag {first['tag']!r} is both added and removed on "
            f"{first['opportunity_id']}"
        )
    contacts = frame.groupby("opportunity_id")["contact_id"].nunique()
    if (contacts > 1).any():
        opp = contacts[contacts > 1].index[0]
        raise PlanError(f"{path}: opportunity {opp} has rows with different contact_id values")
    return frame[PLAN_COLUMNS].reset_index(drop=True)


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except ConfigurationError as exc:
        raise PlanError(str(exc)) from None


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and validate a plan CSV (and its sidecars when present).

    Raises:
        PlanError: the file is missing, lacks a column, has an unknown op, an empty id or tag,
            a duplicate row, or a tag both added and removed on one opportunity. One line each.

    Example:
        >>> plan = load_plan("plan.csv")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"plan file not found: {path}")
    rows = _read_rows(path)
    meta = _read_json(meta_path(path)) if meta_path(path).is_file() else {}
    before = _read_json(before_path(path)) if before_path(path).is_file() else {}
    skipped = empty_rows(SKIPPED_COLUMNS)
    if skipped_path(path).is_file():
        skipped = pd.read_csv(
            skipped_path(path), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        skipped = skipped.reindex(columns=SKIPPED_COLUMNS, fill_value="").astype(object)
        skipped = skipped.map(csv_uncell)
    info = PlanMeta.from_dict(meta)
    if info.plan_sha256 and info.plan_sha256 != rows_digest(rows):
        meta = replace(info, edited=True).to_dict()  # edited by hand: still a valid plan
    return Plan(rows=rows, skipped=skipped, meta=meta, before=before, path=path)


def save_plan(plan: Plan, path: str | os.PathLike) -> Path:
    """Write the plan CSV and its sidecars (meta, skipped, before), each atomically.

    The plan's ``meta`` gets its counts and digest, and ``plan.path`` the path written.

    Example:
        >>> save_plan(plan, "plan.csv")  # doctest: +SKIP
    """
    path = Path(path)
    meta = replace(plan.info, counts=plan.counts(), plan_sha256=plan.sha256).to_dict()
    write_csv_atomic(path, plan.rows[PLAN_COLUMNS])
    write_csv_atomic(skipped_path(path), plan.skipped[SKIPPED_COLUMNS])
    write_json_atomic(before_path(path), plan.before)
    write_json_atomic(meta_path(path), meta)
    plan.meta = meta
    plan.path = path
    return path


# A plan cell can be at most this long (a tag is at most MAX_TAG_LENGTH; ids are short): the
# csv module's own limit (131,072) ended in a `_csv.Error` traceback; a longer cell is refused.
PLAN_FIELD_LIMIT = 1 << 20
