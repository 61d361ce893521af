"""``lever-tags sync --register-webhooks URL``: Lever's webhooks made through its API, tokens kept.

Lever gives every webhook (one per event) its own signature token, returned once, when the
webhook is created (``POST /webhooks`` answers ``configuration.signatureToken``; ``GET /webhooks``
never shows it). `register_webhooks` creates one webhook per event the service needs, finds the
ones it made before (their tokens are in the journal), replaces one at the same URL and event
whose token it does not have (it could only ever be refused) and deletes the ones it made for
another URL (the receiver moved); the tokens live in the sync journal (0600), so nobody copies a
token by hand. `unregister_webhooks` deletes them.

The tokens are never logged or printed; `RegisteredWebhooks` is the journal's side (a mixin of
`toolkit.sync.store.SyncJournal`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from toolkit.errors import ConfigurationError, LeverError, NotFoundError
from toolkit.scrub import register_secret
from toolkit.sync.webhook import (
    MIN_TOKEN_LENGTH,
    OPPORTUNITY_EVENTS,
    TOKEN_MEMORY_MS,
    WebhookSecrets,
)

if TYPE_CHECKING:  # types only (no import at run time)
    from toolkit.ports import LeverAPI

log = logging.getLogger("toolkit.sync")

# The events worth a contact check: a new application (a new opportunity of a known person), a
# recruiter working on one (stage, archive), and a contact changed (a merge moves opportunities).
NEEDED_EVENTS = (
    "applicationCreated",
    "candidateStageChange",
    "candidateArchiveChange",
    "contactUpdated",
)
# Events Lever lets a condition limit by origin: every origin, so none is left out.
ORIGINS = ("applied", "sourced", "referred", "university", "agency", "internal")
CONFIGURABLE = frozenset(
    {"applicationCreated", "candidateArchiveChange", "candidateHired", "candidateStageChange"}
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_webhooks (
    webhook_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    signature_token TEXT NOT NULL,
    created_at INTEGER NOT NULL
)
"""


class RegisteredWebhooks:
    """The webhooks this service created, with their tokens (mixed into `SyncJournal`)."""

    if TYPE_CHECKING:  # the journal's plumbing, for the type checker; `Journal` defines it

        def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def _webhooks_table(self) -> None:
        with self._tx() as db:
            db.execute(_SCHEMA)

    def registered_webhooks(self) -> list[dict[str, Any]]:
        """``[{webhook_id, event, url, created_at}]``: never the token."""
        self._webhooks_table()
        return self._query(
            "SELECT webhook_id, event, url, created_at FROM sync_webhooks ORDER BY created_at"
        )

    def webhook_tokens(self) -> dict[str, list[str]]:
        """{event: [signature tokens]} of the registered webhooks (for `WebhookSecrets`)."""
        self._webhooks_table()
        out: dict[str, list[str]] = {}
        for row in self._query("SELECT event, signature_token FROM sync_webhooks"):
            out.setdefault(row["event"], []).append(row["signature_token"])
        return out

    def keep_webhook(self, webhook_id: str, event: str, url: str, token: str, at: int) -> None:
        self._webhooks_table()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sync_webhooks (webhook_id, event, url, signature_token,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (webhook_id, event, url, token, at),
            )

    def drop_webhook(self, webhook_id: str) -> None:
        self._webhooks_table()
        with self._tx() as db:
            db.execute("DELETE FROM sync_webhooks WHERE webhook_id = ?", (webhook_id,))


def check_receiver_url(url: str) -> str:
    """The receiver URL Lever will call: HTTPS (Lever's rule), plain HTTP only on loopback.

    Example:
        >>> check_receiver_url("https://sync.example.com/webhooks/lever")
        'https://sync.example.com/webhooks/lever'
    """
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigurationError(
            f"--register-webhooks takes the HTTPS URL Lever will call (Lever only calls HTTPS "
            f"with a valid certificate), e.g. https://sync.example.com/webhooks/lever; got {url!r}"
        )
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(
            f"--register-webhooks: {url!r} is not a plain https://HOST/PATH URL (no user, query "
            "or fragment)"
        )
    return url


def _body(url: str, event: str) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "event": event}
    if event in CONFIGURABLE:
        body["configuration"] = {"conditions": {"origins": list(ORIGINS)}}
    return body


def register_webhooks(
    client: LeverAPI, journal: Any, url: str, events: tuple[str, ...] = NEEDED_EVENTS
) -> list[dict[str, str]]:
    """Make sure Lever has one webhook per event to ``url`` whose token the journal keeps.

    Returns:
        One ``{event, webhook_id, action}`` per event, ``action`` one of ``kept`` (made before,
        token kept), ``created``, ``replaced`` (one at that URL and event whose token was not
        kept was deleted and made again).

    Raises:
        ConfigurationError: a bad URL, an unknown event, or Lever returned no signature token.
        LeverError: Lever refused (e.g. 403: the key may not manage webhooks).
    """
    check_receiver_url(url)
    unknown = [e for e in events if e not in OPPORTUNITY_EVENTS]
    if unknown:
        raise ConfigurationError(f"not Lever webhook events: {', '.join(unknown)}")
    existing = list(client.list_webhooks())
    live_ids = {w.get("id") for w in existing}
    kept = {row["webhook_id"]: row for row in journal.registered_webhooks()}
    for webhook_id, row in list(kept.items()):
        if row["url"] != url:  # the receiver moved: the old URL gets nothing more
            with contextlib.suppress(NotFoundError):
                client.delete_webhook(webhook_id)
        if row["url"] != url or webhook_id not in live_ids:
            journal.drop_webhook(webhook_id)  # gone from Lever: its token is useless
            del kept[webhook_id]
    done = []
    for event in events:
        same = [w for w in existing if w.get("url") == url and w.get("event") == event]
        mine = [w for w in same if w.get("id") in kept]
        if mine:
            done.append({"event": event, "webhook_id": mine[0]["id"], "action": "kept"})
            continue
        for stranger in same:  # its token is unknown: every delivery would be refused
            try:
                client.delete_webhook(stranger["id"])
            except NotFoundError:
                pass
            except LeverError as exc:
                log.warning("could not delete webhook %s (%s): %s", stranger["id"], event, exc)
        created = client.create_webhook(_body(url, event))
        token = (created.get("configuration") or {}).get("signatureToken")
        webhook_id = created.get("id")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH or not webhook_id:
            raise ConfigurationError(
                f"Lever created the {event} webhook but returned no signature token; delete it "
                "in Lever's settings and set LEVER_WEBHOOK_SECRET by hand"
            )
        journal.keep_webhook(webhook_id, event, url, token, int(created.get("createdAt") or 0))
        action = "replaced" if same else "created"
        done.append({"event": event, "webhook_id": webhook_id, "action": action})
        log.info("webhook %s for %s %s at %s", webhook_id, event, action, url)
    return done


def webhook_secrets(
    client: LeverAPI, journal: Any, secrets: WebhookSecrets, register_url: str | None
) -> WebhookSecrets:
    """The service's tokens at start: register Lever's webhooks if asked, add the tokens the
    journal keeps, forget signed delivery tokens past their memory.

    Raises:
        ConfigurationError: no token at all (webhooks could never be accepted).
    """
    if register_url is not None:
        for row in register_webhooks(client, journal, register_url):
            log.info("webhook for %s: %s (%s)", row["event"], row["action"], row["webhook_id"])
    secrets = secrets.with_event_tokens(journal.webhook_tokens())
    for token in secrets.for_event(None, any_token=True):
        register_secret(token)  # scrubbed from any error text, like the API key
    if not secrets:
        raise ConfigurationError(
            "webhooks need their signature tokens: set LEVER_WEBHOOK_SECRET (one token, or "
            "EVENT=TOKEN pairs) or give --register-webhooks https://HOST/webhooks/lever"
        )
    journal.forget_tokens(int(time.time() * 1000) - TOKEN_MEMORY_MS)
    return secrets


def unregister_webhooks(client: LeverAPI, journal: Any) -> list[dict[str, str]]:
    """Delete the webhooks the journal registered (one already gone counts as deleted)."""
    done = []
    for row in journal.registered_webhooks():
        with contextlib.suppress(NotFoundError):  # already gone
            client.delete_webhook(row["webhook_id"])
        journal.drop_webhook(row["webhook_id"])
        done.append({"event": row["event"], "webhook_id": row["webhook_id"], "action": "deleted"})
    return done


__all__ = [
    "NEEDED_EVENTS",
    "RegisteredWebhooks",
    "check_receiver_url",
    "register_webhooks",
    "unregister_webhooks",
    "webhook_secrets",
]
