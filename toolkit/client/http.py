"""HTTP details of Lever's API the client relies on: pages, Retry-After, query encoding, short
reasons for connection failures, and unwrapping `{"data": ...}` answers."""

from __future__ import annotations

import datetime
import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import requests

from toolkit.chars import clean_json
from toolkit.errors import LeverError, UnexpectedResponseError


class Page(NamedTuple):
    """One page of a listing: its new items, and whether another page follows."""

    items: list[dict]
    has_next: bool


class RetryableFailure(Exception):
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


def short_reason(exc: BaseException) -> str:
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


def never_connected(exc: BaseException) -> bool:
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


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
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


def path_id(value: str) -> str:
    """An id as one safe path segment."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an id must be a non-empty string (got {value!r})")
    if value.strip() in (".", ".."):
        # quote() keeps dots, and URL normalisation would resolve them: /opportunities/../addTags
        raise ValueError(f"not an id: {value!r}")
    return quote(value.strip(), safe="")


def data_object(payload: dict[str, Any], host: str, path: str) -> dict:
    """The ``data`` object of a single-object answer; anything else is not Lever's shape."""
    data = payload.get("data")
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            f"the answer from {host} has no 'data' object", method="GET", path=path
        )
    return data


def deleted_ids(items: Iterable[Any]) -> list[str]:
    """The opportunity ids of "List deleted opportunities" items, whatever their shape.

    Tolerates ``{"id", "deletedAt"}``, a whole opportunity object, ``{"id"}``, an
    ``{"opportunityId": ...}`` object, or a bare id string.

    Example:
        >>> deleted_ids([{"id": "a", "deletedAt": 1}, "b", {"opportunityId": "c"}, {}])
        ['a', 'b', 'c']
    """
    out = []
    for item in items:
        if isinstance(item, str) and item:
            out.append(item)
        elif isinstance(item, Mapping):
            value = item.get("id") or item.get("opportunityId")
            if isinstance(value, str) and value:
                out.append(value)
    return out


def redirect_advice(location: str, base_path: str = "/v1") -> str:
    """What to set when Lever redirects (EU accounts live on api.eu.lever.co).

    Example:
        >>> redirect_advice("https://api.eu.lever.co/v1/opportunities")
        'set LEVER_BASE_URL=https://api.eu.lever.co/v1 (EU accounts are served from there)'
    """
    parts = urlsplit(location or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        base = f"{parts.scheme}://{parts.netloc}{base_path or ''}"
        eu = " (EU accounts are served from there)" if ".eu." in parts.netloc else ""
        return f"set LEVER_BASE_URL={base}{eu}"
    return (
        "set LEVER_BASE_URL to your account's API host: https://api.lever.co/v1, or "
        "https://api.eu.lever.co/v1 for an EU account"
    )


def describe_listing(path: str, params: Mapping[str, Any]) -> str:
    """`GET /opportunities (confidentiality, created_at_start)`: the path and parameter names."""
    names = sorted(k for k in params if k not in ("limit", "offset"))
    return f"GET {path}" + (f" ({', '.join(names)})" if names else "")


def decode_answer(
    response: requests.Response, host: str, method: str, path: str
) -> tuple[dict[str, Any], int]:
    """An answer's JSON object, and how many undecodable text values were replaced by U+FFFD.

    The one place where text from Lever comes in (`toolkit.chars.clean_json`): a lone surrogate
    (``"\\ud800"``) or a bad byte never reaches Parquet, a CSV or a journal. A body that is not
    JSON is ``{"message": ...}`` for a 5xx, 401 or 429 (their bodies are often a proxy's page),
    else an `UnexpectedResponseError`, as is JSON that is not an object or is nested too deeply.
    """
    status = response.status_code
    if not response.content:
        return ({} if 200 <= status < 300 else {"message": response.reason or ""}), 0

    def unexpected(what: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(
            f"the server at {host} answered {what}", status=status, method=method, path=path
        )

    try:
        text, bad_bytes = response.content.decode("utf-8"), 0
    except UnicodeDecodeError:
        text, bad_bytes = response.content.decode("utf-8", "replace"), 1
    try:
        payload, replaced = clean_json(json.loads(text), text)
    except RecursionError:
        raise unexpected("JSON nested too deeply to be Lever's") from None
    except ValueError:
        kind = response.headers.get("Content-Type", "unknown content").split(";")[0]
        if status >= 500 or status in (401, 429):
            return {"message": f"non-JSON answer ({kind})"}, 0
        raise unexpected(f"{kind}, not Lever's JSON") from None
    if not isinstance(payload, dict):
        raise unexpected("JSON that is not a Lever object")
    return payload, replaced + bad_bytes
