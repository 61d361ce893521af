"""One error tree for everything that can go wrong talking to Lever.

`error_for_status` picks the class from a status table, as stripe-python and simple-salesforce do.
No error carries the key or an Authorization header: only status, Lever's code and message,
method and path (without the query string's secrets, which there are none of: the key travels
in a header). The message and code pass through `toolkit.scrub.scrub` as the error is built, so
a server that echoes the Authorization header cannot put the key into an exception, a log line
or the journal.
"""

from __future__ import annotations

from toolkit.scrub import scrub  # every message passes the one credential scrubber


class ConfigurationError(Exception):
    """The user's configuration is wrong (missing key, bad URL, bad file). CLI exit code 2."""


class LeverError(Exception):
    """Root of every failure reported by (or on the way to) the Lever API."""

    hint = ""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = scrub(code) if code is not None else None
        self.message = scrub(message)
        self.method = method
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" if self.method and self.path else ""
        status = f"HTTP {self.status}" if self.status is not None else ""
        head = " ".join(p for p in (where, status) if p)
        code = f"{self.code}: " if self.code else ""
        text = f"{head}: {code}{self.message}" if head else f"{code}{self.message}"
        return f"{text} ({self.hint})" if self.hint else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, method={self.method!r}, path={self.path!r})"
        )


class BadRequestError(LeverError):
    """400: a missing or malformed parameter."""


class InvalidOffsetTokenError(BadRequestError):
    """Lever rejected a pagination token ('Invalid offset token'); the listing must restart."""


class AuthenticationError(LeverError):
    """401: no valid credential."""

    hint = "check LEVER_API_KEY or LEVER_ACCESS_TOKEN, and that LEVER_BASE_URL is the right host"


class PermissionDeniedError(LeverError):
    """403: the key may not do this (endpoint, confidential data, tag creation lock)."""


class NotFoundError(LeverError):
    """404: unknown path, or the object does not exist (a deleted opportunity)."""


class RateLimitedError(LeverError):
    """429: rate limited, and the retry budget ran out."""


class ServerError(LeverError):
    """5xx: a Lever-side failure, and the retry budget ran out."""


class ConnectionFailedError(LeverError):
    """The server could not be reached, the connection dropped, or it timed out."""

    hint = "check LEVER_BASE_URL and the network"


class UnexpectedResponseError(LeverError):
    """The server answered, but not like Lever (HTML, non-JSON, JSON of another shape, redirect)."""

    hint = "check that LEVER_BASE_URL points at a Lever API, e.g. https://api.lever.co/v1"


STATUS_TABLE: dict[int, type[LeverError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
}

INVALID_OFFSET_MARKER = "invalid offset token"
# Answers that may succeed if asked again (rate limit, server trouble): the client retries them,
# and a journaled write that ended on one may or may not have reached Lever.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def error_for_status(status: int, message: str = "") -> type[LeverError]:
    """The error class for an HTTP status (and, for 400, the message)."""
    if status == 400 and INVALID_OFFSET_MARKER in message.lower():
        return InvalidOffsetTokenError
    if status in STATUS_TABLE:
        return STATUS_TABLE[status]
    if 500 <= status < 600:
        return ServerError
    if 300 <= status < 400:
        return UnexpectedResponseError
    if 400 <= status < 500:
        return BadRequestError
    return UnexpectedResponseError
