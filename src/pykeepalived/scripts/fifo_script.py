"""notify_fifo_script, vrrp_notify_fifo_script, lvs_notify_fifo_script: the FIFO's reader, started by us.

As keepalived 2.2.7 does (lib/notify.c fifo_open): once the FIFO exists, the
script is started with the FIFO's path as one more argument, with no timeout,
vetted and run as any other script (its user, enable_script_security); it
reads the lines the daemon writes. When the daemon stops, the FIFO is closed
(the reader sees end of file) and whatever is left of the script's process
group is told to stop (SIGTERM), so that no reader outlives the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from ..config.model import GlobalDefs, Script
from .runner import ScriptStartError, ScriptRunner, spawn_script

log = logging.getLogger("pykeepalived.notify")


def fifo_script_for(g: GlobalDefs, fifo: Script | None, subsystem: str) -> Script | None:
    """The script that reads `fifo` (one of global_defs' notify FIFOs) in `subsystem` ("vrrp" or "check")."""
    if fifo is None:
        return None
    if fifo is g.notify_fifo:
        return g.notify_fifo_script
    if subsystem == "vrrp" and fifo is g.vrrp_notify_fifo:
        return g.vrrp_notify_fifo_script
    if subsystem == "check" and fifo is g.lvs_notify_fifo:
        return g.lvs_notify_fifo_script
    return None


def checker_fifos(g: GlobalDefs) -> list[Script]:
    """The FIFOs the checker writes: notify_fifo and lvs_notify_fifo, the latter dropped when it is the same
    file (keepalived 2.2.7: "specified for global and LVS FIFO - ignoring LVS FIFO"; every line once)."""
    fifos = [f for f in (g.notify_fifo, g.lvs_notify_fifo) if f is not None and f.argv]
    if len(fifos) == 2 and fifos[0].argv[0] == fifos[1].argv[0]:
        log.info("notify FIFO %s has been specified for global and LVS FIFO - ignoring LVS FIFO", fifos[0].argv[0])
        fifos.pop()
    return fifos


def vrrp_fifos(g: GlobalDefs) -> list[Script]:
    """The FIFOs the VRRP process writes: notify_fifo and vrrp_notify_fifo, the latter dropped when it is the
    same file (keepalived 2.2.7: "specified for global and vrrp FIFO - ignoring vrrp FIFO")."""
    fifos = [f for f in (g.notify_fifo, g.vrrp_notify_fifo) if f is not None and f.argv]
    if len(fifos) == 2 and fifos[0].argv[0] == fifos[1].argv[0]:
        log.info("notify FIFO %s has been specified for global and vrrp FIFO - ignoring vrrp FIFO",
                 fifos[0].argv[0])
        fifos.pop()
    return fifos


class FifoScripts:
    """The FIFO readers one process started."""

    def __init__(self, runner: ScriptRunner) -> None:
        self.runner = runner
        self._procs: list[asyncio.subprocess.Process] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def launch(self, script: Script, fifo_path: str) -> None:
        try:
            argv, user, group = self.runner.prepare(script, (fifo_path,))
            proc = await spawn_script(argv, user, group)
        except ScriptStartError as exc:
            log.warning("notify FIFO script for %s not started: %s", fifo_path, exc)
            return
        self._procs.append(proc)
        self._tasks.append(asyncio.create_task(self._reap(proc, script)))

    @staticmethod
    async def _reap(proc: asyncio.subprocess.Process, script: Script) -> None:
        status = await proc.wait()
        log.info("notify FIFO script %s exited with status %s", script.argv[0], status)

    def end_all(self) -> None:
        """SIGTERM to each reader's process group (after the FIFO was closed)."""
        for proc in self._procs:
            if proc.returncode is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        for task in self._tasks:
            task.cancel()
