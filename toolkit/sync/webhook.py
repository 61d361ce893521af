"""Lever webhook intake: the signature tokens, and the decision to accept a delivery (pure).

Lever signs a webhook as hex HMAC-SHA256, keyed by the webhook's signature token, over the string
``token + triggeredAt`` (the body's random ``token`` and its ``triggeredAt`` in epoch ms), not over
the body. Since 2021 every webhook (one per event) has its own signature token, so
``LEVER_WEBHOOK_SECRET`` holds one plain token (older accounts) or comma-separated
``EVENT=TOKEN`` pairs, or both (`WebhookSecrets`). Tokens are read from the environment (or from the
journal, where ``--register-webhooks`` keeps them) and never logged, journaled or echoed.

`parse_webhook` decides about one body without any I/O: the HTTP handler answers what it says and
stores what it accepts; the journal refuses a signed ``token`` (and an ``id``) seen before, so one
signature causes at most one contact check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import WebhookRefused

SECRET_ENV = "LEVER_WEBHOOK_SECRET"
MIN_TOKEN_LENGTH = 16
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# Signed tokens are remembered this long (Lever's delivery history, and its "Rerun", keep two
# weeks); a delivery older than that cannot be told from a replay and is refused.
TOKEN_MEMORY_MS = 30 * 24 * 3600 * 1000
# Ids and event names are letters, digits, '-' and '_' (Lever's are UUIDs and camelCase words):
# never a path, a dot, a percent sign, a space or a control character, and never long.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_EVENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
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
class WebhookSecrets:
    """The signature tokens a delivery may be signed with: per event, and plain ones.

    Its repr and str never show a token.

    Example:
        >>> secrets = WebhookSecrets.parse("applicationCreated=" + "a" * 16 + ", " + "p" * 16)
        >>> secrets.events, len(secrets.plain)
        (('applicationCreated',), 1)
        >>> secrets
        WebhookSecrets(events=['applicationCreated'], plain=1)
    """

    by_event: dict[str, tuple[str, ...]] = field(default_factory=dict)
    plain: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> WebhookSecrets:
        """Read ``LEVER_WEBHOOK_SECRET``: ``TOKEN`` or ``EVENT=TOKEN,EVENT=TOKEN`` (or mixed).

        Raises:
            ValueError: one line naming the bad part (never the token itself).
        """
        by_event: dict[str, tuple[str, ...]] = {}
        plain: list[str] = []
        for number, part in enumerate((text or "").split(","), start=1):
            part = part.strip()
            if not part:
                continue
            event, sep, token = part.partition("=")
            event, token = event.strip(), token.strip()
            if not sep:
                event, token = "", part
            elif event not in OPPORTUNITY_EVENTS:  # never echoed: it may be part of a token
                raise ValueError(
                    f"{SECRET_ENV}: item {number} is EVENT=TOKEN but its EVENT is not a Lever "
                    f"webhook event (one of {', '.join(sorted(OPPORTUNITY_EVENTS))})"
                )
            _check_token(token, f"{SECRET_ENV}: item {number}" + (f" ({event})" if event else ""))
            if event:
                by_event[event] = (*by_event.get(event, ()), token)
            else:
                plain.append(token)
        return cls(by_event, tuple(plain))

    def with_event_tokens(self, tokens: dict[str, list[str]]) -> WebhookSecrets:
        """These secrets plus more per-event tokens (those ``--register-webhooks`` kept)."""
        merged = dict(self.by_event)
        for event, more in tokens.items():
            merged[event] = tuple(dict.fromkeys((*merged.get(event, ()), *more)))
        return WebhookSecrets(merged, self.plain)

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_event))

    def for_event(self, event: str | None, *, any_token: bool = False) -> tuple[str, ...]:
        """The tokens to try: the event's own, else every plain one (every one: ``any_token``)."""
        if any_token:
            every = [t for tokens in self.by_event.values() for t in tokens]
            return tuple(dict.fromkeys([*every, *self.plain]))
        if event in self.by_event:
            return self.by_event[event]
        return self.plain

    def __bool__(self) -> bool:
        return bool(self.by_event or self.plain)

    def __repr__(self) -> str:
        return f"WebhookSecrets(events={list(self.events)}, plain={len(self.plain)})"

    __str__ = __repr__


def _check_token(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{where}: a signature token must be at least {MIN_TOKEN_LENGTH} characters (Lever's"
            " are 48); copy it whole from Lever's webhook settings, or use --register-webhooks"
        )


@dataclass(frozen=True)
class WebhookEvent:
    """One accepted Lever webhook: what the queue keeps (no signature).

    ``token`` is the delivery's signed random token (not a secret: the journal keeps it to
    refuse it a second time); ``test`` marks a delivery with nothing to check (Lever's
    settings-page test request: ``data: {}``), answered 200 and never queued.
    """

    id: str | None
    event: str
    triggered_at: int
    opportunity_id: str | None
    contact_id: str | None
    token: str = ""
    test: bool = False


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


def _signed_by_one(tokens: tuple[str, ...], token: str, triggered: int, signature: str) -> bool:
    # Every candidate is tried (no early exit), so the time taken does not say which matched.
    found = False
    for secret in tokens:
        found |= verify_signature(secret, token, triggered, signature)
    return found


def _field(raw: dict, key: str, pattern: re.Pattern, what: str, most: int = 100) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise WebhookRefused(
            400, "malformed", f"{what} must be letters, digits, '-' or '_' (at most {most})"
        )
    return value


def _secrets(secret: str | WebhookSecrets) -> WebhookSecrets:
    return secret if isinstance(secret, WebhookSecrets) else WebhookSecrets(plain=(secret,))


def parse_webhook(
    body: bytes,
    secret: str | WebhookSecrets,
    *,
    now_ms: int | None = None,
    replay_window_s: float | None = None,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> WebhookEvent:
    """Decide about one webhook body: the event to queue, or the refusal to answer.

    Order: size (413), JSON shape (400), signature against the event's token, else the plain
    ones (401), ids and event name (400: path-like or over-long), age (400 only when
    ``replay_window_s`` is given, and beyond the token memory of 30 days). ``id`` is optional.
    A body whose ``data`` names no opportunity nor contact (Lever's test request) may be signed
    with any configured token and comes back with ``test=True``. Nothing of a token appears in a
    refusal.

    Raises:
        WebhookRefused: with the status to answer and a short reason.

    Example:
        >>> import hashlib, hmac, json
        >>> sig = hmac.new(b"k" * 16, b"t1000", hashlib.sha256).hexdigest()
        >>> body = json.dumps({"event": "applicationCreated", "triggeredAt": 1000,
        ...     "token": "t", "signature": sig, "data": {"opportunityId": "o1", "contactId": "c1"}})
        >>> parse_webhook(body.encode(), "k" * 16, now_ms=2000).contact_id
        'c1'
    """
    if len(body) > max_bytes:
        raise WebhookRefused(413, "too_large", f"body over {max_bytes} bytes")
    try:
        raw = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise WebhookRefused(400, "malformed", "the body is not JSON") from None
    if not isinstance(raw, dict):
        raise WebhookRefused(400, "malformed", "the body is not a JSON object")
    token, signature = raw.get("token"), raw.get("signature")
    triggered = raw.get("triggeredAt")
    if not isinstance(token, str) or not isinstance(signature, str):
        raise WebhookRefused(401, "signature", "missing token or signature")
    if isinstance(triggered, bool) or not isinstance(triggered, int):
        raise WebhookRefused(401, "signature", "triggeredAt must be epoch milliseconds")
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise WebhookRefused(400, "malformed", "data must be a JSON object")
    data = data or {}
    named = raw.get("event") if isinstance(raw.get("event"), str) else None
    test = not (data.get("opportunityId") or data.get("candidateId") or data.get("contactId"))
    tokens = _secrets(secret).for_event(named, any_token=test)
    if not _signed_by_one(tokens, token, triggered, signature):
        raise WebhookRefused(401, "signature", "bad signature")
    if not _TOKEN.fullmatch(token):
        raise WebhookRefused(400, "malformed", "token must be letters and digits (at most 128)")
    webhook_id = _field(raw, "id", _ID, "id")
    event = _field(raw, "event", _EVENT, "event", 64)
    if event is None:
        raise WebhookRefused(400, "malformed", "event is required")
    opportunity = _field(data, "opportunityId", _ID, "data.opportunityId") or _field(
        data, "candidateId", _ID, "data.candidateId"
    )
    contact = _field(data, "contactId", _ID, "data.contactId")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window = TOKEN_MEMORY_MS if replay_window_s is None else int(replay_window_s * 1000)
    if now - triggered > min(window, TOKEN_MEMORY_MS):
        raise WebhookRefused(400, "stale", "triggeredAt is older than the replay window")
    if replay_window_s is not None and triggered - now > window:
        raise WebhookRefused(400, "stale", "triggeredAt is in the future beyond the window")
    return WebhookEvent(webhook_id, event, triggered, opportunity, contact, token, test)


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MIN_TOKEN_LENGTH",
    "OPPORTUNITY_EVENTS",
    "SECRET_ENV",
    "TOKEN_MEMORY_MS",
    "WebhookEvent",
    "WebhookRefused",
    "WebhookSecrets",
    "parse_webhook",
    "verify_signature",
]
