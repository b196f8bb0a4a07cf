"""`pykeepalived status`: the running checker's table, laid out like `ipvsadm -Ln`, or as JSON.

It reads the status file the checker rewrites after every change (and on
SIGUSR1), so it needs no connection to the daemon and works from any shell in
the router's namespace. It asks a running checker for fresh connection counters
(SIGUSR1) first, but only after making sure the pid in the file is still that
checker: the file must be owned by root (or by us) and writable by nobody else,
and the process must have the start time and boot id the file records and be a
pykeepalived (host/proc.py). A stale file whose pid the kernel has given to
another process would otherwise make us kill that process (SIGUSR1's default
action terminates).

Exit status (as an LSB init script's `status`): 0 the checker is running;
1 no usable status file; 2 usage; 3 the checker is not running (the table
printed is its last one); 4 the status file is not trusted (owner or mode), so
whether the checker runs is unknown and nothing was signalled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PyKeepalivedError
from .daemon.paths import DEFAULT_STATUS_FILE
from .host.proc import identity_problem

EXIT_RUNNING = 0
EXIT_NO_STATUS = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
EXIT_UNTRUSTED = 4
MAX_STATUS_BYTES = 256 * 1024 * 1024

METHODS = {"NAT": "Masq", "DR": "Route", "TUN": "Tunnel"}


def _endpoint(address: str | None, port: int | None) -> str:
    if address is None:
        return "?"
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port if port is not None else 0}"


def _service_line(svc: dict[str, Any]) -> str:
    if svc["kind"] == "fwmark":
        head = f"FWM  {svc['fwmark']}"
    elif svc["kind"] == "group":
        head = f"GRP  {svc['group']}:{svc['port'] or 0}"
    else:
        head = f"{(svc['protocol'] or 'TCP'):<4} {_endpoint(svc['address'], svc['port'])}"
    flags = [svc["scheduler"]]
    if svc.get("sched_flags"):
        flags.append("(" + ",".join(svc["sched_flags"]) + ")")
    if svc.get("persistence_timeout_s"):
        flags.append(f"persistent {svc['persistence_timeout_s']}")
    if not svc.get("quorum_up", True):
        flags.append("[quorum down]")
    return f"{head} {' '.join(flags)}"


class StatusFileError(PyKeepalivedError):
    """The status file is missing, unreadable or not a checker's status file; the text says why."""


@dataclass(frozen=True)
class Liveness:
    """What the status file says about its writer: trusted, running, and why not."""

    trusted: bool
    running: bool
    problem: str | None  # why it is not trusted or not running
    age_s: float | None

    @property
    def exit_code(self) -> int:
        if not self.trusted:
            return EXIT_UNTRUSTED
        return EXIT_RUNNING if self.running else EXIT_NOT_RUNNING

    def mark(self) -> str:
        age = f", written {self.age_s:.0f} s ago" if self.age_s is not None else ""
        if not self.trusted:
            return f"{age} - status file NOT TRUSTED ({self.problem}): not signalled, liveness unknown"
        if not self.running:
            return f"{age} - NOT RUNNING ({self.problem}): this is its last table"
        return age


def trust_problem(st: os.stat_result) -> str | None:
    """Why a status file with this stat() may have been written by someone else; None if only root (or we) could.

    Anyone who can write the file can name any pid in it, and we would signal
    that pid with our rights.
    """
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def read_status(path: str) -> tuple[dict[str, Any], os.stat_result]:
    """The status file's JSON object and the stat() of what was read, never blocking (not even on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StatusFileError(f"{path} not found: is the checker (pykeepalived -C) running?") from None
    except OSError as exc:
        raise StatusFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StatusFileError(f"{path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_STATUS_BYTES + 1)
    except OSError as exc:
        raise StatusFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_STATUS_BYTES:
        raise StatusFileError(f"{path} is larger than {MAX_STATUS_BYTES} bytes")
    try:
        status = json.loads(data)
    except ValueError as exc:
        raise StatusFileError(f"cannot read {path}: {exc}") from None
    if not isinstance(status, dict):
        raise StatusFileError(f"{path} is not a checker status file (TypeError: not a JSON object)")
    return status, st


def _pid(status: dict[str, Any]) -> int | None:
    pid = status.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def writer_problem(status: dict[str, Any]) -> str | None:
    """Why the process named by the status file is not the checker that wrote it; None if it is."""
    pid = _pid(status)
    if pid is None:
        return "the status file names no process"
    return identity_problem(pid, status.get("pid_start_ticks"), status.get("boot_id"))


def liveness(status: dict[str, Any], st: os.stat_result, now: float | None = None) -> Liveness:
    written = status.get("time")
    age = (max(0.0, (time.time() if now is None else now) - written)
           if isinstance(written, int | float) and not isinstance(written, bool) else None)
    if (distrust := trust_problem(st)) is not None:
        return Liveness(False, False, distrust, age)
    problem = writer_problem(status)
    return Liveness(True, problem is None, problem, age)


def render(status: dict[str, Any], live: Liveness) -> str:
    lines = [
        f"pykeepalived checker pid {status.get('pid')}, data plane: {status.get('dataplane')}{live.mark()}"
        + ("" if status.get("applied", True) else " (last change NOT applied)"),
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State",
    ]
    if status.get("dataplane_error"):
        lines.insert(1, f"DATA PLANE FAILING: {status['dataplane_error']}")
    counts = status.get("counts", {})
    for svc in status.get("table", {}).get("services", []):
        lines.append(_service_line(svc))
        for d in svc.get("destinations", []):
            state = "sorry" if d.get("sorry") else ("up" if d.get("alive") else "inhibited")
            active, inactive = counts.get(svc["name"], {}).get(
                f"[{d['address']}]:{d['port'] if d['port'] is not None else 0}", (0, 0))
            lines.append(f"  -> {_endpoint(d['address'], d['port']):<28} {METHODS.get(d['method'], d['method']):<7} "
                         f"{d['weight']:<6} {active:<10} {inactive:<9} {state}")
    down = [(s["name"], rs) for s in status.get("services", []) for rs in s["real_servers"] if not rs["alive"]]
    if down:
        lines.append("Failed real servers:")
        for vs_name, rs in down:
            reasons = "; ".join(f"{c['kind']}: {c['last_reason'] or c['verdict']}" for c in rs["checkers"]
                                if c["verdict"] == "down")
            lines.append(f"  {rs['name']} of {vs_name}: {reasons}")
    return "\n".join(lines)


def _ask_fresh(path: str, status: dict[str, Any], timeout_s: float = 1.5) -> bool:
    """Ask the checker that wrote `status` (SIGUSR1) for a status file with fresh counters; wait a little for it.

    Only the process the file describes is signalled: a pidfd is opened
    first and the process is checked after, so that the signal reaches the
    process that was checked even if the pid is reused meanwhile. Returns
    whether a signal was sent.
    """
    pid = _pid(status)
    if pid is None:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if writer_problem(status) is not None:
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
    except OSError:
        return False
    finally:
        os.close(pidfd)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            if read_status(path)[0].get("time") != status.get("time"):
                break
        except StatusFileError:
            continue
    return True


def _print(text: str) -> bool:
    """Write to stdout; False when the reader went away (`| head`), without a traceback then or at exit."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that this raises no second time
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False
    return True


def status_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="pykeepalived status", description="Show the running checker's table.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 the checker is running; 1 no usable status file; 2 usage; 3 the checker is not "
               "running\n(its pid is gone or is another process; the last table is printed, marked NOT RUNNING); "
               "4 the status\nfile is not trusted (not owned by root, or writable by group/others): nothing is "
               "signalled.\n--json adds \"running\", \"trusted\", \"age_s\" and \"problem\" to the file's "
               "content.")
    p.add_argument("--status-file", default=DEFAULT_STATUS_FILE, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the whole status as JSON, with the liveness marks")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    try:
        status, st = read_status(args.status_file)
        if trust_problem(st) is None and _ask_fresh(args.status_file, status):
            status, st = read_status(args.status_file)
    except StatusFileError as exc:
        print(f"pykeepalived status: {exc}", file=sys.stderr)
        return EXIT_NO_STATUS
    live = liveness(status, st)
    if args.json:
        marked = {**status, "running": live.running, "trusted": live.trusted,
                  "age_s": None if live.age_s is None else round(live.age_s, 3), "problem": live.problem}
        text = json.dumps(marked, indent=1)
    else:
        try:
            text = render(status, live)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            print(f"pykeepalived status: {args.status_file} is not a checker status file "
                  f"({type(exc).__name__}: {exc})", file=sys.stderr)
            return EXIT_NO_STATUS
    _print(text)
    if live.exit_code == EXIT_NOT_RUNNING:
        print(f"pykeepalived status: the checker is not running: {live.problem}", file=sys.stderr)
    elif live.exit_code == EXIT_UNTRUSTED:
        print(f"pykeepalived status: {args.status_file} is not trusted ({live.problem}); not signalled",
              file=sys.stderr)
    return live.exit_code
