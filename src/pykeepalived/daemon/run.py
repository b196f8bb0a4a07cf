"""Running one subsystem: logging, pid files, daemonising, the event loop, signals.

`run_vrrp` and `run_check` each serve one subsystem in the current process.
Started with both subsystems, pykeepalived runs a supervisor (supervisor.py)
that starts each as a child process, as keepalived does, so that checkers can
never delay a VRRP advert; alone (-P / -C) the subsystem writes the parent's
pid file too so that tools which read it keep working.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from dataclasses import dataclass, replace
from functools import partial

from ..api.settings import ApiSettings
from ..errors import PyKeepalivedError
from ..config.instance_names import Naming, pid_dirs, syslog_ident
from ..config.model import KeepalivedConfig
from ..host.proc import is_running
from .lifeline import accept_forwarded_signals, leave_interrupt_to_parent
from ..host.tuning import apply_tuning, tuning_for
from ..host.malloc_trim import map_large_allocations, one_arena
from . import gc_quiet
from ..host.private_files import DEFAULT_UMASK, UnsafeFileError, daemon_umask, make_dirs, read_own_small, write_private

from .paths import DEFAULT_CHECKERS_PID_FILE as DEFAULT_CHECKERS_PID_FILE  # names kept here for older importers
from .paths import DEFAULT_PID_FILE as DEFAULT_PID_FILE
from .paths import DEFAULT_STATUS_FILE as DEFAULT_STATUS_FILE
from .paths import DEFAULT_VRRP_PID_FILE as DEFAULT_VRRP_PID_FILE
EXIT_ALREADY_RUNNING = 5  # a child whose pid file a live process holds: the supervisor hands over or gives up


@dataclass(frozen=True)
class DaemonOptions:
    foreground: bool = False
    log_console: bool = False
    log_detail: bool = False
    log_facility: int = 3  # the syslog facility code (cmdline/facility.py): LOG_DAEMON, as keepalived's default
    no_syslog: bool = False
    pid_file: str = DEFAULT_PID_FILE
    vrrp_pid_file: str = DEFAULT_VRRP_PID_FILE
    checkers_pid_file: str = DEFAULT_CHECKERS_PID_FILE
    status_file: str = DEFAULT_STATUS_FILE
    state_dir: str | None = None  # the dumps' directory; None: keepalived's ($TMPDIR, else /tmp)
    child: bool = False  # started by the supervisor: the parent owns the main pid file
    config_file: str = "/etc/keepalived/keepalived.conf"  # -f: what a reload reads when running alone
    config_id: str | None = None  # -i
    config_fd: int = -1  # the snapshot memfd: in a child, the parent's fd number a reload reads (config_source.py)
    report_fd: int = -1  # a child's pipe to its parent: ready, reloaded, alive (daemon/child_report.py)
    command_fd: int = -1  # a child's runtime API socket from its parent (daemon/command_server.py)
    checker_workers: int | None = None  # None: as many as the number of checkers calls for
    worker_argv: tuple[str, ...] | None = None  # how to start a checker worker (this config, these log flags)
    worker_shard: tuple[int, int] | None = None  # set in a checker worker process
    dataplane: str = "auto"  # auto, nftables or none (lvs/choose.py)
    naming: Naming = Naming()  # net_namespace (or -s) and instance: syslog ident, pid file dirs (daemon/netns.py)
    overridden_namespace: str | None = None  # the config's net_namespace that -s replaced (logged at start)
    umask: int | None = None  # -u: wins over global_defs umask, as in keepalived
    respawn: bool = True  # -R: a child that dies stops the daemon instead of being restarted
    release_dataplane: bool = True  # -I: leave the virtual services in place on stop
    release_vrrp: bool = True  # -V: leave the VIPs and virtual routes in place on stop
    bfd: bool = True  # -B turns it off: no BFD sessions (the BFD child, or in-process with -P / -C)
    api: ApiSettings | None = None  # --api / pykeepalived_api (api/settings.py): the parent's HTTP API; None: off
    snmp: bool = False  # -x: the parent's AgentX subagent with every MIB (daemon/snmp_start.py)
    snmp_socket: str | None = None  # -A: the AgentX master's socket, over snmp_socket
    notes: tuple[str, ...] = ()  # lines logged at start: flags not acted on, the -d dump


def setup_logging(opts: DaemonOptions, ident: str = "Keepalived_vrrp", syslog_address: str = "/dev/log") -> None:
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    logging.getLogger("pykeepalived").setLevel(logging.DEBUG if opts.log_detail else logging.INFO)
    if opts.log_console:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d: %(message)s", "%a %b %d %H:%M:%S %Y"))
        root.addHandler(handler)
    if not opts.no_syslog:
        if os.path.exists(syslog_address):
            syslog = logging.handlers.SysLogHandler(syslog_address, facility=opts.log_facility)
            syslog.ident = f"{ident}[{os.getpid()}]: "
            root.addHandler(syslog)
        elif not opts.log_console:
            root.addHandler(logging.StreamHandler(sys.stderr))


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


class PidFiles:
    """keepalived's pid files; removed on exit, refused if a live process owns one.

    Written through host/private_files.py (a fresh file renamed into place:
    a symlink or someone else's file at the path is replaced, never followed
    or reused), mode 0644 as keepalived's: a pid is no secret and monitoring
    tools read it. Read without following a symlink.
    """

    MODE = 0o644

    def __init__(self, *paths: str, dirs: tuple[str, ...] = ()) -> None:
        self.paths = [p for p in paths if p]
        self.dirs = dirs  # keepalived's pid directories (/run/keepalived[/NAMESPACE]): removed at exit if empty

    def write(self) -> None:
        """Raises RuntimeError if another live instance owns a pid file, UnsafeFileError if one cannot be written."""
        for path in self.paths:
            other = self._read_pid(path)
            if other and other != os.getpid() and is_running(other):
                raise RuntimeError(f"{path}: pykeepalived/keepalived already running as pid {other}")
            make_dirs(os.path.dirname(os.path.abspath(path)))
            write_private(path, f"{os.getpid()}\n", self.MODE)

    def remove(self) -> None:
        for path in self.paths:
            try:
                if (read_own_small(path) or "").strip() == str(os.getpid()):
                    os.unlink(path)
            except (OSError, UnsafeFileError):
                pass
        for folder in reversed(self.dirs):
            try:
                os.rmdir(folder)
            except OSError:  # not empty (another instance's files) or gone
                pass

    @staticmethod
    def _read_pid(path: str) -> int | None:
        """The pid in the file; None if there is none or it is not a plain file of digits (it gets replaced)."""
        try:
            return read_pid_file(path)
        except UnsafeFileError as exc:
            logging.getLogger("pykeepalived").warning("%s; writing a new pid file in its place", exc)
            return None


def read_pid_file(path: str) -> int | None:
    """The pid a pid file names, read without following a link; None without a file or a number.

    Raises UnsafeFileError for a symlink or anything but a regular file.
    """
    text = read_own_small(path, 64)
    try:
        return int(text.strip()) if text and text.strip() else None
    except ValueError:
        return None


def set_umask(config: KeepalivedConfig | None = None, override: int | None = None) -> int:
    """keepalived's umask 0177 for the daemon and so its scripts, or global_defs `umask` when the config sets one.

    `override` (the -u flag) wins over both, as keepalived's command line does.

    Files with an explicit mode (dumps, status, pid files, FIFOs, directories)
    do not depend on it; it decides what the scripts' files get.
    """
    mask = DEFAULT_UMASK
    if config is not None:
        mask, problem = daemon_umask(config.global_defs.umask)
        if problem:
            logging.getLogger("pykeepalived").error("%s", problem)
    if override is not None:
        mask = override
    os.umask(mask)
    return mask


def begin(opts: DaemonOptions, ident: str, what: str, *pid_files: str,
          config: KeepalivedConfig | None = None) -> PidFiles | None:
    """Daemonise unless told not to, set up logging and the umask, write the pid files (None: refused)."""
    if not opts.foreground:
        _daemonize()
    map_large_allocations()  # big buffers go back to the kernel when freed (host/malloc_trim.py)
    full_ident = syslog_ident(ident, opts.naming)
    setup_logging(opts, ident=full_ident)
    set_umask(config, opts.umask)
    if config is not None:
        from ..host.track_files import init_track_files

        init_track_files(config)  # track_file init_file, before anything reads the files
    log = logging.getLogger("pykeepalived")
    if not opts.child:
        from .netns import NamespaceChoice, log_choice

        log_choice(NamespaceChoice(opts.naming.namespace, opts.overridden_namespace), opts.naming, full_ident)
    for note in opts.notes:
        log.info("%s", note)
    pids = PidFiles(*pid_files, dirs=() if opts.child else pid_dirs(opts.naming))
    try:
        pids.write()
    except (RuntimeError, UnsafeFileError) as exc:
        log.error("%s", exc)
        return None
    log.info("Starting %s process, pid=%d", what, os.getpid())
    if config is not None and not opts.child:
        from .start_stop import run_start_stop_script

        run_start_stop_script(config, "startup")  # keepalived: before the subsystems start
    return pids


def _shutdown_script(config: KeepalivedConfig, opts: DaemonOptions) -> None:
    """keepalived's shutdown_script, once the subsystem stopped (only where the startup script ran)."""
    if not opts.child:
        from .start_stop import run_start_stop_script

        run_start_stop_script(config, "shutdown")


def run_vrrp(config: KeepalivedConfig, opts: DaemonOptions) -> int:
    """Serve VRRP until SIGTERM/SIGINT; returns the exit code."""
    import asyncio

    from ..vrrp.service import VrrpService, install_signal_handlers
    from ..vrrp import runtime_apply as vrrp_runtime
    from .command_server import serve_commands

    pids = begin(opts, "Keepalived_vrrp", "VRRP child", *([] if opts.child else [opts.pid_file]),
                 opts.vrrp_pid_file, config=config)
    if pids is None:
        return EXIT_ALREADY_RUNNING
    apply_tuning(tuning_for(config.global_defs, "vrrp", alone=not opts.child))  # before any thread starts
    log = logging.getLogger("pykeepalived")

    async def main() -> None:
        from ..bfd.service import alongside

        service = VrrpService(config, state_dir=opts.state_dir, status_file=opts.status_file)
        service.release_on_stop = opts.release_vrrp
        service.naming = opts.naming  # data_use_instance names the data dump after -s's namespace too
        from ..ctsync.client import CtSyncClient  # conntrackd's commands on transitions (docs/conntrack-sync.md)
        service.ctsync = CtSyncClient.for_vrrp(config, opts.dataplane, opts.pid_file)
        from ..ctsync.keeper import ConntrackdKeeper  # -P: no parent, so conntrackd is this process's
        keeper = None if opts.child else ConntrackdKeeper.for_parent(config, opts.dataplane, opts.pid_file)
        if keeper is not None:
            keeper.start()
        if bfd := alongside(config, opts.child, opts.bfd):  # -P: the BFD sessions run here (bfd/service.py)
            service.bfd_key = bfd.key
            bfd.start()
        g = config.global_defs
        install_signal_handlers(service, asyncio.get_running_loop(),
                                json_path=_dump_path(g.json_dump_file, "keepalived.json"),
                                stats_path=_dump_path(g.stats_dump_file, "keepalived.stats"))
        if opts.child:  # Ctrl-C reaches the whole process group: the parent orders the stop
            leave_interrupt_to_parent(asyncio.get_running_loop(), "VRRP child")
        from . import state_report
        from .child_reload import ChildControl

        control = ChildControl(service, opts, "VRRP")  # SIGHUP and the reports to the parent
        control.install(asyncio.get_running_loop())
        commands = serve_commands(opts.command_fd, partial(vrrp_runtime.handle, service), "VRRP")  # runtime API
        state_report.start_vrrp(service, control.reporter)  # its part of the state model (docs/state.md)
        gc_quiet.start(service.ready_event)  # the start-up heap frozen off the advert path (daemon/gc_quiet.py)
        accept_forwarded_signals()  # what the parent forwarded while we started (daemon/lifeline.py)
        await service.run()
        await commands.close()
        await control.close()
        if bfd:
            await bfd.stop()
        if keeper is not None:
            await keeper.stop()

    try:
        asyncio.run(main())
    except (OSError, PyKeepalivedError) as exc:
        log.error("VRRP stopped on an error: %s", exc)
        return 1
    finally:
        gc_quiet.write_stats()
        pids.remove()
        _shutdown_script(config, opts)
    log.info("Stopped")
    return 0


def run_check(config: KeepalivedConfig, opts: DaemonOptions) -> int:
    """Serve the health checkers until SIGTERM/SIGINT; returns the exit code."""
    import asyncio

    from ..check import runtime_apply as check_runtime
    from ..check.service import CheckService, install_signal_handlers
    from ..lvs.choose import choose_dataplane
    from .command_server import serve_commands
    from ..lvs.model import DataPlaneError

    pids = begin(opts, "Keepalived_healthcheckers", "Healthcheck child", *([] if opts.child else [opts.pid_file]),
                 opts.checkers_pid_file, config=config)
    if pids is None:
        return EXIT_ALREADY_RUNNING
    apply_tuning(tuning_for(config.global_defs, "checker", alone=not opts.child))  # before any thread starts
    one_arena()  # the data plane's thread allocates from the main arena too (host/malloc_trim.py)
    if opts.worker_argv:  # workers die with this process (daemon/lifeline.py) and read its config memfd
        opts = replace(opts, worker_argv=(*opts.worker_argv, "--parent-pid", str(os.getpid())))
    log = logging.getLogger("pykeepalived")
    _raise_open_file_limit(log)

    async def main() -> bool:
        try:
            dataplane = choose_dataplane(opts.dataplane, config)
        except DataPlaneError as exc:
            _report_no_dataplane(config, opts, exc)
            raise
        service = CheckService(config, dataplane, status_path=opts.status_file, workers=opts.checker_workers,
                               worker_argv=list(opts.worker_argv) if opts.worker_argv else None)
        service.release_on_stop = opts.release_dataplane
        service.config_source = (opts.config_fd, opts.child, opts.config_file, opts.config_id)  # workers' reload
        service.naming = opts.naming  # data_use_instance names the data dump after -s's namespace too
        from ..bfd.service import alongside

        if bfd := alongside(config, opts.child, opts.bfd):  # -C: the BFD sessions run here (bfd/service.py)
            service.bfd_key = bfd.key
            bfd.start()
        install_signal_handlers(service, asyncio.get_running_loop())
        if opts.child:  # Ctrl-C reaches the whole process group: the parent orders the stop
            leave_interrupt_to_parent(asyncio.get_running_loop(), "checker child")
        from . import state_report
        from .child_reload import ChildControl

        control = ChildControl(service, opts, "checker")  # SIGHUP and the reports to the parent
        control.install(asyncio.get_running_loop())
        commands = serve_commands(opts.command_fd, partial(check_runtime.handle, service), "checker")  # runtime API
        state_report.start_checker(service, control.reporter)  # its part of the state model (docs/state.md)
        accept_forwarded_signals()
        # thousands of checkers make a big start-up heap: frozen once running, full collections skip it
        gc_quiet.start(service.ready_event)
        await service.run()
        await commands.close()
        await control.close()
        if bfd:
            await bfd.stop()
        return not service.failed

    try:
        ok = asyncio.run(main())
    except (OSError, PyKeepalivedError) as exc:
        log.error("health checker stopped on an error: %s", exc)
        return 1
    finally:
        pids.remove()
        _shutdown_script(config, opts)
    log.info("Stopped")
    return 0 if ok else 1


def _report_no_dataplane(config: KeepalivedConfig, opts: DaemonOptions, exc: Exception) -> None:
    """The checker cannot build its backend: say so in the status file before exiting.

    The VRRP process reads `dataplane_error` from it and puts the instances
    in front of these virtual servers in FAULT, so that the backup takes the
    VIPs; `pykeepalived status` shows the reason. The supervisor restarts us
    (at once, then backing off), and each attempt writes the file again.
    """
    from ..check.service import CheckService
    from ..lvs.null import TableOnly

    stand_in = TableOnly(error=f"cannot start the {opts.dataplane} data plane: {exc}")
    stand_in.name = opts.dataplane  # what was asked for, so that `status` names it
    service = CheckService(config, stand_in, status_path=opts.status_file)
    try:
        service.build()
    except PyKeepalivedError as build_exc:  # the error we report matters more; the table stays empty
        logging.getLogger("pykeepalived").debug("status without services: %s", build_exc)
        service.services = []
    service.write_status()


def run_check_worker(config: KeepalivedConfig, opts: DaemonOptions) -> int:
    """One checker worker process (see check/workers.py): its shard's probes, reported on stdout."""
    import asyncio

    from ..check.service import CheckService
    from ..check.workers import run_worker
    from ..lvs.null import TableOnly

    assert opts.worker_shard is not None
    setup_logging(opts, ident=syslog_ident("Keepalived_healthcheckers", opts.naming))
    _raise_open_file_limit(logging.getLogger("pykeepalived"))
    shard, count = opts.worker_shard

    async def main() -> None:
        service = CheckService(config, TableOnly())
        service.build()
        await run_worker(service, shard, count)

    try:
        asyncio.run(main())
    except (OSError, PyKeepalivedError) as exc:
        logging.getLogger("pykeepalived").error("checker worker %d/%d stopped on an error: %s", shard, count, exc)
        return 1
    return 0


def _raise_open_file_limit(log: logging.Logger) -> None:
    """Each checker in flight holds a socket: thousands of checkers need more than the usual 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)


def _dump_path(value: str | None, default_name: str) -> str | None:
    """global_defs json_dump_file / stats_dump_file: a file, or a directory (ending in /) for the default name."""
    if value:
        return os.path.join(value, default_name) if value.endswith("/") else value
    return None
