"""Settings read from the environment, and the project's paths.

The API key is read here and nowhere else. It is never a notebook parameter or a CLI argument.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from toolkit.errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.lever.co/v1"

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
# Run from a checkout (or an editable install of one), the project's folders are used; from an
# installed wheel, the notebooks come with the package (package data) and what the toolkit writes
# goes under the current folder.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir()
WORK_DIR = PROJECT_ROOT if IN_CHECKOUT else Path.cwd()  # relative paths are taken from here
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks" if IN_CHECKOUT else PACKAGE_DIR / "notebooks"
REPORTS_DIR = Path(os.environ.get("LEVER_REPORTS_DIR") or WORK_DIR / "reports")
DOCS_DIR = PROJECT_ROOT / "docs"


@dataclass(frozen=True)
class Settings:
    """Connection settings. `repr` never shows the secrets."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret strings, for scrubbing anything the project writes."""
        return tuple(s for s in (self.api_key, self.access_token) if s)


def is_loopback(host: str | None) -> bool:
    """True for this machine's own addresses (localhost, 127.0.0.0/8, ::1).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("api.lever.co")
        (True, False)
    """
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read `LEVER_API_KEY` / `LEVER_ACCESS_TOKEN` and `LEVER_BASE_URL` from the environment.

    Raises:
        ConfigurationError: no credential, or both at once, or a base URL that is not http(s).
    """
    env = os.environ if environ is None else environ
    api_key = (env.get("LEVER_API_KEY") or "").strip() or None
    token = (env.get("LEVER_ACCESS_TOKEN") or "").strip() or None
    base_url = (env.get("LEVER_BASE_URL") or "").strip() or DEFAULT_BASE_URL
    if api_key and token:
        raise ConfigurationError(
            "both LEVER_API_KEY and LEVER_ACCESS_TOKEN are set; unset one of them"
        )
    if not api_key and not token:
        raise ConfigurationError(
            "no Lever credential: set LEVER_API_KEY (or LEVER_ACCESS_TOKEN for OAuth) "
            "in the environment"
        )
    parts = urlsplit(base_url)
    if parts.username or parts.password:
        # Never echo this URL: its user-info is a credential.
        raise ConfigurationError(
            "LEVER_BASE_URL must not carry credentials; put the key in LEVER_API_KEY"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"LEVER_BASE_URL must be an http:// or https:// URL (got {base_url!r})"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"LEVER_BASE_URL must use https:// for {parts.hostname} (plain http would send the "
            "key unencrypted; it is allowed only for a sandbox on this machine)"
        )
    return Settings(base_url=base_url.rstrip("/"), api_key=api_key, access_token=token)
