"""Lever's "Webhooks via the API" in the sandbox, and the settings page's test request.

``GET /v1/webhooks`` lists ``{id, url, event, createdAt, updatedAt, configuration}`` (never the
token); ``POST /v1/webhooks {url, event, configuration?: {conditions: {origins}}}`` creates one
webhook for one event with its own 48-character signature token, answered ``201`` with
``configuration.signatureToken``, nested as Lever's documentation shows it
(``{"data": {"data": {...}}}``; the hub setting ``createShape: "flat"`` answers
``{"data": {...}}``); ``DELETE /v1/webhooks/{id}`` answers ``204``. Only the events Lever lets
a condition limit (``applicationCreated, candidateArchiveChange, candidateHired,
candidateStageChange``) take ``conditions``. These routes go through the /v1 pipeline (auth,
rate limit, latency, faults).

Admin routes (full-access key):
    POST /_sandbox/webhooks/settings      {sendIds?, retryScale?, createShape?}: the hub's modes
    POST /_sandbox/webhooks/{id}/test     Lever's test request (``candidateHired``, ``data: {}``,
                                          no ``id``), signed with that webhook's token, sent once
"""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from lever_sandbox.handlers import AdminHandler, V1Handler
from lever_sandbox.protocol import ApiError, now_ms
from lever_sandbox.webhooks import DEFAULT_RETRY_DELAYS_MS, LEVER_EVENTS, hub_for

ORIGINS = ("applied", "sourced", "referred", "university", "agency", "internal")
CONFIGURABLE = (
    "applicationCreated",
    "candidateArchiveChange",
    "candidateHired",
    "candidateStageChange",
)


def _origins(event: str, configuration: Any) -> list[str] | None:
    if configuration is None:
        return None
    if not isinstance(configuration, dict) or set(configuration) - {"conditions"}:
        raise ApiError(400, "InvalidRequest", "configuration: an object with conditions")
    conditions = configuration.get("conditions")
    if conditions is None:
        return None
    if event not in CONFIGURABLE:
        raise ApiError(400, "InvalidRequest", f"{event} webhooks cannot be configured")
    origins = conditions.get("origins") if isinstance(conditions, dict) else None
    if not isinstance(origins, list) or not origins or not set(origins) <= set(ORIGINS):
        raise ApiError(400, "InvalidRequest", f"conditions.origins: a list of {', '.join(ORIGINS)}")
    return list(dict.fromkeys(origins))


def _check_url(url: Any) -> str:
    # Lever calls HTTPS only; plain HTTP is allowed to loopback, where the tests' receivers are.
    parts = urlsplit(url) if isinstance(url, str) else None
    loopback = parts is not None and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts is None or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ApiError(400, "InvalidRequest", "url must be an HTTPS URL")
    return url


def lever_shape(sub: dict[str, Any]) -> dict[str, Any]:
    """A subscription as Lever lists a webhook (no token)."""
    configuration: dict[str, Any] = {}
    if sub.get("origins"):
        configuration["conditions"] = {"origins": list(sub["origins"])}
    return {
        "id": sub["id"],
        "url": sub["url"],
        "event": sub["events"][0],
        "createdAt": sub.get("createdAt"),
        "updatedAt": sub.get("updatedAt"),
        "configuration": configuration,
    }


class _Route:
    @property
    def route(self) -> str:  # type: ignore[override]
        suffix = "/{id}" if self.path_args else ""  # type: ignore[attr-defined]
        return f"{self.request.method} /v1/webhooks{suffix}"  # type: ignore[attr-defined]


class ApiWebhooksHandler(_Route, V1Handler):
    async def get(self) -> None:
        await self._run(self._list)

    async def post(self) -> None:
        await self._run(self._create)

    def _list(self) -> None:
        hub = hub_for(self.engine)
        with hub.lock:
            subs = [s for s in hub.subscriptions.values() if len(s["events"]) == 1]
            self.reply(200, {"data": [lever_shape(s) for s in subs]})

    def _create(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequest", "the body must be a JSON object")
        event = body.get("event")
        if event not in LEVER_EVENTS:
            raise ApiError(400, "InvalidRequest", f"event must be one of {', '.join(LEVER_EVENTS)}")
        origins = _origins(event, body.get("configuration"))
        hub = hub_for(self.engine)
        at = now_ms()
        sub = {
            "id": str(uuid.uuid4()),
            "url": _check_url(body.get("url")),
            "events": [event],
            "signatureToken": secrets.token_hex(24),
            "retryDelaysMs": list(DEFAULT_RETRY_DELAYS_MS),
            "faults": {},
            "origins": origins,
            "createdAt": at,
            "updatedAt": at,
        }
        with hub.lock:
            hub.subscriptions[sub["id"]] = sub
            nested = hub.settings.get("createShape", "nested") == "nested"
        data = {k: v for k, v in lever_shape(sub).items() if k != "configuration"}
        data["configuration"] = {"signatureToken": sub["signatureToken"]}
        self.reply(201, {"data": {"data": data} if nested else data})


class ApiWebhookHandler(_Route, V1Handler):
    async def delete(self, webhook_id: str) -> None:
        await self._run(self._delete, webhook_id)

    def _delete(self, webhook_id: str) -> None:
        hub = hub_for(self.engine)
        with hub.lock:
            if hub.subscriptions.pop(webhook_id, None) is None:
                raise ApiError(404, "ResourceNotFound", f"webhooks {webhook_id} was not found")
        self.set_status(204)
        self.finish()


class SettingsHandler(AdminHandler):
    route = "POST /_sandbox/webhooks/settings"

    def post(self) -> None:
        try:
            body = self.json_body()
            if not isinstance(body, dict) or set(body) - {"sendIds", "retryScale", "createShape"}:
                raise ApiError(400, "InvalidRequest", "settings: sendIds, retryScale, createShape")
            scale = body.get("retryScale", 1.0)
            if isinstance(scale, bool) or not isinstance(scale, int | float):
                raise ApiError(400, "InvalidRequest", "retryScale must be a number")
            if not (0 < scale <= 1000 and math.isfinite(scale)):
                raise ApiError(400, "InvalidRequest", "retryScale must be > 0 and <= 1000")
            if not isinstance(body.get("sendIds", True), bool):
                raise ApiError(400, "InvalidRequest", "sendIds must be true or false")
            if body.get("createShape", "nested") not in ("nested", "flat"):
                raise ApiError(400, "InvalidRequest", "createShape must be nested or flat")
        except ApiError as error:
            return self.fail(error)
        hub = hub_for(self.engine)
        with hub.lock:
            hub.settings.update(body)
            self.reply(200, {"data": dict(hub.settings)})


class TestRequestHandler(AdminHandler):
    route = "POST /_sandbox/webhooks/{id}/test"

    def post(self, sub_id: str) -> None:
        hub = hub_for(self.engine)
        with hub.lock:
            sub = hub.subscriptions.get(sub_id)
            if sub is None:
                return self.fail(ApiError(404, "ResourceNotFound", f"webhook {sub_id} not found"))
            body = hub.signed_body({**sub, "sendId": False}, "candidateHired", {})
            hub.queue(sub, body, [])
        self.reply(202, {"data": {"token": body["token"]}})


def api_routes(kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    """``/v1/webhooks`` routes (before the /v1 catch-all) for `lever_sandbox.app.make_app`."""
    return [
        (r"/v1/webhooks/?", ApiWebhooksHandler, kw),
        (r"/v1/webhooks/([^/]+)/?", ApiWebhookHandler, kw),
    ]


def admin_routes(kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    """The admin routes above (before ``/_sandbox/webhooks/{id}``)."""
    return [
        (r"/_sandbox/webhooks/settings/?", SettingsHandler, kw),
        (r"/_sandbox/webhooks/([^/]+)/test/?", TestRequestHandler, kw),
    ]


__all__ = ["admin_routes", "api_routes", "lever_shape"]
