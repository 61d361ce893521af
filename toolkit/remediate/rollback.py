"""Rollback: the inverse of what a journal says its run changed, run under its own journal."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from toolkit.files import sidecar
from toolkit.remediate.apply import (
    check_perform_as,
    check_plan_account,
    client_host,
    dry_run_result,
    run_with_ledger,
)
from toolkit.remediate.journal import Journal
from toolkit.remediate.journal_schema import DONE, FAILED, INTENT, JournalError
from toolkit.remediate.plan import PLAN_COLUMNS, Plan
from toolkit.remediate.planmeta import PlanMeta
from toolkit.remediate.reads import DEFAULT_WORKERS, is_transient
from toolkit.remediate.result import ApplyResult
from toolkit.remediate.runner import RunOptions

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import TagClient


def default_rollback_path(journal_path: str | os.PathLike) -> Path:
    """`j.sqlite` -> `j.rollback.sqlite` beside it."""
    return sidecar(journal_path, ".rollback.sqlite")


def inverse_plan(journal_path: str | os.PathLike) -> Plan:
    """The plan that undoes what a journal's run changed, and nothing else (pure read).

    For each call that was (or may have been) written: an add is undone by removing only the
    tags that were not there before the run; a remove by re-adding only the tags that were.

    Raises:
        JournalError: the journal is missing or belongs to a run still holding its lock.
    """
    with Journal(journal_path, lock=True, create=False) as journal:
        run = journal.run()
        if run is None:
            raise JournalError(f"{journal_path} holds no run to roll back")
        calls = journal.calls([DONE, INTENT, FAILED])
    records: list[tuple[str, str, str, str]] = []
    calls = [c for c in calls if c.state != FAILED or is_transient(c.status)]  # 400/403: unwritten
    for call in calls:
        before = set(call.before_tags) if call.before_tags is not None else None
        if call.op == "add":
            tags = [t for t in call.tags if before is None or t not in before]
            inverse = "remove"
        else:
            tags = [t for t in call.tags if before is None or t in before]
            inverse = "add"
        records.extend((call.opportunity_id, call.contact_id, inverse, t) for t in tags)
    rows = pd.DataFrame.from_records(records, columns=PLAN_COLUMNS).astype(object)
    rows = rows.drop_duplicates().reset_index(drop=True)
    source = PlanMeta.from_dict(run["plan_meta"])
    meta = {
        "mode": "rollback",
        "sources": _undone_sources(rows, source.sources or {}),
        "source_journal": str(journal_path),
        "source_kind": run["kind"],
        "source_plan_sha256": run["plan_sha256"],
        "snapshot": {
            "watermark": source.snapshot_ref.watermark,
            "confidential_access": source.snapshot_ref.confidential_access,
            "account": (run["params"] or {}).get("account"),
        },
    }
    return Plan(rows=rows, meta=meta, before=left_by_run(calls))


def left_by_run(calls: list[Any]) -> dict[str, dict[str, Any]]:
    """The tags a run left on each opportunity it wrote: its before-state plus its own writes.

    What a rollback assumes (its plan's ``before``): its drift check then reports only changes
    made by others since the run, not the run's own writes. An opportunity whose before-state
    the journal does not know is left out (the rollback treats it as unknown and reads it).

    Example:
        >>> from types import SimpleNamespace as C
        >>> left_by_run([C(opportunity_id="o1", contact_id="c", op="add", tags=["b"],
        ...               before_tags=["a"])])
        {'o1': {'contact_id': 'c', 'tags': ['a', 'b']}}
    """
    left: dict[str, dict[str, Any]] = {}
    for call in sorted(calls, key=lambda c: c.op != "add"):  # adds first, as the run wrote them
        if call.before_tags is None:
            continue
        entry = left.setdefault(
            call.opportunity_id, {"contact_id": call.contact_id, "tags": list(call.before_tags)}
        )
        tags = entry["tags"]
        if call.op == "add":
            tags.extend(t for t in call.tags if t not in tags)
        else:
            entry["tags"] = [t for t in tags if t not in set(call.tags)]
    return left


def _undone_sources(
    rows: pd.DataFrame, sources: dict[str, dict[str, list[str]]]
) -> dict[str, dict[str, list[str]]]:
    """The sources of the propagated tags a rollback removes (the ledger names them)."""
    out: dict[str, dict[str, list[str]]] = {}
    for opp, op, tag in rows[["opportunity_id", "op", "tag"]].itertuples(index=False, name=None):
        found = (sources.get(opp) or {}).get(tag)
        if op == "remove" and found:
            out.setdefault(opp, {})[tag] = list(found)
    return out


def rollback(
    client: TagClient,
    journal_path: str | os.PathLike,
    *,
    dry_run: bool = True,
    rollback_journal: str | os.PathLike | None = None,
    perform_as: str | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: bool | None = None,
    retry_failed: bool = False,
    stop: threading.Event | None = None,
    ledger: Callable[..., Any] | None = None,
) -> ApplyResult:
    """Undo a run from its journal: remove the tags it added, re-add the ones it removed.

    A tag that was already there before the run stays. The rollback is itself journaled
    (default ``<journal>.rollback.sqlite``) and resumable; it re-reads the touched opportunities
    first (one listing since the source snapshot) and writes only what still differs.

    Args:
        client: a `LeverClient`.
        journal_path: the journal of the run to undo.
        dry_run: write nothing (the default).
        rollback_journal: where to journal the rollback.
        perform_as: Lever user id; default the one the run used.
        workers, progress, retry_failed, stop, ledger: as in `apply_plan`.

    Example:
        >>> rollback(client, "j.sqlite", dry_run=False).applied  # doctest: +SKIP
    """
    plan = inverse_plan(journal_path)
    account = check_plan_account(client, plan, f"the journal {journal_path}")
    if perform_as is None:
        with Journal(journal_path, lock=False, create=False) as source:
            perform_as = ((source.run() or {}).get("params") or {}).get("perform_as")
    if dry_run:
        return dry_run_result(client, plan, "rollback", True, workers)
    check_perform_as(client, perform_as)
    target = rollback_journal or default_rollback_path(journal_path)
    params = {
        "perform_as": perform_as,
        "workers": workers,
        "host": client_host(client),
        "account": account,
        "source_journal": str(journal_path),
    }
    opts = RunOptions("rollback", perform_as, workers, progress, True, retry_failed, stop)
    # Hold the source journal's lock too: no rollback while its run is still writing.
    with Journal(journal_path, lock=True, create=False):
        return run_with_ledger(client, plan, target, opts, params, ledger)
