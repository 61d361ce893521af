"""What the sync queue does with a failed contact check: fail it, back off, or count a strike.

Three kinds of failure (`classify`):

- ``permanent``: retrying cannot help (a queued id that is not an id, Lever's 4xx other than 401
  and 429): the event fails at once.
- ``transient``: Lever unreachable, 429, 5xx. The event is kept, however long the outage, and
  checked again after a backoff capped at ``backoff_max`` seconds (and at once after a restart).
  It counts as a strike only when Lever answered other work meanwhile, so an outage never uses
  up an event's attempts while a contact Lever always fails on does.
- ``unexpected``: anything else (a bug, an answer that is not Lever's such as a bare 404 from a
  proxy): a strike every time.

An event fails after `MAX_STRIKES` strikes. `health_problems` says why ``/healthz`` is degraded.
"""

from __future__ import annotations

import math
import random
import re

from toolkit.errors import (
    RETRYABLE_STATUSES,
    ConnectionFailedError,
    InvalidOffsetTokenError,
    LeverError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)

PERMANENT, TRANSIENT, UNEXPECTED = "permanent", "transient", "unexpected"
MAX_STRIKES = 8
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_MAX_S = 300.0
DEFAULT_STALE_AFTER_S = 900.0
# Lever's ids are UUIDs; anything path-like, over-long or with controls or spaces is not one.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")


class NotAnId(ValueError):
    """A queued opportunity or contact id that cannot be one (``..``, a path, 10 KB of text)."""


def check_id(value: str | None, what: str) -> None:
    """Raise `NotAnId` unless `value` (when given) looks like an id Lever could have sent.

    Example:
        >>> check_id("250d8f03-738a-4bba-a671-8a3d73477145", "opportunity")
        >>> check_id("..", "opportunity")
        Traceback (most recent call last):
        ...
        toolkit.sync.retry.NotAnId: the opportunity id '..' is not an id
    """
    if value is None:
        return
    if not isinstance(value, str) or not _ID.fullmatch(value) or set(value) <= {"."}:
        raise NotAnId(f"the {what} id {value[:40]!r} is not an id")


def classify(exc: BaseException) -> str:
    """`PERMANENT`, `TRANSIENT` or `UNEXPECTED` for an exception raised by a contact check.

    Example:
        >>> from toolkit.errors import BadRequestError, ServerError
        >>> classify(ServerError("down", status=503)), classify(BadRequestError("no", status=400))
        ('transient', 'permanent')
        >>> classify(KeyError("data"))
        'unexpected'
    """
    if isinstance(exc, NotAnId):
        return PERMANENT
    if isinstance(exc, ConnectionFailedError | RateLimitedError | ServerError):
        return TRANSIENT
    if isinstance(exc, InvalidOffsetTokenError):  # a listing to start again
        return TRANSIENT
    if isinstance(exc, UnexpectedResponseError):  # a proxy's HTML 502 page, or a wrong answer
        return TRANSIENT if (exc.status or 0) >= 500 else UNEXPECTED
    if isinstance(exc, LeverError):
        status = exc.status
        if status is None or status in RETRYABLE_STATUSES or status >= 500:
            return TRANSIENT
        if 400 <= status < 500:
            return PERMANENT
    return UNEXPECTED


def status_kind(status: int | None) -> str:
    """The kind of a failed write's outcome: no answer or a retryable status is transient."""
    return TRANSIENT if status is None or status in RETRYABLE_STATUSES else PERMANENT


def backoff_seconds(
    attempts: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds before the next try: ``base * 2**attempts`` capped at ``cap``, jittered to 50-100 %.

    Example:
        >>> backoff_seconds(20, 1.0, 300.0, random.Random(1)) <= 300.0
        True
    """
    jitter = 0.5 + (rng or random).random() / 2
    return min(cap, base * 2.0 ** min(attempts, 60)) * jitter


def check_interval(name: str, value: float, *, zero_ok: bool = False) -> None:
    """Raise ValueError unless `value` is a finite number > 0 (or 0 where allowed).

    Example:
        >>> check_interval("poll_interval", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: poll_interval must be a finite number of seconds > 0 (got nan)
    """
    ok = isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero_ok):
        floor = ">= 0" if zero_ok else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {floor} (got {value!r})")


def health_problems(
    *,
    due_contacts: int,
    max_queue: int,
    failing: int,
    failing_since: str | None,
    oldest_age_s: float,
    stale_after_s: float,
) -> list[str]:
    """Why the service is degraded (empty: it is not).

    Example:
        >>> health_problems(due_contacts=0, max_queue=10, failing=2, failing_since="t",
        ...     oldest_age_s=5, stale_after_s=900)
        ['2 contact checks failed in a row since t']
    """
    problems = []
    if due_contacts >= max_queue:
        problems.append(f"the queue is full: {due_contacts} contacts due (max {max_queue})")
    if failing:
        problems.append(f"{failing} contact checks failed in a row since {failing_since}")
    if oldest_age_s > stale_after_s:
        problems.append(
            f"the oldest queued event is {oldest_age_s:.0f} s old (over {stale_after_s:g} s)"
        )
    return problems


__all__ = [
    "DEFAULT_BACKOFF_BASE_S",
    "DEFAULT_BACKOFF_MAX_S",
    "DEFAULT_STALE_AFTER_S",
    "MAX_STRIKES",
    "PERMANENT",
    "TRANSIENT",
    "UNEXPECTED",
    "NotAnId",
    "backoff_seconds",
    "check_id",
    "check_interval",
    "classify",
    "health_problems",
    "status_kind",
]
