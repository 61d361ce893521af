"""`lever-tags plan`, `apply`, `verify` and `rollback`: remediation from the command line.

Each command calls one function of `toolkit.plan` / `toolkit.apply` and prints a short summary.
Exit codes (DESIGN.md): 0 done; 1 some changes failed (apply, rollback) or rows do not hold
(verify); 2 bad input or configuration, a locked or foreign journal, a write of a plan over
--max-changes (a dry run previews it and says a real run would be refused), or authentication
failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.cli import EXIT_FAILURES, EXIT_OK, UsageError, command
from toolkit.sanitize import MAX_TAG_LENGTH, printable, tag_problem

MAX_LISTED = 20
DEFAULT_MAX_CHANGES = 500  # writes respect a maximum unless told otherwise (DESIGN.md)


def _client():
    from toolkit.client import LeverClient

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
        choices=("propagate", "remove", "rename"),
        default="propagate",
        help="propagate: add missing assignments (default); remove: take tags off; "
        "rename: variant -> canonical",
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
    from toolkit.plan import make_plan, skipped_path, snapshot_path
    from toolkit.policy import unknown_tag_warnings
    from toolkit.snapshot import fetch_snapshot, load_snapshot, save_snapshot

    renames = _parse_renames(args.rename)
    if args.mode == "rename":
        if not (renames or args.tag):
            raise UsageError("--mode rename needs --rename OLD=NEW or --tag T (its variants)")
    elif renames:
        raise UsageError("--rename needs --mode rename")
    elif not (args.tag or args.policy):
        raise UsageError("give --tag T (repeatable) or --policy FILE")
    for tag in [*(args.tag or []), *renames, *renames.values()]:  # before any fetch or file
        problem = tag_problem(tag)
        if problem:
            raise UsageError(
                f"bad tag: {problem}; a tag must be non-empty, without control characters, "
                f"at most {MAX_TAG_LENGTH} characters"
            )
    out = Path(args.out)
    if not out.parent.exists():
        raise UsageError(f"the folder of --out does not exist: {out.parent}")
    if out.is_dir():
        raise UsageError(f"--out must be a file name, and {out} is a folder")
    policy = None
    if args.policy:
        from toolkit.policy import load_policy

        policy = load_policy(args.policy)
    include_archived = None if not args.exclude_archived else False
    if args.snapshot:
        snap = load_snapshot(args.snapshot)
    else:
        snap = fetch_snapshot(_client(), include_archived=True)
        save_snapshot(snap, snapshot_path(out))
    known = {t for tags in snap.frame["tags"] for t in tags}
    named = list(args.tag) + ([old for old in renames] if renames else [])
    for warning in [*snap.warnings, *unknown_tag_warnings(named, known)]:
        print(f"lever-tags: warning: {warning}", file=sys.stderr)
    plan = make_plan(
        snap,
        mode=args.mode,
        tags=args.tag or None,
        policy=policy,
        renames=renames or None,
        include_archived=include_archived,
    )
    if args.policy:
        plan.meta["policy_path"] = str(args.policy)
    if args.snapshot:
        plan.meta["snapshot"]["path"] = str(args.snapshot)
    else:
        plan.meta["snapshot"]["path"] = str(snapshot_path(out))
    plan.save(out)
    counts = plan.counts()
    print(
        f"{out}: {counts['rows']} changes ({counts['add']} add, {counts['remove']} remove) "
        f"on {counts['opportunities']} opportunities in {counts['calls']} calls"
    )
    if len(plan.skipped):
        reasons = plan.skipped["reason"].value_counts().to_dict()
        detail = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        print(f"skipped: {len(plan.skipped)} ({detail}); see {skipped_path(out)}")
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
    p.add_argument("plan", metavar="PLAN", help="plan CSV from `lever-tags plan`")
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
    _add_write_options(p)
    p.set_defaults(func=_cmd_apply)


def _cmd_apply(args: argparse.Namespace) -> int:
    from toolkit.apply import apply_plan, default_journal_path
    from toolkit.errors import ConfigurationError
    from toolkit.plan import load_plan

    _positive("--max-changes", args.max_changes)
    _positive("--workers", args.workers)
    plan = load_plan(args.plan)
    if not args.yes:
        try:
            client = _client()
        except ConfigurationError as exc:
            print(f"lever-tags: note: no drift check ({exc})", file=sys.stderr)
            client = None
        result = apply_plan(
            client, plan, dry_run=True, max_changes=args.max_changes, workers=args.workers
        )
        _print_result(result)
        table = result.changes_by_tag
        for row in table.head(MAX_LISTED).itertuples(index=False):
            print(f"  {row.op:<6} {row.opportunities:>6}  {printable(row.tag)}")
        if len(table) > MAX_LISTED:
            print(f"  ... {len(table) - MAX_LISTED} more (op, tag) pairs")
        if result.over_max_changes:
            print("raise --max-changes or split the plan before adding --yes")
        else:
            print("add --yes to write")
        return EXIT_OK
    journal = args.journal or default_journal_path(args.plan)
    result = apply_plan(
        _client(),
        plan,
        journal_path=journal,
        dry_run=False,
        max_changes=args.max_changes,
        perform_as=args.perform_as,
        workers=args.workers,
        progress=args.progress,
        retry_failed=args.retry_failed,
    )
    _print_lines(result)
    return EXIT_OK if result.ok else EXIT_FAILURES


def _print_lines(result) -> None:
    """The summary, the failures, then the hints (how to retry) last."""
    lines = result.summary_lines()
    hints = [line for line in lines if line.endswith("to retry them")]
    for line in lines:
        if line not in hints:
            print(line)
    _list_failures(result)
    for line in hints:
        print(line)


def _list_failures(result) -> None:
    outcomes = result.outcomes
    if outcomes.empty:
        return
    bad = outcomes[outcomes["state"].isin(["failed", "not_found"])]
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
    p.add_argument("plan", metavar="PLAN", help="plan CSV")
    p.add_argument(
        "--journal",
        metavar="FILE",
        help="the apply's journal (default <plan>.journal.sqlite when it exists): rows it did "
        "not write on purpose (drift, anonymized) are reported apart and do not fail verify",
    )
    p.add_argument("--out", metavar="FILE", help="write the rows that do not hold (CSV)")
    p.add_argument("--workers", type=int, default=8, help="concurrent reads (default 8)")
    p.set_defaults(func=_cmd_verify)


def _verify_journal(args: argparse.Namespace, plan) -> Path | None:
    """--journal, else the plan's default journal when it exists and is this plan's."""
    from toolkit.apply import default_journal_path
    from toolkit.journal import Journal, JournalError

    if args.journal:
        if not Path(args.journal).is_file():
            raise UsageError(f"journal not found: {args.journal}")
        return Path(args.journal)
    path = default_journal_path(args.plan)
    if not path.is_file():
        return None
    try:
        with Journal(path, lock=False, create=False) as journal:
            run = journal.run()
    except JournalError:
        run = None
    if not run or run["kind"] != "apply" or run["plan_sha256"] != plan.sha256:
        print(f"lever-tags: note: {path} is not this plan's journal; not used", file=sys.stderr)
        return None
    return path


def _on_purpose_line(on_purpose) -> str:
    """`not written on purpose: 3 (drift)` or `... 3 (2 drift, 1 anonymized)`."""
    kinds = on_purpose["reason"].str.extract(r"\((.*)\)", expand=False).value_counts()
    if len(kinds) == 1:
        detail = str(kinds.index[0])
    else:
        detail = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"not written on purpose: {len(on_purpose)} ({detail})"


def _cmd_verify(args: argparse.Namespace) -> int:
    from toolkit.apply import verify_failures, verify_on_purpose, verify_plan
    from toolkit.artifacts import write_csv_atomic
    from toolkit.plan import load_plan

    _positive("--workers", args.workers)
    plan = load_plan(args.plan)
    journal = _verify_journal(args, plan)
    bad = verify_plan(_client(), plan, journal, workers=args.workers)
    if args.out:
        write_csv_atomic(args.out, bad)
    failures, on_purpose = verify_failures(bad), verify_on_purpose(bad)
    total = len(plan.rows)
    if bad.empty:
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
        print(_on_purpose_line(on_purpose) + f"; see the journal {journal}")
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
    from toolkit.apply import rollback

    _positive("--workers", args.workers)
    if not Path(args.journal).is_file():
        raise UsageError(f"journal not found: {args.journal}")
    result = rollback(
        _client(),
        args.journal,
        dry_run=not args.yes,
        rollback_journal=args.rollback_journal,
        perform_as=args.perform_as,
        workers=args.workers,
        progress=args.progress,
        retry_failed=args.retry_failed,
    )
    if result.dry_run:
        _print_result(result)
        print("add --yes to write")
        return EXIT_OK
    _print_lines(result)
    return EXIT_OK if result.ok else EXIT_FAILURES
