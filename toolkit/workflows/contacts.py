"""The people of `lever-tags plan --contacts FILE`: the file read, its emails matched through the
snapshot's personal data or through Lever (`GET /opportunities?email=`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from toolkit.client import LeverClient
from toolkit.errors import ConfigurationError, PermissionDeniedError
from toolkit.remediate.contacts import (
    ContactRow,
    email_index,
    match_contacts,
    read_contact_rows,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI


@dataclass
class People:
    """The contacts a file names, the rows skipped (plan.skipped.csv's columns) and how emails
    were matched (``snapshot``, ``lever`` or ``none``)."""

    contact_ids: list[str]
    skipped: pd.DataFrame
    emails_from: str


def read_contacts_file(path: str | os.PathLike) -> list[ContactRow]:
    """The rows of a contacts file, or one ConfigurationError line naming it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(
            f"--contacts {path}: no such file (give contact ids or emails, one a line)"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"--contacts {path}: not a UTF-8 text file") from None
    return read_contact_rows(text, f"--contacts {path}")


def lever_email_owners(client: LeverAPI, emails: Iterable[str]) -> dict[str, set[str]]:
    """email (casefolded) -> the contacts of the opportunities Lever lists for it (one listing
    per email, confidential ones included when the key may read them)."""
    owners: dict[str, set[str]] = {}
    for email in dict.fromkeys(e.casefold() for e in emails):
        try:
            opps = list(client.iter_opportunities(email=email, confidentiality="all"))
        except PermissionDeniedError:  # a key without confidential access
            opps = list(client.iter_opportunities(email=email))
        owners[email] = {str(o["contact"]) for o in opps if o.get("contact")}
    return owners


def people_from_file(
    rows: list[ContactRow],
    frame: pd.DataFrame,
    *,
    client: LeverAPI | None = None,
    op: str = "add",
    tags: Iterable[str] = (),
) -> People:
    """Match a contacts file's rows against a snapshot: contact ids directly, emails through the
    snapshot's personal data when it holds them, else through Lever (the client defaults to
    `LeverClient.from_env()`)."""
    emails = [r.value for r in rows if r.is_email]
    has_personal = "email" in frame.columns and frame["email"].notna().any()
    if not emails:
        owners, how = {}, "none"
    elif has_personal:
        owners, how = email_index(frame), "snapshot"
    else:
        owners = lever_email_owners(client or LeverClient.from_env(), emails)
        how = "lever"
    ids, skipped = match_contacts(rows, frame, owners, op=op, tags=tags)
    return People(ids, skipped, how)
