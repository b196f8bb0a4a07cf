"""The parent process: starts the VRRP and checker children and keeps them running.

Started without -P/-C, pykeepalived always runs this parent, with a child for
each subsystem the config needs. As in keepalived, each subsystem runs in a
process of its own so that a burst of health checks can never delay a VRRP
advert, and a crash of one leaves the other running. The parent forwards
SIGUSR1/SIGUSR2/SIGRTMIN+2 to the children and stops them on SIGTERM/SIGINT:
on a VRRP master with a checker, VRRP first and the checker (which removes
the LVS rules) once the VIPs are handed over (daemon/handover.py), so that
the old master forwards whatever reaches it until the new master's GARPs land.

SIGHUP reloads (Supervisor.reload_once): the parent reads and checks -f
itself (daemon/reload_parent.py); a config with errors, or with a change
that needs a restart (daemon/reload_plan.py), is refused with each reason in
the log and nothing else happens. Otherwise the new snapshot memfd replaces
the old one at the same fd number (the children read it through
/proc/<parent>/fd/N), SIGHUP goes to each child, children the config no
longer needs are stopped and new ones started, and each child's "reloaded"
report is collected (daemon/reload_reports.py). The outcome goes to the log,
to a file beside the pid file (daemon/reload_result.py) for `pykeepalived
reload`, and to systemd (RELOADING=1 ... READY=1; daemon/sd_notify.py). If
no child took the new snapshot, the old one is put back, so that a respawn
runs what the others run. A SIGHUP during a reload runs one more after it.

systemd: READY=1 once every VRRP and checker child has reported ready,
STOPPING=1 on stop, STATUS= a one-line summary, and, with WatchdogSec=,
WATCHDOG=1 every half interval only while each child's "alive" reports
(every second) keep coming: a stopped or wedged child lets systemd restart
the unit.

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
from dataclasses import dataclass, field
from typing import Any

from ..api.settings import ApiSettings
from ..config.model import KeepalivedConfig
from ..errors import PyKeepalivedError
from ..host.proc import argv_of, is_pykeepalived, is_running, is_zombie, parent_of
from ..host.recording import read_snapshot_fd_bytes, snapshot_memfd
from .child_report import ALIVE_INTERVAL_S
from .command_channel import ChildCommandSender, CommandChannel, close_quietly
from .command_channel import attach as attach_commands
from .config_source import snapshot_digest
from . import handover
from .lifeline import FORWARDED_SIGNALS, forwarded_signals_held
from ..host.private_files import UnsafeFileError
from ..host.tuning import set_process_name
from . import reload_schedule
from .reload_parent import NewConfig, read_new_config
from .reload_plan import refused_changes, restart_needed, wanted_children
from .reload_reports import ChildReports
from .reload_result import ReloadResult, remove_result, result_path, write_result
from .run import EXIT_ALREADY_RUNNING, DaemonOptions, begin, read_pid_file
from .sd_notify import Notifier
from .paths import state_path
from .state_feed import ParentState
from .snmp_start import start_snmp
from ..state.commands import CommandSender
from ..state.store import StateStore

log = logging.getLogger("pykeepalived")

STOP_TIMEOUT_S = 10.0
QUICK_DEATH_S = 60.0
RESPAWN_PAUSE_S = 2.0  # the first pause of a child that keeps dying quickly; doubled each time
MAX_RESPAWN_PAUSE_S = 60.0
HANDOVER_TIMEOUT_S = 10.0  # an orphan's clean stop (priority 0, VIPs removed) takes well under this
EXITING_WAIT_S = 5.0  # how long a pid-file holder with no command line may take to finish exiting
MAX_REFUSALS = 3  # "already running" exits in a row before giving up
RELOAD_REPORT_TIMEOUT_S = 60.0  # how long a reload waits for each child's "reloaded" report
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
    reports: ChildReports | None = None  # its report pipe (VRRP and checker; the BFD child reports nothing)
    commands: CommandChannel | None = None  # its runtime API socket (daemon/command_channel.py)
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set to stop keeping it (daemon stop, or retired)


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
    fds = [config_fd] if config_fd is not None and config_fd >= 0 else []
    report_w = -1
    if child.reports is not None:  # a fresh pipe each life: EOF tells the reader this life is over
        report_w = child.reports.new_life()
        argv += ["--report-fd", str(report_w)]
        fds.append(report_w)
    command_fd = attach_commands(child.commands, argv, fds)  # the runtime API's socket (daemon/command_channel.py)
    try:
        with forwarded_signals_held():  # the child takes them once its handlers are in place
            child.proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                              pass_fds=tuple(fds))
    finally:
        if report_w >= 0:
            os.close(report_w)
        close_quietly(command_fd)
    child.started_at = time.monotonic()
    log.info("Starting %s child process, pid=%d", child.name, child.proc.pid)


def _signal(child: Child, sig: int) -> None:
    """Signal a child still ours (not yet reaped: its pid cannot have been reused).

    os.kill, not Process.send_signal: subprocess's send_signal first polls
    (waitpid) the child, and a child that has just died is then reaped there,
    behind asyncio's watcher, which reports it as exit status 255 instead of
    the signal that killed it (seen when forwarded DATA signals hail in).
    """
    if _running(child):
        assert child.proc is not None
        try:
            os.kill(child.proc.pid, sig)
        except ProcessLookupError:
            pass


def _running(child: Child) -> bool:
    return child.proc is not None and child.proc.returncode is None


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
                       fail: Callable[[str], None], respawn: bool = True,
                       state: ParentState | None = None) -> None:
    """Start the child and restart it whenever it dies, until `stop` is set (or `fail` is called).

    Without `respawn` (keepalived's -R) a child that dies stops the daemon.
    A respawned child gets the same --config-fd number: after a reload it
    holds the new snapshot, so the child runs the configuration in force.
    `state` hears each start and death (daemon/state_feed.py).
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
        if state is not None:
            state.child_started(child.name, child.proc.pid)
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
        if state is not None:
            state.child_ended(child.name, describe_exit(code))
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


async def _stop_child(child: Child, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM (a clean stop: priority 0, VIPs and services removed), SIGKILL after `timeout_s`."""
    _signal(child, signal.SIGTERM)
    if child.proc is None:
        return
    try:
        await asyncio.wait_for(child.proc.wait(), timeout_s)
    except TimeoutError:
        log.error("%s child process did not stop; killing it", child.name)
        _signal(child, signal.SIGKILL)
        await child.proc.wait()


# ------------------------------------------------------------------ the parent
@dataclass
class ParentSetup:
    """What the parent needs beyond its children to reload and to speak to systemd (run_supervisor fills it)."""

    config: KeepalivedConfig
    config_file: str
    config_id: str | None
    pid_file: str
    make_child: Callable[[str], Child]  # a child by name (VRRP, Healthcheck, BFD), for a reload that adds one
    follow_config: bool = True  # the config decides which children run (no --all): a reload may add or remove one
    bfd_allowed: bool = True  # not -B
    namespace_flag: str | None = None  # -s: wins over net_namespace, so a reload may not change it


class Supervisor:
    """Keeps the children running, reloads on SIGHUP, tells systemd; `run()` until SIGTERM/SIGINT or a failure.

    Without a `setup` (older callers, tests) SIGHUP is only forwarded.
    """

    def __init__(self, children: list[Child], config_fd: int | None = None, respawn: bool = True,
                 setup: ParentSetup | None = None, notifier: Notifier | None = None,
                 api: ApiSettings | None = None, snmp: tuple[bool, str | None] = (False, None)) -> None:
        self.children = children  # mutated in place: the signal handlers hold this list
        self.config_fd = config_fd
        self.respawn = respawn
        self.setup = setup
        self.notifier = notifier if notifier is not None else Notifier({}, 0)
        self.stop = asyncio.Event()
        self.failures: list[str] = []
        self.keepers: dict[str, asyncio.Task[None]] = {}
        self.ready_sent = False
        self.generation = 0
        self.digest = self._running_digest()
        self.last_reload: ReloadResult | None = None
        self.result_file = result_path(setup.pid_file) if setup is not None else None
        self._reload: asyncio.Task[None] | None = None
        self._reload_pending = False
        self._late: set[str] = set()  # children whose silence withholds the watchdog (logged once)
        self._tasks: list[asyncio.Task[None]] = []
        self._offered = ""  # this reload's new snapshot, once swapped in
        self._child_digests: dict[str, str] = {}
        self.store = StateStore()  # the state model (state/store.py; docs/state.md)
        self.state = ParentState(  # its "daemon" part, the children's parts, the state file (daemon/state_feed.py)
            self.store, config_file=setup.config_file if setup is not None else None, config_digest=self.digest,
            router_id=setup.config.global_defs.router_id if setup is not None else None, api=_api_part(api),
            state_file=state_path(setup.pid_file) if setup is not None else None)
        self.commands: CommandSender | None = None  # the runtime API's way to the children, when built
        self.api_settings = api  # the HTTP API's (api/settings.py); None or no address: off
        self.snmp_flags = snmp  # -x, -A: the AgentX subagent (daemon/snmp_start.py)
        self.release_dataplane = True  # not -I: the checker removes the LVS rules on stop (daemon/handover.py)

    # ---------------------------------------------------------------- life cycle
    def fail(self, why: str) -> None:
        log.error("%s; stopping pykeepalived", why)
        self.failures.append(why)
        self.request_stop()

    def request_stop(self) -> None:
        self.stop.set()
        for child in self.children:
            child.stop.set()

    def _start_keeper(self, child: Child) -> None:
        if child.reports is not None:
            child.reports.on_state = lambda report: self.state.on_state(child.name, report)

        async def keep() -> None:
            try:
                await keep_running(child, child.stop, self.config_fd, self.fail, self.respawn, self.state)
            except OSError as exc:  # cannot fork or exec: nothing a retry loop would mend
                self.fail(f"cannot start the {child.name} child process: {exc}")

        self.keepers[child.name] = asyncio.get_running_loop().create_task(keep())

    async def run(self) -> bool:
        """Until SIGTERM/SIGINT; False if a child could not be kept (the daemon then stops)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        for sig in FORWARDED:
            if sig == signal.SIGHUP and self.setup is not None and self.config_fd is not None and self.config_fd >= 0:
                loop.add_signal_handler(sig, self.request_reload)
            else:
                loop.add_signal_handler(sig, _forward, self.children, sig)
        for sig in _take_early_signals():  # what came while we started: acted on now, not fatal
            if sig == signal.SIGHUP and self.setup is not None:
                self.request_reload()
        self.state.start()
        api = await self._start_api()
        snmp = await start_snmp(self.store, lambda: self.setup.config if self.setup is not None else None,
                                *self.snmp_flags)
        if snmp is not None:
            self.state.snmp_started(snmp.settings.socket, snmp.settings.traps)
        for child in self.children:
            self._start_keeper(child)
        self._tasks.append(loop.create_task(self._announce_ready()))
        if self.notifier.watchdog_s:
            self._tasks.append(loop.create_task(self._watchdog(self.notifier.watchdog_s)))
        if self.setup is not None and self.config_fd is not None and self.config_fd >= 0:
            setup = self.setup  # reload_time_file: timed reloads, from the configuration in force
            self._tasks.append(loop.create_task(reload_schedule.watch(lambda: setup.config.global_defs,
                                                                      self.request_reload)))
        try:
            await self.stop.wait()
        finally:
            self.notifier.stopping("stopping")
            for task in [*self._tasks, *([self._reload] if self._reload is not None else [])]:
                task.cancel()
            keepers = list(self.keepers.values())
            for task in keepers:
                task.cancel()
            await asyncio.gather(*keepers, *self._tasks, return_exceptions=True)
            await self._stop_children()
            if self.result_file:
                remove_result(self.result_file, os.getpid())
            self.state.stopped()
            if api is not None:
                await api.stop()
            if snmp is not None:
                await snmp.stop()
            self.notifier.close()
        return not self.failures

    async def _stop_children(self) -> None:
        """SIGTERM every child, SIGKILL what is left STOP_TIMEOUT_S later; VRRP alone first when the checker's
        rules must outlive its hand-over of the VIPs (daemon/handover.py)."""
        deadline = time.monotonic() + STOP_TIMEOUT_S
        await self._hand_over_first()
        for child in self.children:
            _signal(child, signal.SIGTERM)
        for child in self.children:
            await _stop_child(child, max(0.0, deadline - time.monotonic()))
            if child.reports is not None:
                child.reports.close()

    async def _hand_over_first(self) -> None:
        """Stop the VRRP child and wait (bounded) for its exit and the new master's GARPs, checker still running."""
        by_name = {c.name: c for c in self.children}
        vrrp, checker = by_name.get("VRRP"), by_name.get("Healthcheck")
        if vrrp is None or checker is None or vrrp.proc is None or not handover.wants_handover(
                vrrp_running=_running(vrrp), checker_running=_running(checker),
                release_dataplane=self.release_dataplane, vrrp_part=self.store.part("vrrp"),
                virtual_servers=self.setup is None or bool(self.setup.config.virtual_servers)):
            return
        advert_ints = [i.advert_int_s for i in self.setup.config.vrrp_instances.values()] if self.setup else []
        wait_s = handover.handover_wait_s(advert_ints, STOP_TIMEOUT_S)
        log.info("Stopping the VRRP child process first; the checker keeps the LVS rules until the VIPs are "
                 "handed over (at most %.1f s)", wait_s)
        began = time.monotonic()
        _signal(vrrp, signal.SIGTERM)
        if not await handover.wait_exit(vrrp.proc.wait(), wait_s):
            log.warning("VRRP child process still stopping after %.1f s; stopping the checker now", wait_s)
            return
        log.info("VRRP child process stopped after %.2f s; the checker removes the LVS rules %.1f s later, once "
                 "the new master's gratuitous ARPs have landed", time.monotonic() - began, handover.HANDOVER_GRACE_S)
        await asyncio.sleep(handover.HANDOVER_GRACE_S)

    async def _start_api(self) -> Any:
        """The HTTP API (api/server.py), imported only when asked for: aiohttp is not needed otherwise."""
        if self.api_settings is None or not self.api_settings.enabled:
            return None
        from ..api.server import ApiServer

        try:
            api = ApiServer(self.store, self.api_settings, self.commands)
            await api.start()
        except (OSError, PyKeepalivedError) as exc:
            self.fail(f"cannot serve the API: {exc}")
            return None
        return api

    # ---------------------------------------------------------------- systemd
    def _reporting(self) -> list[Child]:
        return [c for c in self.children if c.reports is not None]

    def status_line(self) -> str:
        names = {"VRRP": "VRRP", "Healthcheck": "checker", "BFD": "BFD"}
        running = " and ".join(names.get(c.name, c.name) for c in self.children) or "nothing"
        text = f"{running} running"
        if (last := self.last_reload) is not None:
            when = time.strftime("%H:%M:%S", time.localtime(last.finished))
            text += f"; last reload {'ok' if last.ok else 'FAILED'} at {when}"
            if not last.ok and last.problems:
                text += f": {last.problems[0]}"
        return text

    async def _announce_ready(self) -> None:
        """READY=1 once every VRRP and checker child has said it serves (VRRP up, the first table in place)."""
        while not all(c.reports is not None and c.reports.ever_ready for c in self._reporting()):
            await asyncio.sleep(0.1)
        self.ready_sent = True
        log.info("pykeepalived ready (%s)", ", ".join(c.name for c in self.children))
        self.notifier.ready(self.status_line())

    def late_children(self) -> list[str]:
        """The running children whose last report is too old (a stopped or wedged event loop)."""
        assert self.notifier.watchdog_s is not None
        stale_s = max(3 * ALIVE_INTERVAL_S, self.notifier.watchdog_s / 2)
        now = time.monotonic()
        return [c.name for c in self._reporting()
                if _running(c) and c.reports is not None and now - c.reports.last_alive > stale_s]

    async def _watchdog(self, interval_s: float) -> None:
        """WATCHDOG=1 every half interval, only while each child's loop turns: a hung child gets the unit restarted."""
        while True:
            late = self.late_children()
            for name in set(late) - self._late:
                log.error("%s child process has not reported for a while; withholding the systemd watchdog "
                          "keepalive (systemd restarts pykeepalived if it stays silent)", name)
            self._late = set(late)
            if not late:
                self.notifier.watchdog()
            await asyncio.sleep(interval_s / 2)

    # ---------------------------------------------------------------- reload
    def request_reload(self) -> None:
        """SIGHUP: one reload at a time; a HUP during one runs one more after it (the file may have changed again)."""
        if self._reload is not None and not self._reload.done():
            self._reload_pending = True
            log.info("Reload requested while one runs; another follows it")
            return
        self._reload = asyncio.get_running_loop().create_task(self._reload_until_settled())

    async def _reload_until_settled(self) -> None:
        while True:
            self._reload_pending = False
            try:
                await self.reload_once()
            except Exception:  # a bug must not kill the parent: the children run on
                log.exception("reload failed unexpectedly; the running configuration is kept")
            if not self._reload_pending or self.stop.is_set():
                return

    async def reload_once(self) -> ReloadResult:
        assert self.setup is not None and self.config_fd is not None
        setup = self.setup
        self.generation += 1
        started = time.time()
        began = time.monotonic()
        if self.ready_sent:
            self.notifier.reloading(f"reloading the configuration (reload {self.generation})")
        log.info("Reloading ...")
        problems: list[str] = []
        warnings: list[str] = []
        outcome: dict[str, str] = {}
        self._offered, self._child_digests = "", {}
        try:
            new = await asyncio.to_thread(read_new_config, setup.config_file, setup.config_id,
                                          setup.config.global_defs, setup.pid_file)
        except (OSError, PyKeepalivedError) as exc:
            problems = [f"{setup.config_file}: cannot read the configuration: {exc}"]
            log.error("Reload refused: %s; keeping the running configuration", problems[0])
        else:
            if new.errors:
                log.error("Reload refused: %s has %d configuration error(s); keeping the running configuration",
                          setup.config_file, len(new.errors))
                for line in new.errors:
                    log.error("%s", line)
                problems = new.errors
            elif refused := refused_changes(setup.config.global_defs, new.result.config.global_defs,
                                            setup.namespace_flag):
                log.error("Reload refused; keeping the running configuration")
                for line in refused:
                    log.error("%s", line)
                problems = refused
            else:
                problems, warnings, outcome = await self._apply(new)
        result = ReloadResult(generation=self.generation, pid=os.getpid(), started=started, finished=time.time(),
                              ok=not problems, digest=self.digest, problems=problems, warnings=warnings,
                              children=outcome, offered=self._offered, child_digests=dict(self._child_digests))
        self.last_reload = result
        self.state.reloaded(result, self.digest)
        log.info("Reload %d %s in %.0f ms", self.generation, "finished" if result.ok else "FAILED",
                 (time.monotonic() - began) * 1000)
        if self.result_file:
            try:
                write_result(self.result_file, result)
            except UnsafeFileError as exc:
                log.error("cannot write the reload result: %s", exc)
        if self.ready_sent:
            self.notifier.ready(self.status_line())
        else:
            self.notifier.status(self.status_line())
        return result

    async def _apply(self, new: NewConfig) -> tuple[list[str], list[str], dict[str, str]]:
        """Swap the snapshot, signal, start/stop children, collect the reports: (problems, warnings, outcome)."""
        assert self.setup is not None and self.config_fd is not None
        setup = self.setup
        new_config = new.result.config
        warnings = restart_needed(setup.config.global_defs, new_config.global_defs)
        for line in warnings:
            log.warning("%s", line)
        digest = self._offered = snapshot_digest(new.snapshot.encode())
        saved = os.dup(self.config_fd)  # the old snapshot, put back if no child takes the new one
        try:
            fresh = snapshot_memfd(new.snapshot)
            os.dup2(fresh, self.config_fd, inheritable=False)  # the number the children read: /proc/<us>/fd/N
            os.close(fresh)
            problems, outcome, taken = await self._reload_children(new_config, digest)
            # the parent's own part (reload keywords, shutdown_script, its name) follows a config it accepted,
            # as keepalived's parent does whatever its children make of it
            if (name := new_config.global_defs.process_name) and name != setup.config.global_defs.process_name:
                set_process_name(name)  # keepalived renames its parent on a reload too
            setup.config = new_config
            if taken:
                self.digest = digest
            else:
                os.dup2(saved, self.config_fd, inheritable=False)
                log.error("No child took the new configuration: a respawned child runs the old one too")
        finally:
            os.close(saved)
        return problems, warnings, outcome

    async def _reload_children(self, new_config: KeepalivedConfig,
                               digest: str) -> tuple[list[str], dict[str, str], bool]:
        """(problems, each child's outcome, whether any child now runs the new snapshot)."""
        assert self.setup is not None
        setup = self.setup
        current = {c.name for c in self.children}
        wanted = wanted_children(new_config, setup.bfd_allowed) if setup.follow_config else current
        outcome: dict[str, str] = {}
        problems: list[str] = []
        asked: dict[str, int] = {}  # reporting child -> the pid we sent SIGHUP to
        for child in self.children:
            if child.name not in wanted:
                continue
            if child.reports is not None:
                child.reports.take_reloaded()
            if not _running(child):
                outcome[child.name] = "restarting (it starts on the new configuration)"
                continue
            assert child.proc is not None
            if child.reports is not None:
                asked[child.name] = child.proc.pid
            else:
                outcome[child.name] = "signalled"
            _signal(child, signal.SIGHUP)
        for child in [c for c in self.children if c.name not in wanted]:
            log.info("Stopping %s child process: the new configuration does not need it", child.name)
            await self._retire(child)
            outcome[child.name] = "stopped"
        for name in ("BFD", "VRRP", "Healthcheck"):
            if name in wanted and name not in current:
                log.info("Starting %s child process: the new configuration needs it", name)
                child = setup.make_child(name)
                self.children.append(child)
                self._start_keeper(child)
                outcome[name] = "started"
        accepted, refused = await self._collect(asked, digest, outcome, problems)
        started = any(v == "started" or v.startswith("restarting") for v in outcome.values())
        if accepted and refused:
            problems.append(f"{', '.join(refused)} kept the old configuration while {', '.join(accepted)} took the "
                            "new one; a respawn of either runs the new one")
        return problems, outcome, bool(accepted or started or not asked)

    async def _collect(self, asked: dict[str, int], digest: str, outcome: dict[str, str],
                       problems: list[str]) -> tuple[list[str], list[str]]:
        """Wait for each signalled child's "reloaded" report: (accepted, refused or silent)."""
        by_name = {c.name: c for c in self.children}
        pending = dict(asked)
        accepted: list[str] = []
        refused: list[str] = []
        deadline = time.monotonic() + RELOAD_REPORT_TIMEOUT_S
        while pending:
            for name, pid in list(pending.items()):
                child = by_name[name]
                reports = child.reports.take_reloaded() if child.reports is not None else []
                if reports:
                    report = reports[-1]
                    del pending[name]
                    self._child_digests[name] = report.digest
                    if report.ok and report.digest and report.digest != digest:
                        refused.append(name)
                        outcome[name] = "reloaded another configuration"
                        problems.append(f"{name}: reloaded snapshot {report.digest}, not {digest}")
                    elif report.ok:
                        accepted.append(name)
                        outcome[name] = "reloaded"
                        log.info("%s child process reloaded", name)
                    else:
                        refused.append(name)
                        outcome[name] = "refused"
                        log.error("%s child process refused the reload; it runs the old configuration", name)
                        problems.extend(f"{name}: {p}" for p in report.problems)
                elif child.proc is None or child.proc.pid != pid or child.proc.returncode is not None:
                    del pending[name]
                    refused.append(name)
                    outcome[name] = "died during the reload"
                    problems.append(f"{name}: the child process died during the reload (its respawn starts on the "
                                    "new configuration)")
            if not pending:
                break
            if time.monotonic() > deadline:
                for name in pending:
                    refused.append(name)
                    outcome[name] = "no report"
                    problems.append(f"{name}: no reload report within {RELOAD_REPORT_TIMEOUT_S:.0f} s")
                break
            await _any_report([r for n in pending if (r := by_name[n].reports) is not None], REPORT_WAKE_S)
        return accepted, refused

    async def _retire(self, child: Child) -> None:
        """Stop a child the configuration no longer needs, for good (its keeper ends, no respawn)."""
        child.stop.set()
        if (keeper := self.keepers.pop(child.name, None)) is not None:
            await asyncio.gather(keeper, return_exceptions=True)
        await _stop_child(child)
        if child.reports is not None:
            child.reports.close()
        _forget_pid_file(child.pid_file, child.proc.pid if child.proc is not None else -1)
        self.children.remove(child)
        self.state.child_retired(child.name)

    def _running_digest(self) -> str:
        if self.config_fd is None or self.config_fd < 0:
            return ""
        try:
            return snapshot_digest(read_snapshot_fd_bytes(self.config_fd))
        except OSError:
            return ""


REPORT_WAKE_S = 0.25  # the longest a reload waits between looks (a report or a child's EOF wakes it at once)


async def _any_report(reports: list[ChildReports], timeout_s: float) -> None:
    """Until one of these children writes a report or closes its pipe (or `timeout_s`).

    Nothing runs between the caller's look at the reports and this clear (no
    await), so a report cannot slip in unseen; a waiter elsewhere that clears
    the event too costs at most `timeout_s`.
    """
    if not reports:
        await asyncio.sleep(timeout_s)
        return
    for r in reports:
        r.changed.clear()
    waits = [asyncio.ensure_future(r.changed.wait()) for r in reports]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


_early: list[int] = []


def _forget_state_in_pid_dir(state_file: str, pid_dirs: Sequence[str]) -> None:
    """A state file in a pid directory keepalived removes at exit (/run/keepalived/NAMESPACE) goes with it.

    Elsewhere the last state stays for `pykeepalived status` (daemon.running
    false); there it would keep the directory that keepalived leaves gone.
    """
    folder = os.path.dirname(os.path.abspath(state_file))
    if folder in {os.path.abspath(d) for d in pid_dirs}:
        with contextlib.suppress(OSError):
            os.unlink(state_file)


def _api_part(api: ApiSettings | None) -> dict[str, Any] | None:
    """The state document's daemon.api (docs/state.md): None when the API is off."""
    if api is None or not api.enabled:
        return None
    return {"listen": list(api.listen), "runtime": api.runtime, "tls": api.tls_cert is not None}


def _hold_early_signals() -> None:
    """Until the loop's handlers are in place, a forwarded signal (a reload, a dump) is noted instead of fatal.

    Their default action ends the process: a `pykeepalived reload` or a
    SIGUSR1 sent while the parent writes its pid file would stop it. A
    Python-level handler is reset to the default by exec, so the startup
    script and the children are not affected.
    """
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: _early.append(signum))


def _take_early_signals() -> list[int]:
    taken = sorted(set(_early))
    _early.clear()
    return taken


async def supervise(children: list[Child], config_fd: int | None = None, respawn: bool = True) -> bool:
    """Keep the children running until SIGTERM/SIGINT; False if one could not be kept (the daemon then stops)."""
    return await Supervisor(children, config_fd, respawn).run()


def run_supervisor(base_argv: Sequence[str], opts: DaemonOptions, vrrp: bool, check: bool,
                   config_fd: int | None = None, process_name: str | None = None,
                   config: KeepalivedConfig | None = None, bfd: bool = False,
                   follow_config: bool = True, namespace_flag: str | None = None) -> int:
    """Run as keepalived's parent: returns when both children have stopped after SIGTERM/SIGINT (or a failure).

    With `config`, its startup_script runs before the children start and its
    shutdown_script (the one in force after any reload) after they stopped
    (daemon/start_stop.py), and SIGHUP reloads it.
    """
    notifier = Notifier()  # before anything is started: the children must not inherit $NOTIFY_SOCKET
    _hold_early_signals()
    pids = begin(opts, "Keepalived", "pykeepalived", opts.pid_file, config=config)
    if pids is None:
        return 1
    if process_name:  # global_defs process_name (host/tuning.py)
        set_process_name(process_name)

    def make_child(name: str) -> Child:
        if name == "BFD":  # keepalived's bfd child: the sessions VRRP's track_bfd and BFD_CHECK follow (run_bfd.py)
            return Child("BFD", child_argv(base_argv, "--bfd-child", config_fd))
        if name == "VRRP":
            return Child("VRRP", child_argv(base_argv, "--vrrp", config_fd), opts.vrrp_pid_file,
                         reports=ChildReports("VRRP"), commands=CommandChannel("VRRP"))
        return Child("Healthcheck", child_argv(base_argv, "--check", config_fd), opts.checkers_pid_file,
                     reports=ChildReports("Healthcheck"), commands=CommandChannel("Healthcheck"))

    children = [make_child(name) for name, on in (("BFD", bfd), ("VRRP", vrrp), ("Healthcheck", check)) if on]
    setup = None
    if config is not None:
        setup = ParentSetup(config=config, config_file=os.path.abspath(opts.config_file), config_id=opts.config_id,
                            pid_file=opts.pid_file, make_child=make_child, follow_config=follow_config,
                            bfd_allowed=opts.bfd, namespace_flag=namespace_flag)
    supervisor: Supervisor | None = None

    async def main() -> bool:
        nonlocal supervisor
        supervisor = Supervisor(children, config_fd, opts.respawn, setup, notifier, api=opts.api,
                                snmp=(opts.snmp, opts.snmp_socket))
        supervisor.release_dataplane = opts.release_dataplane
        # the runtime routes answer 403 unless the API's runtime switch is on (api/runtime_routes.py)
        supervisor.commands = ChildCommandSender(children) if opts.api is not None and opts.api.enabled else None
        from ..ctsync.keeper import ConntrackdKeeper  # conntrackd outlives the VRRP child (docs/conntrack-sync.md)
        keeper = ConntrackdKeeper.for_parent(config, opts.dataplane, opts.pid_file) if config is not None else None
        if keeper is not None:
            keeper.start(lambda: setup.config if setup is not None else None)  # follows reloads
        try:
            return await supervisor.run()
        finally:
            if keeper is not None:  # after the children stopped: a clean stop's hand-over is already synced
                await keeper.stop()

    try:
        ok = asyncio.run(main())
    finally:
        if setup is not None:
            _forget_state_in_pid_dir(state_path(setup.pid_file), pids.dirs)
        pids.remove()
        final = setup.config if setup is not None else config  # the shutdown_script of the config in force
        if final is not None:
            from .start_stop import run_start_stop_script

            run_start_stop_script(final, "shutdown")
    log.info("Stopped pykeepalived")
    return 0 if ok else 1
