"""The service's HTTP side (tornado): ``POST /webhooks/lever``, ``GET /healthz``, ``GET /metrics``.

A webhook is checked (size, JSON, signature, replay window), then stored in the journal (committed)
and only then answered ``200``; a redelivered ``id`` is answered ``200`` and ignored; a full
queue is answered ``503`` (Lever retries non-2xx). Refusals are one short JSON line; nothing of the
secret or of the body is echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from toolkit import failpoints
from toolkit.sync.contact import shown
from toolkit.sync.metrics import CONTENT_TYPE_LATEST
from toolkit.sync.ports import WebhookSink
from toolkit.sync.webhook import WebhookRefused, parse_webhook

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
    def post(self) -> None:
        service = self.service
        if service.secret is None:
            return self.reply(404, {"error": "webhooks are not enabled"})
        try:
            event = parse_webhook(
                self.request.body,
                service.secret,
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
        if service.queue_full():
            service.metrics.events_refused.labels(reason="queue_full").inc()
            log.warning("webhook %s answered 503: the queue is full", shown(event.id))
            return self.reply(503, {"error": "queue full; retry later"})
        stored = service.journal.enqueue_webhook(
            event.id, event.event, event.triggered_at, event.contact_id, event.opportunity_id
        )
        if not stored:
            service.metrics.events_refused.labels(reason="duplicate").inc()
            log.info(
                "webhook %s (%s) is a redelivery: already stored, ignored",
                shown(event.id),
                event.event,
            )
            return self.reply(200, {"status": "duplicate"})
        failpoints.hit("sync_after_accept")  # stored, not yet answered
        service.metrics.events_received.labels(source="webhook", event=event.event).inc()
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
    def get(self) -> None:
        self.reply(200, self.service.health())


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


class HttpSide:
    """The HTTP server in a thread of its own (tornado on its own event loop), stopped cleanly.

    Args:
        app: the tornado application (`make_app`).
        listen: ``(host, port)``; port 0 takes a free one (`port` tells which).
        max_body_bytes: the webhook size limit; the server refuses bodies well above it.
    """

    def __init__(self, app: tornado.web.Application, listen: tuple[str, int], max_body_bytes: int):
        self.app, self.listen, self.max_body_bytes = app, listen, max_body_bytes
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """``http://HOST:PORT``, once started."""
        return None if self.port is None else f"http://{self.listen[0]}:{self.port}"

    def start(self) -> HttpSide:
        thread = threading.Thread(target=self._serve, name="sync-http", daemon=True)
        thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the HTTP server did not start in time")
        if self._error is not None:
            raise self._error
        self._thread = thread
        return self

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        host, port = self.listen
        sockets = bind_sockets(port, host)
        server = HTTPServer(self.app, max_body_size=max(self.max_body_bytes * 4, 1 << 20))
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.close_all_connections(), timeout=5)

    def stop(self, timeout: float) -> None:
        loop, event = self._loop, self._stop
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
