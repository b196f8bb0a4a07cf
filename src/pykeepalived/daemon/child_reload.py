"""SIGHUP in a VRRP or checker process: fetch the new configuration, hand it to the service, report.

The service does the work that matters (keeping what did not change:
vrrp/service.py and check/service.py `reload`); this module is the plumbing
around it, the same for both: one reload at a time (a SIGHUP during a reload
runs one more after it, as several HUPs in a row ask for the latest file),
the configuration parsed off the event loop so that adverts keep going, each
problem logged, and the outcome, ready and alive reported to the parent
(daemon/child_report.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import TYPE_CHECKING, Protocol

from ..errors import ReloadError
from .child_report import ALIVE_INTERVAL_S, ChildReporter
from .config_source import config_for_reload

if TYPE_CHECKING:
    from ..config.model import KeepalivedConfig

log = logging.getLogger("pykeepalived")


class ReloadOptions(Protocol):
    """The parts of daemon/run.py's DaemonOptions a reload needs (named here: run.py imports this module)."""

    @property
    def config_fd(self) -> int: ...
    @property
    def child(self) -> bool: ...
    @property
    def config_file(self) -> str: ...
    @property
    def config_id(self) -> str | None: ...
    @property
    def report_fd(self) -> int: ...


class Reloadable(Protocol):
    """What a service offers: set `ready_event` once it serves; `reload` raises ReloadError to keep the old config."""

    ready_event: asyncio.Event

    async def reload(self, config: KeepalivedConfig) -> None: ...


class ChildControl:
    """Owns the SIGHUP handler and the report tasks of one service; `close()` when the service stopped."""

    def __init__(self, service: Reloadable, opts: ReloadOptions, what: str) -> None:
        self.service = service
        self.opts = opts
        self.what = what  # "VRRP" or "checker", for the log
        self.reporter = ChildReporter(opts.report_fd)
        self.reloads = 0  # finished, for tests and status
        self.failed_reloads = 0
        self._pending = False
        self._running: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self._tasks.append(loop.create_task(self._report_ready()))
        if self.opts.report_fd >= 0:
            self._tasks.append(loop.create_task(self._report_alive()))

    def request_reload(self) -> None:
        if self._running is not None and not self._running.done():
            self._pending = True
            return
        self._running = asyncio.get_running_loop().create_task(self._reload_until_settled())

    async def _reload_until_settled(self) -> None:
        while True:
            self._pending = False
            await self._reload_once()
            if not self._pending:
                return

    async def _reload_once(self) -> None:
        started = time.monotonic()
        opts = self.opts
        log.info("Reloading %s configuration", self.what)
        digest = ""
        try:
            config, digest = await asyncio.to_thread(config_for_reload, opts.config_fd, opts.child,
                                                     opts.config_file, opts.config_id)
            await self.service.reload(config)
        except ReloadError as exc:
            self.failed_reloads += 1
            log.error("%s reload refused: %s", self.what, exc)
            for problem in exc.problems:
                if problem != str(exc):
                    log.error("  %s", problem)
            self.reporter.reloaded(digest, False, exc.problems)
            return
        self.reloads += 1
        log.info("%s reload finished in %.1f ms", self.what, (time.monotonic() - started) * 1000)
        self.reporter.reloaded(digest, True, [])

    async def _report_ready(self) -> None:
        await self.service.ready_event.wait()
        self.reporter.ready()

    async def _report_alive(self) -> None:
        while True:
            self.reporter.alive()
            await asyncio.sleep(ALIVE_INTERVAL_S)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._running] if self._running is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
