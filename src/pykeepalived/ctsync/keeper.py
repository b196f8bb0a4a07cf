"""conntrackd in the parent: written config, started, restarted with a backoff, stopped at a clean stop.

The parent owns conntrackd because its caches are the point: a VRRP child
that dies and is respawned must find the flows still there. conntrackd runs
in the foreground as our child (same process group: a crash of the whole
daemon takes it along, as a dead machine would); its own log goes to a file
in its run directory and its exits are logged in our words. A missing
binary or sync interface is logged and the router keeps routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from ..config.model import KeepalivedConfig
from . import guard
from .conf import render
from .setup import decide, resolve_binary
from .spec import CtSyncSpec

log = logging.getLogger("pykeepalived.ctsync")
SIOCGIFADDR = 0x8915
_LOG_PREFIX = re.compile(r"^\[[^]]*\] \(pid=\d+\) ")  # conntrackd's own time and pid: our log line has both
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STABLE_S = 60.0  # a run this long resets the backoff
STOP_WAIT_S = 5.0


def interface_ipv4(ifname: str) -> IPv4Address | None:
    """The interface's primary IPv4 address (SIOCGIFADDR), None if it has none or does not exist."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            raw = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            return None
    return IPv4Address(raw[20:24])


def _leftover_pids(config_path: str) -> list[int]:
    """conntrackd processes running our config file: left by a parent that was killed."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if config_path.encode() in argv and any(os.path.basename(a) == b"conntrackd" for a in argv[:1]):
            found.append(int(entry))
    return found


class ConntrackdKeeper:
    """Keeps one conntrackd running for the daemon until `stop()`."""

    def __init__(self, spec: CtSyncSpec, config: KeepalivedConfig | None = None, dataplane_flag: str = "auto",
                 pid_file: str = "") -> None:
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._guarded = False
        self._config, self._dataplane_flag, self._pid_file = config, dataplane_flag, pid_file
        self._restart = False  # the running conntrackd is stopped for a new config, not dead

    @classmethod
    def for_parent(cls, config: KeepalivedConfig, dataplane_flag: str, pid_file: str) -> ConntrackdKeeper | None:
        spec, why = decide(config, dataplane_flag, pid_file)
        if spec is None:
            if config.global_defs.lvs_sync_daemon is not None:
                log.info("conntrack sync: conntrackd not started: %s", why)
            return None
        return cls(spec, config, dataplane_flag, pid_file)

    def start(self, current: Callable[[], KeepalivedConfig | None] | None = None) -> None:
        """Run conntrackd; with `current` (the parent's config in force), follow reloads every second."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._keep())
        if current is not None:
            self._watch = loop.create_task(self._follow(current))

    async def _follow(self, current: Callable[[], KeepalivedConfig | None]) -> None:
        """After a reload, a new filter (virtual or real servers changed) means a new config and a restart."""
        while not await self._sleep(1.0):
            config = current()
            if config is None or config is self._config:
                continue
            self._config = config
            spec, why = decide(config, self._dataplane_flag, self._pid_file)
            if spec is None:
                log.warning("conntrack sync: the reloaded configuration would not run conntrackd (%s); it keeps "
                            "running until a restart", why)
                continue
            if spec == self.spec:
                continue
            self.spec = spec
            if self._guarded:
                self._guarded = await asyncio.to_thread(guard.install, spec)
            log.info("conntrack sync: the reloaded configuration changes what conntrackd syncs; restarting it "
                     "(it asks the peer for a resync)")
            if self.proc is not None and self.proc.returncode is None:
                self._restart = True
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """Stop conntrackd (SIGTERM, then SIGKILL after a few seconds) and remove our nftables table."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, STOP_WAIT_S + 2)
        if self._guarded:
            await asyncio.to_thread(guard.remove)
            self._guarded = False

    async def _keep(self) -> None:
        binary = resolve_binary(self.spec.binary)
        if binary is None:
            log.error("conntrack sync: conntrackd (%s) not found or not executable: established connections will "
                      "not survive a failover (install conntrackd, or set pykeepalived_conntrackd)", self.spec.binary)
            return
        self._guarded = await asyncio.to_thread(guard.install, self.spec)
        failures = 0
        warned_address = False
        while not self._stopping.is_set():
            local = interface_ipv4(self.spec.interface)
            if local is None:
                if not warned_address:
                    log.error("conntrack sync: %s has no IPv4 address (or does not exist); conntrackd waits for one",
                              self.spec.interface)
                    warned_address = True
                if await self._sleep(1.0):
                    return
                continue
            warned_address = False
            started = time.monotonic()
            code = await self._run_once(binary, local)
            if self._stopping.is_set():
                return
            if self._restart:  # stopped by _follow: start again at once with the new config
                self._restart = False
                continue
            failures = 0 if time.monotonic() - started >= STABLE_S else failures + 1
            delay = BACKOFF_S[min(max(failures - 1, 0), len(BACKOFF_S) - 1)]  # 1 s, then 2, 4, ... up to 30
            log.error("conntrack sync: conntrackd %s; restarting it in %g s (its log: %s)",
                      _describe(code), delay, self.spec.paths.log)
            if await self._sleep(delay):
                return

    async def _sleep(self, seconds: float) -> bool:
        """Wait; True if a stop came meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    def _prepare(self, local: IPv4Address) -> None:
        paths = self.spec.paths
        os.makedirs(paths.directory, mode=0o700, exist_ok=True)
        if os.path.dirname(paths.socket) != paths.directory:
            os.makedirs(os.path.dirname(paths.socket), mode=0o755, exist_ok=True)
        for pid in _leftover_pids(paths.config):
            log.warning("conntrack sync: stopping conntrackd %d left by an earlier run", pid)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for leftover in (paths.lock, paths.socket):  # ours alone: any left is from a conntrackd that died
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        tmp = f"{paths.config}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(render(self.spec, local))
        os.replace(tmp, paths.config)

    async def _run_once(self, binary: str, local: IPv4Address) -> int | None:
        try:
            self._prepare(local)
        except OSError as exc:
            log.error("conntrack sync: cannot write conntrackd's config in %s: %s", self.spec.paths.directory, exc)
            return None
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        try:
            proc = await asyncio.create_subprocess_exec(
                binary, "-C", self.spec.paths.config, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        except OSError as exc:
            log.error("conntrack sync: cannot start %s: %s", binary, exc)
            return None
        self.proc = proc
        log.info("conntrack sync: conntrackd %d started (FTFW over %s %s, %s)", proc.pid, self.spec.interface, local,
                 f"UDP to {self.spec.peer}" if self.spec.peer else f"multicast {self.spec.group} port {self.spec.port}")
        reader = asyncio.get_running_loop().create_task(self._relay(proc))
        waiter = asyncio.get_running_loop().create_task(proc.wait())
        stopper = asyncio.get_running_loop().create_task(self._stopping.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not waiter.done():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), STOP_WAIT_S)
            except asyncio.TimeoutError:
                log.warning("conntrack sync: conntrackd %d ignored SIGTERM for %g s; killing it", proc.pid, STOP_WAIT_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await waiter
            log.info("conntrack sync: conntrackd %d stopped", proc.pid)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(reader, 1.0)
        self.proc = None
        return proc.returncode

    async def _relay(self, proc: asyncio.subprocess.Process) -> None:
        """conntrackd's own words on stdout/stderr (start-up errors mostly), as our log lines."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = _LOG_PREFIX.sub("", raw.decode(errors="replace").strip())
            if line:
                worse = line.startswith(("[ERROR]", "[WARNING]", "[error]", "[warning]"))
                log.log(logging.WARNING if worse else logging.INFO, "conntrack sync: conntrackd %d: %s", proc.pid, line)


def _describe(code: int | None) -> str:
    if code is None:
        return "could not be started"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
