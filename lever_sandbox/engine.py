"""The sandbox's engine: its run-time configuration (`SandboxConfig`) and the `Engine` that
holds the state, the per-key buckets and the fault injection every handler consults."""

from __future__ import annotations

import base64
import binascii
import random
import secrets
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from lever_sandbox.bucket import ServerBucket
from lever_sandbox.protocol import TokenCodec
from lever_sandbox.state import LISTING_ORDERS, SandboxState

INVALID_OFFSET_MESSAGE = "Invalid offset token: Offset token is invalid for sort"


SERVER_FAULTS = (
    (500, "InternalServerError", "An internal error occurred"),
    (502, "BadGateway", "Bad gateway"),
    (503, "ServiceUnavailable", "The service is temporarily unavailable"),
)


@dataclass
class SandboxConfig:
    """Run-time behaviour; every field can be changed with `Sandbox.configure` or the admin API.

    Attributes:
        latency_ms: delay added to every /v1 request, milliseconds.
        jitter_ms: uniform jitter added to the latency (0..jitter_ms); None = 10 % of latency.
        rate, burst: the token bucket per key (requests/second, bucket size).
        fail_rate: probability of a 500/502/503 answer.
        drop_rate: probability of closing the connection without an answer.
        offset_fault_rate: probability that a request carrying ``offset`` gets the
            invalid-offset-token answer.
        retry_after: send ``Retry-After`` (whole seconds) on 429 answers.
        offset_error_status: HTTP status of the invalid-offset-token answer (400, or 200 as one
            public connector saw).
        offset_fault_each_listing: the Nth follow-up page of every listing (every distinct
            query) answers the invalid-offset-token message, once; the restarted listing then
            goes through (0 = never). Deterministic however requests interleave.
        spike_rate: probability that a request is delayed by an extra `spike_ms` (a latency
            spike: slow enough to hit a client's read timeout).
        spike_ms: the extra delay of a spike, milliseconds.

    Modes for Lever behaviours that are not documented ([guess] in lever-api.md); each default
    is the behaviour the toolkit was first written against, and `lever-tags doctor` reports a
    real account that differs from it:

        perform_as_status: the answer to a write whose ``perform_as`` user does not exist:
            400 (default) or 404 ``users <id> was not found``.
        tag_writes_bump_updated_at: a tag write moves ``updatedAt`` (default true).
        confidential_denied: a key without confidential access asking for confidential data
            gets ``403`` (default) or ``filter``: the confidential ones are silently left out.
        omit_next: ``never`` (default), ``once`` (the first page of every listing that has more
            answers ``hasNext: true`` without ``next`` once), or ``always``.
        access_token_ttl_s: lifetime of the OAuth access token in seconds (Lever: one hour).
        access_token_max_requests: the OAuth access token expires after this many requests
            (0 = only by time): a deterministic expiring-token mode.
        deleted_shape: items of ``GET /opportunities/deleted``: ``minimal`` (default,
            ``{id, deletedAt}``), ``opportunity`` (the whole opportunity and ``deletedAt``)
            or ``id`` (``{id}`` only).
        listing_order: the order `GET /opportunities` lists in (undocumented at Lever):
            ``created`` (createdAt, then id), ``newest`` (createdAt descending), ``updated``
            or ``updated-desc`` (updatedAt, a null one counting as createdAt, ascending or
            descending: a write moves an opportunity while a listing runs) or ``shuffled`` (a
            fixed order unrelated to time, from a hash of the id).
    """

    latency_ms: float = 0.0
    jitter_ms: float | None = None
    rate: float = 10.0
    burst: int = 20
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    offset_fault_rate: float = 0.0
    retry_after: bool = False
    offset_error_status: int = 400
    spike_rate: float = 0.0
    spike_ms: float = 2000.0
    offset_fault_each_listing: int = 0
    perform_as_status: int = 400
    tag_writes_bump_updated_at: bool = True
    confidential_denied: str = "403"
    omit_next: str = "never"
    access_token_ttl_s: float = 3600.0
    access_token_max_requests: int = 0
    deleted_shape: str = "minimal"
    listing_order: str = "created"

    def validated(self) -> SandboxConfig:
        if self.latency_ms < 0 or (self.jitter_ms is not None and self.jitter_ms < 0):
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0 (got {self.rate})")
        if int(self.burst) < 1:
            raise ValueError(f"burst must be >= 1 (got {self.burst})")
        if self.offset_fault_each_listing < 0:
            raise ValueError(
                f"offset_fault_each_listing must be >= 0 (got {self.offset_fault_each_listing})"
            )
        if self.spike_ms < 0:
            raise ValueError(f"spike_ms must be >= 0 (got {self.spike_ms})")
        for name in ("fail_rate", "drop_rate", "offset_fault_rate", "spike_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {value})")
        if self.offset_error_status not in (200, 400):
            raise ValueError("offset_error_status must be 200 or 400")
        if self.perform_as_status not in (400, 404):
            raise ValueError("perform_as_status must be 400 or 404")
        if self.confidential_denied not in ("403", "filter"):
            raise ValueError("confidential_denied must be 403 or filter")
        if self.omit_next not in ("never", "once", "always"):
            raise ValueError("omit_next must be never, once or always")
        if self.deleted_shape not in ("minimal", "opportunity", "id"):
            raise ValueError("deleted_shape must be minimal, opportunity or id")
        if self.access_token_ttl_s <= 0 or self.access_token_max_requests < 0:
            raise ValueError("access_token_ttl_s must be > 0, access_token_max_requests >= 0")
        if self.listing_order not in LISTING_ORDERS:
            raise ValueError(f"listing_order must be one of {', '.join(LISTING_ORDERS)}")
        self.burst = int(self.burst)
        return self


_CONFIG_TYPES = {
    "latency_ms": float,
    "jitter_ms": float,
    "rate": float,
    "burst": int,
    "fail_rate": float,
    "drop_rate": float,
    "offset_fault_rate": float,
    "retry_after": bool,
    "offset_error_status": int,
    "spike_rate": float,
    "spike_ms": float,
    "offset_fault_each_listing": int,
    "perform_as_status": int,
    "tag_writes_bump_updated_at": bool,
    "confidential_denied": str,
    "omit_next": str,
    "access_token_ttl_s": float,
    "access_token_max_requests": int,
    "deleted_shape": str,
    "listing_order": str,
}


def coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in changes.items():
        if name not in _CONFIG_TYPES:
            raise ValueError(f"unknown sandbox setting {name!r}")
        kind = _CONFIG_TYPES[name]
        if value is None and name == "jitter_ms":
            out[name] = None
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            out[name] = value
        elif kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            out[name] = value
        elif kind is str:
            out[name] = str(value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        else:
            out[name] = kind(value)
    return out


class Engine:
    """Everything the handlers share: state, config, keys, buckets, fault dice."""

    def __init__(
        self,
        state: SandboxState,
        config: SandboxConfig,
        api_key: str,
        restricted_api_key: str,
        seed: int,
        access_token: str | None = None,
    ) -> None:
        self.state = state
        self.config = config.validated()
        self.state.bump_on_tag_write = self.config.tag_writes_bump_updated_at
        self._keys = {api_key: True, restricted_api_key: False}  # key -> confidential access
        self._api_key = api_key
        # OAuth: Bearer only, never an API key. One live token (full access) at a time.
        self.access_token = access_token or secrets.token_urlsafe(32)
        self.issued_tokens = [self.access_token]
        self._token_issued = time.monotonic()
        self._token_uses = 0
        self._omitted: set[str] = set()  # listings (query hash) that already lost a `next`
        self._buckets: dict[str, ServerBucket] = {}
        self._rng = random.Random(f"faults-{seed}")
        self._follow_ups: dict[str, int] = {}  # listing (query hash) -> follow-up pages asked
        self.tokens = TokenCodec(secrets.token_bytes(32))

    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    def configure(self, **changes: Any) -> dict[str, Any]:
        changes = coerce_config(changes)
        with self.lock:
            merged = SandboxConfig(**{**asdict(self.config), **changes}).validated()
            self.config = merged
            self.state.bump_on_tag_write = merged.tag_writes_bump_updated_at
            if "rate" in changes or "burst" in changes:
                self._buckets.clear()
            return asdict(merged)

    def refresh_access_token(self) -> str:
        """Issue a new OAuth access token; the previous one stops working at once."""
        with self.lock:
            self.access_token = secrets.token_urlsafe(32)
            self.issued_tokens.append(self.access_token)
            self._token_issued = time.monotonic()
            self._token_uses = 0
            return self.access_token

    def _token_live(self) -> bool:
        cfg = self.config
        if time.monotonic() - self._token_issued > cfg.access_token_ttl_s:
            return False
        limit = cfg.access_token_max_requests
        return not (limit and self._token_uses >= limit)

    def key_of(self, authorization: str | None) -> str | None:
        """The credential a request presents, if valid: an API key as the Basic user name, or
        the live OAuth access token as Bearer (an API key sent as Bearer is refused, as Lever
        does)."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return None
            return key if key in self._keys else None
        if scheme.lower() == "bearer":
            with self.lock:
                if value == self.access_token and self._token_live():
                    return value
        return None

    def access(self, authorization: str | None) -> bool | None:
        """Confidential access of the presented credential; None when it is not valid."""
        key = self.key_of(authorization)
        if key is None:
            return None
        return True if key == self.access_token else self._keys[key]

    def use(self, authorization: str | None) -> bool | None:
        """`access` for a /v1 request, counting one use of a Bearer token."""
        access = self.access(authorization)
        if access is not None and self.key_of(authorization) == self.access_token:
            with self.lock:
                self._token_uses += 1
        return access

    def omit_next(self, listing: str) -> bool:
        """Whether this page drops its `next` (the omit_next mode)."""
        with self.lock:
            mode = self.config.omit_next
            if mode == "always":
                return True
            if mode == "once" and listing not in self._omitted:
                self._omitted.add(listing)
                return True
            return False

    def is_admin(self, authorization: str | None) -> bool:
        return self.key_of(authorization) == self._api_key

    def take_token(self, authorization: str) -> float:
        """One token of the presenting key's bucket: one bucket per key, however it is sent."""
        key = self.key_of(authorization) or authorization
        with self.lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = ServerBucket(self.config.rate, self.config.burst)
                self._buckets[key] = bucket
        return bucket.try_acquire()

    def delay_seconds(self) -> float:
        with self.lock:
            cfg = self.config
            spike = 0.0
            if cfg.spike_rate and self._rng.random() < cfg.spike_rate:
                self.state.stats.faults["latency_spike"] += 1
                spike = cfg.spike_ms
            if cfg.latency_ms <= 0 and not cfg.jitter_ms:
                return spike / 1000.0
            jitter = cfg.latency_ms * 0.1 if cfg.jitter_ms is None else cfg.jitter_ms
            return (cfg.latency_ms + spike + self._rng.uniform(0, jitter)) / 1000.0

    def roll_fault(
        self, has_offset: bool, listing: str | None = None
    ) -> str | tuple[int, str, str] | None:
        """'drop', a (status, code, message) server fault, 'offset', or None. Deterministic."""
        with self.lock:
            cfg = self.config
            if cfg.drop_rate and self._rng.random() < cfg.drop_rate:
                self.state.stats.faults["dropped"] += 1
                return "drop"
            if cfg.fail_rate and self._rng.random() < cfg.fail_rate:
                self.state.stats.faults["server_error"] += 1
                return self._rng.choice(SERVER_FAULTS)
            if has_offset and listing and cfg.offset_fault_each_listing:
                seen = self._follow_ups[listing] = self._follow_ups.get(listing, 0) + 1
                if seen == cfg.offset_fault_each_listing:
                    self.state.stats.faults["offset_token"] += 1
                    return "offset"
            if has_offset and cfg.offset_fault_rate and self._rng.random() < cfg.offset_fault_rate:
                self.state.stats.faults["offset_token"] += 1
                return "offset"
            return None

    def record(self, route: str, status: int | str, admin: bool = False) -> None:
        with self.lock:
            stats = self.state.stats
            stats.by_route[route][status] += 1
            if not admin:
                stats.requests += 1
                stats.by_status[status] += 1

    def in_flight(self, delta: int) -> None:
        with self.lock:
            stats = self.state.stats
            stats.in_flight += delta
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)


CONFIG_FIELDS = tuple(f.name for f in fields(SandboxConfig))
