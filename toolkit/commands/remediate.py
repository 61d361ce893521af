"""`lever-tags plan`, `apply`, `verify` and `rollback`: remediation from the command line.

Each command calls one function of `toolkit.workflows` and prints a short summary.
Exit codes (docs/architecture.md): 0 done; 1 some changes failed (apply, rollback) or rows do
not hold (verify); 2 bad input or configuration, a locked or foreign journal, a write of a plan over
--max-changes (a dry run previews it and says a real run would be refused), or authentication
failure.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.commands import (
    EXIT_FAILURES,
    EXIT_OK,
    UsageError,
    add_ledger_options,
    add_notify_option,
    command,
)
from toolkit.enums import FAILURE_STATES, MODES
from toolkit.sanitize import printable

if TYPE_CHECKING:  # annotations only: the modules load when the command runs
    from toolkit.notify import Notifier
    from toolkit.remediate.stops import StopRequest

if TYPE_CHECKING:
    from toolkit.client import LeverClient
    from toolkit.remediate.result import ApplyResult

MAX_LISTED = 20
DEFAULT_MAX_CHANGES = 500  # writes respect a maximum unless told otherwise (docs/architecture.md)


def _client() -> LeverClient:
    from toolkit.client import LeverClient  # requests and tenacity: when a command runs

    return LeverClient.from_env()


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{name} must be at least 1 (got {value})")


def _add_write_options(p: argparse.ArgumentParser) -> None:
    """The options `apply` and `rollback` share: both write, journaled and resumable."""
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="on resume, retry calls Lever refused (400/403): read first, write if still needed",
    )
    p.add_argument("--workers", type=int, default=8, help="concurrent calls (default 8)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    add_ledger_options(p)


def _print_result(result) -> None:
    for line in result.summary_lines():
        print(line)


# -- plan ---------------------------------------------------------------------------------------


@command
def _add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="plan tag changes (propagate, remove, rename) into a reviewable CSV",
        description="Write one row per (opportunity_id, contact_id, op, tag) to --out, plus "
        "<plan>.meta.json, <plan>.skipped.csv (rows left out, with the reason) and "
        "<plan>.before.json (the tag sets the plan assumed). Without --snapshot a fresh one is "
        "fetched and saved as <plan>.snapshot.parquet. Nothing is written to Lever.",
    )
    p.add_argument("--tag", action="append", default=[], metavar="T", help="exact tag (repeatable)")
    p.add_argument("--policy", metavar="FILE", help="policy YAML: contact_level tags, never_touch")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="propagate",
        help="propagate: add missing assignments (default); remove: take tags off; "
        "rename: variant -> canonical; add: put the tags on every opportunity of --contacts",
    )
    p.add_argument(
        "--contacts",
        metavar="FILE",
        help="plan for these people only: contact ids or emails, one a line or a CSV column "
        "(contact_id or email); emails are matched through the snapshot's personal data or "
        "Lever; rows matching nobody, or an email several contacts share, go to "
        "<plan>.skipped.csv with the reason",
    )
    p.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename mode: replace OLD by NEW (repeatable)",
    )
    p.add_argument("--snapshot", metavar="FILE", help="plan from this saved snapshot")
    p.add_argument("--exclude-archived", action="store_true", help="leave archived ones out")
    p.add_argument("--out", required=True, metavar="FILE", help="plan CSV to write")
    p.add_argument(
        "--with-names",
        action="store_true",
        help="also write <plan>.worklist.xlsx and .csv: one row per person and opportunity with "
        "name, posting, stage, owner, a link to Lever and what will change (personal data); "
        "delete rows in it and give it to `apply` to write only the rows left",
    )
    p.set_defaults(func=_cmd_plan)


def _parse_renames(values: list[str]) -> dict[str, str]:
    renames: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old or not new:
            raise UsageError(f"--rename takes OLD=NEW (got {value!r})")
        if old in renames and renames[old] != new:
            raise UsageError(f"--rename {old!r} given twice with different targets")
        renames[old] = new
    return renames


def _cmd_plan(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit import workflows
    from toolkit.remediate.contacts import reason_kind
    from toolkit.remediate.planfile import skipped_path

    renames = _parse_renames(args.rename)
    out = Path(args.out)
    if not out.parent.exists():
        raise UsageError(f"the folder of --out does not exist: {out.parent}")
    if out.is_dir():
        raise UsageError(f"--out must be a file name, and {out} is a folder")
    run = workflows.plan_changes(
        out,
        snapshot_path=args.snapshot,
        mode=args.mode,
        tags=args.tag,
        policy_path=args.policy,
        renames=renames,
        include_archived=not args.exclude_archived,
        contacts_path=args.contacts,
        with_names=args.with_names,
    )
    for warning in run.warnings:
        print(f"lever-tags: warning: {warning}", file=sys.stderr)
    plan = run.plan
    counts = plan.counts()
    print(
        f"{out}: {counts['rows']} changes ({counts['add']} add, {counts['remove']} remove) "
        f"on {counts['opportunities']} opportunities in {counts['calls']} calls"
    )
    if len(plan.skipped):
        reasons = plan.skipped["reason"].map(reason_kind).value_counts().to_dict()
        detail = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        print(f"skipped: {len(plan.skipped)} ({detail}); see {skipped_path(out)}")
    if run.worklist:
        print(
            f"work list: {run.worklist['xlsx']} and {run.worklist['csv']} (delete the rows not "
            "to write; `lever-tags apply` takes the sheet too)"
        )
    print(f"review it, then: lever-tags apply {out}  (dry run; add --yes to write)")
    return EXIT_OK


# -- apply --------------------------------------------------------------------------------------


@command
def _add_apply(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apply",
        help="apply a plan: dry run unless --yes; journaled, resumable",
        description="Without --yes: a dry run that writes nothing and shows the changes per op "
        "and tag. With --yes: check drift since the snapshot, then write one call per "
        "(opportunity, op) under the rate limit, journaling each intent and outcome. Run it "
        "again with the same --journal to resume a killed run (transient failures are retried; "
        "calls Lever refused, e.g. for a bad --perform-as, only with --retry-failed). A "
        "--perform-as given on resume that differs from the journal's is recorded in the "
        "journal and used from then on; without it the journal's is used.",
    )
    p.add_argument(
        "plan",
        metavar="PLAN",
        help="plan CSV from `lever-tags plan`, or its work-list sheet (.xlsx, or .csv from "
        "Google Sheets) with rows deleted: only the rows left are written",
    )
    p.add_argument(
        "--plan",
        dest="plan_file",
        metavar="FILE",
        help="the plan CSV a work-list sheet was written from (default: beside the sheet)",
    )
    p.add_argument("--yes", action="store_true", help="really write (default: dry run)")
    p.add_argument(
        "--journal", metavar="FILE", help="run journal (SQLite); default <plan>.journal.sqlite"
    )
    p.add_argument(
        "--max-changes",
        type=int,
        default=DEFAULT_MAX_CHANGES,
        metavar="N",
        help=f"refuse to write a plan with more rows (default {DEFAULT_MAX_CHANGES}; a dry run "
        "says so and previews it)",
    )
    p.add_argument("--perform-as", metavar="USER_ID", help="Lever user the changes are by")
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="a staged run: write the first N calls, then stop cleanly; the same command "
        "without --limit resumes the journal and writes the rest, each call once "
        "(--max-changes then counts what N calls can write)",
    )
    _add_write_options(p)
    add_notify_option(p)
    p.set_defaults(func=_cmd_apply)


def _cmd_apply(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load requests
    from toolkit.notify import Notifier, escape, resolve_url

    notifier = Notifier(resolve_url(args.notify), f"lever-tags apply {escape(args.plan)}")
    with notifier.on_error():
        return _run_apply(args, notifier)


def _run_apply(args: argparse.Namespace, notifier: Notifier) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit import workflows
    from toolkit.notify import escape
    from toolkit.remediate.outcome import resume_command
    from toolkit.remediate.stops import stop_on_signals

    _positive("--max-changes", args.max_changes)
    _positive("--workers", args.workers)
    _positive("--limit", args.limit)
    plan = workflows.open_plan(args.plan, args.plan_file)
    sheet = plan.info.worklist
    if sheet:
        print(
            f"{args.plan}: {sheet['opportunities']} of {sheet['opportunities_in_plan']} "
            f"opportunities left in the sheet: {len(plan.rows)} changes of {sheet['plan_path']}"
        )
    if not args.yes:
        client, note = workflows.client_for(dry_run=True)
        if note:
            print(f"lever-tags: note: {note}", file=sys.stderr)
        result = workflows.apply_changes(
            client, plan, dry_run=True, max_changes=args.max_changes, workers=args.workers
        )
        _print_result(result)
        table = result.changes_by_tag
        for row in table.head(MAX_LISTED).itertuples(index=False):
            print(f"  {row.op:<6} {row.opportunities:>6}  {printable(row.tag)}")
        if len(table) > MAX_LISTED:
            print(f"  ... {len(table) - MAX_LISTED} more (op, tag) pairs")
        if args.limit is not None and args.limit < result.planned_calls:
            print(
                f"with --yes and --limit {args.limit}: the first {args.limit} of "
                f"{result.planned_calls} calls, then the same command without --limit"
            )
        elif result.over_max_changes:
            print("stage it with --limit N, raise --max-changes, or split the plan before --yes")
        else:
            print("add --yes to write")
        return EXIT_OK
    with stop_on_signals() as stop:
        result = workflows.apply_changes(
            _client(),
            plan,
            journal_path=args.journal,
            dry_run=False,
            max_changes=args.max_changes,
            perform_as=args.perform_as,
            workers=args.workers,
            progress=args.progress,
            retry_failed=args.retry_failed,
            stop=stop,
            limit=args.limit,
            operator=args.operator,
            reason=args.reason,
        )
    _print_lines(result)
    if result.stopped:
        command = resume_command(result, plan) + _ledger_args(args)
        done, total = result.calls_progress
        notifier.send(f"stopped by {stop.name} after {done} of {total} calls; resume: {command}")
        return _stopped(result, stop, command)
    if not result.ok:
        notifier.send(escape(result.summary_lines()[0]))
    return EXIT_OK if result.ok else EXIT_FAILURES


def _ledger_args(args: argparse.Namespace) -> str:
    """` --operator X --reason Y` as given, for a resume command the ledger reads the same."""
    parts = []
    if args.operator:
        parts += ["--operator", args.operator]
    if args.reason:
        parts += ["--reason", args.reason]
    return "".join(" " + shlex.quote(p) for p in parts)


def _stopped(result: ApplyResult, stop: StopRequest, command: str) -> int:
    """The one line a clean stop ends with; exit 128 + the signal (130 SIGINT, 143 SIGTERM)."""
    done, total = result.calls_progress
    print(
        f"lever-tags: {stop.name}: stopped after {done} of {total} calls; journal "
        f"{result.journal_path}; resume with: {command}",
        file=sys.stderr,
    )
    return stop.exit_code


def _print_lines(result: ApplyResult) -> None:
    """The summary, the failures, then the hints (how to retry) last."""
    hints = result.hint_lines()
    for line in result.summary_lines()[: -len(hints) or None]:
        print(line)
    _list_failures(result)
    for line in hints:
        print(line)


def _list_failures(result) -> None:
    outcomes = result.outcomes
    if outcomes.empty:
        return
    bad = outcomes[outcomes["state"].isin(FAILURE_STATES)]
    for row in bad.head(MAX_LISTED).itertuples(index=False):
        print(
            f"  {row.state}: {row.op} {printable(row.tags)} on {row.opportunity_id}: "
            f"{printable(row.message or row.code or row.status)}"
        )
    if len(bad) > MAX_LISTED:
        print(f"  ... {len(bad) - MAX_LISTED} more; see the journal")


# -- verify -------------------------------------------------------------------------------------


@command
def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="re-read the opportunities of a plan; exit 0 only when every row holds",
    )
    p.add_argument("plan", metavar="PLAN", help="plan CSV, or its work-list sheet")
    p.add_argument(
        "--journal",
        metavar="FILE",
        help="the apply's journal (default <plan>.journal.sqlite when it exists): rows it did "
        "not write on purpose (drift, anonymized) are reported apart and do not fail verify",
    )
    p.add_argument("--out", metavar="FILE", help="write the rows that do not hold (CSV)")
    p.add_argument("--workers", type=int, default=8, help="concurrent reads (default 8)")
    p.set_defaults(func=_cmd_verify)


def _on_purpose_line(counts: dict[str, int]) -> str:
    """`not written on purpose: 3 (drift)` or `... 3 (2 drift, 1 anonymized)`."""
    if len(counts) == 1:
        detail = next(iter(counts))
    else:
        detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    return f"not written on purpose: {sum(counts.values())} ({detail})"


def _cmd_verify(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    from toolkit import workflows

    _positive("--workers", args.workers)
    plan = workflows.open_plan(args.plan)
    run = workflows.verify_changes(
        _client(), plan, journal=args.journal, out=args.out, workers=args.workers
    )
    for note in run.notes:
        print(f"lever-tags: note: {note}", file=sys.stderr)
    total, failures, on_purpose = run.rows, run.failures, run.on_purpose
    if run.bad.empty:
        print(f"verify: all {total} rows hold")
        return EXIT_OK
    if failures.empty:
        print(f"verify: {total - len(on_purpose)} of {total} rows hold; the rest were not written")
    else:
        print(f"verify: {len(failures)} of {total} rows do not hold")
        for row in failures.head(MAX_LISTED).itertuples(index=False):
            print(f"  {row.reason}: {row.op} {row.tag!r} on {row.opportunity_id}")
        if len(failures) > MAX_LISTED:
            more = f"  ... {len(failures) - MAX_LISTED} more"
            print(more + (f" in {args.out}" if args.out else ""))
    if len(on_purpose):
        print(_on_purpose_line(run.on_purpose_counts) + f"; see the journal {run.journal}")
    return EXIT_OK if failures.empty else EXIT_FAILURES


# -- rollback -----------------------------------------------------------------------------------


@command
def _add_rollback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback",
        help="undo what a journal's run changed (dry run unless --yes)",
        description="Remove the tags the run added and re-add the ones it removed; tags that "
        "were there before the run stay. Journaled in <journal>.rollback.sqlite (resumable).",
    )
    p.add_argument("--journal", required=True, metavar="FILE", help="journal of the run")
    p.add_argument("--yes", action="store_true", help="really write (default: dry run)")
    p.add_argument("--rollback-journal", metavar="FILE", help="journal of the rollback")
    p.add_argument("--perform-as", metavar="USER_ID", help="default: the run's user")
    _add_write_options(p)
    p.set_defaults(func=_cmd_rollback)


def _cmd_rollback(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit import workflows
    from toolkit.remediate.outcome import rollback_resume_command
    from toolkit.remediate.stops import stop_on_signals

    _positive("--workers", args.workers)
    with stop_on_signals() as stop:
        result = workflows.roll_back(
            _client(),
            args.journal,
            dry_run=not args.yes,
            rollback_journal=args.rollback_journal,
            perform_as=args.perform_as,
            workers=args.workers,
            progress=args.progress,
            retry_failed=args.retry_failed,
            stop=stop,
            operator=args.operator,
            reason=args.reason,
        )
    if result.dry_run:
        _print_result(result)
        print("add --yes to write")
        return EXIT_OK
    _print_lines(result)
    if result.stopped:
        command = rollback_resume_command(result, args.journal) + _ledger_args(args)
        return _stopped(result, stop, command)
    return EXIT_OK if result.ok else EXIT_FAILURES
