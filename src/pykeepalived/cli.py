"""The `pykeepalived` command: keepalived's flags, plus our own subcommands later.

Only the edge of the program catches exceptions: each of our own errors
becomes one clear line and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from . import __version__
from .config import LexerOptions, LoadResult, read_config
from .config.dump import dump_json
from .errors import PyKeepalivedError
from .config.model import KeepalivedConfig
from .daemon.run import (
    DEFAULT_CHECKERS_PID_FILE,
    DEFAULT_PID_FILE,
    DEFAULT_STATUS_FILE,
    DEFAULT_VRRP_PID_FILE,
    DaemonOptions,
    run_check,
    run_vrrp,
)
from .host.facts import LocalHostFacts
from .config.snapshot import Snapshot, SnapshotError, SnapshotFileSystem
from .daemon.lifeline import ParentGone, die_with_parent
from .host.files import LocalFileSystem
from .host.recording import RecordingFileSystem, read_snapshot_fd, snapshot_memfd

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
EXIT_OK = 0
EXIT_CONFIG_ERROR = 1
EXIT_NOT_IMPLEMENTED = 3
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pykeepalived",
        description="A keepalived-compatible high-availability load balancer.",
    )
    add = p.add_argument
    add("-f", "--use-file", metavar="FILE", default=DEFAULT_CONFIG, help="configuration file")
    add("-t", "--config-test", action="store_true", help="check the configuration and exit")
    add("--dump-config", action="store_true", help="print the configuration model as JSON and exit")
    add("-n", "--dont-fork", action="store_true", help="do not fork the daemon")
    add("-l", "--log-console", action="store_true", help="log to the console")
    add("-D", "--log-detail", action="store_true", help="detailed log messages")
    add("-G", "--no-syslog", action="store_true", help="do not log via syslog")
    add("-S", "--log-facility", metavar="N", help="syslog facility local0..local7")
    add("-P", "--vrrp", action="store_true", help="run only the VRRP subsystem")
    add("-C", "--check", action="store_true", help="run only the health-checker subsystem")
    add("-p", "--pid", metavar="FILE", help="parent pid file")
    add("-r", "--vrrp_pid", metavar="FILE", help="VRRP child pid file")
    add("-c", "--checkers_pid", metavar="FILE", help="checker child pid file")
    add("-i", "--config-id", metavar="ID", help="config id for @ID lines (default: short hostname)")
    add("-v", "--version", action="store_true", help="print the version and exit")
    add("--no-host-checks", action="store_true",
        help="with -t: do not check interfaces and scripts against this machine")
    add("--status-file", metavar="FILE", default=DEFAULT_STATUS_FILE,
        help=f"where the checker keeps its state for `pykeepalived status` (default {DEFAULT_STATUS_FILE})")
    add("--checker-workers", type=int, metavar="N",
        help="processes sharing the health checks (default: one per 2,000 checkers, at most one per core)")
    add("--dataplane", choices=("auto", "ipvs", "nftables", "none"), default="auto",
        help="what forwards the virtual services: ipvs, nftables, or none (checkers only); auto: IPVS if the "
             "kernel has it, else nftables (default: global_defs' pykeepalived_dataplane, else auto)")
    add("--child", action="store_true", help=argparse.SUPPRESS)
    add("--checker-worker", metavar="N/COUNT", help=argparse.SUPPRESS)
    add("--parent-pid", type=int, metavar="PID", help=argparse.SUPPRESS)  # daemon/lifeline.py
    add("--config-fd", type=int, metavar="FD", help=argparse.SUPPRESS)  # host/recording.py
    return p


def _config_id(explicit: str | None) -> str:
    return explicit if explicit is not None else socket.gethostname().split(".", 1)[0]


def load(path: str, config_id: str | None, host_checks: bool = True) -> LoadResult:
    options = LexerOptions(config_id=_config_id(config_id), cwd=os.getcwd())
    host = LocalHostFacts() if host_checks else None
    return read_config(path, LocalFileSystem(), host, options)


def load_recorded(path: str, config_id: str | None, host_checks: bool = True) -> tuple[LoadResult, Snapshot]:
    """Read the configuration from disk and keep what was read, for the children (see host/recording.py)."""
    snapshot = Snapshot(main=path, cwd=os.getcwd(), config_id=_config_id(config_id))
    options = LexerOptions(config_id=snapshot.config_id, cwd=snapshot.cwd)
    host = LocalHostFacts() if host_checks else None
    return read_config(path, RecordingFileSystem(snapshot), host, options), snapshot


def load_snapshot(snapshot: Snapshot, host_checks: bool = True) -> LoadResult:
    """Parse the configuration the daemon read at start, under the paths it had then."""
    options = LexerOptions(config_id=snapshot.config_id, cwd=snapshot.cwd)
    host = LocalHostFacts() if host_checks else None
    return read_config(snapshot.main, SnapshotFileSystem(snapshot), host, options)


class _SnapshotUnreadable(PyKeepalivedError):
    """The configuration snapshot a child was given cannot be read."""


def _daemon_config(args: argparse.Namespace, host_checks: bool = True) -> tuple[LoadResult, int]:
    """The configuration and the memfd that holds it: the one passed down (`--config-fd`), else read now."""
    if args.config_fd is not None:
        owner = args.parent_pid if args.checker_worker else None  # a worker reads its checker's fd
        try:
            snapshot = read_snapshot_fd(args.config_fd, owner)
        except (OSError, SnapshotError) as exc:
            raise _SnapshotUnreadable(f"cannot read the configuration snapshot (fd {args.config_fd}): {exc}") \
                from None
        if args.checker_worker:
            return load_snapshot(snapshot, host_checks), -1
        os.set_inheritable(args.config_fd, False)  # pass_fds made it inheritable: scripts must not get it
        return load_snapshot(snapshot, host_checks), args.config_fd
    result, snapshot = load_recorded(args.use_file, args.config_id, host_checks)
    if result.start_errors:
        return result, -1
    return result, snapshot_memfd(snapshot)


def _print_diagnostics(result: LoadResult) -> None:
    for diag in result.diagnostics:
        print(diag.format(), file=sys.stderr)


def _subsystems(args: argparse.Namespace, config: KeepalivedConfig) -> tuple[bool, bool]:
    """Which subsystems to run: the flags say, else whatever the config has (as keepalived decides)."""
    if args.vrrp or args.check:
        return bool(args.vrrp), bool(args.check)
    has_vrrp = bool(config.vrrp_instances or config.static_ipaddresses or config.static_routes)
    has_check = bool(config.virtual_servers)
    return has_vrrp or not has_check, has_check


def _child_base_argv(args: argparse.Namespace) -> list[str]:
    base = ["-f", os.path.abspath(args.use_file), "-p", args.pid or DEFAULT_PID_FILE,
            "-r", args.vrrp_pid or DEFAULT_VRRP_PID_FILE, "-c", args.checkers_pid or DEFAULT_CHECKERS_PID_FILE,
            "--status-file", args.status_file]
    if args.config_id is not None:
        base += ["-i", args.config_id]
    if args.checker_workers is not None:
        base += ["--checker-workers", str(args.checker_workers)]
    if args.dataplane != "auto":
        base += ["--dataplane", args.dataplane]
    if args.log_facility:
        base += ["-S", str(args.log_facility)]
    base += [flag for flag, on in (("-l", args.log_console), ("-D", args.log_detail), ("-G", args.no_syslog)) if on]
    return base


def _check_plan(config: KeepalivedConfig, dataplane: str = "auto") -> str | None:
    """Build every checker's probe once, and ask the data plane whether it can build every service.

    What we cannot run or forward is refused before starting (and by -t).
    """
    from .check.plan import build_plan
    from .lvs.choose import dataplane_problems

    try:
        build_plan(config)
        if problems := dataplane_problems(config, dataplane):
            return "\n".join(problems)
    except PyKeepalivedError as exc:
        return str(exc)
    return None


def _worker_argv(args: argparse.Namespace, config_fd: int) -> tuple[str, ...]:
    """A checker worker's command line; the checker adds `--parent-pid` (its own pid, once daemonised)."""
    argv = [sys.executable, "-m", "pykeepalived", "-f", os.path.abspath(args.use_file), "--dont-fork",
            "--config-fd", str(config_fd)]
    if args.config_id is not None:
        argv += ["-i", args.config_id]
    argv += [flag for flag, on in (("-l", args.log_console), ("-D", args.log_detail), ("-G", args.no_syslog)) if on]
    return tuple(argv)


def _run_daemon(args: argparse.Namespace) -> int:
    if args.checker_worker:
        from .check.workers import parse_shard

        try:
            shard = parse_shard(args.checker_worker)
        except ValueError as exc:
            print(f"pykeepalived: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.config_fd is not None and args.parent_pid is None:
            print("pykeepalived: --config-fd in a checker worker needs --parent-pid", file=sys.stderr)
            return EXIT_USAGE
        worker, _ = _daemon_config(args, host_checks=False)
        if worker.start_errors:
            return EXIT_CONFIG_ERROR
        from .daemon.run import run_check_worker

        return run_check_worker(worker.config, DaemonOptions(foreground=True, log_console=args.log_console,
                                                             log_detail=args.log_detail, no_syslog=args.no_syslog,
                                                             worker_shard=shard))
    result, config_fd = _daemon_config(args)
    _print_diagnostics(result)
    if result.start_errors:
        print(f"{args.use_file}: {len(result.start_errors)} configuration error(s); not starting", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    vrrp, check = _subsystems(args, result.config)
    if check and (problem := _check_plan(result.config, args.dataplane)):
        print(f"pykeepalived: {problem}; not starting", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    opts = DaemonOptions(
        foreground=args.dont_fork,
        log_console=args.log_console,
        log_detail=args.log_detail,
        log_facility=int(args.log_facility or 0),
        no_syslog=args.no_syslog,
        pid_file=args.pid or DEFAULT_PID_FILE,
        vrrp_pid_file=args.vrrp_pid or DEFAULT_VRRP_PID_FILE,
        checkers_pid_file=args.checkers_pid or DEFAULT_CHECKERS_PID_FILE,
        status_file=args.status_file,
        child=args.child,
        checker_workers=args.checker_workers,
        worker_argv=_worker_argv(args, config_fd),
        dataplane=args.dataplane,
    )
    if not (args.vrrp or args.check or args.child):
        # as keepalived: a parent that restarts whichever subsystem dies
        from .daemon.supervisor import run_supervisor

        return run_supervisor(_child_base_argv(args), opts, vrrp=vrrp, check=check, config_fd=config_fd)
    return run_check(result.config, opts) if check else run_vrrp(result.config, opts)


def genhash_main(argv: Sequence[str]) -> int:
    """`pykeepalived genhash --url URL [--virtualhost NAME] [--verify]`: print the page's MD5 digest."""
    from .check.genhash import GenhashError, fetch

    p = argparse.ArgumentParser(prog="pykeepalived genhash",
                                description="Print the MD5 digest of a page, for HTTP_GET/SSL_GET url blocks.")
    p.add_argument("--url", required=True, help="http://ADDRESS[:PORT]/PATH or https://...")
    p.add_argument("--virtualhost", help="Host header (and TLS server name)")
    p.add_argument("--verify", action="store_true", help="verify the TLS certificate")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    p.add_argument("--verbose", action="store_true", help="also print the status and body length")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        got = fetch(args.url, virtualhost=args.virtualhost, verify_tls=args.verify, timeout_s=args.timeout)
    except GenhashError as exc:
        print(f"pykeepalived genhash: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if args.verbose:
        print(f"HTTP status {got.status}, {len(got.body)} body bytes")
    print(got.digest)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["genhash"]:
        return genhash_main(argv[1:])
    if argv[:1] == ["probe"]:
        from .check.once import probe_main

        return probe_main(argv[1:])
    if argv[:1] == ["status"]:
        from .status import status_main

        return status_main(argv[1:])
    if argv[:1] == ["lab"]:
        from .lab.lab_cli import lab_main

        return lab_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.parent_pid is not None:  # started by our parent: die with it (first thing, before the config)
        try:
            die_with_parent(args.parent_pid)
        except (ParentGone, OSError) as exc:
            print(f"pykeepalived: {exc}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    try:
        if args.version:
            print(f"pykeepalived {__version__}")
            return EXIT_OK
        if args.config_test or args.dump_config:
            result = load(args.use_file, args.config_id, host_checks=not args.no_host_checks)
            _print_diagnostics(result)
            if args.dump_config:
                print(dump_json(result.config))
            elif not result.errors and result.config.virtual_servers and (
                    problem := _check_plan(result.config, args.dataplane)):
                print(problem, file=sys.stderr)
                return EXIT_CONFIG_ERROR
            if result.errors:
                print(f"{args.use_file}: {len(result.errors)} configuration error(s)", file=sys.stderr)
                return EXIT_CONFIG_ERROR
            return EXIT_OK
        return _run_daemon(args)
    except PyKeepalivedError as exc:
        print(f"pykeepalived: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        return 130
