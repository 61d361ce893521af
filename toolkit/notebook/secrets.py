"""The secret scan: after a run, every produced file is searched for the credential (raw,
Basic-auth encoded, as a bearer, in an Authorization header) and the redaction salt, and
overwritten in place where found; parameters that carry them are refused before a run."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolkit import config
from toolkit.errors import (
    ConfigurationError,
    SecretLeakError,  # noqa: F401  (re-exported: its home before errors.py)
)
from toolkit.redact import redaction_salt
from toolkit.sanitize import private_file
from toolkit.scrub import secret_forms as forms

REDACTED = b"[redacted]"


def secret_values() -> tuple[str, ...]:
    """The strings no produced file may hold: the Lever credential and the redaction salt."""
    try:
        found = list(config.load_settings().secrets)
    except ConfigurationError:
        found = []
    # lever-tags sync: one token, or EVENT=TOKEN pairs separated by commas: each token apart
    for part in (os.environ.get("LEVER_WEBHOOK_SECRET") or "").split(","):
        token = part.partition("=")[2] if "=" in part else part
        if token.strip():
            found.append(token.strip())
    with contextlib.suppress(ConfigurationError):  # a too-short salt is refused where it is used
        salt = redaction_salt()
        if salt:
            found.append(salt.decode())
    return tuple(found)


def refuse_secret_values(parameters: Mapping[str, Any], secrets: Sequence[str]) -> None:
    text = json.dumps(parameters, default=str)
    if any(s in text for s in secrets):
        raise ConfigurationError(
            "a parameter value contains the Lever credential; credentials are read from the "
            "environment inside the kernel, never passed as parameters"
        )


def secret_forms(secret: str) -> list[bytes]:
    """The byte strings a credential can travel as (`toolkit.scrub.secret_forms`).

    Example:
        >>> b"c2stdGVzdC0wMTIzNDU2Nzg5YWJjZGVmOg==" in secret_forms("sk-test-0123456789abcdef")
        True
    """
    return [f.encode() for f in forms(secret)]


# Files the scan never edits: a database, a columnar file or an image rewritten byte-wise is
# corrupt (a journal so edited said "database disk image is malformed" and rollback crashed).
_BINARY_SUFFIXES = {".sqlite", ".sqlite-wal", ".sqlite-shm", ".db", ".parquet", ".png", ".lock"}


def _is_text(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in _BINARY_SUFFIXES or b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def scan_for_secrets(folder: Path, secrets: Sequence[str] | None = None) -> list[Path]:
    """Files under `folder` holding a credential: the last check after a run (a safety net).

    It looks for the real credentials only (the Lever key or token and the redaction salt),
    in every form they travel as (`secret_forms`: raw, base64 of `KEY:` as Basic auth sends it,
    `Bearer KEY`). Text that merely looks like a header (a tag called
    `Authorization: Bearer innocentlookingtag`) is data and is not a finding. Credentials are
    scrubbed where they enter (`toolkit.scrub`), so a finding here is a bug.

    A text file that holds one is rewritten atomically with `[redacted]` in its place (same
    private mode). A binary file (the journal, a Parquet snapshot, an image) is never edited:
    it is left intact and private (0600) and reported, so nothing is corrupted; the caller
    fails the run and names it.
    """
    return scan_files_for_secrets(folder.rglob("*"), secrets)


def scan_files_for_secrets(
    paths: Iterable[Path], secrets: Sequence[str] | None = None
) -> list[Path]:
    """`scan_for_secrets` over the given files only (an executed notebook and its HTML)."""
    secrets = secret_values() if secrets is None else tuple(secrets)
    needles = sorted(
        {form for s in secrets if s for form in secret_forms(s)}, key=len, reverse=True
    )
    leaked: list[Path] = []
    if not needles:
        return leaked
    for path in sorted(p for p in paths if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if not any(needle in data for needle in needles):
            continue
        leaked.append(path)
        if not _is_text(path, data):
            private_file(path)  # left as it is: editing it would corrupt it
            continue
        clean = data
        for needle in needles:
            clean = clean.replace(needle, REDACTED)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(clean)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return leaked
