"""Lever's users, for `--perform-as` (`lever-tags users`): who a write can be attributed to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI

USER_COLUMNS = ["id", "name", "email", "access_role", "deactivated"]


def user_rows(users: Any) -> list[dict[str, Any]]:
    """Lever user objects as rows (id, name, email, access role, deactivated), active first.

    Data from Lever is untrusted: a missing or non-string field is "" (the caller escapes what
    it prints).

    Example:
        >>> user_rows([{"id": "u2", "name": "Old", "deactivatedAt": 5},
        ...            {"id": "u1", "name": "Ada", "email": "ada@example.com"}])[0]["id"]
        'u1'
    """

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    rows = [
        {
            "id": text(user.get("id")),
            "name": text(user.get("name")),
            "email": text(user.get("email")),
            "access_role": text(user.get("accessRole")),
            "deactivated": bool(user.get("deactivatedAt")),
        }
        for user in users
        if isinstance(user, dict) and text(user.get("id"))
    ]
    return sorted(rows, key=lambda r: (r["deactivated"], r["name"].casefold(), r["id"]))


def list_users(client: LeverAPI, email: str | None = None) -> list[dict[str, Any]]:
    """The account's users (``GET /users``, paginated), optionally only the one with `email`.

    Example:
        >>> list_users(client, email="integration@example.com")  # doctest: +SKIP
        [{'id': '...', 'name': 'Integration', 'email': 'integration@example.com', ...}]
    """
    return user_rows(client.iter_users(email=email or None))
