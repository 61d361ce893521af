"""The secret scan: after a run, every produced file is searched for the credential (raw,
Basic-auth encoded, as a bearer, in an Authorization header) and the redaction salt, and
overwritten in place where found; parameters that carry them are refused before a run."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolkit import config
from toolkit.errors import ConfigurationError
from toolkit.redact import redaction_salt

REDACTED = b"[redacted]"


class SecretLeakError(RuntimeError):
    """A produced file contained the credential (it has been overwritten in place)."""


def _secrets() -> tuple[str, ...]:
    """The strings no produced file may hold: the Lever credential and the redaction salt."""
    try:
        found = list(config.load_settings().secrets)
    except ConfigurationError:
        found = []
    with contextlib.suppress(ConfigurationError):  # a too-short salt is refused where it is used
        salt = redaction_salt()
        if salt:
            found.append(salt.decode())
    return tuple(found)


def _refuse_secret_values(parameters: Mapping[str, Any], secrets: Sequence[str]) -> None:
    text = json.dumps(parameters, default=str)
    if any(s in text for s in secrets):
        raise ConfigurationError(
            "a parameter value contains the Lever credential; credentials are read from the "
            "environment inside the kernel, never passed as parameters"
        )


# A quote as it appears in a printed dict, in JSON (escaped) or in HTML (entities).
_QUOTE = rb"""(?:\\?["']|&#39;|&#x27;|&quot;|&#34;)"""


# An Authorization header with its value: a header line (`Authorization: Basic abc=`) or a
# printed dict item (`'Authorization': 'Bearer abc'`, `"authorization": "abc"`).
_TOKEN = rb"""[^\s'"&\\,}]+"""


_HEADER_LINE = rb"authorization\s*:\s*(?:basic|bearer)\s+" + _TOKEN


_DICT_ITEM = b"".join(
    [_QUOTE, rb"authorization", _QUOTE, rb"\s*:\s*", _QUOTE, rb"(?:(?:basic|bearer)\s+)?", _TOKEN]
)


_AUTH_HEADER = re.compile(_HEADER_LINE + rb"|" + _DICT_ITEM, re.IGNORECASE)


def secret_forms(secret: str) -> list[bytes]:
    """The byte strings a credential can travel as: raw, in a Basic-auth header, as a bearer.

    Lever's Basic auth sends `base64("KEY:")`; its aligned prefix (the part that does not depend
    on what follows the key) is searched too, so `base64("KEY")` and a password after the colon
    are caught. `Bearer KEY` contains the raw key.

    Example:
        >>> [f.decode() for f in secret_forms("sk-test-0123456789abcdef")][:2]
        ['sk-test-0123456789abcdef', 'c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg==']
    """
    raw = secret.encode()
    forms = [raw, base64.b64encode(raw + b":"), b"Bearer " + raw]
    aligned = base64.b64encode(raw)[: 4 * (len(raw) // 3)]
    if len(aligned) >= 16:
        forms.append(aligned)
    return list(dict.fromkeys(f for f in forms if f))


def scan_for_secrets(folder: Path, secrets: Sequence[str] | None = None) -> list[Path]:
    """Files under `folder` holding a credential; each is overwritten with it redacted.

    Looks for every secret (the Lever credential, the redaction salt) in each form it can travel
    as (`secret_forms`: raw, base64 of `KEY:` as Basic auth sends it, `Bearer KEY`), and for any
    Authorization header with a value (a header line or a printed headers dict, also
    JSON-escaped or HTML-escaped), whatever the key: that is a leak even of a key this process
    does not know.
    """
    secrets = _secrets() if secrets is None else tuple(secrets)
    needles = sorted(
        {form for s in secrets if s for form in secret_forms(s)}, key=len, reverse=True
    )
    leaked: list[Path] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        clean = data
        for needle in needles:
            clean = clean.replace(needle, REDACTED)
        clean = _AUTH_HEADER.sub(REDACTED, clean)  # the header name too
        if clean != data:
            path.write_bytes(clean)
            leaked.append(path)
    return leaked
