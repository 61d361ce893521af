"""`lever-tags policy draft`: a policy file drafted from the evidence, for the user to review."""

from __future__ import annotations

import argparse
import sys

from toolkit.commands import EXIT_OK, command


@command
def _add_policy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "policy",
        help="draft a policy file from the audit's evidence",
        description="Policy files: `policy draft` writes a valid policy drafted from the "
        "evidence. Nothing is written to Lever.",
    )
    actions = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    d = actions.add_parser(
        "draft",
        help="draft a policy from the evidence (nothing is written to Lever)",
        description="Write FILE: a valid policy whose contact_level holds the tags the "
        "evidence calls contact-level, each with a comment giving its numbers; opportunity-"
        "level and unclear tags are listed in comments, variants beside their canonical "
        "spelling. Without --snapshot a fresh one is fetched and saved as "
        "<policy>.snapshot.parquet. An existing FILE is kept unless --force.",
    )
    d.add_argument("--snapshot", metavar="FILE", help="draft from this saved snapshot (offline)")
    d.add_argument("--out", required=True, metavar="FILE", help="policy YAML to write")
    d.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    d.add_argument("--exclude-archived", action="store_true", help="leave archived ones out")
    d.set_defaults(func=_cmd_policy_draft)


def _cmd_policy_draft(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit import workflows

    run = workflows.draft_policy_file(
        args.out,
        snapshot_path=args.snapshot,
        include_archived=not args.exclude_archived,
        force=args.force,
    )
    for warning in run.snapshot.warnings:
        print(f"lever-tags: warning: {warning}", file=sys.stderr)
    d = run.draft
    print(
        f"{run.path}: {len(d.contact_level)} contact-level tags; {len(d.opportunity_level)} "
        f"opportunity-level and {len(d.unclear)} unclear tags listed in comments"
    )
    snap = f" --snapshot {run.snapshot_path}" if run.snapshot_path else ""
    print(f"review it, then: lever-tags plan --policy {run.path}{snap} --out plan.csv")
    return EXIT_OK
