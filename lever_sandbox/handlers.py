"""The sandbox's routes (tornado handlers): Lever's `/v1` API as `lever-api.md` describes it,
and the admin routes under `/_sandbox/`. The application that routes to them is
`lever_sandbox.app.make_app` (it adds the webhook routes of `lever_sandbox.webhooks`).

Every ``/v1`` request goes through the same steps in `V1Handler.prepare`: authentication (401),
the per-key token bucket (429), the configured latency (an ``await asyncio.sleep``, so requests
overlap), then the injected faults (dropped connection, 500/502/503, invalid offset token). Admin
routes need the full-access key but get no latency, limits or faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import tornado.web

from lever_sandbox.engine import INVALID_OFFSET_MESSAGE, Engine
from lever_sandbox.oauth import OAuthRefused
from lever_sandbox.protocol import (
    ApiError,
    json_bytes,
    parse_limit,
    parse_ms,
    query_hash,
    validate_tags_body,
)

log = logging.getLogger(__name__)


class BaseHandler(tornado.web.RequestHandler):
    route = "?"
    admin = False

    def initialize(self, engine: Engine) -> None:
        self.engine = engine
        self.confidential_access = False
        self._counted_in_flight = False
        self._recorded = False

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
        self.finish(json_bytes(body))

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
        except (ValueError, RecursionError):  # RecursionError: a hostile [[[[... body
            raise ApiError(400, "InvalidRequest", "the body is not valid JSON") from None

    def finish(self, chunk: Any = None) -> Any:
        # Counted before the answer leaves: a client that reads the stats right after its own
        # request got its answer must find that request in them (counting in on_finish, after
        # the bytes were flushed, lost that race about one run in four).
        if not self._recorded:
            self._recorded = True
            self.engine.record(self.route, self.get_status(), admin=self.admin)
            if self._counted_in_flight:
                self._counted_in_flight = False
                self.engine.in_flight(-1)
        return super().finish(chunk)

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

    def expand_contact(self) -> set[str]:
        """The objects `expand` asks for (contact, owner, stage, applications; repeated keys)."""
        values = self.params().get("expand") or []
        return {part for v in values for part in v.split(",") if part}

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
        action = self.path_args[1] if len(self.path_args) > 1 else "?"  # (id, addTags|removeTags)
        return f"POST /v1/{self.kind}/{{id}}/{action}"

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
        start = parse_ms(params, "deleted_at_start")
        end = parse_ms(params, "deleted_at_end")
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


class OAuthTokenHandler(BaseHandler):
    """``POST /oauth/token`` (Lever's auth.lever.co): not counted as an API request (``admin``)."""

    route = "POST /oauth/token"
    admin = True

    def post(self) -> None:
        form = {
            k: values[-1].decode("utf-8", "replace")
            for k, values in self.request.body_arguments.items()
            if values
        }
        try:
            answer = self.engine.refresh_with(form)
        except OAuthRefused as refused:
            self.reply(refused.status, refused.body())
            return
        self.set_header("Cache-Control", "no-store")
        self.reply(200, answer)


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
