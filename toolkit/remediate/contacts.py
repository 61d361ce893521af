"""A list of people for `lever-tags plan --contacts FILE` (pure: text and frames in, no I/O).

The file holds contact ids or emails, one a line (blank lines and ``#`` comments skipped), or a
CSV whose header names a ``contact_id``, ``contact`` or ``email`` column (the first found, any
case). A value with an ``@`` is an email, anything else a contact id. Emails are matched without
regard to case through the snapshot's personal data, or through Lever (`GET
/opportunities?email=`, in `toolkit.workflows`); a row that matches no contact, or an email
several contacts share, is skipped with the reason (`plan.skipped.csv`), never guessed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from toolkit.errors import ConfigurationError
from toolkit.remediate.plan import SKIPPED_COLUMNS
from toolkit.sanitize import printable

COLUMNS = ("contact_id", "contact", "email")
REASON_UNKNOWN_EMAIL = "no contact has this email"
REASON_SHARED_EMAIL = "email shared by several contacts (ambiguous)"
REASON_UNKNOWN_CONTACT = "no such contact in the snapshot"
REASON_NOT_IN_SNAPSHOT = "the email's contact is not in the snapshot"


@dataclass(frozen=True)
class ContactRow:
    """One row of a contacts file: its line, the value, and whether it is an email."""

    line: int
    value: str

    @property
    def is_email(self) -> bool:
        return "@" in self.value


def read_contact_rows(text: str, source: str = "contacts file") -> list[ContactRow]:
    """The rows of a contacts file (one value a line, or a CSV column).

    Raises:
        ConfigurationError: one line naming the file: empty, or a CSV without a usable column.

    Example:
        >>> [r.value for r in read_contact_rows("# people\\nc1\\n\\nAda@example.com\\n")]
        ['c1', 'Ada@example.com']
        >>> [(r.line, r.value) for r in read_contact_rows("name,Email\\nAda,a@example.com\\n")]
        [(2, 'a@example.com')]
    """
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    header = [h.strip().casefold() for h in next(csv.reader([first]), [])] if first else []
    column = next((header.index(c) for c in COLUMNS if c in header), None)
    rows: list[ContactRow] = []
    if column is not None or len(header) > 1:
        if column is None:
            raise ConfigurationError(
                f"{source}: a CSV needs a contact_id or email column (found "
                f"{', '.join(printable(h) for h in header)}); or give one value a line"
            )
        reader = csv.reader(io.StringIO(text))
        seen_header = False
        for number, record in enumerate(reader, start=1):
            if not record or not "".join(record).strip() or record[0].startswith("#"):
                continue
            if not seen_header:
                seen_header = True
                continue
            value = record[column].strip() if column < len(record) else ""
            if value:
                rows.append(ContactRow(number, value))
    else:
        for number, line in enumerate(lines, start=1):
            value = line.strip()
            if value and not value.startswith("#"):
                rows.append(ContactRow(number, value))
    if not rows:
        raise ConfigurationError(f"{source}: no contact ids or emails in it; one a line")
    return rows


def email_index(frame: pd.DataFrame) -> dict[str, set[str]]:
    """email (casefolded) -> the contact ids the snapshot's personal data gives it.

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1", "c2", "c1"],
        ...                   "email": ["A@example.com", "a@example.com", None]})
        >>> {email: sorted(ids) for email, ids in email_index(f).items()}
        {'a@example.com': ['c1', 'c2']}
    """
    if "email" not in frame.columns:
        return {}
    known = frame.dropna(subset=["email", "contact_id"])
    out: dict[str, set[str]] = {}
    for email, contact in zip(known["email"], known["contact_id"], strict=True):
        out.setdefault(str(email).strip().casefold(), set()).add(str(contact))
    return out


def match_contacts(
    rows: Iterable[ContactRow],
    frame: pd.DataFrame,
    emails: Mapping[str, set[str]],
    *,
    op: str = "add",
    tags: Iterable[str] = (),
) -> tuple[list[str], pd.DataFrame]:
    """The contact ids the rows name, and the rows skipped with their reason.

    Args:
        rows: the contacts file's rows.
        frame: the snapshot frame (its ``contact_id`` are the known contacts).
        emails: email (casefolded) -> contact ids (`email_index`, or Lever's answers).
        op, tags: what the skipped rows say the plan would have done.

    Returns:
        (contact ids in file order, without repeats; skipped rows in plan.skipped.csv's columns:
        one per skipped row and tag, the reason naming the line and the value).

    Example:
        >>> f = pd.DataFrame({"contact_id": ["c1", "c2"]})
        >>> rows = read_contact_rows("c1\\nc9\\nx@example.com\\n")
        >>> ids, skipped = match_contacts(rows, f, {"x@example.com": {"c1", "c2"}}, tags=["T"])
        >>> ids, skipped["reason"].tolist()
        (['c1'], ['contacts file line 2 (c9): no such contact in the snapshot', 'contacts file line 3 (x@example.com): email shared by several contacts (ambiguous)'])
    """  # noqa: E501
    known = set(frame["contact_id"].dropna().astype(str))
    tags = list(tags) or [""]
    found: dict[str, None] = {}
    skipped = []
    for row in rows:
        contact = ""
        if row.is_email:
            owners = emails.get(row.value.casefold(), set())
            reason = (
                REASON_UNKNOWN_EMAIL
                if not owners
                else REASON_SHARED_EMAIL
                if len(owners) > 1
                else ""
            )
            if not reason:
                contact = next(iter(owners))
                reason = "" if contact in known else REASON_NOT_IN_SNAPSHOT
        else:
            contact = row.value
            reason = "" if contact in known else REASON_UNKNOWN_CONTACT
        if reason:
            where = f"contacts file line {row.line} ({printable(row.value)})"
            skipped += [("", contact, op, tag, f"{where}: {reason}") for tag in tags]
        else:
            found.setdefault(contact, None)
    table = pd.DataFrame.from_records(skipped, columns=SKIPPED_COLUMNS).astype(object)
    return list(found), table


def reason_kind(reason: str) -> str:
    """A skipped row's reason without the line it came from (for a summary line).

    Example:
        >>> reason_kind("contacts file line 3 (x@example.com): no contact has this email")
        'contacts file: no contact has this email'
    """
    if reason.startswith("contacts file line ") and "): " in reason:
        return "contacts file: " + reason.split("): ", 1)[1]
    return reason
