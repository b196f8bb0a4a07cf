"""The VRRP process's side: conntrackd commands for each transition, one at a time, in order, bounded.

The commands come from `follower.py`; this runs them as
`conntrackd -C CONF FLAG` (the client mode talks to the parent's conntrackd
over its UNIX socket) and logs failures in our words. Only the commit a new
master makes before adding its VIPs is waited for, and at most
`COMMIT_WAIT_S`: the VIPs must not wait long for a sync that may be broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from ..config.model import KeepalivedConfig
from ..config.vocabulary import StateWord
from .follower import COMMIT, CtCommand, CtSyncFollower
from .setup import decide, resolve_binary
from .spec import CtSyncSpec

log = logging.getLogger("pykeepalived.ctsync")
COMMIT_WAIT_S = 2.0  # a new master adds its VIPs after the commit, or after this long
COMMAND_TIMEOUT_S = 5.0
SOCKET_WAIT_S = 5.0  # conntrackd may still be starting (the parent starts it with us)


class CtSyncClient:
    """Sends one VRRP process's conntrackd commands; `close()` at the process's end."""

    def __init__(self, spec: CtSyncSpec, binary: str | None, follower: CtSyncFollower) -> None:
        self.spec = spec
        self.binary = binary
        self.follower = follower
        self._queue: asyncio.Queue[tuple[CtCommand, asyncio.Future[bool]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._warned_missing = False

    @classmethod
    def for_vrrp(cls, config: KeepalivedConfig, dataplane_flag: str, pid_file: str) -> CtSyncClient | None:
        spec, _why = decide(config, dataplane_flag, pid_file)
        if spec is None:
            return None
        if spec.instance is None:
            log.error("conntrack sync: lvs_sync_daemon names no vrrp_instance of this config; conntrackd gets no "
                      "commands on failover (name the instance that holds the VIPs)")
            return None
        return cls(spec, resolve_binary(spec.binary), CtSyncFollower(spec.instance, spec.members))

    def _ensure_worker(self) -> asyncio.Queue[tuple[CtCommand, asyncio.Future[bool]]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(self._queue))
        return self._queue

    def _submit(self, commands: list[CtCommand]) -> list[asyncio.Future[bool]]:
        if not commands:
            return []
        if self.binary is None:
            if not self._warned_missing:
                log.error("conntrack sync: conntrackd (%s) not found; no connection state is committed on failover",
                          self.spec.binary)
                self._warned_missing = True
            return []
        queue = self._ensure_worker()
        futures = []
        for command in commands:
            fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            queue.put_nowait((command, fut))
            futures.append(fut)
        return futures

    async def before_vips(self, instance: str) -> None:
        """`instance` is about to add its VIPs as a new master: commit the peer's flows first (bounded wait)."""
        futures = self._submit(self.follower.before_vips(instance))
        if not futures:
            return
        started = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*futures)), COMMIT_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("(%s) conntrack sync: the commit did not finish in %g s; adding the VIPs anyway "
                        "(flows whose entry comes later are dropped until it does, not reset)", instance,
                        COMMIT_WAIT_S)
            return
        log.info("(%s) conntrack sync: the peer's connections committed to the kernel in %.0f ms, before the VIPs",
                 instance, (time.monotonic() - started) * 1000)

    def state(self, instance: str, word: StateWord) -> None:
        self._submit(self.follower.state(instance, word))

    async def close(self, timeout_s: float = 2.0) -> None:
        """Let queued commands finish (a little while), then stop the worker."""
        if self._queue is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker

    async def _work(self, queue: asyncio.Queue[tuple[CtCommand, asyncio.Future[bool]]]) -> None:
        while True:
            command, fut = await queue.get()
            try:
                ok = await self._run(command)
            except Exception as exc:  # noqa: BLE001 - a failed command must not stop the VRRP process
                log.error("conntrack sync: conntrackd %s (%s) failed: %s", command.flag, command.what, exc)
                ok = False
            finally:
                queue.task_done()
            if not fut.done():
                fut.set_result(ok)

    async def _run(self, command: CtCommand) -> bool:
        assert self.binary is not None
        if command is not COMMIT:  # the commit has its own bound; the others may wait for conntrackd's start
            deadline = time.monotonic() + SOCKET_WAIT_S
            while not os.path.exists(self.spec.paths.socket) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-C", self.spec.paths.config, command.flag, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT_S)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            log.error("conntrack sync: conntrackd %s (%s) did not answer in %g s", command.flag, command.what,
                      COMMAND_TIMEOUT_S)
            return False
        text = " ".join(out.decode(errors="replace").split())
        if proc.returncode != 0:
            log.error("conntrack sync: conntrackd %s (%s) failed with status %s%s", command.flag, command.what,
                      proc.returncode, f": {text[:300]}" if text else "")
            return False
        log.info("conntrack sync: %s (conntrackd %s, %.0f ms)", command.what, command.flag,
                 (time.monotonic() - started) * 1000)
        return True
