"""The Lever-compatible HTTP server (tornado) and `Sandbox`, which runs it in a thread.

Every ``/v1`` request goes through the same steps in `V1Handler.prepare`: authentication (401),
the per-key token bucket (429), the configured latency (an ``await asyncio.sleep``, so requests
overlap), then the injected faults (dropped connection, 500/502/503, invalid offset token). Admin
routes under ``/_sandbox/`` need the full-access key but get no latency, limits or faults.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import os
import random
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from toolkit.sandbox.bucket import ServerBucket
from toolkit.sandbox.data import Dataset, apply_created_profile
from toolkit.sandbox.state import (
    LISTING_ORDERS,
    ApiError,
    SandboxState,
    TokenCodec,
    _parse_ms,
    default_dataset,
    parse_limit,
    query_hash,
    validate_tags_body,
)

log = logging.getLogger(__name__)

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
            ``created`` (createdAt, then id), ``descending`` (newest first) or ``shuffled``
            (a fixed order unrelated to time, from a hash of the id).
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


def _coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
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
        changes = _coerce_config(changes)
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


# -- handlers -----------------------------------------------------------------------------------


class BaseHandler(tornado.web.RequestHandler):
    route = "?"
    admin = False

    def initialize(self, engine: Engine) -> None:
        self.engine = engine
        self.confidential_access = False
        self._counted_in_flight = False

    def compute_etag(self) -> None:
        return None

    def params(self) -> dict[str, list[str]]:
        return {
            k: [v.decode("utf-8", "replace") for v in values]
            for k, values in self.request.query_arguments.items()
        }

    def param_pairs(self) -> list[tuple[str, str]]:
        return [(k, v) for k, values in self.params().items() for v in values]

    def reply(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    def fail(self, error: ApiError) -> None:
        self.reply(error.status, error.body())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        codes = {405: "MethodNotAllowed", 500: "InternalServerError"}
        self.set_header("Content-Type", "application/json; charset=utf-8")
        body = {"code": codes.get(status_code, "Error"), "message": self._reason}
        self.finish(json.dumps(body))

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise ApiError(400, "InvalidRequest", "the body is not valid JSON") from None

    def on_finish(self) -> None:
        self.engine.record(self.route, self.get_status(), admin=self.admin)
        if self._counted_in_flight:
            self.engine.in_flight(-1)

    async def _run(self, method, *args: str) -> None:
        try:
            result = method(*args)
            if asyncio.iscoroutine(result):
                await result
        except ApiError as error:
            self.fail(error)


class AdminHandler(BaseHandler):
    admin = True

    def prepare(self) -> None:
        if not self.engine.is_admin(self.request.headers.get("Authorization")):
            self.reply(401, {"code": "Unauthorized", "message": "Invalid API key"})


class V1Handler(BaseHandler):
    """Common pipeline for /v1: auth, rate limit, latency, faults."""

    async def prepare(self) -> None:
        engine = self.engine
        self.engine.in_flight(1)
        self._counted_in_flight = True
        authorization = self.request.headers.get("Authorization")
        access = engine.use(authorization)
        if access is None:
            self.set_header("WWW-Authenticate", 'Basic realm="Lever API"')
            bearer = (authorization or "").strip().lower().startswith("bearer")
            message = "Invalid or expired access token" if bearer else "Invalid or missing API key"
            self.reply(401, {"code": "Unauthorized", "message": message})
            return
        self.confidential_access = access
        wait = engine.take_token(authorization)
        if wait > 0:
            with engine.lock:
                engine.state.stats.rate_limited += 1
                send_retry_after = engine.config.retry_after
            if send_retry_after:
                self.set_header("Retry-After", str(max(1, math.ceil(wait))))
            self.reply(429, {"code": "TooManyRequests", "message": "Rate limit exceeded"})
            return
        delay = engine.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        fault = engine.roll_fault(
            "offset" in self.request.query_arguments, query_hash(self.param_pairs())
        )
        if fault == "drop":
            engine.record(self.route, "dropped")
            engine.in_flight(-1)
            self._counted_in_flight = False
            self.detach().close()
        elif fault == "offset":
            self.invalid_offset()
        elif fault is not None:
            status, code, message = fault
            self.reply(status, {"code": code, "message": message})

    def invalid_offset(self) -> None:
        status = self.engine.config.offset_error_status
        self.reply(status, {"code": "InvalidRequest", "message": INVALID_OFFSET_MESSAGE})

    def paginate(
        self, fetch, cursor_type=list, extra_hash: Iterable[tuple[str, str]] = ()
    ) -> dict[str, Any] | None:
        """Run `fetch(limit, after) -> (items, next_cursor)` with tokens bound to the query."""
        params = self.params()
        limit = parse_limit(params)
        qhash = query_hash([*self.param_pairs(), *extra_hash])
        after = None
        offset = (params.get("offset") or [None])[-1]
        if offset:
            after = self.engine.tokens.decode(offset, qhash)
            if not isinstance(after, cursor_type):
                with self.engine.lock:
                    self.engine.state.stats.invalid_offset_tokens += 1
                self.invalid_offset()
                return None
        items, cursor = fetch(limit, after)
        body: dict[str, Any] = {"data": items, "hasNext": cursor is not None}
        if cursor is not None and not self.engine.omit_next(qhash):
            body["next"] = self.engine.tokens.encode(cursor, qhash)
        return body

    def expand_contact(self) -> bool:
        values = self.params().get("expand") or []
        return any("contact" in v.split(",") for v in values)

    def load_opportunity(self, opp_id: str) -> dict[str, Any]:
        opp = self.engine.state.get(opp_id)
        if opp is None:
            raise ApiError(404, "ResourceNotFound", f"opportunities {opp_id} was not found")
        if opp.get("confidentiality") == "confidential" and not self.confidential_access:
            raise ApiError(
                403, "Forbidden", "This API key does not have access to confidential data"
            )
        return opp


class OpportunitiesHandler(V1Handler):
    route = "GET /v1/opportunities"

    async def get(self) -> None:
        await self._run(self._list)

    def _list(self) -> None:
        state = self.engine.state
        keep = state.opportunity_filter(
            self.params(), self.confidential_access, self.engine.config.confidential_denied
        )
        expand = self.expand_contact()
        body = self.paginate(
            lambda limit, after: state.list_opportunities(
                keep, limit, after, expand, order=self.engine.config.listing_order
            )
        )
        if body is not None:
            self.reply(200, body)


class OpportunityHandler(V1Handler):
    route = "GET /v1/opportunities/{id}"

    async def get(self, opp_id: str) -> None:
        await self._run(self._get, opp_id)

    def _get(self, opp_id: str) -> None:
        opp = self.load_opportunity(opp_id)
        self.reply(200, {"data": self.engine.state.render(opp, self.expand_contact())})


class TagWriteHandler(V1Handler):
    kind = "opportunities"

    @property
    def route(self) -> str:  # type: ignore[override]
        return f"POST /v1/{self.kind}/{{id}}/{self.path_kwargs.get('action') or '?'}"

    async def post(self, opp_id: str, action: str) -> None:
        await self._run(self._write, opp_id, action)

    def _write(self, opp_id: str, action: str) -> None:
        state = self.engine.state
        self.load_opportunity(opp_id)
        tags = validate_tags_body(self.json_body())
        perform_as = (self.params().get("perform_as") or [None])[-1]
        if perform_as is not None and perform_as not in state.user_ids():
            if self.engine.config.perform_as_status == 404:
                raise ApiError(404, "ResourceNotFound", f"users {perform_as} was not found")
            raise ApiError(400, "InvalidRequest", f"perform_as: unknown user {perform_as}")
        if perform_as is not None and state.user_deactivated(perform_as):
            # [guess] Lever refuses changes attributed to a deactivated user
            raise ApiError(400, "InvalidRequest", f"perform_as: user {perform_as} is deactivated")
        try:
            if action == "addTags":
                opp = state.change_tags(opp_id, add=tags)
            else:
                opp = state.change_tags(opp_id, remove=tags)
            rendered = state.render(opp, False)
        except KeyError:
            raise ApiError(404, "ResourceNotFound", f"{self.kind} {opp_id} was not found") from None
        with self.engine.lock:
            state.stats.writes += 1
        if self.kind == "candidates":
            self.set_header("Deprecation", "true")
        self.reply(200, {"data": rendered})


class CandidateTagWriteHandler(TagWriteHandler):
    kind = "candidates"


class TagsHandler(V1Handler):
    route = "GET /v1/tags"

    async def get(self) -> None:
        await self._run(self._list)

    def _list(self) -> None:
        state = self.engine.state

        def fetch(limit: int, after: list | None):
            rows = state.tag_counts()
            if after:
                rows = [r for r in rows if r["text"] > after[0]]
            page = rows[:limit]
            return page, ([page[-1]["text"]] if len(rows) > limit else None)

        body = self.paginate(fetch)
        if body is not None:
            self.reply(200, body)


class UsersHandler(V1Handler):
    route = "GET /v1/users"

    async def get(self) -> None:
        await self._run(self._list)

    def _list(self) -> None:
        state = self.engine.state
        emails = {e.lower() for e in self.params().get("email") or []}

        def fetch(limit: int, after: list | None):
            users = [u for u in state.users if not emails or u["email"].lower() in emails]
            start = after[0] if after else 0
            page = users[start : start + limit]
            more = start + limit < len(users)
            return [dict(u) for u in page], ([start + limit] if more else None)

        body = self.paginate(fetch)
        if body is not None:
            self.reply(200, body)


class UserHandler(V1Handler):
    route = "GET /v1/users/{id}"

    async def get(self, user_id: str) -> None:
        await self._run(self._get, user_id)

    def _get(self, user_id: str) -> None:
        for user in self.engine.state.users:
            if user["id"] == user_id:
                self.reply(200, {"data": dict(user)})
                return
        raise ApiError(404, "ResourceNotFound", f"users {user_id} was not found")


class DeletedOpportunitiesHandler(V1Handler):
    route = "GET /v1/opportunities/deleted"

    async def get(self) -> None:
        await self._run(self._list)

    def _list(self) -> None:
        params = self.params()
        start = _parse_ms(params, "deleted_at_start")
        end = _parse_ms(params, "deleted_at_end")
        state, shape = self.engine.state, self.engine.config.deleted_shape

        def fetch(limit: int, after: list | None):
            return state.list_deleted(start, end, self.confidential_access, limit, after, shape)

        body = self.paginate(fetch)
        if body is not None:
            self.reply(200, body)


class ContactHandler(V1Handler):
    route = "GET /v1/contacts/{id}"

    async def get(self, contact_id: str) -> None:
        await self._run(self._get, contact_id)

    def _get(self, contact_id: str) -> None:
        contact = self.engine.state.contacts.get(contact_id)
        if contact is None:
            raise ApiError(404, "ResourceNotFound", f"contacts {contact_id} was not found")
        self.reply(200, {"data": dict(contact)})


class NotFoundHandler(V1Handler):
    route = "* /v1/<unknown>"

    async def _not_found(self, *args: str) -> None:
        self.reply(404, {"code": "ResourceNotFound", "message": "Resource not found"})

    get = post = put = delete = patch = _not_found


class AdminStatsHandler(AdminHandler):
    route = "GET /_sandbox/stats"

    def get(self) -> None:
        with self.engine.lock:
            body = self.engine.state.stats.as_dict()
            body["config"] = asdict(self.engine.config)
            body["opportunities"] = len(self.engine.state)
        self.reply(200, body)


class AdminResetHandler(AdminHandler):
    route = "POST /_sandbox/reset"

    def post(self) -> None:
        with self.engine.lock:
            self.engine.state.stats.reset()
        self.reply(200, {"ok": True})


class AdminTokenHandler(AdminHandler):
    route = "POST /_sandbox/oauth/token"

    def post(self) -> None:
        """Issue a new OAuth access token (an OAuth refresh); the previous one is refused."""
        self.reply(
            200, {"access_token": self.engine.refresh_access_token(), "token_type": "Bearer"}
        )


class AdminConfigHandler(AdminHandler):
    route = "/_sandbox/config"

    def get(self) -> None:
        with self.engine.lock:
            self.reply(200, asdict(self.engine.config))

    def post(self) -> None:
        try:
            body = self.json_body()
            if not isinstance(body, dict):
                raise ApiError(400, "InvalidRequest", "the body must be a JSON object")
            config = self.engine.configure(**body)
        except ApiError as error:
            return self.fail(error)
        except (TypeError, ValueError) as exc:
            return self.fail(ApiError(400, "InvalidRequest", str(exc)))
        self.reply(200, config)


class AdminOpportunitiesHandler(AdminHandler):
    route = "GET /_sandbox/opportunities"

    def get(self) -> None:
        self.reply(200, {"data": self.engine.state.all_opportunities()})


class AdminOpportunityHandler(AdminHandler):
    route = "/_sandbox/opportunities/{id}"

    def delete(self, opp_id: str) -> None:
        try:
            self.engine.state.delete(opp_id)
        except KeyError:
            return self.fail(ApiError(404, "ResourceNotFound", f"{opp_id} was not found"))
        with self.engine.lock:
            self.engine.state.stats.admin_writes += 1
        self.reply(200, {"ok": True})


class AdminTagsHandler(AdminHandler):
    route = "POST /_sandbox/opportunities/{id}/tags"

    def post(self, opp_id: str) -> None:
        try:
            body = self.json_body()
            tags = body.get("tags") if isinstance(body, dict) else None
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ApiError(400, "InvalidRequest", 'body must be {"tags": [strings]}')
            opp = self.engine.state.set_tags(opp_id, tags)
        except ApiError as error:
            return self.fail(error)
        except KeyError:
            return self.fail(ApiError(404, "ResourceNotFound", f"{opp_id} was not found"))
        with self.engine.lock:
            self.engine.state.stats.admin_writes += 1
        self.reply(200, {"data": self.engine.state.render(opp, False)})


class AdminNotFoundHandler(AdminHandler):
    route = "* /_sandbox/<unknown>"

    def _not_found(self, *args: str) -> None:
        self.reply(404, {"code": "ResourceNotFound", "message": "Resource not found"})

    get = post = put = delete = patch = _not_found


def _log_request(handler: tornado.web.RequestHandler) -> None:
    log.debug(
        "%s %s -> %s (%.1f ms)",
        handler.request.method,
        handler.request.path,
        handler.get_status(),
        handler.request.request_time() * 1000,
    )


def _webhook_routes(kw: dict[str, Any]) -> list:
    from toolkit.sandbox.webhooks import routes  # it imports this module's AdminHandler

    return routes(kw)


def make_app(engine: Engine) -> tornado.web.Application:
    """The tornado application: /v1 routes and /_sandbox admin routes."""
    kw = {"engine": engine}
    seg = r"([^/]+)"
    return tornado.web.Application(
        [
            (r"/v1/opportunities/?", OpportunitiesHandler, kw),
            (r"/v1/opportunities/deleted/?", DeletedOpportunitiesHandler, kw),
            (rf"/v1/opportunities/{seg}/?", OpportunityHandler, kw),
            (rf"/v1/opportunities/{seg}/(addTags|removeTags)/?", TagWriteHandler, kw),
            (rf"/v1/candidates/{seg}/(addTags|removeTags)/?", CandidateTagWriteHandler, kw),
            (r"/v1/tags/?", TagsHandler, kw),
            (r"/v1/users/?", UsersHandler, kw),
            (rf"/v1/users/{seg}/?", UserHandler, kw),
            (rf"/v1/contacts/{seg}/?", ContactHandler, kw),
            (r"/v1(/.*)?", NotFoundHandler, kw),
            (r"/_sandbox/stats", AdminStatsHandler, kw),
            (r"/_sandbox/reset", AdminResetHandler, kw),
            (r"/_sandbox/oauth/token", AdminTokenHandler, kw),
            (r"/_sandbox/config", AdminConfigHandler, kw),
            (r"/_sandbox/opportunities", AdminOpportunitiesHandler, kw),
            (rf"/_sandbox/opportunities/{seg}", AdminOpportunityHandler, kw),
            (rf"/_sandbox/opportunities/{seg}/tags", AdminTagsHandler, kw),
            *_webhook_routes(kw),
            (r"/_sandbox(/.*)?", AdminNotFoundHandler, kw),
        ],
        log_function=_log_request,
        compress_response=False,
    )


# -- the embeddable server ----------------------------------------------------------------------


class Sandbox:
    """A Lever-compatible server on loopback, run by tornado in a daemon thread of this process.

    Args:
        seed: random seed of the data set and of the fault dice.
        contacts: number of generated contacts.
        opportunities: generate exactly this many opportunities instead (overrides `contacts`).
        dataset: use this `Dataset` instead of generating one.
        host, port: where to listen; port 0 picks a free port.
        api_key: the full-access key (random by default); `restricted_api_key` lacks
            confidential access.
        access_token: the OAuth access token (random by default), accepted as Bearer only,
            with full access; it expires (``access_token_ttl_s``,
            ``access_token_max_requests``) and `refresh_access_token` issues a new one.
        state_file: JSON file to load (if it exists); saved within ~50 ms of every write
            and on `stop`.
        created_profile: how generated opportunities spread over time (`uniform`, `recent`,
            `bulk`, `sparse`; see `toolkit.sandbox.data.apply_created_profile`).
        **config: the `SandboxConfig` fields (latency_ms, rate, burst, fail_rate, drop_rate,
            offset_fault_rate, retry_after, offset_error_status, jitter_ms, spike_rate,
            spike_ms) and the Lever-behaviour modes (perform_as_status,
            tag_writes_bump_updated_at, confidential_denied, omit_next, access_token_ttl_s,
            access_token_max_requests, deleted_shape).

    Example:
        >>> with Sandbox(seed=7, contacts=50, rate=1000, burst=1000) as sb:  # doctest: +SKIP
        ...     client = LeverClient(sb.base_url, api_key=sb.api_key)
        ...     len(list(client.iter_opportunities(confidentiality="all")))
    """

    def __init__(
        self,
        seed: int = 7,
        contacts: int = 300,
        *,
        opportunities: int | None = None,
        dataset: Dataset | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        restricted_api_key: str | None = None,
        access_token: str | None = None,
        state_file: str | os.PathLike | None = None,
        created_profile: str = "uniform",
        **config: Any,
    ) -> None:
        self.seed = seed
        self.host = host
        self._requested_port = port
        self._api_key = api_key or secrets.token_urlsafe(24)
        self._restricted_key = restricted_api_key or secrets.token_urlsafe(24)
        if self._api_key == self._restricted_key:
            raise ValueError("api_key and restricted_api_key must differ")
        cfg = SandboxConfig(**_coerce_config(config)).validated()
        if dataset is None and not (state_file and os.path.exists(state_file)):
            dataset = default_dataset(seed, contacts, opportunities)
            dataset = apply_created_profile(dataset, created_profile, seed)
        state = SandboxState(dataset or Dataset([], {}, []), state_file=state_file)
        self.engine = Engine(
            state, cfg, self._api_key, self._restricted_key, seed, access_token=access_token
        )
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Sandbox:
        """Start serving; returns when the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this Sandbox is already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="lever-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        sockets = bind_sockets(self._requested_port, self.host)
        server = HTTPServer(make_app(self.engine))
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), timeout=5)
            except TimeoutError:
                log.warning("sandbox: some connections did not close in time")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection and join the thread; saves the state file."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the sandbox thread did not stop in time")
        self._thread = self._loop = self._stop_event = None
        hub = getattr(self.engine, "webhooks", None)
        if hub is not None:  # webhook deliveries (toolkit.sandbox.webhooks)
            hub.stop()
        self.engine.state.close()

    def wait(self) -> None:
        """Block until the server thread ends (the CLI uses `stop` from a signal handler)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, opportunities={len(self.engine.state)})"

    # -- addresses and keys ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """Root URL (``http://127.0.0.1:PORT``) or None before start."""
        return None if self.port is None else f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root to give a client: ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise RuntimeError("the sandbox is not started")
        return f"{self.url}/v1"

    @property
    def api_key(self) -> str:
        """Key with confidential access (HTTP Basic user name, or a Bearer token)."""
        return self._api_key

    @property
    def restricted_api_key(self) -> str:
        """Key without confidential access."""
        return self._restricted_key

    @property
    def access_token(self) -> str:
        """The live OAuth access token (Bearer only; full access). See `refresh_access_token`."""
        return self.engine.access_token

    def refresh_access_token(self) -> str:
        """Issue a new OAuth access token (as an OAuth refresh would); the old one is refused."""
        return self.engine.refresh_access_token()

    def env(self) -> dict[str, str]:
        """``LEVER_BASE_URL`` and ``LEVER_API_KEY``, for a child process or `from_env`."""
        return {"LEVER_BASE_URL": self.base_url, "LEVER_API_KEY": self.api_key}

    # -- Python-side helpers (thread-safe) ------------------------------------------------------

    @property
    def users(self) -> list[dict[str, Any]]:
        return [dict(u) for u in self.engine.state.users]

    def opportunities(self) -> list[dict[str, Any]]:
        """Deep copies of every current opportunity (confidential included, deleted excluded)."""
        return self.engine.state.all_opportunities()

    def opportunity(self, opp_id: str) -> dict[str, Any] | None:
        opp = self.engine.state.get(opp_id)
        return None if opp is None else self.engine.state.render(opp, False)

    def stats(self) -> dict[str, Any]:
        with self.engine.lock:
            out = self.engine.state.stats.as_dict()
            out["config"] = asdict(self.engine.config)
            return out

    def reset_stats(self) -> None:
        with self.engine.lock:
            self.engine.state.stats.reset()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change latency, faults or limits at run time; returns the whole new config."""
        return self.engine.configure(**changes)

    @property
    def config(self) -> SandboxConfig:
        with self.engine.lock:
            return SandboxConfig(**asdict(self.engine.config))

    def set_tags(self, opp_id: str, tags: Iterable[str]) -> dict[str, Any]:
        """Replace an opportunity's tags directly (drift tests); bumps updatedAt."""
        opp = self.engine.state.set_tags(opp_id, list(tags))
        return self.engine.state.render(opp, False)

    def archive_opportunity(self, opp_id: str) -> dict[str, Any]:
        """Archive an opportunity now, as a recruiter would; bumps updatedAt."""
        return self.engine.state.render(self.engine.state.archive(opp_id), False)

    def deactivate_user(self, user_id: str) -> None:
        """Deactivate a user: GET /users/{id} still finds it, writes attributed to it are 400."""
        self.engine.state.deactivate_user(user_id)

    def delete_opportunity(self, opp_id: str) -> None:
        """Delete an opportunity; the API then answers 404 for it."""
        self.engine.state.delete(opp_id)

    def save(self) -> None:
        """Write the state file now (otherwise saved within ~50 ms of a write, and on stop)."""
        self.engine.state.save()


CONFIG_FIELDS = tuple(f.name for f in fields(SandboxConfig))
