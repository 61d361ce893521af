"""Report sections for the people who act on an audit: what changed since the last run (and,
with the glossary and the work list, what the words mean and whom to check)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from toolkit.notebook.present.blocks import Block, Note, table


def since_last_run(diff: Any) -> Block | Note:
    """ "Since the last run": the headline of `toolkit.audit.diff.AuditDiff`, the changes and
    the tags whose counts moved; a note when there is no earlier run to compare with.

    Example:
        >>> since_last_run(None).text
        'No earlier run to compare with: the next run of this report will say what changed.'
    """
    if diff is None:
        return Note(
            "No earlier run to compare with: the next run of this report will say what changed.",
            "info",
        )
    if diff.empty:
        return Note("Since the last run: nothing changed.", "info")
    changes = diff.changes
    if not changes["name"].astype(bool).any():
        changes = changes.drop(columns="name")
    parts: list[Any] = [
        Note(f"Since the last run: {diff.headline()}.", "info"),
        table(changes, head=50, empty="none: no split pair, tag or variant changed"),
        table(diff.per_tag, head=30, empty="none: no tag's counts moved"),
    ]
    if not diff.reappeared_known:
        parts.append(
            Note("The earlier run kept no snapshot: a pair split again counts as new.", "info")
        )
    return Block(*parts)


def headline_sync(sync: Any) -> Block:
    """The sync-activity report's headline: what the service did in words, then the totals
    (`sync` is a `toolkit.sync.activity.SyncActivity`; read through its methods, so the
    presentation layer loads nothing of the sync package)."""
    return Block(Note(sync.headline(), "info"), table(sync.summary(), visible=()))


GLOSSARY_NOTE = (
    "Each row is an opportunity of a person that lacks a tag their other opportunities carry "
    "(a tag that describes the person, like a skill or \u201cDo not contact\u201d). Open it in "
    "Lever to check it; the owner is the recruiter who owns that opportunity."
)


def people_to_check(worklist: pd.DataFrame, top: int = 20) -> Block | Note:
    """ "People to check, by owner": how many per owner, then the first rows per owner with a
    link that opens each opportunity in Lever (escaped; only http(s) links are links).

    Example:
        >>> people_to_check(pd.DataFrame(columns=["Owner"])).text
        'none: nobody to check (no tag that belongs to the person is missing anywhere)'
    """
    if worklist.empty:
        return Note("none: nobody to check (no tag that belongs to the person is missing anywhere)")
    owners = (
        worklist.assign(Owner=worklist["Owner"].replace("", "(no owner)"))
        .groupby("Owner", sort=True)
        .agg(people=("contact_id", "nunique"), opportunities=("opportunity_id", "size"))
        .reset_index()
        .sort_values(["opportunities", "Owner"], ascending=[False, True])
    )
    rows = worklist.groupby("Owner", sort=False, group_keys=False).head(top)
    return Block(
        Note(GLOSSARY_NOTE, "info"),
        table(owners, visible=()),
        _linked_rows(rows),
        Note(
            f"The first {top} per owner; every row is in worklist.csv / worklist.xlsx when the "
            "report holds names (with_personal or redact).",
            "none",
        )
        if len(rows) < len(worklist)
        else None,
    )


_SHOWN = ["Owner", "Person", "Posting", "Stage", "What will change", "Where the tag is now"]


class _Html:
    """Trusted HTML built here from escaped parts (a table with links)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return "people to check (HTML table)"


def _linked_rows(rows: pd.DataFrame) -> _Html:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in [*_SHOWN, "Lever"])
    body = []
    for record in rows.to_dict("records"):
        person = record["Person"] or f"contact {record['contact_id'][:8]}"
        cells = [esc(str(record[c])) for c in _SHOWN]
        cells[1] = esc(person)
        url = str(record.get("Open in Lever") or "")
        link = (
            f'<a href="{esc(url, quote=True)}" target="_blank" rel="noopener noreferrer">open</a>'
            if url.startswith(("https://", "http://"))
            else ""
        )
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in [*cells, link]) + "</tr>")
    return _Html(
        '<table class="people-to-check"><thead><tr>'
        + head
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
