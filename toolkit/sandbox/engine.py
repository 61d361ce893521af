"""The sandbox's engine: its run-time configuration (`SandboxConfig`) and the `Engine` that
holds the state, the per-key buckets and the fault injection every handler consults."""

from __future__ import annotations

import base64
import binascii
import random
import secrets
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

from toolkit.sandbox.bucket import ServerBucket
from toolkit.sandbox.state import SandboxState, TokenCodec

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
}


def _coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in changes.items():
        if name not in _CONFIG_TYPES:
            raise ValueError(f"unknown sandbox setting {name!r}")
        kind = _CONFIG_TYPES[name]
        if value is None and name == "jitter_ms":
            out[name] = None
        elif kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            out[name] = value
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
    ) -> None:
        self.state = state
        self.config = config.validated()
        self._keys = {api_key: True, restricted_api_key: False}  # key -> confidential access
        self._api_key = api_key
        self._buckets: dict[str, ServerBucket] = {}
        self._rng = random.Random(f"faults-{seed}")
        self._follow_ups: dict[str, int] = {}  # listing (query hash) -> follow-up pages asked
        self.tokens = TokenCodec(secrets.token_bytes(32))

    @property
    def lock(self) -> threading.RLock:
        return self.state.lock

    def configure(self, **changes: Any) -> dict[str, Any]:
        changes = _coerce_config(changes)
        with self.lock:
            merged = SandboxConfig(**{**asdict(self.config), **changes}).validated()
            self.config = merged
            if "rate" in changes or "burst" in changes:
                self._buckets.clear()
            return asdict(merged)

    def key_of(self, authorization: str | None) -> str | None:
        """The key a request presents (Basic user name, or Bearer token), if it is a valid one."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return None
        elif scheme.lower() == "bearer":
            key = value
        else:
            return None
        return key if key in self._keys else None

    def access(self, authorization: str | None) -> bool | None:
        """Confidential access of the presented credential; None when it is not valid."""
        key = self.key_of(authorization)
        return None if key is None else self._keys[key]

    def is_admin(self, authorization: str | None) -> bool:
        return self.access(authorization) is True

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
