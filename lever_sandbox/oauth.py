"""The sandbox's OAuth token endpoint: ``POST /oauth/token`` with ``grant_type=refresh_token``.

Lever's is ``https://auth.lever.co/oauth/token`` (another host than the API); the sandbox serves
it beside ``/v1`` so one server stands in for both. As Lever documents it: a form-encoded body
with ``client_id``, ``client_secret``, ``grant_type=refresh_token`` and ``refresh_token``; the
answer ``{access_token, refresh_token, token_type: "Bearer", scope, expires_in}``. Lever says a
refresh gives "a new refresh_token"; whether the old one keeps working is not said, so
``refresh_rotation`` offers each answer: ``rotate`` (default: a new one, the old one refused),
``keep`` (the same one back) and ``omit`` (no refresh token in the answer; the old one stays).
Error bodies follow OAuth 2.0 (RFC 6749 5.2): ``{"error": "invalid_grant", ...}``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

REFRESH_ROTATIONS = ("rotate", "keep", "omit")
SCOPE = "opportunities:read:admin opportunities:write:admin users:read:admin offline_access"


class OAuthRefused(Exception):
    """An OAuth error answer: status and RFC 6749 error code."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class OAuthApp:
    """The one registered app of the sandbox and its live refresh token."""

    client_id: str = field(default_factory=lambda: "sandbox-" + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    refresh_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    refreshes: int = 0
    spent: list[str] = field(default_factory=list)  # rotated-away refresh tokens

    def secrets(self) -> list[str]:
        """Every secret of the app so far (the test suite scans what a run produced for them)."""
        return [self.client_secret, self.refresh_token, *self.spent]

    def exchange(self, form: dict[str, str], rotation: str) -> str | None:
        """Check a refresh request; return the refresh token to answer with (None: omit it).

        Raises:
            OAuthRefused: a wrong grant type, client or refresh token.
        """
        if form.get("grant_type") != "refresh_token":
            raise OAuthRefused(400, "unsupported_grant_type", "grant_type must be refresh_token")
        if not form.get("client_id") or not form.get("client_secret"):
            raise OAuthRefused(401, "invalid_client", "client_id and client_secret are required")
        good_client = secrets.compare_digest(
            form["client_id"], self.client_id
        ) and secrets.compare_digest(form["client_secret"], self.client_secret)
        if not good_client:
            raise OAuthRefused(401, "invalid_client", "unknown client or wrong secret")
        if not secrets.compare_digest(form.get("refresh_token", ""), self.refresh_token):
            raise OAuthRefused(400, "invalid_grant", "Unknown or invalid refresh token.")
        self.refreshes += 1
        if rotation == "rotate":
            self.spent.append(self.refresh_token)
            self.refresh_token = secrets.token_urlsafe(32)
            return self.refresh_token
        return self.refresh_token if rotation == "keep" else None


def token_answer(access_token: str, refresh_token: str | None, ttl_s: float) -> dict[str, Any]:
    """The body of a successful refresh, in Lever's documented shape.

    Example:
        >>> sorted(token_answer("a", None, 20.0))
        ['access_token', 'expires_in', 'scope', 'token_type']
    """
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": SCOPE,
        "expires_in": max(1, round(ttl_s)),
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body
