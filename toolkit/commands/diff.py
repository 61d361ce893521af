"""`lever-tags diff OLD NEW`: what changed between two snapshots or two audit folders.

Exit codes: 0 compared (whatever changed); 2 a path that is neither a snapshot nor an audit
folder.
"""

from __future__ import annotations

import argparse

from toolkit.commands import EXIT_OK, command
from toolkit.sanitize import printable

MAX_LISTED = 20


@command
def _add_diff(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="what changed between two snapshots or audit folders (new, resolved, reappeared)",
        description="Compare OLD and NEW (each a snapshot file or an audit folder): split pairs "
        "new, resolved and reappeared (the person had the tag on every opportunity before; "
        "known from snapshots), tags and variants new and gone, per-tag deltas.",
    )
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--out", metavar="DIR", help="write changes.csv, per_tag.csv, summary JSON")
    p.add_argument("--with-names", action="store_true", help="name the people (personal data)")
    p.set_defaults(func=_cmd_diff)


def _cmd_diff(args: argparse.Namespace) -> int:
    # imported when the command runs: `lever-tags --help` stays light
    from toolkit.workflows.diff import diff_audits

    diff, paths = diff_audits(args.old, args.new, with_names=args.with_names, out=args.out)
    print(diff.headline())
    for row in diff.changes.head(MAX_LISTED).itertuples(index=False):
        who = f" {printable(row.name or row.contact_id)}" if row.contact_id else ""
        print(f"  {row.kind} {row.change}: {printable(row.tag)}{who}")
    if len(diff.changes) > MAX_LISTED:
        print(f"  ... {len(diff.changes) - MAX_LISTED} more" + (" in changes.csv" if paths else ""))
    for row in diff.per_tag.head(MAX_LISTED).itertuples(index=False):
        print(
            f"  {printable(row.tag)}: opportunities {row.opportunities_before} -> "
            f"{row.opportunities_now}, split contacts {row.split_contacts_before} -> "
            f"{row.split_contacts_now}"
        )
    if not diff.reappeared_known:
        print("note: OLD is an audit folder without its snapshot: pairs split again count as new")
    if paths:
        print(f"written: {', '.join(str(p) for p in paths.values())}")
    return EXIT_OK
