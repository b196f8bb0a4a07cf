"""Debian's chromium driven by playwright, and the API server run on a thread of the test process.

The page's tests use a real browser (never a downloaded one: executable_path is
Debian's /usr/bin/chromium, and playwright's driver ships in its wheel, so
nothing is fetched) against the real aiohttp application of api/server.py. The
application runs on its own event loop in a thread, because playwright's sync
API owns the test's thread; the store is changed on that loop
(`ThreadedApi.call`), since StateStore's listeners wake the stream's handlers there.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
T = TypeVar("T")


def skip_unless_browser() -> None:
    """Skip (with the reason) when Debian's chromium or playwright is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package); the page's browser tests need it")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (the test extra)")


@contextmanager
def playwright_driver() -> Iterator[Any]:
    """Playwright's driver (node, shipped in the wheel: nothing is downloaded); one per thread at a time."""
    skip_unless_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@contextmanager
def chromium_context(driver: Any = None, **context_options: Any) -> Iterator[Any]:
    """A fresh browser context of Debian's chromium, with its own temporary profile removed afterwards.

    Chromium runs as root here, hence --no-sandbox; the other switches keep it
    from calling home (updates, sync, QUIC probes) during a test. Without a
    `driver` (from playwright_driver) it starts its own.
    """
    if driver is None:
        with playwright_driver() as own, chromium_context(own, **context_options) as context:
            yield context
        return
    profile = tempfile.mkdtemp(prefix="pyka-chromium-")
    try:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, **context_options)
        try:
            yield context
        finally:
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class ConsoleLog:
    """Every console error and page error of a page: the page must have none."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console.{message.type}: {message.text} at {message.location}")


class ThreadedApi:
    """build_app(store) served on 127.0.0.1 (an ephemeral port) by an event loop on its own thread."""

    def __init__(self, make_app: Callable[[], Any] | None) -> None:
        self._make_app = make_app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="api-loop", daemon=True)
        self._runner: Any = None
        self.port = 0

    def start(self) -> None:
        """Start the loop's thread, and the application on it if there is one."""
        self._thread.start()
        if self._make_app is not None:
            self.run(self._start())

    async def _start(self) -> None:
        from aiohttp import web

        assert self._make_app is not None
        self._runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def run(self, coro: Any, timeout_s: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run `fn()` on the server's loop (where the store lives) and return what it returned."""
        result: Future[T] = Future()

        def go() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:  # handed back to the test's thread
                result.set_exception(exc)

        self.loop.call_soon_threadsafe(go)
        return result.result(timeout_s)

    def stop(self) -> None:
        try:
            if self._runner is not None:
                self.run(self._runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class Proxy:
    """127.0.0.1 (an ephemeral port) forwarded to a unix socket or a TCP port, on a ThreadedApi's loop.

    With `path`: how a browser reaches `--api unix:PATH`. A unix socket is not
    bound to a network namespace, so a daemon in a lab namespace is reached
    through its socket file from here; the proxy runs as root, which the socket
    requires, and the browser needs no token. With `port`: a loopback port to
    put in front of a server so that a test can `freeze` the network (no byte
    moves either way, connections stay open: a router that lost power) and
    `thaw` it.
    """

    def __init__(self, loop: ThreadedApi, *, path: str | None = None, port: int | None = None) -> None:
        assert (path is None) != (port is None), "a unix socket path or a TCP port"
        self._loop = loop
        self.path = path
        self.upstream_port = port
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self.port = 0

    def start(self) -> None:
        self._loop.run(self._start())

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def freeze(self) -> None:
        assert self._flowing is not None
        self._loop.call(self._flowing.clear)

    def thaw(self) -> None:
        assert self._flowing is not None
        self._loop.call(self._flowing.set)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection("127.0.0.1", self.upstream_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flowing = self._flowing
        assert flowing is not None
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await flowing.wait()
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    def stop(self) -> None:
        async def close() -> None:
            if self._flowing is not None:
                self._flowing.set()
            if self._server is not None:
                self._server.close()
                for writer in list(self._writers):  # Python 3.11's Server has no close_clients()
                    writer.close()
                await self._server.wait_closed()

        self._loop.run(close())
