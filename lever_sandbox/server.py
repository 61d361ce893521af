"""`Sandbox`: the Lever-compatible HTTP server (tornado, `lever_sandbox.handlers`) run in a
thread, with its engine (`lever_sandbox.engine`) and its state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from lever_sandbox.app import make_app
from lever_sandbox.data import Dataset, apply_created_profile
from lever_sandbox.engine import Engine, SandboxConfig, coerce_config
from lever_sandbox.state import (
    SandboxState,
    default_dataset,
)

log = logging.getLogger(__name__)


# -- handlers -----------------------------------------------------------------------------------


# -- the embeddable server ----------------------------------------------------------------------


class Sandbox:
    """A Lever-compatible server on loopback, run by tornado in a daemon thread of this process.

    Args:
        seed: random seed of the data set and of the fault dice.
        contacts: number of generated contacts.
        opportunities: generate exactly this many opportunities instead (overrides `contacts`).
        dataset: use this `Dataset` instead of generating one.
        host, port: where to listen; port 0 picks a free port.
        api_key: the full-access key (random by default); `restricted_api_key` lacks
            confidential access.
        access_token: the OAuth access token (random by default), accepted as Bearer only,
            with full access; it expires (``access_token_ttl_s``,
            ``access_token_max_requests``) and `refresh_access_token` issues a new one.
        state_file: JSON file to load (if it exists); saved within ~50 ms of every write
            and on `stop`.
        created_profile: how generated opportunities spread over time (`uniform`, `recent`,
            `bulk`, `sparse`; see `lever_sandbox.data.apply_created_profile`).
        **config: the `SandboxConfig` fields (latency_ms, rate, burst, fail_rate, drop_rate,
            offset_fault_rate, retry_after, offset_error_status, jitter_ms, spike_rate,
            spike_ms) and the Lever-behaviour modes (perform_as_status,
            tag_writes_bump_updated_at, confidential_denied, omit_next, access_token_ttl_s,
            access_token_max_requests, deleted_shape).

    Example:
        >>> with Sandbox(seed=7, contacts=50, rate=1000, burst=1000) as sb:  # doctest: +SKIP
        ...     client = LeverClient(sb.base_url, api_key=sb.api_key)
        ...     len(list(client.iter_opportunities(confidentiality="all")))
    """

    def __init__(
        self,
        seed: int = 7,
        contacts: int = 300,
        *,
        opportunities: int | None = None,
        dataset: Dataset | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        restricted_api_key: str | None = None,
        access_token: str | None = None,
        state_file: str | os.PathLike | None = None,
        created_profile: str = "uniform",
        **config: Any,
    ) -> None:
        self.seed = seed
        self.host = host
        self._requested_port = port
        self._api_key = api_key or secrets.token_urlsafe(24)
        self._restricted_key = restricted_api_key or secrets.token_urlsafe(24)
        if self._api_key == self._restricted_key:
            raise ValueError("api_key and restricted_api_key must differ")
        cfg = SandboxConfig(**coerce_config(config)).validated()
        if dataset is None and not (state_file and os.path.exists(state_file)):
            dataset = default_dataset(seed, contacts, opportunities)
            dataset = apply_created_profile(dataset, created_profile, seed)
        state = SandboxState(dataset or Dataset([], {}, []), state_file=state_file)
        self.engine = Engine(
            state, cfg, self._api_key, self._restricted_key, seed, access_token=access_token
        )
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Sandbox:
        """Start serving; returns when the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this Sandbox is already started")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="lever-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the sandbox did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        sockets = bind_sockets(self._requested_port, self.host)
        server = HTTPServer(make_app(self.engine))
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), timeout=5)
            except TimeoutError:
                log.warning("sandbox: some connections did not close in time")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection and join the thread; saves the state file."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the sandbox thread did not stop in time")
        self._thread = self._loop = self._stop_event = None
        hub = getattr(self.engine, "webhooks", None)
        if hub is not None:  # webhook deliveries (lever_sandbox.webhooks)
            hub.stop()
        self.engine.state.close()

    def wait(self) -> None:
        """Block until the server thread ends (the CLI uses `stop` from a signal handler)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, opportunities={len(self.engine.state)})"

    # -- addresses and keys ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """Root URL (``http://127.0.0.1:PORT``) or None before start."""
        return None if self.port is None else f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root to give a client: ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise RuntimeError("the sandbox is not started")
        return f"{self.url}/v1"

    @property
    def api_key(self) -> str:
        """Key with confidential access (HTTP Basic user name, or a Bearer token)."""
        return self._api_key

    @property
    def restricted_api_key(self) -> str:
        """Key without confidential access."""
        return self._restricted_key

    @property
    def access_token(self) -> str:
        """The live OAuth access token (Bearer only; full access). See `refresh_access_token`."""
        return self.engine.access_token

    def refresh_access_token(self) -> str:
        """Issue a new OAuth access token (as an OAuth refresh would); the old one is refused."""
        return self.engine.refresh_access_token()

    def env(self) -> dict[str, str]:
        """``LEVER_BASE_URL`` and ``LEVER_API_KEY``, for a child process or `from_env`."""
        return {"LEVER_BASE_URL": self.base_url, "LEVER_API_KEY": self.api_key}

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint (Lever's is https://auth.lever.co/oauth/token)."""
        return f"{self.url}/oauth/token"

    @property
    def refresh_token(self) -> str:
        """The OAuth app's live refresh token (a rotated one replaces it)."""
        return self.engine.oauth_app.refresh_token

    def oauth_env(self) -> dict[str, str]:
        """The environment of an OAuth app with a refresh token, instead of the API key."""
        app = self.engine.oauth_app
        return {
            "LEVER_BASE_URL": self.base_url,
            "LEVER_REFRESH_TOKEN": app.refresh_token,
            "LEVER_CLIENT_ID": app.client_id,
            "LEVER_CLIENT_SECRET": app.client_secret,
            "LEVER_TOKEN_URL": self.token_url,
        }

    # -- Python-side helpers (thread-safe) ------------------------------------------------------

    @property
    def users(self) -> list[dict[str, Any]]:
        return [dict(u) for u in self.engine.state.users]

    def opportunities(self) -> list[dict[str, Any]]:
        """Deep copies of every current opportunity (confidential included, deleted excluded)."""
        return self.engine.state.all_opportunities()

    def opportunity(self, opp_id: str) -> dict[str, Any] | None:
        opp = self.engine.state.get(opp_id)
        return None if opp is None else self.engine.state.render(opp, False)

    def stats(self) -> dict[str, Any]:
        with self.engine.lock:
            out = self.engine.state.stats.as_dict()
            out["config"] = asdict(self.engine.config)
            return out

    def reset_stats(self) -> None:
        with self.engine.lock:
            self.engine.state.stats.reset()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change latency, faults or limits at run time; returns the whole new config."""
        return self.engine.configure(**changes)

    @property
    def config(self) -> SandboxConfig:
        with self.engine.lock:
            return SandboxConfig(**asdict(self.engine.config))

    def set_tags(self, opp_id: str, tags: Iterable[str]) -> dict[str, Any]:
        """Replace an opportunity's tags directly (drift tests); bumps updatedAt."""
        opp = self.engine.state.set_tags(opp_id, list(tags))
        return self.engine.state.render(opp, False)

    def archive_opportunity(self, opp_id: str) -> dict[str, Any]:
        """Archive an opportunity now, as a recruiter would; bumps updatedAt."""
        return self.engine.state.render(self.engine.state.archive(opp_id), False)

    def deactivate_user(self, user_id: str) -> None:
        """Deactivate a user: GET /users/{id} still finds it, writes attributed to it are 400."""
        self.engine.state.deactivate_user(user_id)

    def delete_opportunity(self, opp_id: str) -> None:
        """Delete an opportunity; the API then answers 404 for it."""
        self.engine.state.delete(opp_id)

    def save(self) -> None:
        """Write the state file now (otherwise saved within ~50 ms of a write, and on stop)."""
        self.engine.state.save()
