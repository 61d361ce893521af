"""OAuth access tokens that renew themselves: Lever's ``grant_type=refresh_token``.

Lever's access tokens live one hour; a refresh token (with the app's client id and secret) buys a
new one at ``https://auth.lever.co/oauth/token``, and the answer carries a new refresh token too
("get a new refresh_token", Lever's OAuth documentation). `TokenSource` holds the live access
token for a `LeverClient`: it refreshes a minute before the token expires and once more when Lever
answers 401 anyway, one thread at a time, and keeps the latest refresh token in a private state
file (0600 in a 0700 folder), so the next run starts from it instead of the spent one in the
environment. No token, refresh token or client secret is ever printed or logged; each new
access token is registered with the scrubber before it is used.

The state file is ``LEVER_OAUTH_STATE`` or ``$XDG_STATE_HOME/lever-tag-toolkit/oauth.json``
(``~/.local/state/...``). It is used only while the environment still names the refresh token
that started it: setting a new ``LEVER_REFRESH_TOKEN`` starts over from that one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from toolkit.config import OAuthRefresh
from toolkit.errors import AuthenticationError, ConfigurationError, ConnectionFailedError
from toolkit.scrub import register_secret, scrub

log = logging.getLogger(__name__)

REFRESH_MARGIN_S = 60.0  # refresh this long before expiry (a tenth of a short lifetime)
DEFAULT_LIFETIME_S = 3600.0  # Lever's, when an answer gives no expires_in
REFRESH_ATTEMPTS = 3  # a token endpoint that is down: a few tries, then the run stops cleanly


def default_state_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the latest refresh token is kept between runs.

    Example:
        >>> str(default_state_path({"LEVER_OAUTH_STATE": "/tmp/o.json"}))
        '/tmp/o.json'
        >>> str(default_state_path({"XDG_STATE_HOME": "/s"}))
        '/s/lever-tag-toolkit/oauth.json'
    """
    env = os.environ if environ is None else environ
    if env.get("LEVER_OAUTH_STATE"):
        return Path(env["LEVER_OAUTH_STATE"]).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "lever-tag-toolkit" / "oauth.json"


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenSource:
    """The live OAuth access token of one client, refreshed before it expires or on a 401.

    Args:
        settings: the refresh token, client id and secret, and the token URL.
        access_token: a current access token, if the environment has one (else the first
            request refreshes first).
        session: the `requests.Session` to send the token request with (the client's own).
        state_path: where the latest refresh token is kept (see `default_state_path`).
        clock: seconds, monotonic; injectable for tests.
        sleep: waits between attempts at a token endpoint that failed; injectable for tests.

    Example:
        >>> from toolkit.config import OAuthRefresh
        >>> source = TokenSource(OAuthRefresh("r-token", "client", "secret"),  # doctest: +SKIP
        ...                      session=requests.Session())
        >>> source.token()  # doctest: +SKIP
        'eyJ...'
    """

    def __init__(
        self,
        settings: OAuthRefresh,
        *,
        access_token: str | None = None,
        session: requests.Session,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.settings = settings
        self._session = session
        self._state_path = state_path if state_path is not None else default_state_path()
        self._clock = clock
        self._sleep = sleep
        self._timeout = timeout
        self._lock = threading.Lock()
        self._seed = _fingerprint(settings.refresh_token)
        self._refresh_token = self._load_refresh_token() or settings.refresh_token
        self._access_token = access_token
        # A token from the environment has an unknown age: trust it until Lever says 401.
        self._expires_at = float("inf") if access_token else 0.0
        self._margin = REFRESH_MARGIN_S
        self.generation = 0  # one more at every refresh: a 401 on an older one just retries
        self.proven = -1  # the newest generation Lever has accepted at least once
        self.refreshes = 0
        for secret in (settings.refresh_token, settings.client_secret, access_token):
            register_secret(secret)

    def __repr__(self) -> str:
        return f"TokenSource(token_url={self.settings.token_url!r})"

    # -- the state file -------------------------------------------------------------------------

    def _load_refresh_token(self) -> str | None:
        try:
            saved = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict):
            return None
        same_start = saved.get("client_id") == self.settings.client_id and saved.get("seed") == (
            self._seed
        )
        token = saved.get("refresh_token")
        if same_start and isinstance(token, str) and token:
            register_secret(token)
            return token
        return None

    def _save_refresh_token(self, token: str) -> None:
        folder = self._state_path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = {"client_id": self.settings.client_id, "seed": self._seed, "refresh_token": token}
        fd, tmp = tempfile.mkstemp(prefix=".oauth.", dir=folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
            os.replace(tmp, self._state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- the token ------------------------------------------------------------------------------

    def token(self) -> tuple[str, int]:
        """The access token to send now and its generation, refreshed first if it is due."""
        with self._lock:
            if self._access_token is None or self._clock() >= self._expires_at - self._margin:
                self._refresh_locked("due")
            assert self._access_token is not None
            return self._access_token, self.generation

    def accepted(self, generation: int) -> None:
        """Lever answered a request sent with the token of `generation`."""
        if generation > self.proven:
            self.proven = generation  # a plain int store: no lock needed for a high-water mark

    def refused_fresh(self, generation: int) -> bool:
        """Whether a 401 on `generation` means Lever refuses even new tokens: no request has
        been accepted with it or any newer one."""
        return self.proven < generation

    def refresh_after_401(self, generation: int) -> None:
        """Lever refused the token of `generation`: refresh, unless another thread already did."""
        with self._lock:
            if generation == self.generation:
                self._refresh_locked("refused")

    def _refresh_locked(self, why: str) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            answer = self._post(form)
        except AuthenticationError:
            # Another process of this user (a report's kernel, a second run) may have used the
            # refresh token first and kept the rotated one in the state file: try that one once.
            saved = self._load_refresh_token()
            if not saved or saved == self._refresh_token:
                raise
            self._refresh_token = form["refresh_token"] = saved
            answer = self._post(form)
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise ConfigurationError(
                "the OAuth token endpoint answered without an access_token; check LEVER_TOKEN_URL"
            )
        register_secret(access)
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_LIFETIME_S
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            register_secret(rotated)
            self._save_refresh_token(rotated)  # before use: a crash must not lose the new one
            self._refresh_token = rotated
        self._access_token = access
        self._expires_at = self._clock() + float(lifetime)
        self._margin = min(REFRESH_MARGIN_S, float(lifetime) / 10)
        self.generation += 1
        self.refreshes += 1
        log.info("OAuth access token refreshed (%s); valid for %.0f s", why, lifetime)

    def _post(self, form: dict[str, str]) -> dict[str, Any]:
        url = self.settings.token_url
        host = urlsplit(url).netloc
        for attempt in range(1, REFRESH_ATTEMPTS + 1):
            try:
                response = self._session.post(
                    url,
                    data=form,
                    headers={"Authorization": None, "Accept": "application/json"},
                    auth=None,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if attempt == REFRESH_ATTEMPTS:
                    raise ConnectionFailedError(
                        f"cannot reach the OAuth token endpoint {host}: {type(exc).__name__}",
                        method="POST",
                        path="/oauth/token",
                    ) from None
                self._sleep(2.0**attempt)
                continue
            if response.status_code >= 500 and attempt < REFRESH_ATTEMPTS:
                self._sleep(2.0**attempt)
                continue
            return self._read(response, host)
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _read(response: requests.Response, host: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        reason = ""
        if isinstance(body, dict):
            reason = str(body.get("error") or body.get("code") or "")[:60]
        reason = scrub(reason) or f"HTTP {response.status_code}"
        if response.status_code in (400, 401, 403):
            error = AuthenticationError(
                f"the OAuth token endpoint {host} refused the refresh token ({reason})",
                status=response.status_code,
            )
            error.hint = (
                "the refresh token expired or was revoked (Lever's last a year, or 90 days "
                "unused): authorize the app again and set LEVER_REFRESH_TOKEN to the new one"
            )
            raise error
        raise ConfigurationError(
            f"the OAuth token endpoint {host} answered {reason}; check LEVER_TOKEN_URL"
        )


__all__ = ["TokenSource", "default_state_path"]
