"""`lever-tags snapshot` and `lever-tags audit`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from toolkit.commands import EXIT_FAILURES, EXIT_OK, UsageError, add_notify_option, command


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"lever-tags: warning: {line}", file=sys.stderr)


@command
def _add_snapshot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "snapshot",
        help="fetch every considered opportunity into a Parquet snapshot",
        description="Fetch every opportunity the key can read (confidential included) into "
        "FILE (Parquet) and FILE.meta.json.",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="Parquet file to write")
    p.add_argument("--exclude-archived", action="store_true", help="leave archived ones out")
    p.add_argument(
        "--with-personal", action="store_true", help="keep names and emails (personal data)"
    )
    p.add_argument(
        "--refresh",
        action="store_true",
        help="FILE exists: fetch only what changed since it and merge",
    )
    p.add_argument(
        "--journal",
        action="append",
        default=[],
        metavar="JOURNAL",
        help="with --refresh: also re-read the opportunities this apply/rollback journal wrote "
        "(Lever does not promise that a tag write moves updatedAt); repeatable",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=8,
        help="the fewest windows listed at once; more when latency needs them (default 8)",
    )
    p.set_defaults(func=_cmd_snapshot)


def _cmd_snapshot(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {args.workers})")
    out = Path(args.out)
    if not out.parent.exists():
        raise UsageError(f"the folder of --out does not exist: {out.parent}")
    if out.is_dir():
        raise UsageError(f"--out must be a file name, and {out} is a folder")
    fetch: dict[str, Any] = {}
    if not args.refresh and not args.journal:
        # imported when the command runs (`lever-tags --help` loads no client); the listing
        # starts now and runs while pandas and the workflows load (a second or two)
        from toolkit.client import LeverClient
        from toolkit.snapshot.listing import start_fetch

        client = LeverClient.from_env()
        options = {
            "include_archived": not args.exclude_archived,
            "workers": args.workers,
            "with_personal": args.with_personal,
        }
        fetch = {"client": client, "fetched": start_fetch(client, **options)}
    # imported when the command runs: `lever-tags --help` must not load pandas
    from toolkit import workflows

    snap = workflows.take_snapshot(
        out,
        refresh=args.refresh,
        journals=args.journal,
        include_archived=not args.exclude_archived,
        with_personal=args.with_personal,
        workers=args.workers,
        **fetch,
    )
    _warn(snap.warnings)
    info = snap.info
    stats = info.fetch
    print(
        f"{out}: {info.counts.get('opportunities', len(snap.frame))} opportunities"
        + (f" in {stats.seconds} s ({stats.requests} requests)" if stats else "")
    )
    return EXIT_OK


@command
def _add_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="find tags split across a contact's opportunities; write summary.json and CSVs",
        description="Write DIR/summary.json, DIR/split_pairs.csv, DIR/missing_assignments.csv "
        "and per-tag statistics. Exit 0 whenever the report was written.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the report files")
    p.add_argument("--snapshot", metavar="FILE", help="audit this saved snapshot (offline)")
    p.add_argument("--exclude-archived", action="store_true", help="leave archived ones out")
    p.add_argument("--policy", metavar="FILE", help="policy YAML (archived handling, tags)")
    p.add_argument(
        "--fail-on-gaps",
        action="store_true",
        help="exit 1 when split pairs exist (schedulers); with --policy, only split pairs of "
        "its contact-level tags count (posting tags are split by design)",
    )
    people = p.add_mutually_exclusive_group()
    people.add_argument(
        "--with-names",
        action="store_true",
        help="add contacts' names and emails to the CSVs (personal data)",
    )
    people.add_argument(
        "--redact",
        action="store_true",
        help="add names and emails as stable pseudonyms (Person-3f9a2c51d0e7), safe to share",
    )
    add_notify_option(p)
    p.add_argument(
        "--notify-above",
        type=int,
        default=0,
        metavar="N",
        help="with --notify: post when more than N split pairs count (default 0; with --policy, "
        "those of its contact-level tags)",
    )
    p.set_defaults(func=_cmd_audit)


def _cmd_audit(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` must not load pandas or the client
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit import workflows
    from toolkit.notify import Notifier, escape, gap_text, resolve_url

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder, and {out} is a file")
    if args.notify_above < 0:
        raise UsageError(f"--notify-above must be 0 or more (got {args.notify_above})")
    notifier = Notifier(resolve_url(args.notify), "lever-tags audit")
    with notifier.on_error():
        run = workflows.audit_account(
            out,
            snapshot_path=args.snapshot,
            policy_path=args.policy,
            include_archived=not args.exclude_archived,
            personal=workflows.personal_data(args.with_names, args.redact),
        )
    if run.gaps > args.notify_above:
        where = run.snapshot.info.host or "a saved snapshot"
        notifier.send(f"{escape(where)}: " + gap_text(run.gaps, run.gaps_by_tag, str(out)))
    _warn(run.warnings)
    s = run.result.summary
    print(
        f"{s['opportunities']} opportunities, {s['contacts']} contacts "
        f"({s['multi_opportunity_contacts']} with several opportunities): "
        f"{s['split_pairs']} split pairs on {s['split_contacts']} contacts, "
        f"{s['missing_assignments']} missing assignments"
    )
    if run.policy is not None:
        tags = len(run.policy.contact_level)
        print(f"{run.gaps} split pairs on the policy's {tags} contact-level tags")
    else:
        snap = f" --snapshot {args.snapshot}" if args.snapshot else ""
        print(
            "no policy: these count every tag, posting tags split by design included; "
            f"write one next: lever-tags policy draft{snap} --out policy.yaml"
        )
    print(f"report: {run.paths['summary'].parent}")
    if args.fail_on_gaps and run.gaps > 0:
        return EXIT_FAILURES
    return EXIT_OK
