"""The sandbox's engine: the `Engine` that holds the state, the per-key buckets and the fault
injection every handler consults. Its settings (`SandboxConfig`) are declared in
`lever_sandbox.config` and re-exported here."""

from __future__ import annotations

import base64
import binascii
import random
import secrets
import threading
import time
from dataclasses import asdict
from typing import Any

from lever_sandbox.bucket import ServerBucket
from lever_sandbox.config import (  # noqa: F401  (re-exported: their names before config.py)
    CONFIG_FIELDS,
    LISTING_ORDERS,
    SandboxConfig,
    SandboxConfigError,
    coerce_config,
)
from lever_sandbox.oauth import OAuthApp, token_answer
from lever_sandbox.protocol import TokenCodec
from lever_sandbox.state import SandboxState

DELETED_SHAPES = ("documented", "minimal", "id")
INVALID_OFFSET_MESSAGE = "Invalid offset token: Offset token is invalid for sort"


SERVER_FAULTS = (
    (500, "InternalServerError", "An internal error occurred"),
    (502, "BadGateway", "Bad gateway"),
    (503, "ServiceUnavailable", "The service is temporarily unavailable"),
)


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
        self.state.null_updated = self.config.null_updated_at
        self.state.null_filter = self.config.null_updated_filter
        self._keys = {api_key: True, restricted_api_key: False}  # key -> confidential access
        self._api_key = api_key
        # OAuth: Bearer only, never an API key. One live token (full access) at a time.
        self.access_token = access_token or secrets.token_urlsafe(32)
        self.issued_tokens = [self.access_token]
        self._token_issued = time.monotonic()
        self._token_uses = 0
        self.oauth_app = OAuthApp()
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
            self.state.null_filter = merged.null_updated_filter
            if merged.null_updated_at != self.state.null_updated:
                self.state.null_updated = merged.null_updated_at
                self.state.orders_changed()
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

    def refresh_with(self, form: dict[str, str]) -> dict[str, Any]:
        """``POST /oauth/token``: a new access token for a valid refresh request.

        Raises:
            OAuthRefused: a wrong grant type, client or refresh token.
        """
        with self.lock:
            refresh = self.oauth_app.exchange(form, self.config.refresh_rotation)
            access = self.refresh_access_token()
            return token_answer(access, refresh, self.config.access_token_ttl_s)

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
