"""What the sandbox's API speaks besides its data: errors as Lever answers them, opaque offset
tokens bound to their query, request counters, and parsing of query parameters and bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote


class ApiError(Exception):
    """A Lever-style error answer: HTTP status plus ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def json_bytes(body: Any) -> bytes:
    """An answer's body as UTF-8 JSON; a lone surrogate (a tag stored as ``"\\ud800"``) is not
    UTF-8, so such a body is JSON-escaped instead, as Lever serves it: never a 500 for a listing.

    Example:
        >>> json_bytes({"tags": ["é"]}), json_bytes({"tags": ["\\ud800"]})
        (b'{"tags":["\\xc3\\xa9"]}', b'{"tags":["\\\\ud800"]}')
    """
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def now_ms() -> int:
    return int(time.time() * 1000)


class TokenCodec:
    """Offset tokens in Lever's observed shape, bound to the query that made them.

    Lever's tokens are a percent-encoded JSON array such as
    ``%5B1%2C1750233409740%2C%22<uuid>%22%5D`` (seen in a public connector's recorded answers);
    a client passes one back as the ``offset`` query value, which encodes it once more
    (``%255B...``), so the server reads back exactly the string it sent. Here the array is
    ``[1, *cursor, signature]``: the signature is an HMAC over the cursor and a hash of the
    query's parameters minus ``offset``, so a token used with other parameters, forged, decoded
    once too often, or from another sandbox instance does not verify.

    Example:
        >>> codec = TokenCodec(b"secret")
        >>> token = codec.encode([1, "a"], "q1")
        >>> token.startswith("%5B1%2C1%2C%22a%22%2C%22")
        True
        >>> codec.decode(token, "q1")
        [1, 'a']
        >>> codec.decode(token, "q2") is None
        True
    """

    VERSION = 1

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: str, query_hash: str) -> str:
        mac = hmac.new(self._secret, f"{query_hash}|{payload}".encode(), hashlib.sha256)
        return mac.hexdigest()[:20]

    def encode(self, cursor: Any, query_hash: str) -> str:
        items = list(cursor) if isinstance(cursor, list | tuple) else [cursor]
        payload = json.dumps(items, separators=(",", ":"))
        array = [self.VERSION, *items, self._sign(payload, query_hash)]
        return quote(json.dumps(array, separators=(",", ":")), safe="")

    def decode(self, token: str, query_hash: str) -> Any | None:
        if not token.startswith("%5B"):
            return None  # decoded once too often (a raw array), or not ours at all
        try:
            array = json.loads(unquote(token))
        except ValueError:
            return None
        if not isinstance(array, list) or len(array) < 3 or array[0] != self.VERSION:
            return None
        items, signature = array[1:-1], array[-1]
        if not isinstance(signature, str):
            return None
        payload = json.dumps(items, separators=(",", ":"))
        if not hmac.compare_digest(signature, self._sign(payload, query_hash)):
            return None
        return items


def query_hash(pairs: Iterable[tuple[str, str]]) -> str:
    """A hash of a query's parameters, ``offset`` excluded, order-insensitive."""
    kept = sorted((k, v) for k, v in pairs if k != "offset")
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:32]


class Stats:
    """Request counters (not locked itself: `SandboxState` holds the lock)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started_at = time.time()
        self.requests = 0
        self.by_route: dict[str, Counter] = defaultdict(Counter)
        self.by_status: Counter = Counter()
        self.writes = 0
        self.admin_writes = 0
        self.rate_limited = 0
        self.faults: Counter = Counter({"server_error": 0, "dropped": 0, "offset_token": 0})
        self.invalid_offset_tokens = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_route": {
                route: {str(s): n for s, n in sorted(c.items(), key=lambda kv: str(kv[0]))}
                for route, c in sorted(self.by_route.items())
            },
            "by_status": {str(s): n for s, n in sorted(self.by_status.items(), key=str)},
            "writes": self.writes,
            "admin_writes": self.admin_writes,
            "rate_limited": self.rate_limited,
            "faults": dict(self.faults),
            "invalid_offset_tokens": self.invalid_offset_tokens,
            "max_in_flight": self.max_in_flight,
            "seconds": round(time.time() - self.started_at, 3),
        }


def parse_ms(params: dict[str, list[str]], name: str) -> int | None:
    values = params.get(name)
    if not values:
        return None
    try:
        return int(values[-1])
    except ValueError:
        raise ApiError(
            400, "InvalidRequest", f"{name} must be a timestamp in milliseconds"
        ) from None


def parse_bool(params: dict[str, list[str]], name: str) -> bool | None:
    values = params.get(name)
    if not values:
        return None
    value = values[-1].strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ApiError(400, "InvalidRequest", f"{name} must be true or false")


def parse_limit(params: dict[str, list[str]]) -> int:
    values = params.get("limit")
    if not values:
        return 100
    try:
        limit = int(values[-1])
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise ApiError(400, "InvalidRequest", "limit must be an integer between 1 and 100")
    return limit


def validate_tags_body(body: Any) -> list[str]:
    """The ``tags`` of a write body, or ApiError 400."""
    tags = body.get("tags") if isinstance(body, dict) else None
    if not isinstance(tags, list) or not tags:
        raise ApiError(400, "InvalidRequest", 'body must be {"tags": [...]} with at least one tag')
    if not all(isinstance(t, str) and t.strip() for t in tags):
        raise ApiError(400, "InvalidRequest", "every tag must be a non-empty string")
    return tags
