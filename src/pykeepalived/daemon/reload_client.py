"""`pykeepalived reload`: SIGHUP to the running daemon, then its answer, for people and for systemd's ExecReload.

keepalived offers only `kill -HUP`, which says nothing about whether the new
configuration was taken. This command finds the daemon by its pid file (-p,
else the one the configuration of -f names, as the daemon chose it), checks
that the pid is a pykeepalived parent, notes the time, sends SIGHUP and
waits for the parent to write an outcome that began after that time
(daemon/reload_result.py), written by the daemon's own user. It prints each
problem (config errors as FILE:LINE: ...) and exits:

    0  reloaded
    1  refused or failed (the daemon runs on as before, or partly: see the lines)
    2  usage
    7  no pykeepalived daemon runs there (LSB's "program is not running")
    124 no outcome within --timeout (the daemon may still be reloading: see its log)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence

from ..errors import PyKeepalivedError
from ..host.private_files import UnsafeFileError
from ..host.proc import argv_of, is_pykeepalived, is_running
from .paths import DEFAULT_PID_FILE
from .reload_result import ReloadResult, read_result, result_path
from .run import read_pid_file

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 7
EXIT_TIMEOUT = 124
DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"
DEFAULT_TIMEOUT_S = 90.0  # above the parent's own wait for its children (supervisor.RELOAD_REPORT_TIMEOUT_S)
POLL_S = 0.1


class NotRunning(Exception):
    """No pykeepalived parent behind the pid file (the message says why)."""


def default_pid_file(config_file: str, config_id: str | None) -> str:
    """The parent's pid file as the daemon started with -f `config_file` chose it (instance, net_namespace)."""
    from ..config.instance_names import pid_files
    from .config_source import load
    from .netns import naming_of

    try:
        config = load(config_file, config_id, host_checks=False).config
    except (OSError, ValueError, PyKeepalivedError):
        return DEFAULT_PID_FILE
    return pid_files(naming_of(config, config.global_defs.net_namespace)).main


def daemon_pid(pid_file: str) -> int:
    """The pid of the pykeepalived parent that wrote `pid_file`; NotRunning otherwise."""
    try:
        pid = read_pid_file(pid_file)
    except UnsafeFileError as exc:
        raise NotRunning(str(exc)) from None
    if pid is None:
        raise NotRunning(f"{pid_file}: no pid file (is pykeepalived running? see -p)")
    if not is_running(pid):
        raise NotRunning(f"{pid_file} names pid {pid}, which is not running")
    argv = argv_of(pid) or []
    if not is_pykeepalived(argv) or "--child" in argv:
        raise NotRunning(f"{pid_file} names pid {pid} ({' '.join(argv) or 'unknown'}), not a pykeepalived daemon")
    return pid


def _owner_matches(path: str, pid: int) -> bool:
    """The result file was written by the daemon's user (nobody else can answer in its name)."""
    try:
        return os.stat(path, follow_symlinks=False).st_uid == os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return False


def wait_result(pid: int, path: str, since: float, timeout_s: float) -> ReloadResult | None:
    """The daemon's outcome of a reload that began at `since` or later; None on timeout. NotRunning if it died."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = read_result(path)
        if result is not None and result.pid == pid and result.started >= since and _owner_matches(path, pid):
            return result
        if not is_running(pid):
            raise NotRunning(f"pykeepalived (pid {pid}) stopped during the reload")
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_S)


def reload_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="pykeepalived reload",
        description="Reload the running daemon's configuration (SIGHUP) and wait for the outcome. Exit status: "
                    "0 reloaded, 1 refused or failed (each problem printed), 2 usage, 7 no daemon running, "
                    "124 no outcome in time.")
    p.add_argument("-f", "--use-file", metavar="FILE", default=DEFAULT_CONFIG,
                   help="the daemon's configuration file: names its pid file when -p is not given")
    p.add_argument("-p", "--pid", metavar="FILE", help="the daemon's (parent's) pid file")
    p.add_argument("-i", "--config-id", metavar="ID", help="config id, as given to the daemon")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds to wait for the outcome (default {DEFAULT_TIMEOUT_S:.0f})")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.timeout <= 0:
        print("pykeepalived reload: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    pid_file = args.pid or default_pid_file(args.use_file, args.config_id)
    try:
        pid = daemon_pid(pid_file)
        since = time.time()
        os.kill(pid, signal.SIGHUP)
        result = wait_result(pid, result_path(pid_file), since, args.timeout)
    except NotRunning as exc:
        print(f"pykeepalived reload: {exc}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except ProcessLookupError:
        print(f"pykeepalived reload: pid {pid} is gone", file=sys.stderr)
        return EXIT_NOT_RUNNING
    if result is None:
        print(f"pykeepalived reload: no outcome from pid {pid} within {args.timeout:g} s; it may still be "
              "reloading (see its log)", file=sys.stderr)
        return EXIT_TIMEOUT
    for line in result.warnings:
        print(f"warning: {line}")
    if result.ok:
        print(f"reload {result.generation}: ok (configuration {result.digest})")
        return EXIT_OK
    print(f"reload {result.generation}: FAILED; the daemon keeps running (configuration {result.digest})",
          file=sys.stderr)
    for line in result.problems:
        print(line, file=sys.stderr)
    return EXIT_FAILED
