"""HTTP details of Lever's API the client relies on: pages, Retry-After, query encoding, short
reasons for connection failures, and unwrapping `{"data": ...}` answers."""

from __future__ import annotations

import datetime
import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

import requests

from toolkit.errors import LeverError, UnexpectedResponseError


class Page(NamedTuple):
    """One page of a listing: its new items, and whether another page follows."""

    items: list[dict]
    has_next: bool


class _Retryable(Exception):
    """Internal: a failure worth another attempt, carrying the error to raise if none is left."""

    def __init__(self, error: LeverError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or `X-RateLimit-Reset`.

    `X-RateLimit-Reset` is undocumented: read as epoch milliseconds, epoch seconds, or a number of
    seconds, by magnitude. Returns None when neither header gives a usable value.

    Example:
        >>> parse_retry_after({"Retry-After": "3"})
        3.0
    """
    now = time.time() if now is None else now
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:  # "-0000": UTC, not local time
                    when = when.replace(tzinfo=datetime.UTC)
                return max(0.0, when.timestamp() - now)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            number = float(reset.strip())
        except ValueError:
            return None
        if number > 1e12:  # epoch milliseconds
            return max(0.0, number / 1000 - now)
        if number > 1e9:  # epoch seconds
            return max(0.0, number - now)
        return max(0.0, number)
    return None


def _short_reason(exc: BaseException) -> str:
    """One line from a requests/urllib3 exception, without URLs or reprs."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    for marker in (
        "RemoteDisconnected",
        "Connection aborted",
        "Connection reset",
        "IncompleteRead",
    ):
        if marker in text:
            return "connection dropped by the server"
    return type(exc).__name__


def _never_connected(exc: BaseException) -> bool:
    """True when the address refused the connection or the host name does not resolve.

    A connect timeout is not counted: a slow network can cause it too.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout) or not isinstance(
        exc, requests.ConnectionError
    ):
        return False
    text = str(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "NameResolutionError", "Failed to resolve")
    )


def _encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Lever's query form: booleans as true/false, sequences as repeated keys, None dropped."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((key, str(item)))
    return pairs


def _id(value: str) -> str:
    """An id as one safe path segment."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an id must be a non-empty string (got {value!r})")
    if value.strip() in (".", ".."):
        # quote() keeps dots, and URL normalisation would resolve them: /opportunities/../addTags
        raise ValueError(f"not an id: {value!r}")
    return quote(value.strip(), safe="")


def _data_object(payload: dict[str, Any], host: str, path: str) -> dict:
    """The ``data`` object of a single-object answer; anything else is not Lever's shape."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            f"the answer from {host} has no 'data' object", method="GET", path=path
        )
    return data
