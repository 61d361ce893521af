"""Lever webhook bodies: parsing, signature check (constant time), replay window, size limit.

Lever signs a webhook as hex HMAC-SHA256, keyed by the webhook's signing token, over the string
``token + triggeredAt`` (the body's random ``token`` and its ``triggeredAt`` in epoch ms), not over
the body. The signing token is read from ``LEVER_WEBHOOK_SECRET`` by the caller and never logged,
journaled or echoed in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from toolkit.errors import WebhookRefused

SECRET_ENV = "LEVER_WEBHOOK_SECRET"
DEFAULT_REPLAY_WINDOW_S = 300.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# Lever's webhook events; every one carries an opportunity (or its contact) worth a check.
OPPORTUNITY_EVENTS = frozenset(
    {
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
    }
)


@dataclass(frozen=True)
class WebhookEvent:
    """One accepted Lever webhook: what the queue keeps (no token, no signature)."""

    id: str
    event: str
    triggered_at: int
    opportunity_id: str | None
    contact_id: str | None


def verify_signature(secret: str, token: str, triggered_at: Any, signature: str) -> bool:
    """True when ``signature`` is Lever's signature of ``token + triggeredAt`` under ``secret``.

    The comparison is constant time (`hmac.compare_digest`).

    Example:
        >>> import hashlib, hmac
        >>> sig = hmac.new(b"s3cret", b"tok1700000000000", hashlib.sha256).hexdigest()
        >>> verify_signature("s3cret", "tok", 1700000000000, sig)
        True
        >>> verify_signature("s3cret", "tok", 1700000000001, sig)
        False
    """
    if not (secret and isinstance(token, str) and isinstance(signature, str)):
        return False
    message = f"{token}{triggered_at}".encode()
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_webhook(
    body: bytes,
    secret: str,
    *,
    now_ms: int | None = None,
    replay_window_s: float = DEFAULT_REPLAY_WINDOW_S,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> WebhookEvent:
    """Check a webhook body and return the event to queue.

    Order: size (413), JSON shape (400), signature (401), age (400: older than the replay window
    or further in the future than it). Nothing of the secret appears in a refusal.

    Raises:
        WebhookRefused: with the status to answer and a short reason.

    Example:
        >>> import hashlib, hmac, json
        >>> sig = hmac.new(b"k", b"t1000", hashlib.sha256).hexdigest()
        >>> body = json.dumps({"id": "w1", "event": "applicationCreated", "triggeredAt": 1000,
        ...     "token": "t", "signature": sig, "data": {"opportunityId": "o1", "contactId": "c1"}})
        >>> parse_webhook(body.encode(), "k", now_ms=2000).contact_id
        'c1'
    """
    if len(body) > max_bytes:
        raise WebhookRefused(413, "too_large", f"body over {max_bytes} bytes")
    try:
        raw = json.loads(body or b"null")
    except ValueError:
        raise WebhookRefused(400, "malformed", "the body is not JSON") from None
    if not isinstance(raw, dict):
        raise WebhookRefused(400, "malformed", "the body is not a JSON object")
    token, signature = raw.get("token"), raw.get("signature")
    triggered = raw.get("triggeredAt")
    if not isinstance(token, str) or not isinstance(signature, str):
        raise WebhookRefused(401, "signature", "missing token or signature")
    if isinstance(triggered, bool) or not isinstance(triggered, int):
        raise WebhookRefused(401, "signature", "triggeredAt must be epoch milliseconds")
    if not verify_signature(secret, token, triggered, signature):
        raise WebhookRefused(401, "signature", "bad signature")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window = int(replay_window_s * 1000)
    if now - triggered > window:
        raise WebhookRefused(400, "stale", "triggeredAt is older than the replay window")
    if triggered - now > window:
        raise WebhookRefused(400, "stale", "triggeredAt is in the future beyond the window")
    webhook_id, event = _text(raw.get("id")), _text(raw.get("event"))
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    opportunity = _text(data.get("opportunityId")) or _text(data.get("candidateId"))
    contact = _text(data.get("contactId"))
    if webhook_id is None or event is None:
        raise WebhookRefused(400, "malformed", "id and event are required")
    if opportunity is None and contact is None:
        raise WebhookRefused(400, "malformed", "data has no opportunityId nor contactId")
    return WebhookEvent(webhook_id, event, triggered, opportunity, contact)


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_REPLAY_WINDOW_S",
    "OPPORTUNITY_EVENTS",
    "SECRET_ENV",
    "WebhookEvent",
    "WebhookRefused",
    "parse_webhook",
    "verify_signature",
]
