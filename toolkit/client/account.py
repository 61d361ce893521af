"""Which Lever account a key reads: its host and a fingerprint Lever lets every key read.

Snapshots, plans and journals record the account they came from; `plan`, `apply`, `verify` and
`rollback` refuse one from another account before any write (`check_account`).

Lever has no "account id" endpoint. What a key can read and what never changes for an account
are its first users: ``GET /users`` lists every user with ``id`` and ``createdAt``, user ids
are UUIDs no two accounts share, and a user who leaves is deactivated, not deleted. The
fingerprint is the SHA-256 of the ids of the account's ``EARLIEST_USERS`` earliest users (by
``createdAt``, then id); each id is also kept hashed, so two records match when they share any
one of them (one early user deactivated and hidden from a listing changes nothing). The key
never enters it; a user id is not personal data, and only its hash is kept anyway.

A key that may not list users (403, or a 400/404 from a server that will not) yields a
host-only identity: the host is compared, and the
sample check of `toolkit.remediate.apply` catches the rest.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from toolkit.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    LeverError,
    NotFoundError,
    PermissionDeniedError,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import OpportunityReader

log = logging.getLogger(__name__)

EARLIEST_USERS = 3

_CACHE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


class AccountMismatchError(ConfigurationError):
    """A plan, journal or snapshot from another Lever account than the key reads (exit 2)."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_from_users(host: str, users: list[dict[str, Any]]) -> dict[str, Any]:
    """The account identity from its host and its users' listing (pure).

    Example:
        >>> users = [{"id": "u2", "createdAt": 2}, {"id": "u1", "createdAt": 1},
        ...          {"id": "u9", "createdAt": 9}, {"id": "u3", "createdAt": 3}]
        >>> ident = identity_from_users("api.lever.co", users)
        >>> ident["host"], len(ident["users"]), len(ident["fingerprint"])
        ('api.lever.co', 3, 16)
        >>> identity_from_users("api.lever.co", users[::-1]) == ident  # listing order: no matter
        True
    """
    rows = [u for u in users if isinstance(u, dict) and isinstance(u.get("id"), str)]
    rows.sort(key=lambda u: (u.get("createdAt") or 0, u["id"]))
    ids = [u["id"] for u in rows[:EARLIEST_USERS]]
    if not ids:
        return {"host": host, "fingerprint": None, "users": []}
    return {
        "host": host,
        "fingerprint": _digest("\n".join(ids)),
        "users": sorted(_digest(i) for i in ids),
    }


def account_of(client: OpportunityReader) -> dict[str, Any]:
    """The identity of the account `client` reads: ``{"host", "fingerprint", "users"}``.

    One listing of ``GET /users`` (a page or a few), once per client.
    """
    cached = _CACHE.get(client)
    if cached is not None:
        return dict(cached)
    host = urlsplit(client.base_url).netloc
    listing = getattr(client, "iter_users", None)
    try:
        users = list(listing()) if listing else []
    except (PermissionDeniedError, NotFoundError, BadRequestError):
        users = []  # a key (or a server) that will not list users: the host only
    ident = identity_from_users(host, users)
    _CACHE[client] = ident
    return dict(ident)


def recorded_account(client: OpportunityReader) -> dict[str, Any] | None:
    """`account_of` for a snapshot's metadata: None (logged) when the users cannot be read.

    The snapshot is already fetched; losing it for a failed users listing would be worse than
    a snapshot (and its plans) without an account, which apply's sample check still guards.
    """
    try:
        return account_of(client)
    except AuthenticationError:
        raise
    except LeverError as exc:
        log.warning("the Lever account was not recorded (GET /users failed: %s)", exc)
        return None


def describe(ident: dict[str, Any] | None) -> str:
    """`api.lever.co account 1a2b...` for messages (never a key).

    Example:
        >>> describe({"host": "api.lever.co", "fingerprint": "0123456789abcdef"})
        'api.lever.co (account 0123456789ab)'
    """
    ident = ident or {}
    fp = ident.get("fingerprint")
    host = ident.get("host") or "an unknown host"
    return f"{host} (account {fp[:12]})" if fp else f"{host}"


def same_account(recorded: dict[str, Any] | None, current: dict[str, Any] | None) -> bool | None:
    """True/False when the two identities can be compared; None when one is unknown (pure).

    Fingerprints decide when both sides have them (any shared early user); else the hosts do.

    Example:
        >>> a = {"host": "h", "fingerprint": "f1", "users": ["x", "y"]}
        >>> same_account(a, {"host": "other", "fingerprint": "f2", "users": ["y", "z"]})
        True
        >>> same_account(a, {"host": "h", "fingerprint": "f3", "users": ["z"]})
        False
        >>> same_account(a, {"host": "h2", "fingerprint": None, "users": []})
        False
        >>> same_account(None, a) is None
        True
    """
    if not recorded or not current:
        return None
    mine, theirs = set(recorded.get("users") or []), set(current.get("users") or [])
    if mine and theirs:
        return bool(mine & theirs)
    if recorded.get("host") and current.get("host"):
        return recorded["host"] == current["host"]
    return None


def check_account(
    recorded: dict[str, Any] | None, current: dict[str, Any] | None, what: str
) -> None:
    """Refuse `what` (a plan, journal or snapshot) recorded on another account.

    Raises:
        AccountMismatchError: one line naming both accounts (CLI exit 2).

    Example:
        >>> check_account({"host": "h", "users": ["x"]}, {"host": "h", "users": ["x"]}, "plan")
    """
    if same_account(recorded, current) is False:
        raise AccountMismatchError(
            f"{what} comes from another Lever account: {describe(recorded)}, but the key "
            f"reads {describe(current)}; use that account's LEVER_API_KEY and LEVER_BASE_URL, "
            "or plan again on this account; nothing was written"
        )


__all__ = [
    "AccountMismatchError",
    "account_of",
    "check_account",
    "describe",
    "identity_from_users",
    "recorded_account",
    "same_account",
]
