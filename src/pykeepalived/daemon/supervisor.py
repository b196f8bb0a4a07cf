"""The parent process: starts the VRRP and checker children and keeps them running.

Started without -P/-C, pykeepalived always runs this parent, with a child for
each subsystem the config needs. As in keepalived, each subsystem runs in a
process of its own so that a burst of health checks can never delay a VRRP
advert, and a crash of one leaves the other running. The parent forwards
SIGHUP/SIGUSR1/SIGUSR2/SIGRTMIN+2 to the children and stops both on
SIGTERM/SIGINT.

Each child is kept by a task of its own:
- it is started with `--parent-pid` (it dies with us: daemon/lifeline.py) and
  `--config-fd` (the configuration we read at start, never the file as it is
  now: host/recording.py);
- a child that dies is restarted at once, even one that ran only a moment: a
  VRRP child killed on the master must be back before the backup's master-down
  timer (3 x advert_int + skew) fires. Only a child that keeps dying quickly
  waits, 2 s and doubling up to a minute, so that a broken one does not spin;
- before each start, a live process holding the child's pid file is handed
  over if it is verifiably an orphaned child of ours (a daemon killed before
  children died with their parent): SIGTERM, a bounded wait, SIGKILL. A file
  naming a process that is not pykeepalived at all is stale (a recycled pid)
  and replaced, its process left alone. A pykeepalived holder that is not an
  orphan of ours, or a child that keeps refusing to start because its pid
  file is taken, stops the daemon with an error instead of a respawn loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config.model import KeepalivedConfig
from ..host.proc import argv_of, is_pykeepalived, is_running, is_zombie, parent_of
from .lifeline import FORWARDED_SIGNALS, forwarded_signals_held
from ..host.private_files import UnsafeFileError
from ..host.tuning import set_process_name
from .run import EXIT_ALREADY_RUNNING, DaemonOptions, begin, read_pid_file

log = logging.getLogger("pykeepalived")

STOP_TIMEOUT_S = 10.0
QUICK_DEATH_S = 60.0
RESPAWN_PAUSE_S = 2.0  # the first pause of a child that keeps dying quickly; doubled each time
MAX_RESPAWN_PAUSE_S = 60.0
HANDOVER_TIMEOUT_S = 10.0  # an orphan's clean stop (priority 0, VIPs removed) takes well under this
EXITING_WAIT_S = 5.0  # how long a pid-file holder with no command line may take to finish exiting
MAX_REFUSALS = 3  # "already running" exits in a row before giving up
FORWARDED = FORWARDED_SIGNALS


@dataclass
class Child:
    name: str
    argv: list[str]
    pid_file: str = ""
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    quick_deaths: int = 0  # in a row
    refusals: int = 0  # "already running" exits in a row


class SupervisorFailed(Exception):
    """A child cannot be kept running (its pid file is held by a stranger, or it keeps refusing)."""


def child_argv(base: Sequence[str], subsystem_flag: str, config_fd: int | None = None) -> list[str]:
    """The child's command line: ours, in the foreground, one subsystem, without the parent's pid file."""
    fd = ["--config-fd", str(config_fd)] if config_fd is not None and config_fd >= 0 else []
    return [sys.executable, "-m", "pykeepalived", *base, subsystem_flag, "--dont-fork", "--child", *fd]


def respawn_delay_s(quick_deaths: int) -> float:
    """How long to wait before restarting a child that died quickly `quick_deaths` times in a row.

    The first time at once (a crash or a kill, not a broken child); then 2 s, 4 s, ... up to a minute.
    """
    if quick_deaths <= 1:
        return 0.0
    return float(min(MAX_RESPAWN_PAUSE_S, RESPAWN_PAUSE_S * 2 ** (quick_deaths - 2)))


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "ended"
    if returncode < 0:
        try:
            return f"exited with status {returncode} (killed by {signal.Signals(-returncode).name})"
        except ValueError:
            return f"exited with status {returncode} (killed by signal {-returncode})"
    return f"exited with status {returncode}"


# ------------------------------------------------------------------ pid files and orphans
def pid_file_holder(path: str) -> int | None:
    """The live process named by a pid file (None: no file, no number, a link, or nobody alive)."""
    try:
        pid = read_pid_file(path)
    except UnsafeFileError:
        return None  # not a file of ours: the child replaces it
    if pid is None or pid <= 0 or pid == os.getpid():
        return None
    return pid if is_running(pid) else None


def is_our_orphan(pid: int, pid_file: str) -> bool:
    """`pid` is a pykeepalived child (`--child`) that writes `pid_file`, and no pykeepalived parent keeps it."""
    argv = argv_of(pid) or []
    if not is_pykeepalived(argv) or "--child" not in argv:
        return False
    if not any(a in ("-r", "--vrrp_pid", "-c", "--checkers_pid") and b == pid_file for a, b in zip(argv, argv[1:])):
        return False
    ppid = parent_of(pid)
    return ppid is not None and (ppid == os.getpid() or not is_pykeepalived(argv_of(ppid) or []))


async def _gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_zombie(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def hand_over(child: Child) -> None:
    """Make the child's pid file free: stop an orphan of ours holding it; SupervisorFailed for anyone else."""
    if not child.pid_file:
        return
    pid = pid_file_holder(child.pid_file)
    if pid is None:
        return
    argv = argv_of(pid) or []
    if not argv:
        # a process on its way out (its command line goes before its pid does), a zombie nobody reaps, or a
        # kernel thread: none is a pykeepalived process that could still write the file
        await _gone(pid, EXITING_WAIT_S)
        log.info("%s names pid %d, which has no command line (exiting, or not ours): a stale pid file; "
                 "replacing it", child.pid_file, pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(child.pid_file)
        return
    if not is_pykeepalived(argv):
        # a dead child's file and a recycled pid: the file is stale; the process is none of our business
        log.warning("%s names pid %d (%s), not a pykeepalived process: a stale pid file; replacing it",
                    child.pid_file, pid, " ".join(argv))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(child.pid_file)
        return
    if not is_our_orphan(pid, child.pid_file):
        raise SupervisorFailed(f"{child.pid_file} names pid {pid} ({' '.join(argv_of(pid) or []) or 'unknown'}), "
                               f"which is not an orphaned {child.name} child of ours; not starting another")
    log.warning("%s child process pid %d, left running by an earlier pykeepalived, holds %s; stopping it "
                "(SIGTERM) to take over", child.name, pid, child.pid_file)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if await _gone(pid, HANDOVER_TIMEOUT_S):
        log.info("%s child process pid %d stopped; taking over", child.name, pid)
        return
    log.error("%s child process pid %d ignored SIGTERM for %.0f s; killing it", child.name, pid, HANDOVER_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not await _gone(pid, 2.0):
        raise SupervisorFailed(f"{child.name} child process pid {pid} holding {child.pid_file} survives SIGKILL")


def _forget_pid_file(path: str, pid: int) -> None:
    """Remove a pid file that names `pid`, a child we have reaped."""
    if not path:
        return
    try:
        if read_pid_file(path) == pid:
            os.unlink(path)
    except (OSError, UnsafeFileError):
        pass


# ------------------------------------------------------------------ children
async def _spawn(child: Child, config_fd: int | None) -> None:
    argv = [*child.argv, "--parent-pid", str(os.getpid())]  # it dies with us: daemon/lifeline.py
    pass_fds = (config_fd,) if config_fd is not None and config_fd >= 0 else ()
    with forwarded_signals_held():  # the child takes them once its handlers are in place
        child.proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, pass_fds=pass_fds)
    child.started_at = time.monotonic()
    log.info("Starting %s child process, pid=%d", child.name, child.proc.pid)


def _signal(child: Child, sig: int) -> None:
    """Signal a child still ours (not yet reaped: its pid cannot have been reused).

    os.kill, not Process.send_signal: subprocess's send_signal first polls
    (waitpid) the child, and a child that has just died is then reaped there,
    behind asyncio's watcher, which reports it as exit status 255 instead of
    the signal that killed it (seen when forwarded DATA signals hail in).
    """
    if child.proc is not None and child.proc.returncode is None:
        try:
            os.kill(child.proc.pid, sig)
        except ProcessLookupError:
            pass


def _forward(children: list[Child], sig: int) -> None:
    for child in children:
        _signal(child, sig)


async def _wait_or_stop(aw: asyncio.Future[int], stop: asyncio.Event) -> bool:
    """Wait for `aw` or for the stop; True if `aw` finished."""
    stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    waits: list[asyncio.Future[Any]] = [aw, stopper]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    return aw.done()


async def keep_running(child: Child, stop: asyncio.Event, config_fd: int | None,
                       fail: Callable[[str], None], respawn: bool = True) -> None:
    """Start the child and restart it whenever it dies, until `stop` is set (or `fail` is called).

    Without `respawn` (keepalived's -R) a child that dies stops the daemon.
    """
    while not stop.is_set():
        try:
            await hand_over(child)
        except SupervisorFailed as exc:
            fail(str(exc))
            return
        if stop.is_set():
            return
        await _spawn(child, config_fd)
        assert child.proc is not None
        waiter = asyncio.ensure_future(child.proc.wait())
        if not await _wait_or_stop(waiter, stop):
            waiter.cancel()
            return
        code = child.proc.returncode
        _forget_pid_file(child.pid_file, child.proc.pid)  # it is reaped: its pid may be anyone's from now on
        ran_s = time.monotonic() - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if ran_s < QUICK_DEATH_S else 0
        child.refusals = child.refusals + 1 if code == EXIT_ALREADY_RUNNING else 0
        what = f"{child.name} child process (pid {child.proc.pid}) {describe_exit(code)} after {ran_s:.1f} s"
        if not respawn:
            fail(f"{what}; not restarting it (-R, --dont-respawn)")
            return
        if child.refusals >= MAX_REFUSALS:
            fail(f"{what}: it could not take its pid file ({child.refusals} times in a row, see its log line); "
                 "giving up")
            return
        delay = respawn_delay_s(child.quick_deaths)
        if delay <= 0:
            log.error("%s; restarting it now", what)
            continue
        log.error("%s, the %d%s quick exit in a row; restarting it in %.0f s", what, child.quick_deaths,
                  _ordinal(child.quick_deaths), delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


async def supervise(children: list[Child], config_fd: int | None = None, respawn: bool = True) -> bool:
    """Keep the children running until SIGTERM/SIGINT; False if one could not be kept (the daemon then stops)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    failures: list[str] = []

    def fail(why: str) -> None:
        log.error("%s; stopping pykeepalived", why)
        failures.append(why)
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    for sig in FORWARDED:
        loop.add_signal_handler(sig, _forward, children, sig)
    async def keep(child: Child) -> None:
        try:
            await keep_running(child, stop, config_fd, fail, respawn)
        except OSError as exc:  # cannot fork or exec: nothing a retry loop would mend
            fail(f"cannot start the {child.name} child process: {exc}")

    keepers = [loop.create_task(keep(child)) for child in children]
    try:
        await stop.wait()
    finally:
        for task in keepers:
            task.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        for child in children:
            _signal(child, signal.SIGTERM)
        for child in children:
            if child.proc is None:
                continue
            try:
                await asyncio.wait_for(child.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("%s child process did not stop; killing it", child.name)
                _signal(child, signal.SIGKILL)
                await child.proc.wait()
    return not failures


def run_supervisor(base_argv: Sequence[str], opts: DaemonOptions, vrrp: bool, check: bool,
                   config_fd: int | None = None, process_name: str | None = None,
                   config: KeepalivedConfig | None = None, bfd: bool = False) -> int:
    """Run as keepalived's parent: returns when both children have stopped after SIGTERM/SIGINT (or a failure).

    With `config`, its startup_script runs before the children start and its
    shutdown_script after they stopped (daemon/start_stop.py).
    """
    pids = begin(opts, "Keepalived", "pykeepalived", opts.pid_file, config=config)
    if pids is None:
        return 1
    if process_name:  # global_defs process_name (host/tuning.py)
        set_process_name(process_name)
    children = []
    if bfd:  # keepalived's bfd child: the sessions VRRP's track_bfd and BFD_CHECK follow (daemon/run_bfd.py)
        children.append(Child("BFD", child_argv(base_argv, "--bfd-child", config_fd)))
    if vrrp:
        children.append(Child("VRRP", child_argv(base_argv, "--vrrp", config_fd), opts.vrrp_pid_file))
    if check:
        children.append(Child("Healthcheck", child_argv(base_argv, "--check", config_fd), opts.checkers_pid_file))
    try:
        ok = asyncio.run(supervise(children, config_fd, opts.respawn))
    finally:
        pids.remove()
        if config is not None:
            from .start_stop import run_start_stop_script

            run_start_stop_script(config, "shutdown")
    log.info("Stopped pykeepalived")
    return 0 if ok else 1
