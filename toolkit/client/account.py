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

An account is served from one host (``api.lever.co``, ``api.eu.lever.co``,
``api.sandbox.lever.co``): a record from another host is another account, and is refused before
any request (`check_host`). Two accounts on one host are told apart by the fingerprint, which
costs one users listing.

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


def host_of(base_url: str | None) -> str | None:
    """The host of a base URL as records keep it: lower case, the scheme's default port dropped.

    Example:
        >>> host_of("https://API.Lever.co:443/v1"), host_of("http://127.0.0.1:8080/v1")
        ('api.lever.co', '127.0.0.1:8080')
        >>> host_of(None) is None
        True
    """
    if not base_url:
        return None
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if not host:
        return None
    port = parts.port
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return host if port is None or port == default else f"{host}:{port}"


def _same_host(a: str | None, b: str | None) -> bool | None:
    """Hosts as records keep them (``api.lever.co``) or as older ones did (a base URL)."""
    if not a or not b:
        return None
    return _host(a) == _host(b)


def _host(recorded: str | None) -> str | None:
    """A recorded host (``api.lever.co``), or a base URL as older records kept it, normalised."""
    if not recorded:
        return None
    return host_of(recorded if "://" in recorded else f"//{recorded}")


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
    host = host_of(client.base_url) or ""
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

    An account lives on one host, so different hosts are different accounts; on one host the
    fingerprints decide when both sides have them (any shared early user).

    Example:
        >>> a = {"host": "h", "fingerprint": "f1", "users": ["x", "y"]}
        >>> same_account(a, {"host": "h", "fingerprint": "f2", "users": ["y", "z"]})
        True
        >>> same_account(a, {"host": "other", "fingerprint": "f1", "users": ["x", "y"]})
        False
        >>> same_account(a, {"host": "h", "fingerprint": "f3", "users": ["z"]})
        False
        >>> same_account(a, {"host": "h2", "fingerprint": None, "users": []})
        False
        >>> same_account(None, a) is None
        True
    """
    if not recorded or not current:
        return None
    if _same_host(recorded.get("host"), current.get("host")) is False:
        return False
    mine, theirs = set(recorded.get("users") or []), set(current.get("users") or [])
    if mine and theirs:
        return bool(mine & theirs)
    return _same_host(recorded.get("host"), current.get("host"))


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


def check_host(recorded: dict[str, Any] | None, client: OpportunityReader, what: str) -> None:
    """Refuse `what` recorded on another host than `client` reads, before any request.

    Raises:
        AccountMismatchError: one line naming both hosts (CLI exit 2).

    Example:
        >>> class C:
        ...     base_url = "https://api.eu.lever.co/v1"
        >>> check_host({"host": "api.eu.lever.co"}, C(), "plan.csv")
        >>> check_host({"host": "api.lever.co"}, C(), "plan.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        toolkit.client.account.AccountMismatchError: plan.csv comes from another Lever ...
    """
    made_on, reads = _host((recorded or {}).get("host")), host_of(getattr(client, "base_url", None))
    if _same_host(made_on, reads) is False:
        raise AccountMismatchError(
            f"{what} comes from another Lever account: it was made on {made_on}, and "
            f"LEVER_BASE_URL points at {reads}; use that account's LEVER_API_KEY and "
            "LEVER_BASE_URL, or plan again on this account; nothing was written"
        )


__all__ = [
    "AccountMismatchError",
    "account_of",
    "check_account",
    "check_host",
    "describe",
    "host_of",
    "identity_from_users",
    "recorded_account",
    "same_account",
]
