"""FRR's bgpd as the checker's child, and the one vty connection that tells it what to announce.

bgpd runs as `bgpd -Z -p 0`: no zebra (it never touches the kernel's
routes), no listening socket (the upstream listens; a system FRR on port 179
is left alone), its files in a directory of ours. It must not outlive us: a
bgpd left running would reconnect and announce VIPs that nothing checks any
more (measured: the path came back 3.1 s after its manager was killed), so it
gets SIGKILL when the checker dies (PR_SET_PDEATHSIG through util-linux's
`setpriv --pdeathsig`, kept across exec as long as bgpd changes no
credentials: it runs as root with group frrvty, measured) and a stale one
named by our pid file is killed at start.

If bgpd dies, it is started again with backoff; a fresh bgpd announces
nothing until we tell it, so the announcements are replayed from `target`
once its vty socket answers. Commands go over one persistent connection
(vty.py): a withdrawal costs well under a millisecond here, plus the
upstream's own update.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..config.model import BgpSpeaker
from ..errors import PyKeepalivedError
from .announce import prefix_of, transition
from .frr_conf import render_bgpd_conf
from .vty import VtyReply, VtyReplyReader, announcement_commands, encode_command, session_commands

log = logging.getLogger("pykeepalived.bgp")

VTY_GROUP = "frrvty"  # FRR refuses to start with a vty group its user is not in; root is in every group
START_TIMEOUT_S = 10.0  # bgpd's vty socket appears within ~50 ms here
COMMAND_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 3.0
STALE_WAIT_S = 1.0  # how long a stale bgpd may take to go
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
FRR_CRASH_DIR = Path("/var/tmp/frr")  # FRR keeps <daemon>.<pid>/ there unless it exits cleanly


class BgpSpeakerError(PyKeepalivedError):
    """bgpd cannot be run or does not take a command; the message says which and why."""


class BgpSpeakerService:
    """One bgpd, its vty connection, and the set of prefixes it should announce."""

    def __init__(self, settings: BgpSpeaker, run_dir: str | None = None, *, name: str = "pykeepalived") -> None:
        self.settings = settings
        self.name = name
        self._own_dir = run_dir is None
        if run_dir is None:
            import tempfile  # here, as shutil (_rmtree): it imports shutil, and with it bz2's and lzma's libraries

            run_dir = tempfile.mkdtemp(prefix="pykeepalived-bgp-")
        self.run_dir = Path(run_dir)
        self.target: frozenset[str] = frozenset()  # what should be announced now
        self.live: frozenset[str] = frozenset()  # what the running bgpd has been told
        self.error: str | None = None  # why it does not announce (None: it does what target says)
        self.restarts = 0
        self.changes = 0  # announcements and withdrawals sent
        self.changed_at: float | None = None  # wall clock of the last one
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies = VtyReplyReader()
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Write the config and run bgpd; announcements follow `set_target` once it answers."""
        try:
            grp.getgrnam(VTY_GROUP)
        except KeyError:
            raise BgpSpeakerError(f"pykeepalived_bgp: group {VTY_GROUP} does not exist: is FRR installed?") from None
        if not os.access(self.settings.bgpd_path, os.X_OK):
            raise BgpSpeakerError(f"pykeepalived_bgp: {self.settings.bgpd_path} is not an executable bgpd "
                                  "(FRR's bgpd; set bgpd_path)")
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)  # bgpd.conf may hold a TCP MD5 password
        self._kill_stale()
        (self.run_dir / "bgpd.conf").write_text(render_bgpd_conf(self.settings, self.name))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Withdraw everything, then end bgpd (its NOTIFICATION tells the upstream at once)."""
        self._stopping = True
        self.target = frozenset()
        with contextlib.suppress(BgpSpeakerError, OSError, TimeoutError):
            await asyncio.wait_for(self._sync(), COMMAND_TIMEOUT_S)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._end_bgpd()
        if self._own_dir:
            _rmtree(self.run_dir, ignore_errors=True)

    async def set_target(self, target: frozenset[str], wait_s: float = COMMAND_TIMEOUT_S) -> None:
        """Announce exactly `target` from now on; returns once bgpd has it (or after wait_s: it goes on trying)."""
        if target == self.target and target == self.live:
            return
        self.target = target
        if self._writer is None:
            return  # not connected: the run loop replays target when it is
        try:
            await asyncio.wait_for(self._sync(), wait_s)
        except (BgpSpeakerError, OSError, TimeoutError) as exc:
            self.error = f"bgpd did not take the change: {exc}"
            log.warning("pykeepalived_bgp: %s; restarting bgpd", self.error)
            self._kick.set()

    def status(self) -> dict[str, Any]:
        return {"pid": self._proc.pid if self._proc is not None and self._proc.returncode is None else None,
                "configured": [prefix_of(a) for a in self.settings.announce],
                "announced": sorted(self.live), "wanted": sorted(self.target), "error": self.error,
                "restarts": self.restarts, "changes": self.changes, "changed_at": self.changed_at,
                "run_dir": str(self.run_dir)}

    # ------------------------------------------------------------------ the run loop
    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._spawn()
                await self._connect()
                self.error = None
                failures = 0
                await self._sync()
                await self._watch()
            except (BgpSpeakerError, OSError, TimeoutError) as exc:
                self.error = str(exc)
                log.error("pykeepalived_bgp: %s", exc)
            if self._stopping:
                return
            await self._end_bgpd()
            self.restarts += 1
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
            failures += 1
            log.warning("pykeepalived_bgp: starting bgpd again in %.0f s", delay)
            await asyncio.sleep(delay)

    async def _spawn(self) -> None:
        d = self.run_dir
        # setpriv (util-linux) asks for SIGKILL when we die, then execs bgpd: no Python runs between fork and exec
        argv = ["setpriv", "--pdeathsig", "KILL", "--",
                self.settings.bgpd_path, "-Z", "-p", "0", "-u", "root", "-g", VTY_GROUP, "-f", str(d / "bgpd.conf"),
                "-i", str(d / "bgpd.pid"), "-z", str(d / "zserv.api"), "--vty_socket", str(d), "-P", "0",
                "--log", f"file:{d / 'bgpd.log'}"]
        with contextlib.suppress(FileNotFoundError):
            (d / "bgpd.vty").unlink()
        with open(d / "bgpd.err", "wb") as err:  # what bgpd says before its log is open (a refused option)
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
                start_new_session=True)
        self.live = frozenset()  # a fresh bgpd announces nothing
        log.info("pykeepalived_bgp: bgpd started (pid %d, AS %s, %d neighbor(s))", self._proc.pid,
                 self.settings.local_as, len(self.settings.neighbors))

    async def _connect(self) -> None:
        assert self._proc is not None
        path = self.run_dir / "bgpd.vty"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not path.exists():
            if self._proc.returncode is not None or time.monotonic() > deadline:
                raise BgpSpeakerError(f"bgpd did not start: {await self._why_dead()}")
            await asyncio.sleep(0.02)
        self._reader, self._writer = await asyncio.open_unix_connection(str(path))
        self._replies = VtyReplyReader()
        for line in session_commands(self.settings.local_as or 0):
            await self._command(line)

    async def _watch(self) -> None:
        """Until bgpd ends or a failed command asks for a restart."""
        assert self._proc is not None
        ended = asyncio.ensure_future(self._proc.wait())
        kicked = asyncio.ensure_future(self._kick.wait())
        try:
            await asyncio.wait({ended, kicked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            kicked.cancel()
        self._kick.clear()
        if self._proc.returncode is not None and not self._stopping:
            raise BgpSpeakerError(f"bgpd ended: {await self._why_dead()}")

    async def _sync(self) -> None:
        """Send what differs between live and target, withdrawals first."""
        async with self._lock:
            if self._writer is None:
                return
            change = transition(self.live, self.target)
            if change.withdraw:
                for line in announcement_commands(list(change.withdraw), add=False):
                    await self._command(line)
                self.live = self.live - set(change.withdraw)
                log.info("pykeepalived_bgp: withdrew %s", " ".join(change.withdraw))
            if change.announce:
                for line in announcement_commands(list(change.announce), add=True):
                    await self._command(line)
                self.live = self.live | set(change.announce)
                log.info("pykeepalived_bgp: announced %s", " ".join(change.announce))
            if change.withdraw or change.announce:
                self.changes += len(change.withdraw) + len(change.announce)
                self.changed_at = time.time()

    async def _command(self, line: str) -> VtyReply:
        if self._writer is None or self._reader is None:
            raise BgpSpeakerError("not connected to bgpd")
        self._writer.write(encode_command(line))
        await self._writer.drain()
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while True:
            data = await asyncio.wait_for(self._reader.read(65536), max(0.01, deadline - time.monotonic()))
            if not data:
                raise BgpSpeakerError(f"bgpd closed its vty socket (at '{line}')")
            replies = self._replies.feed(data)
            if replies:
                reply = replies[-1]
                if not reply.ok:
                    raise BgpSpeakerError(f"bgpd refused '{line}': {reply.describe()}")
                return reply

    async def _end_bgpd(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
        self.live = frozenset()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.terminate()  # SIGTERM: bgpd sends a Cease NOTIFICATION; the upstream drops our paths at once
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        _rmtree(FRR_CRASH_DIR / f"bgpd.{proc.pid}", ignore_errors=True)

    async def _why_dead(self) -> str:
        proc = self._proc
        if proc is None:
            return "not running"
        if proc.returncode is None:
            return f"its vty socket did not appear within {START_TIMEOUT_S:.0f} s"
        text = _tail(self.run_dir / "bgpd.err") or _tail(self.run_dir / "bgpd.log")
        return f"exit status {proc.returncode}" + (f": {text}" if text else "")

    def _kill_stale(self) -> None:
        """A bgpd of an earlier run of ours (named by our pid file, running from our directory) is killed.

        One that died with its checker (SIGKILL) may still be on its way
        out; once it is gone, FRR's crash directory for it is removed. A pid
        now used by another program is left alone.
        """
        try:
            pid = int((self.run_dir / "bgpd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        ours = str(self.run_dir / "bgpd.conf").encode()
        deadline = time.monotonic() + STALE_WAIT_S
        while True:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, IndexError):
                break  # gone
            except OSError:
                return
            if state in ("Z", "X"):
                break  # dead, not reaped yet (its parent was the checker: init reaps it when it gets to it)
            if cmdline and ours not in cmdline.split(b"\0"):
                return  # someone else's process now
            if cmdline and ours in cmdline.split(b"\0"):
                log.warning("pykeepalived_bgp: killing bgpd %d left by an earlier run", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)  # at start, before the checker's loop has anything else to do
        _rmtree(FRR_CRASH_DIR / f"bgpd.{pid}", ignore_errors=True)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " / ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _rmtree(path: Path | str, ignore_errors: bool = False) -> None:
    """shutil.rmtree, imported when needed: at module level it mapped bz2's and lzma's libraries into every
    checker, BGP or not (host/tuning.py's _libc)."""
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)
