"""Settings read from the environment, and the project's paths.

The API key is read here and nowhere else. It is never a notebook parameter or a CLI argument.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from toolkit.errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.lever.co/v1"
DEFAULT_TOKEN_URL = "https://auth.lever.co/oauth/token"
OAUTH_REFRESH_NAMES = ("LEVER_REFRESH_TOKEN", "LEVER_CLIENT_ID", "LEVER_CLIENT_SECRET")

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
class OAuthRefresh:
    """What refreshes an OAuth access token (Lever: ``grant_type=refresh_token``).

    `repr` shows only the token URL and the client id.
    """

    refresh_token: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str = DEFAULT_TOKEN_URL


@dataclass(frozen=True)
class Settings:
    """Connection settings. `repr` never shows the secrets."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    oauth: OAuthRefresh | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret strings, for scrubbing anything the project writes."""
        values = [self.api_key, self.access_token]
        if self.oauth is not None:
            values += [self.oauth.refresh_token, self.oauth.client_secret]
        return tuple(s for s in values if s)


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


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.username or parts.password:
        # Never echo this URL: its user-info is a credential.
        raise ConfigurationError(f"{name} must not carry credentials")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name} must be an http:// or https:// URL (got {url!r})")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} must use https:// for {parts.hostname} (plain http would send secrets "
            "unencrypted; it is allowed only for a sandbox on this machine)"
        )


def load_oauth_refresh(env: Mapping[str, str]) -> OAuthRefresh | None:
    """The OAuth refresh settings, when `LEVER_REFRESH_TOKEN` and its client are all set.

    Raises:
        ConfigurationError: only some of them are set, or `LEVER_TOKEN_URL` is not a URL.

    Example:
        >>> load_oauth_refresh({}) is None
        True
        >>> load_oauth_refresh({"LEVER_REFRESH_TOKEN": "r", "LEVER_CLIENT_ID": "c",
        ...     "LEVER_CLIENT_SECRET": "s"}).token_url
        'https://auth.lever.co/oauth/token'
    """
    values = {name: (env.get(name) or "").strip() for name in OAUTH_REFRESH_NAMES}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigurationError(
            f"OAuth refresh needs {', '.join(OAUTH_REFRESH_NAMES)} together; "
            f"{', '.join(missing)} not set"
        )
    token_url = (env.get("LEVER_TOKEN_URL") or "").strip() or DEFAULT_TOKEN_URL
    _check_url("LEVER_TOKEN_URL", token_url)
    return OAuthRefresh(
        refresh_token=values["LEVER_REFRESH_TOKEN"],
        client_id=values["LEVER_CLIENT_ID"],
        client_secret=values["LEVER_CLIENT_SECRET"],
        token_url=token_url,
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the credentials and `LEVER_BASE_URL` from the environment.

    A credential is `LEVER_API_KEY`, or `LEVER_ACCESS_TOKEN`, or the OAuth refresh settings
    (`LEVER_REFRESH_TOKEN`, `LEVER_CLIENT_ID`, `LEVER_CLIENT_SECRET`, optional `LEVER_TOKEN_URL`)
    with or without a current access token.

    Raises:
        ConfigurationError: no credential, or a key and OAuth at once, or a base URL that is not
            http(s).
    """
    env = os.environ if environ is None else environ
    api_key = (env.get("LEVER_API_KEY") or "").strip() or None
    token = (env.get("LEVER_ACCESS_TOKEN") or "").strip() or None
    base_url = (env.get("LEVER_BASE_URL") or "").strip() or DEFAULT_BASE_URL
    oauth = load_oauth_refresh(env)
    if api_key and token:
        raise ConfigurationError(
            "both LEVER_API_KEY and LEVER_ACCESS_TOKEN are set; unset one of them"
        )
    if api_key and oauth:
        raise ConfigurationError(
            "LEVER_API_KEY and OAuth refresh settings (LEVER_REFRESH_TOKEN...) are both set; "
            "unset one of them"
        )
    if not api_key and not token and not oauth:
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
    return Settings(base_url=base_url.rstrip("/"), api_key=api_key, access_token=token, oauth=oauth)
