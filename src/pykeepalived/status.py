"""`pykeepalived status`: the running daemon's state (VRRP and the virtual servers), as text or JSON.

The parent writes the state document (docs/state.md; daemon/state_feed.py)
to a file beside its pid file, `<pid file stem>.state.json`, rewritten on
every change (at most five times a second), so this command needs no
connection to the daemon and works from any shell in the router's
namespace; `-p` names the pid file (keepalived's, /run/keepalived.pid, by
default) and `--state-file` the file itself. A checker run alone (-C, no
parent) writes only its own status file (`--status-file`, today's format,
the ipvsadm-like table); without a parent's state file, or when only
`--status-file` is given, that is shown instead, and then a running checker
is asked (SIGUSR1) for fresh connection counters first.

A file is believed only if it is owned by root (or by us) and writable by
nobody else, and its writer is judged running only if the process it names
has the start time and boot id the file records and is a pykeepalived
(host/proc.py): a stale file whose pid the kernel gave to another process
must neither look running nor get that process signalled (SIGUSR1's default
action terminates).

Exit status (as an LSB init script's `status`): 0 the daemon (or the checker)
is running; 1 no usable status file; 2 usage; 3 not running (what is printed
is its last known state; also when no file exists at all); 4 the file is not
trusted (owner or mode), so whether it runs is unknown and nothing was
signalled.
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
from .daemon.paths import DEFAULT_PID_FILE, DEFAULT_STATUS_FILE, state_path
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


def read_status(path: str, what: str = "the checker (pykeepalived -C)") -> tuple[dict[str, Any], os.stat_result]:
    """The status file's JSON object and the stat() of what was read, never blocking (not even on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StatusFileError(f"{path} not found: is {what} running?") from None
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
    if isinstance(bgp := status.get("bgp"), dict):
        lines.insert(1, bgp_line(bgp))
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


def bgp_line(bgp: dict[str, Any]) -> str:
    """pykeepalived_bgp in one line: what is announced, and why not what is wanted."""
    announced = " ".join(bgp.get("announced") or []) or "nothing"
    held = sorted(set(bgp.get("wanted") or []) - set(bgp.get("announced") or []))
    line = f"BGP (bgpd pid {bgp.get('pid') or '-'}): announcing {announced}"
    if held:
        line += f"; not yet: {' '.join(held)}"
    if bgp.get("error"):
        line += f"; ERROR: {bgp['error']}"
    return line


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


# ---------------------------------------------------------------------------------------------- the daemon's state
def state_liveness(doc: dict[str, Any], st: os.stat_result, now: float | None = None) -> Liveness:
    """Whether the parent that wrote the state document is trusted and still runs."""
    daemon = doc.get("daemon") if isinstance(doc.get("daemon"), dict) else {}
    assert isinstance(daemon, dict)
    written = doc.get("written_at")
    age = (max(0.0, (time.time() if now is None else now) - written)
           if isinstance(written, int | float) and not isinstance(written, bool) else None)
    if (distrust := trust_problem(st)) is not None:
        return Liveness(False, False, distrust, age)
    pid = _pid(daemon)
    if pid is None:
        return Liveness(True, False, "the state file names no process", age)
    problem = identity_problem(pid, daemon.get("pid_start_ticks"), daemon.get("boot_id"))
    if problem is None and daemon.get("running") is False:
        problem = "it was stopping when it last wrote"
    return Liveness(True, problem is None, problem, age)


def _clock(at: object) -> str:
    if not isinstance(at, int | float) or isinstance(at, bool) or at <= 0:
        return "?"
    return time.strftime("%H:%M:%S", time.localtime(at))


def _vrrp_lines(vrrp: dict[str, Any]) -> list[str]:
    lines = ["VRRP instance    State   Prio     Master            Interface  VIPs"]
    for inst in vrrp.get("instances", []):
        prio = f"{inst.get('effective_priority')}/{inst.get('priority')}"
        flags = []
        if inst.get("wanted_state") not in (None, inst.get("state")):
            flags.append(f"wants {inst['wanted_state']}")
        if (inst.get("runtime") or {}).get("maintenance"):
            flags.append("MAINTENANCE")
        if inst.get("faults"):
            flags.append("faults: " + ", ".join(inst["faults"]))
        last = (inst.get("transitions") or [None])[-1]
        since = f" since {_clock(inst.get('since'))}"
        why = f" ({last['reason']})" if last and last.get("reason") else ""
        lines.append(f"{str(inst.get('name')):<16} {str(inst.get('state')):<7} {prio:<8} "
                     f"{str(inst.get('master_address') or '-'):<17} {str(inst.get('interface') or '-'):<10} "
                     f"{' '.join(inst.get('vips', [])) or '-'}")
        lines.append(f"  {since.strip()}{why}" + (f"; {'; '.join(flags)}" if flags else ""))
    for group in vrrp.get("sync_groups", []):
        lines.append(f"Sync group {group.get('name')}: {group.get('state')} ({', '.join(group.get('instances', []))})")
    return lines


def _checker_lines(checker: dict[str, Any]) -> list[str]:
    lines = [f"Virtual servers (data plane {checker.get('dataplane')}"
             + ("" if checker.get("applied", True) else ", last change NOT applied") + ")"]
    if checker.get("dataplane_error"):
        lines.append(f"DATA PLANE FAILING: {checker['dataplane_error']}")
    if isinstance(bgp := checker.get("bgp"), dict):
        lines.append(bgp_line(bgp))
    lines.append("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State")
    down: list[str] = []
    for vs in checker.get("virtual_servers", []):
        flags = [str(vs.get("scheduler"))]
        if vs.get("persistence_timeout_s"):
            flags.append(f"persistent {vs['persistence_timeout_s']}")
        if not vs.get("quorum_up", True):
            flags.append("[quorum down]")
        if (vs.get("runtime") or {}).get("out"):
            flags.append("[OUT]")
        stats = vs.get("stats")
        if stats:
            flags.append(f"{stats.get('connections_per_s', 0.0):g} conn/s")
        lines.append(f"{vs.get('name')} {' '.join(flags)}")
        for rs in vs.get("real_servers", []):
            rstats = rs.get("stats") or {}
            runtime = rs.get("runtime") or {}
            state = "up" if rs.get("healthy") else "DOWN"
            if runtime.get("drained"):
                state += " (drained)"
            lines.append(f"  -> {str(rs.get('name')):<28} {METHODS.get(vs.get('lb_kind'), vs.get('lb_kind')):<7} "
                         f"{rs.get('effective_weight')!s:<6} {rstats.get('active_connections', '-')!s:<10} "
                         f"{rstats.get('inactive_connections', '-')!s:<9} {state}")
            if not rs.get("healthy"):
                reasons = "; ".join(f"{c.get('kind')}: {c.get('last_reason') or c.get('verdict')}"
                                    for c in rs.get("checkers", []) if c.get("verdict") == "down")
                down.append(f"  {rs.get('name')} of {vs.get('name')}: {reasons or 'down'}")
    if down:
        lines += ["Failed real servers:", *down]
    return lines


def render_state(doc: dict[str, Any], live: Liveness) -> str:
    """The state document for a person: the daemon, its children, VRRP, the virtual servers, recent events."""
    daemon = doc.get("daemon") or {}
    lines = [f"pykeepalived pid {daemon.get('pid')}, config {daemon.get('config_file')} "
             f"(loaded {_clock(daemon.get('config_loaded_at'))}){live.mark()}"]
    last = daemon.get("last_reload")
    if last:
        lines.append(f"last reload {'ok' if last.get('ok') else 'FAILED'} at {_clock(last.get('at'))}"
                     + ("" if last.get("ok") or not last.get("problems") else f": {last['problems'][0]}"))
    for name, child in (daemon.get("children") or {}).items():
        if not child.get("running"):
            lines.append(f"{name} child NOT RUNNING ({child.get('last_exit') or 'stopped'}): its last state is shown")
    if isinstance(doc.get("vrrp"), dict):
        lines += _vrrp_lines(doc["vrrp"])
    if isinstance(doc.get("checker"), dict):
        lines += _checker_lines(doc["checker"])
    events = doc.get("events") or []
    if events:
        lines.append("Recent events:")
        lines += [f"  {_clock(e.get('at'))} {e.get('kind')}: {e.get('subject')}: {e.get('text')}" for e in events[-5:]]
    return "\n".join(lines)


def _with_marks(doc: dict[str, Any], live: Liveness) -> str:
    marked = {**doc, "running": live.running, "trusted": live.trusted,
              "age_s": None if live.age_s is None else round(live.age_s, 3), "problem": live.problem}
    return json.dumps(marked, indent=1)


def _finish(text: str, live: Liveness, path: str, who: str) -> int:
    _print(text)
    if live.exit_code == EXIT_NOT_RUNNING:
        print(f"pykeepalived status: {who} is not running: {live.problem}", file=sys.stderr)
    elif live.exit_code == EXIT_UNTRUSTED:
        print(f"pykeepalived status: {path} is not trusted ({live.problem}); not signalled", file=sys.stderr)
    return live.exit_code


def _state_status(path: str, as_json: bool) -> int:
    try:
        doc, st = read_status(path, "pykeepalived")
    except StatusFileError as exc:
        print(f"pykeepalived status: {exc}", file=sys.stderr)
        return EXIT_NO_STATUS
    live = state_liveness(doc, st)
    if as_json:
        text = _with_marks(doc, live)
    else:
        try:
            text = render_state(doc, live)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            print(f"pykeepalived status: {path} is not a state file ({type(exc).__name__}: {exc})", file=sys.stderr)
            return EXIT_NO_STATUS
    return _finish(text, live, path, "pykeepalived")


def _checker_status(path: str, as_json: bool) -> int:
    try:
        status, st = read_status(path)
        if trust_problem(st) is None and _ask_fresh(path, status):
            status, st = read_status(path)
    except StatusFileError as exc:
        print(f"pykeepalived status: {exc}", file=sys.stderr)
        return EXIT_NO_STATUS
    live = liveness(status, st)
    if as_json:
        text = _with_marks(status, live)
    else:
        try:
            text = render(status, live)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            print(f"pykeepalived status: {path} is not a checker status file "
                  f"({type(exc).__name__}: {exc})", file=sys.stderr)
            return EXIT_NO_STATUS
    return _finish(text, live, path, "the checker")


def _api_status(api: str, as_json: bool, timeout_s: float = 5.0) -> int:
    """GET /api/v1/state from the daemon's HTTP API on a unix socket (`--api unix:PATH`)."""
    import http.client

    from .ctl import UnixHTTPConnection  # the runtime API client's: HTTP over the API's unix socket

    if not api.startswith("unix:"):
        print("pykeepalived status: --api takes unix:PATH (the TCP API needs a token: use curl)", file=sys.stderr)
        return EXIT_USAGE
    conn = UnixHTTPConnection(api[len("unix:"):], timeout_s)
    try:
        conn.request("GET", "/api/v1/state")
        reply = conn.getresponse()
        body = reply.read(MAX_STATUS_BYTES + 1)
        if reply.status != 200:
            print(f"pykeepalived status: {api}: HTTP {reply.status} {reply.reason}", file=sys.stderr)
            return EXIT_NO_STATUS
        doc = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        print(f"pykeepalived status: {api}: {exc}; is pykeepalived running with --api {api}?", file=sys.stderr)
        return EXIT_NOT_RUNNING
    finally:
        conn.close()
    if not isinstance(doc, dict):
        print(f"pykeepalived status: {api} did not answer a state document", file=sys.stderr)
        return EXIT_NO_STATUS
    live = Liveness(True, True, None, None)  # it answered: it runs (the socket is root's, 0600)
    return _finish(_with_marks(doc, live) if as_json else render_state(doc, live), live, api, "pykeepalived")


def status_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="pykeepalived status", description="Show the running daemon's VRRP instances and virtual servers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit status: 0 running; 1 no usable status file; 2 usage; 3 not running (its pid is gone or is "
               "another\nprocess, or no state file exists; the last known state is printed, marked NOT RUNNING); "
               "4 the file\nis not trusted (not owned by root, or writable by group/others): nothing is signalled."
               "\n--json prints the state document (docs/state.md) with \"running\", \"trusted\", \"age_s\" "
               "and \"problem\" added.")
    p.add_argument("-p", "--pid-file", "--pid", dest="pid_file", default=None, metavar="FILE",
                   help=f"the daemon's pid file (default {DEFAULT_PID_FILE}); its state file is beside it")
    p.add_argument("--state-file", default=None, metavar="FILE", help="the daemon's state file itself")
    p.add_argument("--status-file", default=None, metavar="FILE",
                   help=f"a checker's status file (-C without a parent; default {DEFAULT_STATUS_FILE})")
    p.add_argument("--api", default=None, metavar="unix:PATH",
                   help="ask the daemon's HTTP API (GET /api/v1/state) on this unix socket instead of reading a file")
    p.add_argument("--json", action="store_true", help="print the whole state as JSON, with the liveness marks")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.api is not None:
        return _api_status(args.api, args.json)
    if args.state_file is None and args.status_file is not None and args.pid_file is None:
        return _checker_status(args.status_file, args.json)  # a checker alone, named explicitly
    state_file = args.state_file or state_path(args.pid_file or DEFAULT_PID_FILE)
    if args.state_file is not None or os.path.lexists(state_file):
        return _state_status(state_file, args.json)
    checker_file = args.status_file or DEFAULT_STATUS_FILE
    if os.path.lexists(checker_file):
        return _checker_status(checker_file, args.json)
    print(f"pykeepalived status: pykeepalived is not running ({state_file} and {checker_file} not found)",
          file=sys.stderr)
    return EXIT_NOT_RUNNING
