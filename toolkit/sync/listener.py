"""The sync service's HTTP server: tornado in a thread of its own, with the limits a port needs.

- ``header_timeout``: tornado's ``idle_connection_timeout`` is its header timeout, the time a
  connection has to send a request's complete headers (the first request's too) and the idle
  time allowed between keep-alive requests (`tornado.http1connection` reads the headers under
  ``gen.with_timeout``). ``body_timeout`` bounds the body the same way; ``max_header_size`` and
  ``max_body_size`` bound their bytes.
- ``max_connections``: past it the oldest connection is closed to take the new one, so
  half-open connections (slow-loris) never lock Lever and ``/healthz`` out; it is cut to what
  the open-file limit (``RLIMIT_NOFILE``) leaves after a reserve for the journal and Lever's
  sockets, so ``accept()`` does not meet EMFILE.
- Accept errors (EMFILE and the like): the listening socket pauses briefly, the oldest
  connection is closed, and one line is logged at most every `LOG_EVERY_S` seconds with the
  number left out (tornado would log a traceback per try, in a busy loop).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows: no open-file limit to read
    resource = None  # type: ignore[assignment]

log = logging.getLogger("toolkit.sync")

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 512
MAX_HEADER_BYTES = 16 * 1024
FD_RESERVE = 64  # descriptors kept for the journal, Lever's connections, logs
LOG_EVERY_S = 10.0
ACCEPT_PAUSE_S = 0.1


@dataclass(frozen=True)
class ListenerLimits:
    """Timeouts (seconds) and the connection cap of the HTTP side (see the module doc)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (IPv4-mapped IPv6 included).

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::ffff:127.0.0.1"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def connection_cap(wanted: int) -> int:
    """`wanted`, cut to the open-file limit minus `FD_RESERVE` (at least 8).

    Example:
        >>> 8 <= connection_cap(512) <= 512
        True
    """
    if resource is None:  # pragma: no cover
        return wanted
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, soft - FD_RESERVE))


class RateLimitedLog:
    """Log a repeated problem at most once every `every` seconds, saying how many were left out.

    Example:
        >>> limited = RateLimitedLog(60.0)
        >>> limited.warning("accept failed: %s", "EMFILE")  # logged
        >>> limited.warning("accept failed: %s", "EMFILE")  # counted, not logged
        >>> limited.suppressed
        1
    """

    def __init__(self, every: float = LOG_EVERY_S) -> None:
        self.every = every
        self.suppressed = 0
        self._last: float | None = None

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} more like it in the last {self.every:g} s)"
        log.warning(message, *args)
        self._last, self.suppressed = now, 0


class BoundedHTTPServer(HTTPServer):
    """`HTTPServer` with a cap on connections (oldest closed first) and a calm accept loop."""

    def configure_limits(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.evicted = 0
        self._streams: collections.deque[IOStream] = collections.deque()
        self._accept_log = RateLimitedLog()
        self._evict_log = RateLimitedLog()

    def _close_oldest(self) -> bool:
        while self._streams:
            stream = self._streams.popleft()
            if not stream.closed():
                stream.close()
                self.evicted += 1
                return True
        return False

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        self._streams = collections.deque(s for s in self._streams if not s.closed())
        if len(self._streams) >= self.max_connections:
            self._evict_log.warning(
                "%d connections open (the cap): closing the oldest for a new one",
                len(self._streams),
            )
            while len(self._streams) >= self.max_connections and self._close_oldest():
                pass
        self._streams.append(stream)
        super().handle_stream(stream, address)

    def add_sockets(self, sockets: Any) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """tornado's `add_accept_handler`, pausing on errors instead of spinning on them."""
        loop = IOLoop.current()
        removed = False

        def on_readable(_fd: Any, _events: int) -> None:
            for _ in range(128):  # tornado's bound: let other work run between batches
                if removed:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM
                    self._accept_log.warning("accepting a connection failed: %s", exc)
                    self._close_oldest()
                    loop.remove_handler(sock)
                    loop.call_later(ACCEPT_PAUSE_S, resume)
                    return
                try:
                    self._handle_connection(connection, address)
                except Exception as exc:  # one bad connection never stops the loop
                    self._accept_log.warning("a new connection failed: %s", exc)
                    connection.close()

        def resume() -> None:
            if not removed:
                loop.add_handler(sock, on_readable, IOLoop.READ)

        def remove() -> None:
            nonlocal removed
            removed = True
            loop.remove_handler(sock)

        loop.add_handler(sock, on_readable, IOLoop.READ)
        return remove


class HttpSide:
    """The HTTP server in a thread of its own (tornado on its own event loop), stopped cleanly.

    Args:
        app: the tornado application (`toolkit.sync.web.make_app`).
        listen: ``(host, port)``; port 0 takes a free one (`port` tells which).
        max_body_bytes: the webhook size limit; the server refuses bodies well above it.
        limits: timeouts and the connection cap (`ListenerLimits`).
    """

    def __init__(
        self,
        app: tornado.web.Application,
        listen: tuple[str, int],
        max_body_bytes: int,
        limits: ListenerLimits | None = None,
    ) -> None:
        self.app, self.listen, self.max_body_bytes = app, listen, max_body_bytes
        self.limits = limits or ListenerLimits()
        self.max_connections = connection_cap(self.limits.max_connections)
        self.port: int | None = None
        self.server: BoundedHTTPServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str | None:
        """``http://HOST:PORT``, once started."""
        return None if self.port is None else f"http://{self.listen[0]}:{self.port}"

    def start(self) -> HttpSide:
        thread = threading.Thread(target=self._serve, name="sync-http", daemon=True)
        thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the HTTP server did not start in time")
        if self._error is not None:
            raise self._error
        self._thread = thread
        if not is_loopback(self.listen[0]):
            log.warning(
                "listening on %s, reachable from other machines: put a TLS-terminating proxy in "
                "front (Lever delivers webhooks over HTTPS) and forward only /webhooks/lever",
                self.url,
            )
        return self

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        host, port = self.listen
        sockets = bind_sockets(port, host)
        server = self.server = BoundedHTTPServer(
            self.app,
            max_body_size=max(self.max_body_bytes * 4, 1 << 20),
            max_header_size=MAX_HEADER_BYTES,
            idle_connection_timeout=self.limits.header_timeout,
            body_timeout=self.limits.body_timeout,
        )
        server.configure_limits(self.max_connections)
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.close_all_connections(), timeout=5)

    def stop(self, timeout: float) -> None:
        loop, event = self._loop, self._stop
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "BoundedHTTPServer",
    "HttpSide",
    "ListenerLimits",
    "RateLimitedLog",
    "connection_cap",
    "is_loopback",
]
