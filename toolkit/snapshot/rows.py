"""One snapshot row per Lever opportunity, in plain Python (no pandas): the listing parses each
page as it arrives (`toolkit.snapshot.listing`), so the frame is ready when the last page is.
`toolkit.snapshot.frame` builds the typed DataFrame from these rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLUMNS = [
    "opportunity_id",
    "contact_id",
    "tags",
    "archived",
    "archived_at",
    "confidential",
    "anonymized",
    "created_at",
    "updated_at",
]


# What a person needs to act on a row (who owns it, where it is, what it was for, why it was
# archived): categoricals, a few hundred distinct values over a million rows. Optional in a
# loaded snapshot (older ones lack them). Ids from the opportunity; texts from `expand` or the
# account's catalogs (`label_context`).
CONTEXT_COLUMNS = [
    "owner_id",
    "stage_id",
    "stage",
    "posting_id",
    "posting",
    "origin",
    "archived_reason_id",
    "archived_reason",
]


# The contact's name and first email, and the owner's (a Lever user): personal data, only when
# asked for (`with_personal`).
PERSONAL_COLUMNS = ["name", "email", "owner_name", "owner_email"]


def to_ms(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return None


def _archived_at(opp: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Both shapes: the `archived` object, or legacy top-level `archivedAt` / `archiveReason`."""
    archived = opp.get("archived")
    if isinstance(archived, Mapping):
        return True, to_ms(archived.get("archivedAt"))
    legacy = opp.get("archivedAt")
    if legacy is not None:
        return True, to_ms(legacy)
    return False, None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref(value: Any, *keys: str) -> tuple[str | None, ...]:
    """An id field that `expand` may have replaced by its object: (id, *the object's `keys`)."""
    if isinstance(value, Mapping):
        return (_text(value.get("id")), *(_text(value.get(k)) for k in keys))
    return (_text(value), *(None for _ in keys))


def _posting(applications: Any) -> tuple[str | None, str | None]:
    """(posting id, title) of the first application (`expand=applications`), when known."""
    if not isinstance(applications, list) or not applications:
        return None, None
    app = applications[0]
    if not isinstance(app, Mapping):
        return None, None  # an application id only: the posting is not known from here
    posting_id, title = _ref(app.get("posting"), "text")
    return posting_id, title


def _reason(opp: Mapping[str, Any]) -> str | None:
    archived = opp.get("archived")
    if isinstance(archived, Mapping):
        return _text(archived.get("reason"))
    return _text(opp.get("archiveReason"))


def string_tags(value: Any) -> list[str]:
    """The tags of a Lever `tags` field: its strings, in order; anything else is no tag.

    The one filter for tags read from Lever (snapshot parsing, drift reads, verify): data from
    Lever is untrusted, so a non-list field or a non-string element is dropped, never an error.

    Example:
        >>> string_tags(["Python", 3, None, "Go"]), string_tags("Python")
        (['Python', 'Go'], [])
    """
    if not isinstance(value, list):
        return []
    return [t for t in value if isinstance(t, str)]


def columns(with_personal: bool = False) -> list[str]:
    """The row's fields, in order.

    Example:
        >>> columns()[:3], len(columns(True)) - len(columns())
        (['opportunity_id', 'contact_id', 'tags'], 4)
    """
    return COLUMNS + CONTEXT_COLUMNS + (PERSONAL_COLUMNS if with_personal else [])


def opportunity_row(opp: Mapping[str, Any], with_personal: bool = False) -> tuple | None:
    """One opportunity as a row of `columns(with_personal)`, defensively; None without an id.

    Every field may be missing; unknown fields are ignored. `stage`, `owner` and `applications`
    may be ids or, fetched with `expand`, objects: either way their ids are kept, and their
    texts when given.

    Example:
        >>> row = opportunity_row({"id": "o1", "contact": "c1", "tags": ["Python", 3]})
        >>> row[:3], opportunity_row({"contact": "c1"})
        (('o1', 'c1', ['Python']), None)
    """
    opp_id = opp.get("id")
    if not isinstance(opp_id, str) or not opp_id:
        return None
    contact = opp.get("contact")
    if isinstance(contact, Mapping):  # expand=contact
        contact = contact.get("id")
    archived, archived_at = _archived_at(opp)
    owner_id, owner_name, owner_email = _ref(opp.get("owner"), "name", "email")
    stage_id, stage = _ref(opp.get("stage"), "text")
    posting_id, posting = _posting(opp.get("applications"))
    row = (
        opp_id,
        contact if isinstance(contact, str) and contact else None,
        string_tags(opp.get("tags")),
        archived,
        archived_at,
        opp.get("confidentiality") == "confidential",
        bool(opp.get("isAnonymized")),
        to_ms(opp.get("createdAt")),
        to_ms(opp.get("updatedAt")),
        owner_id,
        stage_id,
        stage,
        posting_id,
        posting,
        _text(opp.get("origin")),
        _reason(opp) if archived else None,
        None,  # archived_reason: its text comes from the catalog (`label_context`)
    )
    if not with_personal:
        return row
    name, emails = opp.get("name"), opp.get("emails")
    first = emails[0] if isinstance(emails, list) and emails else None
    return (
        *row,
        name if isinstance(name, str) else None,
        first if isinstance(first, str) else None,
        owner_name,
        owner_email,
    )
