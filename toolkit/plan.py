"""The remediation plan: pure, from a snapshot frame (and a policy or explicit tags) to rows.

A plan is one row per ``(opportunity_id, contact_id, op, tag)`` with ``op`` in ``add|remove``,
plus the rows it chose not to write (``skipped``, each with a reason), plus metadata: the mode,
the tags, the snapshot's fingerprint and watermark, and for every opportunity it looked at, the
tag set it assumed (``before``). Drift checks and rollback read ``before``.

On disk (``Plan.save("plan.csv")``):
    plan.csv              the rows, exactly the DESIGN.md columns
    plan.meta.json        mode, tags, policy, snapshot fingerprint/watermark, counts, digest
    plan.skipped.csv      the skipped rows with their reason
    plan.before.json      {opportunity_id: {"contact_id": ..., "tags": [...]}} the plan assumed

Modes:
    propagate  add every missing assignment of the chosen tags (contact-level tags);
    remove     take the chosen tags off every opportunity that has them;
    rename     replace a variant by its canonical spelling: add the canonical, remove the variant.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.errors import ConfigurationError
from toolkit.sanitize import MAX_TAG_LENGTH, csv_uncell, short_repr, tag_problem

PLAN_COLUMNS = ["opportunity_id", "contact_id", "op", "tag"]
SKIPPED_COLUMNS = [*PLAN_COLUMNS, "reason"]
MODES = ("propagate", "remove", "rename")
OPS = ("add", "remove")
PLAN_VERSION = 1

REASON_ANONYMIZED = "anonymized"
REASON_ARCHIVED = "archived (excluded)"
REASON_ARCHIVED_SOURCE = "tag only on archived opportunities of the contact (excluded)"
REASON_NEVER_TOUCH = "policy: never_touch"
REASON_DRIFT_PRESENT = "drift: tag already present"
REASON_DRIFT_ABSENT = "drift: tag already absent"
REASON_DRIFT_SOURCE = "drift: tag no longer on any other opportunity of the contact"
REASON_DRIFT_VARIANT = "drift: variant no longer present"


class PlanError(ConfigurationError):
    """A plan cannot be made, read or run as asked (bad file, bad arguments, too large)."""


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


def _frame(records: Iterable[tuple], columns: list[str]) -> pd.DataFrame:
    records = list(records)
    if not records:
        return _empty(columns)
    return pd.DataFrame.from_records(records, columns=columns).astype(object)


def _sorted_rows(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if rows.empty:
        return _empty(columns)
    rows = rows[columns].astype(object).drop_duplicates()
    keys = ["contact_id", "opportunity_id", "op", "tag"]
    return rows.sort_values(keys, kind="stable").reset_index(drop=True)


def _sidecar(path: Path, suffix: str) -> Path:
    """`plan.csv` -> `plan<suffix>` (e.g. `plan.meta.json`)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + suffix)


def meta_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.meta.json`."""
    return _sidecar(Path(path), ".meta.json")


def skipped_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.skipped.csv`."""
    return _sidecar(Path(path), ".skipped.csv")


def before_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.before.json`."""
    return _sidecar(Path(path), ".before.json")


def snapshot_path(path: str | os.PathLike) -> Path:
    """`plan.csv` -> `plan.snapshot.parquet` (where `lever-tags plan` saves its fresh fetch)."""
    return _sidecar(Path(path), ".snapshot.parquet")


def rows_digest(rows: pd.DataFrame) -> str:
    """SHA-256 of the rows in canonical order: the identity of a plan for its journal.

    Example:
        >>> rows_digest(_empty(PLAN_COLUMNS))[:8]
        'd826debe'
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PLAN_COLUMNS)
    if not rows.empty:
        ordered = rows[PLAN_COLUMNS].astype(str).sort_values(PLAN_COLUMNS, kind="stable")
        writer.writerows(ordered.itertuples(index=False, name=None))
    return hashlib.sha256(buffer.getvalue().encode()).hexdigest()


@dataclass
class Plan:
    """A remediation plan: rows to write, rows skipped (with reason), metadata, assumed tags.

    Attributes:
        rows: DataFrame[opportunity_id, contact_id, op, tag]; contact_id is "" when unknown.
        skipped: DataFrame[opportunity_id, contact_id, op, tag, reason].
        meta: mode, tags, renames, policy, include_archived, snapshot (fingerprint, watermark,
            fetched_at, host), created_at, counts.
        before: {opportunity_id: {"contact_id": str, "tags": [..]}} the tag sets the plan
            assumed, for every opportunity of every contact it touches.
    """

    rows: pd.DataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: _empty(SKIPPED_COLUMNS))
    meta: dict[str, Any] = field(default_factory=dict)
    before: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def sha256(self) -> str:
        return rows_digest(self.rows)

    @property
    def mode(self) -> str | None:
        return self.meta.get("mode")

    @property
    def watermark(self) -> int | None:
        mark = (self.meta.get("snapshot") or {}).get("watermark")
        return int(mark) if mark is not None else None

    def __len__(self) -> int:
        return len(self.rows)

    def opportunity_ids(self) -> list[str]:
        return list(dict.fromkeys(self.rows["opportunity_id"].tolist()))

    def calls(self) -> pd.DataFrame:
        """The write calls the plan needs: one per (opportunity, op), all its tags together.

        Returns:
            DataFrame[opportunity_id, contact_id, op, tags (list), changes], adds before removes.
        """
        return calls_from_rows(self.rows)

    def changes_by_tag(self) -> pd.DataFrame:
        """How many opportunities each (op, tag) touches: what a dry run shows."""
        if self.rows.empty:
            return pd.DataFrame({"op": [], "tag": [], "opportunities": []})
        counts = self.rows.groupby(["op", "tag"], sort=True).size().rename("opportunities")
        return counts.reset_index()

    def counts(self) -> dict[str, int]:
        rows = self.rows
        return {
            "rows": len(rows),
            "add": int((rows["op"] == "add").sum()) if len(rows) else 0,
            "remove": int((rows["op"] == "remove").sum()) if len(rows) else 0,
            "opportunities": int(rows["opportunity_id"].nunique()) if len(rows) else 0,
            "calls": len(self.calls()),
            "skipped": len(self.skipped),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the plan CSV and its sidecars (meta, skipped, before), each atomically.

        Example:
            >>> plan.save("plan.csv")  # doctest: +SKIP
        """
        from toolkit.artifacts import write_csv_atomic, write_json_atomic

        path = Path(path)
        meta = dict(self.meta)
        meta["counts"] = self.counts()
        meta["plan_sha256"] = self.sha256
        write_csv_atomic(path, self.rows[PLAN_COLUMNS])
        write_csv_atomic(skipped_path(path), self.skipped[SKIPPED_COLUMNS])
        write_json_atomic(before_path(path), self.before)
        write_json_atomic(meta_path(path), meta)
        self.meta = meta
        self.path = path
        return path


def calls_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Group plan rows into write calls: one per (opportunity_id, op) with all its tags.

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o1", "o1"], "contact_id": ["c", "c"],
        ...                      "op": ["add", "add"], "tag": ["a", "b"]})
        >>> calls_from_rows(rows)[["opportunity_id", "op", "tags"]].values.tolist()
        [['o1', 'add', ['a', 'b']]]
    """
    columns = ["opportunity_id", "contact_id", "op", "tags", "changes"]
    if rows.empty:
        return _empty(columns)
    records = []
    for (opp, op), group in rows.groupby(["opportunity_id", "op"], sort=True):
        tags = list(dict.fromkeys(group["tag"].tolist()))
        records.append((opp, group["contact_id"].iloc[0], op, tags, len(tags)))
    return _frame(records, columns)


# -- making a plan ------------------------------------------------------------------------------


def _policy_view(policy: Any) -> dict[str, Any]:
    """The policy fields the plan uses, read by attribute (a `toolkit.policy.Policy` or alike)."""
    if policy is None:
        return {}
    if isinstance(policy, Mapping):
        get = policy.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(policy, name, default)

    return {
        "contact_level": list(get("contact_level", []) or []),
        "never_touch": list(get("never_touch", []) or []),
        "include_archived": bool(get("include_archived", True)),
        "skip_anonymized": bool(get("skip_anonymized", True)),
    }


def _contact(value: Any) -> str:
    """A contact id as a string; "" when missing (None, NA, NaN)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _snapshot_parts(snapshot: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    if isinstance(snapshot, pd.DataFrame):
        return snapshot, {}
    frame = getattr(snapshot, "frame", None)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError("make_plan needs a snapshot frame (DataFrame) or a Snapshot")
    return frame, dict(getattr(snapshot, "meta", {}) or {})


def _snapshot_meta(frame: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    from toolkit import snapshot as snapshot_module

    mark = meta.get("watermark")
    if mark is None:
        mark = snapshot_module.safe_watermark(frame)
    return {
        "fingerprint": meta.get("fingerprint") or snapshot_module.fingerprint(frame),
        "watermark": int(mark) if mark is not None else None,
        "fetched_at": meta.get("fetched_at"),
        "host": meta.get("host"),
        "opportunities": len(frame),
        "confidential_access": meta.get("confidential_access"),
    }


def make_plan(
    snapshot: Any,
    mode: str = "propagate",
    tags: Iterable[str] | None = None,
    policy: Any = None,
    renames: Mapping[str, str] | None = None,
    include_archived: bool | None = None,
) -> Plan:
    """Plan the writes that fix what the audit found. Pure: no I/O.

    Args:
        snapshot: a snapshot frame (``toolkit.snapshot`` columns) or a `Snapshot`.
        mode: ``propagate`` (add missing assignments), ``remove`` (take tags off), or
            ``rename`` (variant -> canonical per opportunity).
        tags: the exact tag strings; default the policy's ``contact_level`` tags (propagate).
            In rename mode without ``renames``: rename the near-duplicate variants of these tags
            (``audit.tag_variants``) to their canonical spelling.
        policy: a `toolkit.policy.Policy` (or a mapping): ``never_touch`` tags are skipped,
            ``include_archived`` and ``skip_anonymized`` are honoured.
        renames: ``{variant: canonical}`` for rename mode.
        include_archived: overrides the policy's ``include_archived`` (default True).

    Returns:
        A `Plan`. Rows are sorted by contact, opportunity, op, tag.

    Raises:
        PlanError: unknown mode, no tags, or an inconsistent rename map.

    Example:
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python"], []], "archived": [False, False],
        ...                   "anonymized": [False, False], "created_at": [1, 2],
        ...                   "updated_at": [5, 6]})
        >>> make_plan(f, tags=["Python"]).rows.values.tolist()
        [['o2', 'c', 'add', 'Python']]
    """
    if mode not in MODES:
        raise PlanError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    frame, snap_meta = _snapshot_parts(snapshot)
    pol = _policy_view(policy)
    if include_archived is None:
        include_archived = pol.get("include_archived", True)
    skip_anonymized = pol.get("skip_anonymized", True)
    never_touch = set(pol.get("never_touch", []))
    if isinstance(tags, str):
        tags = [tags]
    chosen = list(dict.fromkeys(tags if tags is not None else pol.get("contact_level", [])))
    rename_map: dict[str, str] = dict(renames or {})
    if mode == "rename" and not rename_map:
        rename_map = _renames_from_variants(frame, chosen, include_archived)
    if mode != "rename" and not chosen:
        raise PlanError("no tags to plan: give --tag or a policy with contact_level tags")
    _check_plan_tags([*chosen, *rename_map, *rename_map.values()])
    if mode == "rename":
        _check_renames(rename_map)
        if not rename_map:
            raise PlanError("rename mode needs --rename OLD=NEW or tags with spelling variants")

    frame = frame.reset_index(drop=True)
    for column, default in (("archived", False), ("anonymized", False)):
        if column not in frame.columns:
            frame = frame.assign(**{column: default})
    info = pd.DataFrame(
        {
            "opportunity_id": frame["opportunity_id"].astype(str).to_numpy(dtype=object),
            "contact_id": [_contact(c) for c in frame["contact_id"]],
            "archived": frame["archived"].fillna(False).astype(bool).to_numpy(),
            "anonymized": frame["anonymized"].fillna(False).astype(bool).to_numpy(),
        }
    )
    tag_lists = [list(t) if isinstance(t, list | tuple) else list(t or []) for t in frame["tags"]]

    if mode == "propagate":
        candidates = _propagate_candidates(frame, chosen)
    elif mode == "remove":
        candidates = _remove_candidates(info, tag_lists, set(chosen))
    else:
        candidates = _rename_candidates(info, tag_lists, rename_map)

    flags = info.set_index("opportunity_id")
    if candidates.empty:
        rows, skipped = _empty(PLAN_COLUMNS), _empty(SKIPPED_COLUMNS)
    else:
        candidates = candidates.merge(
            flags[["archived", "anonymized"]], left_on="opportunity_id", right_index=True
        )
        reason = pd.Series("", index=candidates.index, dtype=object)
        if mode == "rename":
            pair = candidates["variant"]
            touched = candidates["tag"].isin(never_touch) | pair.isin(never_touch)
        else:
            touched = candidates["tag"].isin(never_touch)
        reason[touched] = REASON_NEVER_TOUCH
        if not include_archived:
            reason[(reason == "") & candidates["archived"]] = REASON_ARCHIVED
        if skip_anonymized:
            reason[(reason == "") & candidates["anonymized"]] = REASON_ANONYMIZED
        candidates = candidates.assign(reason=reason)
        rows = _sorted_rows(candidates[candidates["reason"] == ""], PLAN_COLUMNS)
        skipped = _sorted_rows(candidates[candidates["reason"] != ""], SKIPPED_COLUMNS)
        if mode == "propagate" and not include_archived:
            rows, extra = _propagate_without_archived(frame, chosen, rows, skipped)
            skipped = _sorted_rows(pd.concat([skipped, extra]), SKIPPED_COLUMNS)

    # The tag sets the plan assumed: every opportunity of every contact it touches (propagate
    # needs the contact's other opportunities to re-plan after drift), or the targets.
    touched_ids = set(rows["opportunity_id"]) if len(rows) else set()
    if mode == "propagate" and touched_ids:
        contacts = {c for c in rows["contact_id"] if c}
        keep = info["opportunity_id"].isin(touched_ids) | (
            info["contact_id"].isin(contacts) & (info["contact_id"] != "")
        )
        if not include_archived:
            keep &= ~info["archived"] | info["opportunity_id"].isin(touched_ids)
    else:
        keep = info["opportunity_id"].isin(touched_ids)
    before = {
        info.at[i, "opportunity_id"]: {
            "contact_id": info.at[i, "contact_id"],
            "tags": tag_lists[i],
        }
        for i in info.index[keep.to_numpy()]
    }
    meta = {
        "version": PLAN_VERSION,
        "mode": mode,
        "tags": chosen,
        "renames": rename_map if mode == "rename" else {},
        "policy": pol or None,
        "include_archived": bool(include_archived),
        "skip_anonymized": bool(skip_anonymized),
        "snapshot": _snapshot_meta(frame, snap_meta),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    plan = Plan(rows=rows, skipped=skipped, meta=meta, before=before)
    plan.meta["counts"] = plan.counts()
    plan.meta["plan_sha256"] = plan.sha256
    return plan


def _propagate_candidates(frame: pd.DataFrame, chosen: list[str]) -> pd.DataFrame:
    """Missing assignments of the chosen tags among all opportunities (flags applied later)."""
    from toolkit.audit import missing_assignments

    missing = missing_assignments(frame)
    missing = missing[missing["tag"].isin(chosen)]
    contact_of = dict(
        zip(
            frame["opportunity_id"].astype(str),
            (_contact(c) for c in frame["contact_id"]),
            strict=True,
        )
    )
    return pd.DataFrame(
        {
            "opportunity_id": missing["opportunity_id"].astype(str).to_numpy(dtype=object),
            "contact_id": [contact_of.get(str(o), "") for o in missing["opportunity_id"]],
            "op": "add",
            "tag": missing["tag"].astype(str).to_numpy(dtype=object),
        }
    )


def _propagate_without_archived(
    frame: pd.DataFrame, chosen: list[str], rows: pd.DataFrame, skipped: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """With archived ones excluded, only active opportunities count as sources and targets.

    Rows planned from the full frame are skipped when their target is archived (reason:
    archived), or when the tag is on the contact's archived opportunities only (reason: the
    source is archived), since with archived ones excluded there is nothing to propagate from.
    """
    from toolkit.audit import considered

    active = considered(frame, include_archived=False)
    wanted = _propagate_candidates(active, chosen)
    keys = set(zip(wanted["opportunity_id"], wanted["tag"], strict=True))
    in_active = [(o, t) in keys for o, t in zip(rows["opportunity_id"], rows["tag"], strict=True)]
    mask = pd.Series(in_active, index=rows.index, dtype=bool)
    archived = set(frame.loc[frame["archived"].astype(bool), "opportunity_id"].astype(str))
    extra = rows[~mask]
    reasons = [
        REASON_ARCHIVED if str(o) in archived else REASON_ARCHIVED_SOURCE
        for o in extra["opportunity_id"]
    ]
    extra = extra.assign(reason=pd.Series(reasons, index=extra.index, dtype=object))
    return _sorted_rows(rows[mask], PLAN_COLUMNS), extra


def _remove_candidates(
    info: pd.DataFrame, tag_lists: list[list[str]], chosen: set[str]
) -> pd.DataFrame:
    records = [
        (info.at[i, "opportunity_id"], info.at[i, "contact_id"], "remove", tag)
        for i, tags in enumerate(tag_lists)
        for tag in dict.fromkeys(tags)
        if tag in chosen
    ]
    return _frame(records, PLAN_COLUMNS)


def _rename_candidates(
    info: pd.DataFrame, tag_lists: list[list[str]], renames: dict[str, str]
) -> pd.DataFrame:
    records = []
    for i, tags in enumerate(tag_lists):
        present = set(tags)
        for variant in dict.fromkeys(tags):
            canonical = renames.get(variant)
            if canonical is None:
                continue
            opp, contact = info.at[i, "opportunity_id"], info.at[i, "contact_id"]
            if canonical not in present:
                records.append((opp, contact, "add", canonical, variant))
            records.append((opp, contact, "remove", variant, variant))
    return _frame(records, [*PLAN_COLUMNS, "variant"])


def _check_plan_tags(tags: Iterable[Any], where: str = "") -> None:
    """One PlanError line for the first tag Lever should not get (`sanitize.tag_problem`)."""
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise PlanError(
                f"{where}{problem}: a tag must be non-empty after stripping spaces, without "
                f"control characters, and at most {MAX_TAG_LENGTH} characters"
            )


def _check_renames(renames: dict[str, str]) -> None:
    for old, new in renames.items():
        if not old or not new:
            raise PlanError(f"a rename needs both spellings (got {old!r}={new!r})")
        if old == new:
            raise PlanError(f"rename {old!r} to itself does nothing")
        if new in renames:
            raise PlanError(f"rename chain: {old!r} -> {new!r} -> {renames[new]!r}; give the end")


def _renames_from_variants(
    frame: pd.DataFrame, chosen: list[str], include_archived: bool
) -> dict[str, str]:
    from toolkit.audit import considered, tag_variants

    variants = tag_variants(considered(frame, include_archived=include_archived))
    if variants.empty:
        return {}
    groups = set(variants.loc[variants["tag"].isin(chosen), "group"]) if chosen else None
    out = {}
    for tag, group, canonical in zip(
        variants["tag"], variants["group"], variants["canonical"], strict=True
    ):
        if (groups is None or group in groups) and tag != canonical:
            out[str(tag)] = str(canonical)
    return out


# -- re-planning after drift --------------------------------------------------------------------


def replan(
    plan: Plan, current: Mapping[str, list[str]], anonymized: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Re-plan the rows of the opportunities whose tags are known now (pure).

    Never writes blindly over a change: an add already present and a remove already absent are
    dropped; in propagate mode an add is dropped when no other opportunity of the contact carries
    the tag any more (someone removed it on purpose), even when the target itself did not change;
    in rename mode both rows of a variant are dropped when the variant is gone. Other rows of
    opportunities not in `current` are kept as planned.

    Args:
        plan: the plan.
        current: {opportunity_id: tags now} for the re-read (drifted) opportunities.
        anonymized: opportunities found anonymized now (their rows are dropped).

    Returns:
        (rows kept, rows dropped with a ``reason`` column).

    Example:
        >>> rows = pd.DataFrame({"opportunity_id": ["o2"], "contact_id": ["c"], "op": ["add"],
        ...                      "tag": ["T"]})
        >>> p = Plan(rows=rows, meta={"mode": "propagate"})
        >>> kept, dropped = replan(p, {"o2": ["T"]})
        >>> len(kept), dropped["reason"].tolist()
        (0, ['drift: tag already present'])
    """
    rows = plan.rows
    if rows.empty or not current:
        return rows.copy(), _empty(SKIPPED_COLUMNS)
    anonymized = set(anonymized)
    mode = plan.mode
    renames = dict(plan.meta.get("renames") or {})
    # The contact's opportunities as known now: the plan's view, overridden by what was re-read.
    by_contact: dict[str, dict[str, set[str]]] = {}
    for opp, entry in plan.before.items():
        contact = entry.get("contact_id") or ""
        if contact:
            tags = current.get(opp, entry.get("tags") or [])
            by_contact.setdefault(contact, {})[opp] = set(tags)
    drifted_contacts = {(plan.before.get(opp) or {}).get("contact_id") for opp in current} - {
        None,
        "",
    }
    reasons = []
    for opp, contact, op, tag in rows[PLAN_COLUMNS].itertuples(index=False, name=None):
        source_check = mode == "propagate" and op == "add" and contact in drifted_contacts
        if opp not in current and not source_check:
            reasons.append("")
            continue
        now = set(current.get(opp, (plan.before.get(opp) or {}).get("tags") or []))
        if opp in anonymized:
            reasons.append(REASON_ANONYMIZED)
        elif op == "add" and tag in now:
            reasons.append(REASON_DRIFT_PRESENT)
        elif op == "remove" and tag not in now:
            reasons.append(REASON_DRIFT_ABSENT if mode != "rename" else REASON_DRIFT_VARIANT)
        elif op == "add" and mode == "rename":
            variants = [v for v, c in renames.items() if c == tag]
            reasons.append("" if any(v in now for v in variants) else REASON_DRIFT_VARIANT)
        elif source_check and contact in by_contact:
            others = [t for o, t in by_contact[contact].items() if o != opp]
            reasons.append("" if any(tag in t for t in others) else REASON_DRIFT_SOURCE)
        else:
            reasons.append("")
    reason = pd.Series(reasons, index=rows.index, dtype=object)
    kept = rows[reason == ""].reset_index(drop=True)
    dropped = rows[reason != ""].assign(reason=reason[reason != ""]).reset_index(drop=True)
    return kept, dropped[SKIPPED_COLUMNS]


# -- reading a plan -----------------------------------------------------------------------------


# A plan cell can be at most this long (a tag is at most MAX_TAG_LENGTH; ids are short): the
# csv module's own limit (131,072) ended in a `_csv.Error` traceback; a longer cell is refused.
PLAN_FIELD_LIMIT = 1 << 20


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
                _check_plan_tags([tag], f"{path}:{line}: ")
                records.append((opp, contact, op, tag, line))
    except UnicodeDecodeError:
        raise PlanError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise PlanError(f"{path}:{line + 1}: not a plan CSV ({exc})") from None
    frame = _frame(records, [*PLAN_COLUMNS, "line"])
    if frame.empty:
        return _empty(PLAN_COLUMNS)
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
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path} is not valid JSON (line {exc.lineno})") from None


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
    skipped = _empty(SKIPPED_COLUMNS)
    if skipped_path(path).is_file():
        skipped = pd.read_csv(
            skipped_path(path), dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        skipped = skipped.reindex(columns=SKIPPED_COLUMNS, fill_value="").astype(object)
        skipped = skipped.map(csv_uncell)
    if meta.get("plan_sha256") and meta["plan_sha256"] != rows_digest(rows):
        meta = dict(meta, edited=True)  # reviewed and edited by hand: still a valid plan
    return Plan(rows=rows, skipped=skipped, meta=meta, before=before, path=path)


__all__ = [
    "MODES",
    "OPS",
    "PLAN_COLUMNS",
    "SKIPPED_COLUMNS",
    "Plan",
    "PlanError",
    "calls_from_rows",
    "load_plan",
    "make_plan",
    "replan",
    "rows_digest",
]
