"""What an apply or a rollback did: `ApplyResult`, with its summary lines and hints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from toolkit.enums import OPEN_STATES
from toolkit.remediate.drift import DRIFT_COLUMNS
from toolkit.remediate.journal_schema import DONE, FAILED
from toolkit.remediate.plan import SKIPPED_COLUMNS
from toolkit.remediate.reads import http_status, is_transient


@dataclass
class ApplyResult:
    """What an apply (or rollback) did. Counts of changes are tags; calls are requests.

    Attributes:
        kind: ``apply`` or ``rollback``.
        dry_run: True when nothing was written.
        journal_path: the run journal (None for a dry run).
        planned_changes, planned_calls: the plan's rows and (opportunity, op) groups.
        applied, failed, not_found: changes by outcome over the whole run (all sessions).
        skipped: changes not written: the plan's skipped rows, rows dropped by the drift
            re-plan, and calls found to have nothing left to do.
        pending: changes still to do (an aborted run).
        calls: write calls this invocation sent (retries not counted).
        attempts: HTTP attempts those calls took (retries counted).
        resumed: this invocation continued an earlier run of the same journal.
        elapsed: seconds spent writing in this invocation.
        writes_per_second: `calls` / `elapsed`.
        stats: the client's stats delta over this invocation.
        outcomes: one row per call (the journal's calls table).
        drift: the opportunities found changed since the snapshot.
        dropped: plan rows not written because of drift, with reason.
        changes_by_tag: (op, tag, opportunities) still to be written (a dry run's preview).
        max_changes: the limit asked for (None: no limit).
        plan_rows: the plan's rows as given, before any drift re-plan (what max_changes counts).
        over_max_changes: a dry run of a plan a real run would refuse (more rows than
            max_changes).
        retried: failed calls this invocation retried (``retry_failed``).
        notes: lines worth telling the user (a changed perform_as, ...); in `summary_lines`.
        stopped: a signal stopped the run cleanly (calls left pending for a resume).
        limit, limited_calls: ``--limit N`` and the calls it held back for a later invocation
            (the same command resumes the journal and writes them, each once).
    """

    kind: str = "apply"
    dry_run: bool = True
    journal_path: str | None = None
    planned_changes: int = 0
    planned_calls: int = 0
    applied: int = 0
    failed: int = 0
    not_found: int = 0
    skipped: int = 0
    pending: int = 0
    calls: int = 0
    attempts: int = 0
    resumed: bool = False
    elapsed: float = 0.0
    writes_per_second: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)
    drift: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DRIFT_COLUMNS))
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    changes_by_tag: pd.DataFrame = field(default_factory=pd.DataFrame)
    max_changes: int | None = None
    plan_rows: int = 0
    over_max_changes: bool = False
    retried: int = 0
    notes: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def calls_progress(self) -> tuple[int, int]:
        """(calls finished, calls in the journal) over the whole run (all sessions).

        Example:
            >>> r = ApplyResult(outcomes=pd.DataFrame({"state": ["done", "pending", "noop"]}))
            >>> r.calls_progress
            (2, 3)
        """
        outcomes = self.outcomes
        if outcomes.empty or "state" not in outcomes.columns:
            return 0, 0
        open_calls = int(outcomes["state"].isin(OPEN_STATES).sum())
        return len(outcomes) - open_calls, len(outcomes)

    limit: int | None = None
    limited_calls: int = 0

    @property
    def ok(self) -> bool:
        """No change failed and none is left pending (but those --limit held back on purpose)."""
        done = self.pending == 0 or self.limited_calls > 0
        return self.failed == 0 and self.not_found == 0 and done

    @property
    def permanent_failures(self) -> int:
        """Failed calls Lever refused (400/403...): a plain resume does not retry them."""
        outcomes = self.outcomes
        if self.dry_run or outcomes.empty or "state" not in outcomes.columns:
            return 0
        failed = outcomes[outcomes["state"] == FAILED]
        return sum(1 for status in failed["status"] if not is_transient(http_status(status)))

    @property
    def transient_failures(self) -> int:
        """Failed calls that may succeed later (429/5xx after the retries, a lost connection)."""
        outcomes = self.outcomes
        if self.dry_run or outcomes.empty or "state" not in outcomes.columns:
            return 0
        return int((outcomes["state"] == FAILED).sum()) - self.permanent_failures

    def summary_lines(self) -> list[str]:
        """A short human summary (what the CLI prints)."""
        what = "rollback" if self.kind == "rollback" else "apply"
        if self.dry_run:
            lines = [
                f"dry run ({what}): {self.planned_changes} changes in {self.planned_calls} "
                f"calls would be written{self._rollback_split()}; nothing was written"
            ]
            if len(self.drift) and self.kind == "apply":
                lines.append(
                    f"drift: {int(self.drift['changed'].sum())} of the plan's opportunities "
                    f"changed since the snapshot; {len(self.dropped)} changes dropped"
                )
            if self.over_max_changes:
                lines.append(
                    f"a real run would be refused by --max-changes {self.max_changes}: the plan "
                    f"has {self.plan_rows} changes"
                )
            return [*lines, *self.notes]
        lines = [
            f"{what}: {self.done_words()}, {self.failed} failed, "
            f"{self.not_found} not found (deleted), {self.skipped} skipped"
            + (f", {self.pending} pending" if self.pending else "")
            + f" - journal {self.journal_path}",
            f"{self.calls} write calls ({self.attempts} attempts) in {self.elapsed:.1f} s, "
            f"{self.writes_per_second:.1f} writes/s"
            + (" (resumed)" if self.resumed else "")
            + (f"; {self.retried} failed calls retried" if self.retried else ""),
        ]
        if len(self.dropped):
            lines.append(f"drift: {len(self.dropped)} changes dropped (already done or changed)")
        lines.extend(self.notes)
        return [*lines, *self.hint_lines()]

    def done_words(self) -> str:
        """What the run wrote, in its own words: "N applied"; for a rollback "N removed, M
        re-added" (it takes off the tags its run added and puts back the ones it removed)."""
        if self.kind != "rollback":
            return f"{self.applied} applied"
        removed, readded = self._by_op(done_only=True)
        return f"{removed} removed, {readded} re-added"

    def _rollback_split(self) -> str:
        if self.kind != "rollback" or not self.planned_changes:
            return ""
        removed, readded = self._by_op(done_only=False)
        return f" ({removed} to remove, {readded} to re-add)"

    def _by_op(self, *, done_only: bool) -> tuple[int, int]:
        """Changes (tags) of the outcomes by op: (removes, adds); only written ones if asked."""
        outcomes = self.outcomes
        if outcomes.empty or not {"op", "tags"} <= set(outcomes.columns):
            return 0, 0
        if done_only and "state" in outcomes.columns:
            outcomes = outcomes[outcomes["state"] == DONE]
        sizes = outcomes["tags"].map(len)
        removes = int(sizes[outcomes["op"] == "remove"].sum())
        return removes, int(sizes[outcomes["op"] == "add"].sum())

    def hint_lines(self) -> list[str]:
        """What to do about failed calls (the last lines of `summary_lines`; the CLI prints them
        after the list of failures)."""
        if self.dry_run:
            return []
        hints = []
        if self.limited_calls:
            hints.append(
                f"stopped after --limit {self.limit} calls as asked: {self.limited_calls} calls "
                f"({self.pending} changes) left; run the same command without --limit to write "
                "them (it resumes this journal: nothing is written twice), or with --limit "
                "again for another stage"
            )
        if self.transient_failures:
            hints.append(
                f"{self.transient_failures} calls failed for now (rate limit, server, "
                "connection); run the same command again to retry them"
            )
        if self.permanent_failures:
            hints.append(
                f"{self.permanent_failures} calls were refused by Lever (see above); fix the "
                "cause, then run again with --retry-failed to retry them"
            )
        return hints
