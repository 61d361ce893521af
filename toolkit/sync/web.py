"""The service's HTTP side (tornado): ``POST /webhooks/lever``, ``GET /healthz``, ``GET /metrics``.

A webhook is checked by `toolkit.sync.webhook.parse_webhook` (size, JSON, signature by event,
ids), then stored in the journal (committed) and only then answered ``200``; a signed token (or an
``id``) stored before is answered ``200`` and ignored; Lever's test request (``data: {}``) is
answered ``200`` and never queued; a full queue is answered ``503`` (Lever retries non-2xx).
Refusals are one short JSON line; nothing of a token or of the body is echoed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import tornado.web

from toolkit import failpoints
from toolkit.sync.contact import shown
from toolkit.sync.listener import is_loopback
from toolkit.sync.metrics import CONTENT_TYPE_LATEST
from toolkit.sync.ports import WebhookSink
from toolkit.sync.webhook import OPPORTUNITY_EVENTS, WebhookRefused, parse_webhook

log = logging.getLogger("toolkit.sync")


class _Handler(tornado.web.RequestHandler):
    def initialize(self, service: WebhookSink) -> None:
        self.service = service

    def compute_etag(self) -> None:
        return None

    def reply(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": self._reason}))


class WebhookHandler(_Handler):
    """Answers what `parse_webhook` decides (the intake rules live there, pure) and stores what
    it accepts: the journal refuses a signed token or an id seen before."""

    def post(self) -> None:
        service = self.service
        if not service.secrets:
            return self.reply(404, {"error": "webhooks are not enabled"})
        try:
            event = parse_webhook(
                self.request.body,
                service.secrets,
                replay_window_s=service.replay_window,
                max_bytes=service.max_body_bytes,
            )
        except WebhookRefused as refused:
            service.metrics.events_refused.labels(reason=refused.reason).inc()
            log.warning(
                "webhook refused (%s, %d) from %s: %s",
                refused.reason,
                refused.status,
                self.request.remote_ip,
                refused.message,
            )
            return self.reply(refused.status, {"error": refused.message})
        label = event.event if event.event in OPPORTUNITY_EVENTS else "other"
        if event.test:
            log.info(
                "webhook %s (%s) names no opportunity nor contact: a test, answered 200",
                shown(event.id),
                shown(event.event),
            )
            return self.reply(200, {"status": "ok", "queued": False})
        if service.queue_full():
            service.metrics.events_refused.labels(reason="queue_full").inc()
            log.warning("webhook %s answered 503: the queue is full", shown(event.id))
            return self.reply(503, {"error": "queue full; retry later"})
        journal = service.journal
        if journal is None:  # stopping: the journal is closed
            return self.reply(503, {"error": "the service is stopping; retry later"})
        stored = journal.enqueue_webhook(
            event.id,
            event.event,
            event.triggered_at,
            event.contact_id,
            event.opportunity_id,
            token=event.token,
        )
        if not stored:
            service.metrics.events_refused.labels(reason="duplicate").inc()
            log.info(
                "webhook %s (%s) was stored before (same signed token or id): ignored",
                shown(event.id),
                shown(event.event),
            )
            return self.reply(200, {"status": "duplicate"})
        failpoints.hit("sync_after_accept")  # stored, not yet answered
        service.metrics.events_received.labels(source="webhook", event=label).inc()
        log.info(
            "webhook %s accepted: %s for contact %s opportunity %s",
            shown(event.id),
            shown(event.event),
            shown(event.contact_id),
            shown(event.opportunity_id),
        )
        service.wake()
        self.reply(200, {"status": "queued"})


class HealthHandler(_Handler):
    """``GET /healthz``: the last error's text only for a request from this machine that no
    proxy forwarded (elsewhere only whether there is one: it may name ids and hosts)."""

    def get(self) -> None:
        headers = self.request.headers
        forwarded = any(h in headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-Ip"))
        local = is_loopback(self.request.remote_ip or "") and not forwarded
        self.reply(200, self.service.health(with_error=local))


class MetricsHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(self.service.metrics.render())


def make_app(service: WebhookSink) -> tornado.web.Application:
    kw = {"service": service}
    return tornado.web.Application(
        [
            (r"/webhooks/lever/?", WebhookHandler, kw),
            (r"/healthz/?", HealthHandler, kw),
            (r"/metrics/?", MetricsHandler, kw),
        ],
        log_function=lambda handler: log.debug(
            "%s %s -> %s", handler.request.method, handler.request.path, handler.get_status()
        ),
        compress_response=False,
    )


__all__ = ["make_app"]
