"""Lever-shaped webhooks from the sandbox: subscriptions, signed deliveries, retries and faults.

Written apart from the toolkit's own webhook check (`toolkit.sync.webhook`) on purpose: the
sandbox imitates Lever, so a signing bug shared with the receiver would hide.

A delivery is ``POST <url>`` with ``{"id", "event", "triggeredAt", "token", "signature",
"data": {"opportunityId", "candidateId", "contactId"}}`` where ``signature`` is the hex
HMAC-SHA256 keyed by the subscription's signature token over ``token + str(triggeredAt)`` and
``token`` is 48 random hex characters. Like Lever, a delivery answered non-2xx (or not answered)
is retried five times, waiting longer and longer (``retryDelaysMs``; the hub's ``retryScale``
shrinks every delay for tests). ``sendId: false`` (per subscription, or the hub's ``sendIds``)
leaves ``id`` out, as Lever's documented example delivery does. Faults per subscription:
``duplicates`` (extra copies of each delivery, same id), ``lateMs`` (deliver that much later,
``triggeredAt`` unchanged), ``backdateMs`` (``triggeredAt`` that much in the past, signed so:
a delivery Lever retried or an admin reran hours later), ``badSignature`` (sign with a wrong key).
Lever's public Webhooks API (``/v1/webhooks``, one token per webhook) and the settings page's
test request are in `lever_sandbox.webhooks_api`.

Admin routes (full-access key):
    POST   /_sandbox/webhooks                         subscribe {url, events?, signatureToken?,
                                                       retryDelaysMs?, faults?}
    GET    /_sandbox/webhooks                         the subscriptions
    POST   /_sandbox/webhooks/{id}                    change events, faults or retry delays
    DELETE /_sandbox/webhooks/{id}                    unsubscribe
    GET    /_sandbox/webhooks/deliveries              every delivery attempt, in order
    POST   /_sandbox/contacts/{id}/opportunities      a new opportunity for an existing contact
                                                       {tags?, confidentiality?}: applicationCreated
    POST   /_sandbox/opportunities/{id}/changeTags    {add?, remove?, event?}: tags change as a
                                                       person would; Lever has no tag event, so a
                                                       webhook is sent only when ``event`` names one
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from lever_sandbox.handlers import AdminHandler
from lever_sandbox.protocol import ApiError, now_ms

log = logging.getLogger(__name__)

LEVER_EVENTS = (
    "applicationCreated",
    "candidateHired",
    "candidateStageChange",
    "candidateArchiveChange",
    "candidateDeleted",
    "interviewCreated",
    "interviewUpdated",
    "interviewDeleted",
    "contactCreated",
    "contactUpdated",
)
# Lever: "five times, waiting longer and longer" [doc]; the delays themselves are a [guess].
DEFAULT_RETRY_DELAYS_MS = (60_000, 300_000, 1_800_000, 7_200_000, 21_600_000)
FAULTS = ("duplicates", "lateMs", "backdateMs", "badSignature")
MAX_DELAY_MS = 86_400_000
# Deliveries go straight to the receiver (never through a proxy from the environment).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CONTACT_FIELDS = ("name", "headline", "emails", "phones", "location", "links")


def lever_signature(signature_token: str, token: str, triggered_at: int) -> str:
    """Lever's webhook signature: hex HMAC-SHA256(signature_token, token + triggeredAt)."""
    digest = hmac.new(
        signature_token.encode("utf-8"), (token + str(triggered_at)).encode("utf-8"), "sha256"
    )
    return digest.hexdigest()


def _check_faults(faults: Any) -> dict[str, Any]:
    if faults is None:
        return {}
    if not isinstance(faults, dict) or set(faults) - set(FAULTS):
        raise ApiError(400, "InvalidRequest", f"faults: an object with keys {', '.join(FAULTS)}")
    out = dict(faults)
    for key in ("duplicates", "lateMs", "backdateMs"):
        value = out.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError(400, "InvalidRequest", f"faults.{key} must be an integer >= 0")
    if not isinstance(out.get("badSignature", False), bool):
        raise ApiError(400, "InvalidRequest", "faults.badSignature must be true or false")
    return out


def _check_delays(delays: Any) -> list[int]:
    if not isinstance(delays, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DELAY_MS for d in delays
    ):
        raise ApiError(400, "InvalidRequest", f"retryDelaysMs: milliseconds (0..{MAX_DELAY_MS})")
    return delays


class WebhookHub:
    """Subscriptions and a delivery thread (started on the first delivery)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.attempts: list[dict[str, Any]] = []
        self._queue: list[tuple[float, int, dict[str, Any]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition(self.lock)
        self._thread: threading.Thread | None = None
        self._closing = False
        self.settings: dict[str, Any] = {"sendIds": True, "retryScale": 1.0}

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequest", "the body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "InvalidRequest", "url must be an http(s) URL")
        sub = {
            "id": str(uuid.uuid4()),
            "url": url,
            "events": list(LEVER_EVENTS),
            "signatureToken": body.get("signatureToken") or secrets.token_hex(24),
            "retryDelaysMs": list(DEFAULT_RETRY_DELAYS_MS),
            "faults": {},
        }
        self._apply(sub, body)
        with self.lock:
            self.subscriptions[sub["id"]] = sub
        return dict(sub)

    def _apply(self, sub: dict[str, Any], body: dict[str, Any]) -> None:
        if "events" in body:
            events = body["events"]
            if not isinstance(events, list) or not set(events) <= set(LEVER_EVENTS):
                raise ApiError(
                    400, "InvalidRequest", f"events: a list of {', '.join(LEVER_EVENTS)}"
                )
            sub["events"] = list(events)
        if "retryDelaysMs" in body:
            sub["retryDelaysMs"] = _check_delays(body["retryDelaysMs"])
        if "faults" in body:
            sub["faults"] = _check_faults(body["faults"])
        if not isinstance(body.get("sendId", True), bool):
            raise ApiError(400, "InvalidRequest", "sendId must be true or false")
        if "sendId" in body:
            sub["sendId"] = body["sendId"]
        if "signatureToken" in body and not isinstance(body["signatureToken"], str | None):
            raise ApiError(400, "InvalidRequest", "signatureToken must be a string")

    def update(self, sub_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequest", "the body must be a JSON object")
        with self.lock:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                raise ApiError(404, "ResourceNotFound", f"webhook {sub_id} was not found")
            changed = dict(sub)
        self._apply(changed, body)
        with self.lock:
            self.subscriptions[sub_id] = changed
        return dict(changed)

    def unsubscribe(self, sub_id: str) -> None:
        with self.lock:
            if self.subscriptions.pop(sub_id, None) is None:
                raise ApiError(404, "ResourceNotFound", f"webhook {sub_id} was not found")

    # -- deliveries -----------------------------------------------------------------------------

    def signed_body(self, sub: dict[str, Any], event: str, data: dict[str, Any]) -> dict:
        """A delivery body for `sub`, signed with its token (a wrong one: ``badSignature``)."""
        triggered = now_ms() - sub["faults"].get("backdateMs", 0)
        token = secrets.token_hex(24)  # Lever's: 48 characters
        key = sub["signatureToken"]
        if sub["faults"].get("badSignature"):
            key = "not-" + key
        body = {"id": str(uuid.uuid4())} if sub.get("sendId", self.settings["sendIds"]) else {}
        body.update(event=event, triggeredAt=triggered, token=token, data=data)
        body["signature"] = lever_signature(key, token, triggered)
        return body

    def queue(self, sub: dict[str, Any], body: dict, delays: list[int], copies: int = 1) -> None:
        """Deliver `body` to `sub` (``copies`` times), retried after each of `delays`."""
        due = time.monotonic() + sub["faults"].get("lateMs", 0) / 1000
        for copy in range(copies):
            delivery = {"sub": sub["id"], "url": sub["url"], "body": body, "attempt": 0}
            delivery["delays"] = list(delays)
            delivery["copy"] = copy
            heapq.heappush(self._queue, (due, next(self._order), delivery))
        self._ensure_thread()
        self._cond.notify_all()

    def emit(self, event: str, opp: dict[str, Any]) -> list[str]:
        """Queue one delivery of `event` about `opp` to every subscription that wants it
        (a subscription limited to some origins only hears of those)."""
        tokens = []
        data = {
            "opportunityId": opp["id"],
            "candidateId": opp["id"],
            "contactId": opp.get("contact"),
        }
        with self.lock:
            for sub in self.subscriptions.values():
                origins = sub.get("origins")
                if event not in sub["events"] or (origins and opp.get("origin") not in origins):
                    continue
                body = self.signed_body(sub, event, dict(data))
                copies = 1 + sub["faults"].get("duplicates", 0)
                self.queue(sub, body, sub["retryDelaysMs"], copies)
                tokens.append(body["token"])
        return tokens

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=self._deliver_loop, name="lever-sandbox-webhooks", daemon=True
            )
            self._thread.start()

    def _deliver_loop(self) -> None:
        while True:
            with self.lock:
                while not self._closing:
                    if self._queue and self._queue[0][0] <= time.monotonic():
                        break
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._closing:
                    return
                _due, _n, delivery = heapq.heappop(self._queue)
            self._send(delivery)

    def _send(self, delivery: dict[str, Any]) -> None:
        delivery["attempt"] += 1
        data = json.dumps(delivery["body"]).encode("utf-8")
        request = urllib.request.Request(
            delivery["url"],
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "Lever-Webhook/sandbox"},
        )
        status: int | None = None
        error = None
        try:
            with _OPENER.open(request, timeout=5) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            error = type(getattr(exc, "reason", exc)).__name__
        record = {
            "webhookId": delivery["body"].get("id"),
            "token": delivery["body"]["token"],
            "body": delivery["body"],
            "subscription": delivery["sub"],
            "event": delivery["body"]["event"],
            "opportunityId": delivery["body"]["data"].get("opportunityId"),
            "attempt": delivery["attempt"],
            "copy": delivery["copy"],
            "status": status,
            "error": error,
            "at": now_ms(),
        }
        ok = status is not None and 200 <= status < 300
        with self.lock:
            self.attempts.append(record)
            if not ok and delivery["delays"]:
                delay = delivery["delays"].pop(0) / 1000 * self.settings["retryScale"]
                heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), delivery))
                self._cond.notify_all()

    def deliveries(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(a) for a in self.attempts]

    def pending(self) -> int:
        with self.lock:
            return len(self._queue)

    def stop(self) -> None:
        with self.lock:
            self._closing = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)


def hub_for(engine: Any) -> WebhookHub:
    """The engine's webhook hub, created on first use."""
    with engine.lock:
        hub = getattr(engine, "webhooks", None)
        if hub is None:
            hub = engine.webhooks = WebhookHub()
        return hub


def create_opportunity(
    engine: Any, contact_id: str, tags: list[str], confidentiality: str = "non-confidential"
) -> dict[str, Any]:
    """A new opportunity (an application) for an existing contact; emits applicationCreated."""
    state = engine.state
    with state.lock:
        if contact_id not in state.contacts:
            raise ApiError(404, "ResourceNotFound", f"contact {contact_id} was not found")
        sibling = next(
            (o for o in state.all_opportunities() if o.get("contact") == contact_id), None
        )
        now = now_ms()
        opp_id = str(uuid.uuid4())
        opp: dict[str, Any] = {
            "id": opp_id,
            "contact": contact_id,
            "confidentiality": confidentiality,
            "stage": "lead-new",
            "stageChanges": [],
            "archived": None,
            "tags": list(dict.fromkeys(tags)),
            "sources": ["sandbox"],
            "origin": "applied",
            "applications": [str(uuid.uuid4())],
            "createdAt": now,
            "updatedAt": now,
            "lastInteractionAt": now,
            "lastAdvancedAt": now,
            "snoozedUntil": None,
            "isAnonymized": False,
            "dataProtection": None,
        }
        for key in CONTACT_FIELDS:
            if sibling is not None and key in sibling:
                opp[key] = sibling[key]
        state.insert(opp)
    hub_for(engine).emit("applicationCreated", opp)
    return state.render(opp, False)


def change_tags(
    engine: Any, opp_id: str, add: list[str], remove: list[str], event: str | None
) -> dict[str, Any]:
    """Change tags as a person would in Lever's UI; a webhook only if `event` names one."""
    if event is not None and event not in LEVER_EVENTS:
        raise ApiError(400, "InvalidRequest", f"event must be one of {', '.join(LEVER_EVENTS)}")
    try:
        opp = engine.state.change_tags(opp_id, add=add, remove=remove)
    except KeyError:
        raise ApiError(404, "ResourceNotFound", f"{opp_id} was not found") from None
    if event is not None:
        hub_for(engine).emit(event, opp)
    return engine.state.render(opp, False)


def _tag_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise ApiError(400, "InvalidRequest", f"{key} must be a list of non-empty strings")
    return value


class _WebhookAdmin(AdminHandler):
    def _json_object(self) -> dict[str, Any]:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequest", "the body must be a JSON object")
        return body

    def _count_write(self) -> None:
        with self.engine.lock:
            self.engine.state.stats.admin_writes += 1


class WebhooksHandler(_WebhookAdmin):
    route = "/_sandbox/webhooks"

    def get(self) -> None:
        hub = hub_for(self.engine)
        with hub.lock:
            self.reply(200, {"data": [dict(s) for s in hub.subscriptions.values()]})

    def post(self) -> None:
        try:
            self.reply(201, {"data": hub_for(self.engine).subscribe(self.json_body())})
        except ApiError as error:
            self.fail(error)


class WebhookHandler(_WebhookAdmin):
    route = "/_sandbox/webhooks/{id}"

    def post(self, sub_id: str) -> None:
        try:
            self.reply(200, {"data": hub_for(self.engine).update(sub_id, self.json_body())})
        except ApiError as error:
            self.fail(error)

    def delete(self, sub_id: str) -> None:
        try:
            hub_for(self.engine).unsubscribe(sub_id)
            self.reply(200, {"ok": True})
        except ApiError as error:
            self.fail(error)


class DeliveriesHandler(_WebhookAdmin):
    route = "GET /_sandbox/webhooks/deliveries"

    def get(self) -> None:
        self.reply(200, {"data": hub_for(self.engine).deliveries()})


class ContactOpportunitiesHandler(_WebhookAdmin):
    route = "POST /_sandbox/contacts/{id}/opportunities"

    def post(self, contact_id: str) -> None:
        try:
            body = self._json_object()
            confidentiality = body.get("confidentiality", "non-confidential")
            if confidentiality not in ("confidential", "non-confidential"):
                raise ApiError(400, "InvalidRequest", "confidentiality: confidential or not")
            opp = create_opportunity(
                self.engine, contact_id, _tag_list(body, "tags"), confidentiality
            )
        except ApiError as error:
            return self.fail(error)
        self._count_write()
        self.reply(201, {"data": opp})


class ChangeTagsHandler(_WebhookAdmin):
    route = "POST /_sandbox/opportunities/{id}/changeTags"

    def post(self, opp_id: str) -> None:
        try:
            body = self._json_object()
            event = body.get("event")
            opp = change_tags(
                self.engine, opp_id, _tag_list(body, "add"), _tag_list(body, "remove"), event
            )
        except ApiError as error:
            return self.fail(error)
        self._count_write()
        self.reply(200, {"data": opp})


def routes(kw: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    """The admin routes above, for `lever_sandbox.app.make_app`."""
    seg = r"([^/]+)"
    return [
        (r"/_sandbox/webhooks/?", WebhooksHandler, kw),
        (r"/_sandbox/webhooks/deliveries/?", DeliveriesHandler, kw),
        (rf"/_sandbox/webhooks/{seg}/?", WebhookHandler, kw),
        (rf"/_sandbox/contacts/{seg}/opportunities/?", ContactOpportunitiesHandler, kw),
        (rf"/_sandbox/opportunities/{seg}/changeTags/?", ChangeTagsHandler, kw),
    ]


__all__ = [
    "LEVER_EVENTS",
    "WebhookHub",
    "change_tags",
    "create_opportunity",
    "hub_for",
    "lever_signature",
    "routes",
]
