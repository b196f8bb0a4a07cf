"""The parent's HTTP server: the state, a stream of it, /metrics and the page.

It runs in the parent's event loop, never in the VRRP process, so that no
client, however slow or many, can delay an advert. aiohttp is imported only
here (and in the other api modules), and only when the API is switched on.

What keeps it safe and bounded (docs/api.md):
- on a unix socket (0600) the peer must be root (SO_PEERCRED), else 403; on TCP
  every route but `GET /` needs `Authorization: Bearer TOKEN` (constant-time
  compare), else 401; TLS when a certificate and key are given;
- a connection whose request headers are not complete within
  `HEADER_TIMEOUT_S` is dropped (slowloris), a request is answered within
  `REQUEST_TIMEOUT_S` or gets 408, bodies over `MAX_BODY` get 413;
- at most `MAX_CONNECTIONS` connections and `MAX_STREAMS` event streams: over
  that a client gets 503 and is closed, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import ssl
import stat
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ..state.commands import CommandSender
from ..state.store import StateStore
from . import runtime_routes
from .metrics import render_metrics
from .settings import ApiListenError, ApiSettings, parse_listen, read_token, token_matches

__all__ = ["ApiListenError", "ApiServer", "ApiSettings", "build_app", "parse_listen"]

log = logging.getLogger("pykeepalived")

HEADER_TIMEOUT_S = 5.0  # a request's headers must be complete this soon after the connection (or the last reply)
REQUEST_TIMEOUT_S = 10.0  # a request (but an event stream) must be answered within this
KEEPALIVE_TIMEOUT_S = 5.0  # an idle keep-alive connection is closed after this
MAX_BODY = 64 * 1024  # the runtime API's bodies are a few bytes
MAX_CONNECTIONS = 256
MAX_STREAMS = 32
STREAM_HEARTBEAT_S = 15.0  # an SSE comment this often: dead clients are noticed, proxies keep the stream open
STREAM_WRITE_TIMEOUT_S = 10.0  # a stream client that reads nothing for this long is dropped
PAGE_PATH = "/"


def _busy_reply() -> bytes:
    body = json.dumps({"ok": False, "message": "too many connections to the API"}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


@dataclass
class Limits:
    """The server's live counts, shared by the connection guard and the handlers."""

    max_connections: int = MAX_CONNECTIONS
    max_streams: int = MAX_STREAMS
    header_timeout_s: float = HEADER_TIMEOUT_S
    connections: int = 0
    streams: int = 0
    guards: dict[Any, _Guard] = field(default_factory=dict)  # transport -> its guard


def _key(name: str, kind: type) -> Any:
    """An application key: aiohttp's typed AppKey (3.9+), a plain string on older ones (Debian 12's 3.8)."""
    app_key = getattr(web, "AppKey", None)
    return app_key(name, kind) if app_key is not None else f"pykeepalived_{name}"


STORE_KEY = _key("store", StateStore)
SETTINGS_KEY = _key("settings", ApiSettings)
TOKEN_KEY = _key("token", bytes)
LIMITS_KEY = _key("limits", Limits)


PAGE_FILE = Path(__file__).resolve().parent / "static" / "page.html"  # shipped in the package (package-data)


def _page() -> bytes:
    return PAGE_FILE.read_bytes()


def _reply(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": status < 400, "message": message}, status=status, headers=headers)


async def _state(request: web.Request) -> web.Response:
    return web.Response(text=request.app[STORE_KEY].text(), content_type="application/json")


async def _stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole state at once, then after each change (a heartbeat comment in between)."""
    limits = request.app[LIMITS_KEY]
    if limits.streams >= limits.max_streams:
        return _reply(503, f"too many event streams (at most {limits.max_streams})")
    store = request.app[STORE_KEY]
    changed = asyncio.Event()
    limits.streams += 1
    unsubscribe = store.subscribe(lambda _version: changed.set())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        chunk = b"data: " + store.text().encode() + b"\n\n"
        while True:
            changed.clear()
            await asyncio.wait_for(response.write(chunk), STREAM_WRITE_TIMEOUT_S)
            try:
                await asyncio.wait_for(changed.wait(), STREAM_HEARTBEAT_S)
                chunk = b"data: " + store.text().encode() + b"\n\n"
            except asyncio.TimeoutError:
                chunk = b": keepalive\n\n"
    except (asyncio.TimeoutError, ConnectionError):
        log.debug("API: event stream to a client that does not read closed")
    finally:
        unsubscribe()
        limits.streams -= 1
    return response


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = render_metrics(request.app[STORE_KEY].snapshot())
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _index(request: web.Request) -> web.Response:
    del request
    return web.Response(body=_page(), content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 "script-src 'self' 'unsafe-inline'; img-src 'self' data:",
                                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


def _peer_uid(request: web.Request) -> int | None:
    """The uid of a unix-socket peer (SO_PEERCRED); None on TCP."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return int(uid)


def _refusal(request: web.Request) -> web.Response | None:
    """403 for a non-root unix peer, 401 for TCP without the right bearer token; None when allowed."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX:
        uid = _peer_uid(request)
        if uid != 0:
            return _reply(403, "the API's unix socket is for root only")
        return None
    if request.method == "GET" and request.path == PAGE_PATH:
        return None  # the page's HTML carries no data; it asks for the token
    if not token_matches(request.headers.get("Authorization"), request.app[TOKEN_KEY]):
        return _reply(401, "a bearer token is required (Authorization: Bearer TOKEN)",
                      {"WWW-Authenticate": 'Bearer realm="pykeepalived"'})
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authentication, limits and a debug line for every request; HTTP errors as JSON replies."""
    limits = request.app[LIMITS_KEY]
    guard = limits.guards.get(request.transport)
    if guard is not None:
        guard.busy(True)
    status = 500
    try:
        response: web.StreamResponse | None = _refusal(request)
        if response is None and request.content_length is not None and request.content_length > MAX_BODY:
            response = _reply(413, f"request body over {MAX_BODY} bytes")
        if response is None:
            try:
                if request.path == "/api/v1/stream":
                    response = await handler(request)
                else:
                    response = await asyncio.wait_for(handler(request), REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                response = _reply(408, "request not answered in time")
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
                response = _reply(exc.status, exc.reason, headers)
        status = response.status
        return response
    finally:
        if guard is not None:
            guard.busy(False)
        # the path without its query string: a query might hold a secret
        log.debug("API %s %s from %s: %d", request.method, request.path, request.remote or "unix", status)


def build_app(store: StateStore, commands: CommandSender | None, settings: ApiSettings | None = None,
              token: bytes = b"") -> web.Application:
    """The API's application: routes, the guard, and the runtime routes (api/runtime_routes.py)."""
    settings = settings if settings is not None else ApiSettings()
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY, handler_args={"max_field_size": 8190})
    app[STORE_KEY] = store
    app[SETTINGS_KEY] = settings
    app[TOKEN_KEY] = token
    app[LIMITS_KEY] = Limits()
    app.router.add_get("/", _index)
    app.router.add_get("/api/v1/state", _state)
    app.router.add_get("/api/v1/stream", _stream)
    app.router.add_get("/metrics", _metrics)
    if commands is not None:
        # register(app, commands, store, settings): the runtime API answers 403 when settings.runtime is off
        register: Callable[..., None] = runtime_routes.register
        register(app, commands, store, settings)
    return app


class _Guard(asyncio.Protocol):
    """One connection: counts it, caps how many there are, and drops it when its headers come too slowly.

    It stands between asyncio and aiohttp's protocol, passing every event on.
    """

    def __init__(self, limits: Limits, inner: asyncio.Protocol) -> None:
        self.limits = limits
        self.inner: asyncio.Protocol | None = inner
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.active = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limits = self.limits
        if limits.connections >= limits.max_connections:
            log.debug("API: over %d connections, one refused", limits.max_connections)
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_busy_reply())
            transport.close()
            self.inner = None
            return
        limits.connections += 1
        self.transport = transport
        limits.guards[transport] = self
        self._arm()
        assert self.inner is not None
        self.inner.connection_made(transport)

    def _arm(self) -> None:
        self.timer = asyncio.get_running_loop().call_later(self.limits.header_timeout_s, self._expire)

    def _expire(self) -> None:
        self.timer = None
        if self.active == 0 and self.transport is not None:
            log.debug("API: a client too slow to send its request dropped")
            self.transport.abort()  # type: ignore[attr-defined]

    def busy(self, on: bool) -> None:
        """A request started (its headers are in) or ended: the deadline is off while one runs."""
        self.active += 1 if on else -1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.active == 0 and self.transport is not None and not self.transport.is_closing():
            self._arm()  # the next request's headers, too, must come in time

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.inner is None:
            return
        self.limits.connections -= 1
        self.limits.guards.pop(self.transport, None)
        inner, self.inner, self.transport = self.inner, None, None
        inner.connection_lost(exc)


def _tls_context(settings: ApiSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ApiListenError(f"API TLS certificate {settings.tls_cert} / key {settings.tls_key}: {exc}") from None
    return context


def _clear_unix_path(path: str) -> None:
    """Remove a stale socket file; refuse a live one (another daemon serves there) or a file that is no socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ApiListenError(f"API socket {path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ApiListenError(f"API socket {path}: cannot tell whether it is in use: {exc}") from None
        os.unlink(path)  # nobody listens: left by a daemon that died
        return
    finally:
        probe.close()
    raise ApiListenError(f"API socket {path} is in use by another process (another pykeepalived?)")


class ApiServer:
    """Serves `build_app` on each listen address until stopped."""

    def __init__(self, store: StateStore, settings: ApiSettings, commands: CommandSender | None = None) -> None:
        self.settings = settings
        self.listen = [parse_listen(spec) for spec in settings.listen]
        token = read_token(settings.token_file) if settings.token_file is not None else b""
        self.app = build_app(store, commands, settings, token)
        self.runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_S,
                                    handle_signals=False)
        self.servers: list[asyncio.AbstractServer] = []
        self.unix_paths: list[tuple[str, int]] = []  # (path, inode) of the sockets we made, removed at stop

    def _factory(self) -> Callable[[], asyncio.Protocol]:
        limits = self.app[LIMITS_KEY]
        server = self.runner.server
        assert server is not None

        def make() -> asyncio.Protocol:
            return _Guard(limits, server())

        return make

    async def start(self) -> None:
        await self.runner.setup()
        loop = asyncio.get_running_loop()
        tls = _tls_context(self.settings)
        factory = self._factory()
        for kind, where, port in self.listen:
            if kind == "unix":
                _clear_unix_path(where)
                os.makedirs(os.path.dirname(where) or "/", mode=0o755, exist_ok=True)
                old_umask = os.umask(0o177)  # the socket is born 0600: root only
                try:
                    server = await loop.create_unix_server(factory, where, backlog=128)
                finally:
                    os.umask(old_umask)
                os.chmod(where, 0o600)
                self.unix_paths.append((where, os.lstat(where).st_ino))
                name = f"unix:{where}"
            else:
                try:
                    server = await loop.create_server(factory, where, port, ssl=tls, backlog=128, reuse_address=True,
                                                      ssl_handshake_timeout=HEADER_TIMEOUT_S if tls else None)
                except OSError as exc:
                    raise ApiListenError(f"API address {where}:{port}: {exc.strerror or exc}") from None
                name = f"{'https' if tls else 'http'}://{where}:{port}"
            self.servers.append(server)
            log.info("API listening on %s%s", name, " (runtime API on)" if self.settings.runtime else "")

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for path, inode in self.unix_paths:
            try:
                if os.lstat(path).st_ino == inode:  # ours still: not a socket a newer daemon made
                    os.unlink(path)
            except OSError:
                pass
        await self.runner.cleanup()
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()
