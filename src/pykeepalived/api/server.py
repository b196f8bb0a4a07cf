"""The parent's HTTP server: the state, a stream of it, /metrics and the page (skeleton; issue 16 grows it).

It runs in the parent's event loop, never in the VRRP process, so that no
client, however slow or many, can delay an advert. aiohttp is imported only
here, and this module only when the API is switched on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from importlib.resources import files

from aiohttp import web

from ..errors import PyKeepalivedError
from ..state.commands import CommandSender
from ..state.store import StateStore
from . import runtime_routes

log = logging.getLogger("pykeepalived")

STORE_KEY: web.AppKey[StateStore] = web.AppKey("store", StateStore)


class ApiListenError(PyKeepalivedError):
    """An --api address that cannot be used: not unix:PATH or HOST:PORT, or the bind failed."""


def _page() -> bytes:
    return files("pykeepalived.api").joinpath("static/page.html").read_bytes()


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE_KEY].snapshot())


async def _stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the whole state at once, then after each change."""
    store = request.app[STORE_KEY]
    changed = asyncio.Event()
    unsubscribe = store.subscribe(lambda _version: changed.set())
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        while True:
            changed.clear()
            await response.write(b"data: " + json.dumps(store.snapshot()).encode() + b"\n\n")
            await changed.wait()
    finally:
        unsubscribe()


async def _metrics(request: web.Request) -> web.Response:
    del request
    return web.Response(text="# metrics: not built yet\n", content_type="text/plain")


async def _index(request: web.Request) -> web.Response:
    del request
    return web.Response(body=_page(), content_type="text/html")


def build_app(store: StateStore, commands: CommandSender | None) -> web.Application:
    app = web.Application()
    app[STORE_KEY] = store
    app.router.add_get("/", _index)
    app.router.add_get("/api/v1/state", _state)
    app.router.add_get("/api/v1/stream", _stream)
    app.router.add_get("/metrics", _metrics)
    if commands is not None:
        runtime_routes.register(app, commands, store)
    return app


def parse_listen(spec: str) -> tuple[str, str, int]:
    """unix:PATH -> ("unix", PATH, 0); HOST:PORT or [V6]:PORT -> ("tcp", HOST, PORT)."""
    if spec.startswith("unix:") and len(spec) > 5:
        return "unix", spec[5:], 0
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiListenError(f"--api {spec!r}: expected unix:PATH or HOST:PORT")
    return "tcp", host.strip("[]"), int(port)


class ApiServer:
    """Serves `build_app` on each listen address until stopped."""

    def __init__(self, store: StateStore, listen: Sequence[str], commands: CommandSender | None = None) -> None:
        self.listen = [parse_listen(spec) for spec in listen]
        self.runner = web.AppRunner(build_app(store, commands), access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        for kind, where, port in self.listen:
            site: web.BaseSite
            if kind == "unix":
                old_umask = os.umask(0o177)  # the socket is born 0600: root only
                try:
                    site = web.UnixSite(self.runner, where)
                    await site.start()
                finally:
                    os.umask(old_umask)
            else:
                site = web.TCPSite(self.runner, where, port)
                await site.start()
            log.info("API listening on %s", site.name)

    async def stop(self) -> None:
        await self.runner.cleanup()


