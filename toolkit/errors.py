"""One error tree: every error the toolkit raises on purpose is a `ToolkitError`, and each class
declares the `lever-tags` exit code it ends in (`exit_code`), documented in docs/architecture.md:

    ToolkitError                          2  (the root)
      ConfigurationError                  2  bad configuration or input (a file, a value, a key)
        PlanError, JournalError           2
      UsageError                          2  bad input found by a command
      SecretLeakError                     2  a produced file held the credential
      DemoError                           2  `make demo` could not run or reach its goal
      WebhookRefused                      2  a webhook sync will not accept (answered, not exited)
      RemediationFailedError              1  the run finished, but some changes failed
      LeverError                          2  Lever refused (400, 401, 403, 404) or is not Lever
        ConnectionFailedError             3  Lever unreachable after the retries
          BaseUrlUnreachableError         2  nothing ever answered at LEVER_BASE_URL
        RateLimitedError, ServerError     3  429 / 5xx after the retries

Exit code 3 means Lever kept failing after the retries: nothing is wrong with the input, and
the same command may succeed later.

`error_for_status` picks the class from a status table, as stripe-python and simple-salesforce do.
No error carries the key or an Authorization header: only status, Lever's code and message,
method and path (without the query string's secrets, which there are none of: the key travels
in a header). The message and code pass through `toolkit.scrub.scrub` as the error is built, so
a server that echoes the Authorization header cannot put the key into an exception, a log line
or the journal.
"""

from __future__ import annotations

from toolkit.scrub import scrub  # every message passes the one credential scrubber

EXIT_OK = 0
EXIT_FAILURES = 1  # the run finished, but some changes failed or rows do not hold
EXIT_BAD_INPUT = 2  # bad input or configuration, a refused key, an unreachable or non-Lever URL
EXIT_LEVER_FAILED = 3  # Lever failed (5xx, 429, connection) and kept failing after the retries


class _Names(dict):
    """`str.format_map` helper: a field without a wording of its own is named as it is."""

    def __missing__(self, key: str) -> str:
        return key


class ToolkitError(Exception):
    """The root of every error the toolkit raises on purpose; `exit_code` is the CLI's.

    An error about the caller's input names fields, not a front end's spelling of them:
    `ToolkitError.naming("give {tags} or {policy_path}")` reads "give tags or policy_path" (the
    names a library or notebook caller passes), and each front end words it its own way with
    `worded` (the CLI: "give --tag T or --policy FILE").

    Example:
        >>> exc = ToolkitError.naming("give {tags} or {policy_path}")
        >>> str(exc), exc.worded({"tags": "--tag T"})
        ('give tags or policy_path', 'give --tag T or policy_path')
    """

    exit_code = EXIT_BAD_INPUT
    template: str | None = None

    @classmethod
    def naming(cls, template: str) -> ToolkitError:
        """An error whose message names fields as `{field}` (see the class)."""
        exc = cls(template.format_map(_Names()))
        exc.template = template
        return exc

    def worded(self, names: dict[str, str]) -> str:
        """The message with each `{field}` worded as `names` says (unnamed fields as they are)."""
        if self.template is None:
            return str(self)
        return self.template.format_map(_Names(names))


class ConfigurationError(ToolkitError):
    """The user's configuration is wrong (missing key, bad URL, bad file). CLI exit code 2."""


class PlanError(ConfigurationError):
    """A plan cannot be made, read or run as asked (bad file, bad arguments, too large)."""


class JournalError(ConfigurationError):
    """The journal cannot be used: locked by another run, another plan's, or not a journal."""


class UsageError(ToolkitError):
    """Bad input found by a command (a file, a value): exit 2 with this one line."""


class SecretLeakError(ToolkitError, RuntimeError):
    """A produced file contained the credential (text redacted, binary files left intact)."""


class DemoError(ToolkitError, RuntimeError):
    """The demo could not run or did not reach its goal."""


class RemediationFailedError(ToolkitError, RuntimeError):
    """A real apply finished, but some changes failed or do not hold in Lever afterwards."""

    exit_code = EXIT_FAILURES


class WebhookRefused(ToolkitError):
    """A webhook the service will not accept: ``status`` to answer, ``reason`` a metric label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class LeverError(ToolkitError):
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

    exit_code = EXIT_LEVER_FAILED


class ServerError(LeverError):
    """5xx: a Lever-side failure, and the retry budget ran out."""

    exit_code = EXIT_LEVER_FAILED


class ConnectionFailedError(LeverError):
    """The server could not be reached, the connection dropped, or it timed out."""

    hint = "check LEVER_BASE_URL and the network"
    exit_code = EXIT_LEVER_FAILED


class BaseUrlUnreachableError(ConnectionFailedError):
    """Nothing has ever answered at this address (refused, no such host): a wrong base URL."""

    exit_code = EXIT_BAD_INPUT


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
