"""Alerts: a short JSON message (`{"text": ...}`, what Slack, Mattermost, Teams' and Google Chat's
incoming webhooks accept) posted when a scheduled `audit`, `apply` or `batch` fails, or finds
contact-level split pairs (docs/operations.md).

A message holds counts, tag names, the host and file paths: never the key, never a person's
name, email or id. Tags come from Lever: they are escaped for Slack's markup (``&``, ``<``,
``>``, so a tag cannot ping a channel or hide a link) and cleared of control characters. The
URL of an incoming webhook is itself a secret: it is never printed or logged beyond its host;
``env:NAME`` reads it from the environment. A notification that cannot be delivered is a
warning on stderr; it never changes the command's exit code.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from toolkit.config import is_loopback
from toolkit.errors import ConfigurationError
from toolkit.sanitize import printable
from toolkit.scrub import scrub

MAX_TEXT = 1500  # characters: a short message, whatever the data
TIMEOUT_S = 10


def resolve_url(value: str | None, where: str = "--notify") -> str | None:
    """The webhook URL from a value (``https://...`` or ``env:NAME``); None for none.

    Raises:
        ConfigurationError: not an http(s) URL, plain http to another machine, or an empty
            variable (one line, the URL itself never shown).

    Example:
        >>> resolve_url("https://hooks.slack.com/services/T/B/x")
        'https://hooks.slack.com/services/T/B/x'
        >>> resolve_url("http://127.0.0.1:9/hook")
        'http://127.0.0.1:9/hook'
    """
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if value.startswith("env:"):
        name = value[4:]
        url = (os.environ.get(name) or "").strip()
        if not url:
            raise ConfigurationError(f"{where}: the environment variable {name} is not set")
    else:
        url = value
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{where}: not an http(s) URL; give the incoming webhook's https://... address "
            "(or env:NAME to read it from the environment)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(f"{where}: plain http to {parts.hostname}; use https")
    return url


def escape(text: Any) -> str:
    """Lever text made safe for a chat message: one line, no control characters, no markup.

    Example:
        >>> escape("<!channel> & <https://x|click>")
        '&lt;!channel&gt; &amp; &lt;https://x|click&gt;'
    """
    one = printable(" ".join(str(text).split()))
    return one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def post(url: str | None, text: str, *, session: Any = None) -> bool:
    """POST ``{"text": text}`` to `url`; True when it was accepted (2xx). Never raises."""
    if not url:
        return False
    host = urlsplit(url).hostname
    try:
        answer = (session or requests).post(
            url, json={"text": shorten(scrub(text))}, timeout=TIMEOUT_S
        )
    except requests.RequestException as exc:
        print(
            f"lever-tags: warning: notification to {host} not sent ({type(exc).__name__})",
            file=sys.stderr,
        )
        return False
    if not 200 <= answer.status_code < 300:
        print(
            f"lever-tags: warning: notification to {host} refused (HTTP {answer.status_code})",
            file=sys.stderr,
        )
        return False
    return True


class Notifier:
    """One command's notifications: at most one message per run (`sent`)."""

    def __init__(self, url: str | None, what: str) -> None:
        self.url = url
        self.what = what
        self.sent = 0

    def send(self, text: str) -> None:
        if self.url and not self.sent:
            self.sent += 1
            post(self.url, f"{self.what}: {text}")

    @contextlib.contextmanager
    def on_error(self) -> Iterator[Notifier]:
        """Send "failed: <error>" when the block raises (then re-raise)."""
        try:
            yield self
        except Exception as exc:
            self.send(f"failed: {escape(scrub(exc))[:300]}")
            raise
        except KeyboardInterrupt:
            self.send("interrupted")
            raise


def gap_text(gaps: int, by_tag: Mapping[str, int], where: str) -> str:
    """`3 split pairs (Do not contact: 2, Python: 1); report: DIR`, tags escaped.

    Example:
        >>> gap_text(3, {"Do not contact": 2, "<b>": 1}, "r/")
        '3 split pairs (Do not contact: 2, &lt;b&gt;: 1); report: r/'
    """
    top = sorted(by_tag.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    detail = ", ".join(f"{escape(tag)}: {n}" for tag, n in top)
    more = f", and {len(by_tag) - 10} more tags" if len(by_tag) > 10 else ""
    return f"{gaps} split pairs ({detail}{more}); report: {escape(where)}"


__all__ = ["Notifier", "escape", "gap_text", "post", "resolve_url", "shorten"]
