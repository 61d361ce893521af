"""One scrubber for credentials in text: every form the configured key can travel as.

Server messages and exception text pass through `scrub` where they enter the toolkit (a
`LeverError` is built from them), so the key never reaches an exception, a log line, stdout or
the journal. It matches the credentials this process really holds, in each form they travel as
(`secret_forms`): the raw key, `base64("KEY:")` as HTTP Basic sends it (and its aligned prefix),
and `Bearer KEY`. Text that merely looks like a header (a tag named
`Authorization: Bearer innocentlookingtag`) is data and is left alone.

Which credentials: the ones `LEVER_API_KEY` / `LEVER_ACCESS_TOKEN` hold now, the redaction salt,
and any a `LeverClient` registered when it was built with an explicit key (`register_secret`).
This module imports neither pandas nor requests (the client may use it).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
_ENV_NAMES = (
    "LEVER_API_KEY",
    "LEVER_ACCESS_TOKEN",
    "LEVER_REFRESH_TOKEN",
    "LEVER_CLIENT_SECRET",
    "LEVER_REDACT_SALT",
)
_MIN_SECRET = 6  # shorter "secrets" would redact ordinary words; no real key is that short
_registered: set[str] = set()
_lock = threading.Lock()


def secret_forms(secret: str) -> list[str]:
    """The strings a credential can travel as: raw, in a Basic-auth header, as a bearer.

    Lever's Basic auth sends `base64("KEY:")`; its aligned prefix (the part that does not depend
    on what follows the key) is included too, so `base64("KEY")` and a password after the colon
    are caught. `Bearer KEY` contains the raw key. Longest first.

    Example:
        >>> secret_forms("sk-test-0123456789abcdef")[:2]
        ['c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg==', 'c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVm']
    """
    raw = secret.encode()
    forms = [secret, base64.b64encode(raw + b":").decode(), f"Bearer {secret}"]
    aligned = base64.b64encode(raw)[: 4 * (len(raw) // 3)].decode()
    if len(aligned) >= 16:
        forms.append(aligned)
    # url-safe base64 (some proxies log it so)
    forms.append(base64.urlsafe_b64encode(raw + b":").decode())
    unique = {f for f in forms if f and f != "Bearer "}
    return sorted(unique, key=len, reverse=True)


def register_secret(secret: str | None) -> None:
    """Remember a credential given in code (not through the environment) for `scrub`."""
    if secret and len(secret.strip()) >= _MIN_SECRET:
        with _lock:
            _registered.add(secret.strip())


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """The credentials to scrub: the environment's, the registered ones, and `extra`."""
    found = {(os.environ.get(name) or "").strip() for name in _ENV_NAMES}
    with _lock:
        found |= _registered
    found |= {s.strip() for s in extra if s}
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def scrub(text: object, secrets: Iterable[str] | None = None) -> str:
    """`text` as a string with every form of every known credential replaced by `[redacted]`.

    Args:
        text: anything (converted with `str`); None gives "".
        secrets: the credentials to look for; default `known_secrets()`.

    Example:
        >>> scrub("echo: Authorization: Basic c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg==",
        ...       ["sk-test-0123456789abcdef"])
        'echo: Authorization: Basic [redacted]'
        >>> scrub("tag Authorization: Bearer innocentlookingtag", ["sk-test-0123456789abcdef"])
        'tag Authorization: Bearer innocentlookingtag'
    """
    if text is None:
        return ""
    out = str(text)
    chosen = known_secrets() if secrets is None else [s for s in secrets if s]
    needles = sorted({f for s in chosen for f in secret_forms(s)}, key=len, reverse=True)
    for needle in needles:
        if needle in out:
            out = out.replace(needle, REDACTED)
    return out


__all__ = ["REDACTED", "known_secrets", "register_secret", "scrub", "secret_forms"]
