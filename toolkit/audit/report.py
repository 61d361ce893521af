"""The audit's report files: `summary.json` (the integer keys of docs/architecture.md first, then
context) and the CSVs, each written atomically (`toolkit.files`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit import __version__
from toolkit.audit.families import family_summary
from toolkit.audit.result import AuditResult
from toolkit.files import write_csv_atomic, write_json_atomic
from toolkit.sanitize import private_dir

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import ContactLevelSource

# Columns of the contract in docs/architecture.md, in order.
SPLIT_PAIRS_COLUMNS = ["contact_id", "tag", "with_tag", "opportunities"]


MISSING_COLUMNS = ["opportunity_id", "contact_id", "tag"]


def audit_summary(result: AuditResult, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON summary: docs/architecture.md's integer keys at the top level, then context."""
    summary: dict[str, Any] = {k: int(v) for k, v in result.summary.items()}
    meta = dict(meta or {})
    access = meta.pop("confidential_access", None)  # None: a snapshot without its metadata
    summary["confidential_access"] = None if access is None else bool(access)
    summary["warnings"] = list(meta.pop("warnings", []))
    if "policy_summary" in meta:
        summary["policy"] = dict(meta.pop("policy_summary"), file=meta.get("policy"))
    summary["snapshot"] = meta
    summary["toolkit_version"] = __version__
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
    out_dir: str | os.PathLike[str],
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
    if result.policy_gaps is not None:  # the policy's families: what remains to fill
        frames["policy_gaps"] = result.policy_gaps
    paths = {name: write_csv_atomic(out / f"{name}.csv", frame) for name, frame in frames.items()}
    # the contract's integer keys first, as docs/architecture.md promises: not sorted
    summary = audit_summary(result, meta)
    paths["summary"] = write_json_atomic(out / "summary.json", summary, sort_keys=False)
    return paths


def contact_labels(frame: pd.DataFrame) -> dict[str, str]:
    """contact id -> "name (first 8 characters of the id)" when the frame holds names, else {}.

    The one label rule of the heatmap and the explorer (names or pseudonyms, whatever the frame
    holds).

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1234567890"], "name": ["Ada"]})
        >>> contact_labels(f)
        {'c1234567890': 'Ada (c1234567)'}
    """
    if "name" not in frame.columns or frame.empty:
        return {}
    known = frame.dropna(subset=["contact_id", "name"]).drop_duplicates("contact_id")
    return {
        str(c): f"{n} ({str(c)[:8]})"
        for c, n in zip(known["contact_id"], known["name"], strict=True)
    }


FOCUS_KEYS = ("split_contacts", "split_pairs", "missing_assignments")


def policy_contact_level(
    policy: ContactLevelSource | None, result: AuditResult | None = None
) -> list[str]:
    """The policy's contact-level tags: the declared ones, and with an audit's result the tags
    its patterns matched (``result.options["contact_level"]``)."""
    declared = list(getattr(policy, "contact_level", None) or [])
    resolved = (result.options.get("contact_level") if result is not None else None) or []
    return list(dict.fromkeys(declared + list(resolved)))


def focus_summary(result: AuditResult, policy: ContactLevelSource | None = None) -> dict[str, int]:
    """The audit's split numbers counted over the policy's contact-level tags (as the heatmap).

    Without a policy (or one naming no contact-level tag) this is the all-tags summary. With a
    policy audited by `run_audit`, its families count (``result.policy_gaps``): a contact
    carrying only an alias is split until the canonical spelling is on all its opportunities
    (and, with ``normalize``, until no alias is left); for a plain tag this is its split pairs.

    Example:
        >>> from types import SimpleNamespace
        >>> from toolkit.audit import run_audit
        >>> f = pd.DataFrame({"opportunity_id": ["o1", "o2"], "contact_id": ["c", "c"],
        ...                   "tags": [["Python", "Berlin"], []]})
        >>> focus_summary(run_audit(f), SimpleNamespace(contact_level=["Python"]))["split_pairs"]
        1
    """
    tags = policy_contact_level(policy)
    summary = {k: int(v) for k, v in result.summary.items()}
    if result.policy_gaps is not None and policy is not None:
        counts = family_summary(result.policy_gaps)
        return dict(summary, **{k: counts[k] for k in FOCUS_KEYS})
    if not tags:
        return summary
    wanted = set(tags)
    pairs = result.split_pairs.loc[result.split_pairs["tag"].isin(wanted)]
    missing = result.missing_assignments.loc[result.missing_assignments["tag"].isin(wanted)]
    return dict(
        summary,
        split_contacts=int(pairs["contact_id"].nunique()),
        split_pairs=len(pairs),
        missing_assignments=len(missing),
    )


def audit_meta(
    meta: Mapping[str, Any], result: AuditResult, policy: ContactLevelSource | None = None
) -> dict[str, Any]:
    """The snapshot's metadata plus the policy summary `summary.json` carries (as the CLI's)."""
    out = dict(meta or {})
    tags = policy_contact_level(policy, result)
    if tags or getattr(policy, "patterns", None):
        focus = focus_summary(result, policy)
        out["policy"] = str(getattr(policy, "source", "") or "")
        out["policy_summary"] = {
            "contact_level_tags": len(set(tags)),
            "contact_level_split_pairs": focus["split_pairs"],
            "contact_level_split_contacts": focus["split_contacts"],
            "contact_level_missing_assignments": focus["missing_assignments"],
        }
        if result.policy_gaps is not None:
            removals = family_summary(result.policy_gaps)["alias_removals"]
            out["policy_summary"]["contact_level_alias_removals"] = removals
    return out
