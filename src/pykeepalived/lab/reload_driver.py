"""Reloads under load: what the reload chaos test and bench/reload.py both drive and measure.

A reload is judged from outside, as an operator's clients see it: wrk through
the VIP (`WrkLoad`: keep-alive connections and, in parallel, a new connection
per request), who holds the VIPs (`VipWatch`, sampled from the routers'
interfaces), what the routers say on the wire (`WireTap`: VRRP adverts and
gratuitous ARPs heard by a host on each LAN, with the time each arrived), the
daemon's log (`state_entries`, `LogCursor`) and the data plane it programmed
(`nft_real_servers`). `reload_pykeepalived` uses `pykeepalived reload -p
PIDFILE` when this build has that command and falls back to SIGHUP plus the
children's log lines when it has not; `reload_keepalived` signals real
keepalived and waits for its "Reload complete".

`reload_configs` is the sequence both the test and the bench run: unchanged
configs, a real server added, one removed, the master's priority changed (still
above the backup's: no preemption may follow) and a broken config that must
leave everything as it was.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from .lvs_lab import ROUTER_SPECS, LabKind, LvsLab, RouterSpec, render_router_conf
from .netns import LabError, Netns
from .peers import wait_until
from .servers import NginxServer, self_signed
from .topology import Host

CLONE_NEWNET = 0x40000000
ETH_P_ARP = 0x0806
VRRP_PROTO = 112
VRRP_GROUP = "224.0.0.18"
MASTER_SPEC = ROUTER_SPECS[0]
CHANGED_PRIORITY = 120  # still above the backup's 100: a change in place, never a preemption
BROKEN_LINE = "virtual_router_id 300"  # out of 1..255: an error keepalived -t and pykeepalived -t both report
SPARE_HOST = 4  # 10.11.12.4: the real server a reload adds

# keepalived's and our log lines
_STATE = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>BACKUP|MASTER|FAULT) STATE")
PY_FINISHED = re.compile(r"(?P<what>VRRP|checker) reload finished in (?P<ms>[\d.]+) ms")
PY_REFUSED = re.compile(r"(?P<what>VRRP|checker) reload refused: (?P<why>.*)")
PY_PARENT_DONE = re.compile(r"Reload \d+ (?P<outcome>finished|FAILED) in")  # a parent that reloads itself
KA_FINISHED = re.compile(r"^.*: Reload complete$", re.M)


# ----------------------------------------------------------------------------------------------
# Logs


def state_entries(text: str) -> list[tuple[str, str]]:
    """(instance, state) for every "(NAME) Entering STATE STATE" line, in order (keepalived's words and ours)."""
    return [(m.group("name"), m.group("state")) for m in _STATE.finditer(text)]


def entered(text: str, state: str) -> int:
    """How many times any instance entered `state` in this log text."""
    return sum(1 for _, s in state_entries(text) if s == state)


class LogCursor:
    """The part of a growing log file written since `mark()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.mark()

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


# ----------------------------------------------------------------------------------------------
# The configs of the reload sequence


@dataclass(frozen=True)
class ReloadStep:
    """One reload: its name, the config text written before it and what the table must hold after it."""

    name: str
    conf: str
    real_servers: tuple[IPv4Address, ...]  # what the master's table holds once the reload is through
    priority: int  # the master's advertised priority once it is through
    broken: bool = False

    @property
    def expect_ok(self) -> bool:
        return not self.broken


def _with_priority(spec: RouterSpec, priority: int) -> RouterSpec:
    return RouterSpec(spec.name, spec.public_host, spec.private_host, spec.state, priority)


def break_conf(conf: str) -> tuple[str, int]:
    """The config with the first virtual_router_id made 300 (an error); the text and the 1-based line changed."""
    lines = conf.splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("virtual_router_id"):
            lines[number - 1] = line[: len(line) - len(line.lstrip())] + BROKEN_LINE
            return "\n".join(lines) + "\n", number
    raise LabError("no virtual_router_id to break in the config")


def reload_configs(base: Sequence[IPv4Address], spare: IPv4Address, *, unchanged: int = 20,
                   kind: LabKind = LabKind.NAT) -> list[ReloadStep]:
    """The sequence: `unchanged` reloads of the start config, add `spare`, remove the last of `base`,
    the master's priority 150 -> 120, and that last config broken."""
    spec = MASTER_SPEC
    start = tuple(base)
    added = (*start, spare)
    removed = (*start[:-1], spare)
    changed = _with_priority(spec, CHANGED_PRIORITY)
    steps = [ReloadStep(f"unchanged-{i}", render_router_conf(kind, spec, start), start, spec.priority)
             for i in range(1, unchanged + 1)]
    steps.append(ReloadStep("add-real-server", render_router_conf(kind, spec, added), added, spec.priority))
    steps.append(ReloadStep("remove-real-server", render_router_conf(kind, spec, removed), removed, spec.priority))
    prio_conf = render_router_conf(kind, changed, removed)
    steps.append(ReloadStep("change-priority", prio_conf, removed, CHANGED_PRIORITY))
    steps.append(ReloadStep("broken-config", break_conf(prio_conf)[0], removed, CHANGED_PRIORITY, broken=True))
    return steps


def add_spare_real_server(lab: LvsLab, host_number: int = SPARE_HOST) -> NginxServer:
    """One more real server (rs4, nginx on 80 and 443) on the lab's private LAN, not yet in any config.

    Its namespace belongs to the private Lan, so `lab.close()` removes it with
    the others; the caller kills the returned nginx first.
    """
    if lab.private is None:
        raise LabError("the lab is not up")
    host = lab.private.add_host(f"rs{host_number}", host_number)
    if lab.kind is LabKind.NAT:
        host.netns.ip("route", "add", "default", "via", str(lab.private_vip))
    cert, key = self_signed(lab.workdir / "tls-spare", "spare", f"rs{host_number}.lab.example")
    nginx = NginxServer(host, lab.workdir / host.name, addresses=["0.0.0.0"], ports=[80], tls_ports=[443],
                        cert=cert, key=key, name=host.name)
    nginx.start()
    return nginx


# ----------------------------------------------------------------------------------------------
# The data plane


def _addresses_in(node: Any, into: set[IPv4Address]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _addresses_in(value, into)
    elif isinstance(node, list):
        for value in node:
            _addresses_in(value, into)
    elif isinstance(node, str):
        try:
            into.add(IPv4Address(node))
        except ValueError:
            pass


def nft_real_servers(ns: Netns, table: str = "pykeepalived_lvs") -> dict[str, set[IPv4Address]]:
    """Service chain -> the addresses its dnat statements send new connections to (`nft -j list table`).

    A service's chain and its per-server sub-chains (`vs-FWM_80-1`) are counted as one.
    """
    out = ns.run(["nft", "-j", "list", "table", "ip", table], check=False)
    if out.returncode != 0:
        raise LabError(f"nft list table ip {table}: {out.stderr.strip()}")
    chains: dict[str, set[IPv4Address]] = {}
    for obj in json.loads(out.stdout).get("nftables", []):
        rule = obj.get("rule")
        if not rule or not str(rule.get("chain", "")).startswith("vs-"):
            continue
        dnats = [e["dnat"] for e in rule.get("expr", []) if isinstance(e, dict) and "dnat" in e]
        if not dnats:
            continue
        chain = str(rule["chain"])
        service = re.sub(r"-\d+$", "", chain) if chain.startswith("vs-FWM_") else chain
        found = chains.setdefault(service, set())
        _addresses_in(dnats, found)
    return chains


def status_real_servers(status: dict[str, Any]) -> dict[str, set[IPv4Address]]:
    """Service name -> addresses of its alive real servers in the table the checker's status file shows."""
    result: dict[str, set[IPv4Address]] = {}
    for svc in status.get("table", {}).get("services", []):
        result[str(svc["name"])] = {IPv4Address(str(d["address"])) for d in svc.get("destinations", [])
                                    if d.get("alive")}
    return result


# ----------------------------------------------------------------------------------------------
# Reloading


@dataclass
class ReloadOutcome:
    """What one reload did: accepted or refused, how long it took, what the command or the log said."""

    step: str
    ok: bool
    via: str  # "command", "sighup" or "keepalived-sighup"
    seconds: float  # signal (or command start) -> the daemon's "reload finished" lines seen
    exit_code: int | None = None
    output: str = ""
    log: str = ""


def has_reload_command(python: str = sys.executable) -> bool:
    """Whether this pykeepalived has `pykeepalived reload` (its own usage line, not the main parser's)."""
    proc = subprocess.run([python, "-m", "pykeepalived", "reload", "--help"], capture_output=True, text=True,
                          timeout=30, check=False)
    usage = (proc.stdout + proc.stderr).lstrip().splitlines()[:1]
    return proc.returncode == 0 and bool(usage) and usage[0].startswith("usage: pykeepalived reload")


def _wait_lines(cursor: LogCursor, done: Callable[[str], bool], timeout_s: float,
                started: float) -> tuple[str, float, bool]:
    """Poll the log every 5 ms until `done(text)`: (text, seconds since `started`, whether it was done)."""
    deadline = started + timeout_s
    while True:
        text = cursor.since()
        if done(text):
            return text, time.monotonic() - started, True
        if time.monotonic() >= deadline:
            return text, time.monotonic() - started, False
        time.sleep(0.005)


def _children_done(text: str, children: int) -> bool:
    finished = {m.group("what") for m in PY_FINISHED.finditer(text)}
    refused = {m.group("what") for m in PY_REFUSED.finditer(text)}
    return len(finished | refused) >= children


def names_file_line(text: str, conf_path: Path) -> bool:
    """Whether `text` names a line of `conf_path`: FILE:LINE (ours) or keepalived's "(FILE: Line N)"."""
    return re.search(re.escape(str(conf_path)) + r"(?::| *: Line )\d+", text) is not None


def reload_pykeepalived(ns: Netns, pid_file: Path, log_path: Path, step: str, *, use_command: bool,
                        parent_reports: bool = False, conf_path: Path | None = None, children: int = 2,
                        timeout_s: float = 20.0) -> ReloadOutcome:
    """Reload the pykeepalived whose parent wrote `pid_file`; ok is the daemon's verdict.

    With the command: `pykeepalived reload -p PIDFILE` (exit 0 applied, else
    refused); `seconds` is its wall time (an interpreter start included), then
    the log is read for both children's result lines. Without: SIGHUP to the
    parent, then wait until both children (`children`) logged "reload
    finished" or "reload refused"; `seconds` runs from the signal to the last
    of them, or, with `parent_reports` (a parent that reloads itself and logs
    "Reload N finished/FAILED"), to that line. A parent that refuses a config
    itself forwards nothing: when the log names `conf_path` as FILE:LINE and
    no child has answered 1 s later, the reload counts as refused.
    """
    cursor = LogCursor(log_path)
    started = time.monotonic()
    if use_command:
        try:
            proc = ns.run([sys.executable, "-m", "pykeepalived", "reload", "-p", str(pid_file)], check=False,
                          timeout_s=timeout_s)
        except LabError as exc:  # no answer in time: a failed reload, for the caller to report
            return ReloadOutcome(step, False, "command", time.monotonic() - started, None, str(exc), cursor.since())
        seconds = time.monotonic() - started
        text = cursor.since()
        if proc.returncode == 0:  # the children log before they report to the parent; allow for a slow write
            text, _, _ = _wait_lines(cursor, lambda t: _children_done(t, children), 2.0, time.monotonic())
        return ReloadOutcome(step, proc.returncode == 0, "command", seconds, proc.returncode,
                             proc.stdout + proc.stderr, text)
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGHUP)
    refused_at: list[float] = []

    def done(text: str) -> bool:
        if parent_reports:
            return PY_PARENT_DONE.search(text) is not None
        if _children_done(text, children):
            return True
        if conf_path is not None and names_file_line(text, conf_path):
            refused_at[:1] = refused_at[:1] or [time.monotonic()]
            return time.monotonic() - refused_at[0] > 1.0
        return False

    text, seconds, _ = _wait_lines(cursor, done, timeout_s, started)
    if parent_reports:
        parent = PY_PARENT_DONE.search(text)
        return ReloadOutcome(step, parent is not None and parent.group("outcome") == "finished", "sighup", seconds,
                             None, "", text)
    finished = {m.group("what") for m in PY_FINISHED.finditer(text)}
    ok = not PY_REFUSED.search(text) and len(finished) >= children
    if not _children_done(text, children) and refused_at:
        seconds = refused_at[0] - started
    return ReloadOutcome(step, ok, "sighup", seconds, None, "", text)


def reload_keepalived(pid_file: Path, log_path: Path, step: str, timeout_s: float = 10.0) -> ReloadOutcome:
    """SIGHUP keepalived's parent and wait for its VRRP child's "Reload complete" (or the child's end)."""
    cursor = LogCursor(log_path)
    started = time.monotonic()
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGHUP)

    def done(text: str) -> bool:
        return bool(KA_FINISHED.search(text)) or "Stopping" in text or "exited" in text

    text, seconds, _ = _wait_lines(cursor, done, timeout_s, started)
    return ReloadOutcome(step, bool(KA_FINISHED.search(text)), "keepalived-sighup", seconds, None, "", text)


# ----------------------------------------------------------------------------------------------
# Load through the VIP


WRK_DELAY_LUA = "function delay()\n  return {ms}\nend\n"


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests, socket errors and non-2xx answers from wrk's summary."""
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if not total:
        raise LabError(f"cannot read wrk's output:\n{output[-1500:]}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()))) if errors \
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    bad = int(non_2xx[1]) if non_2xx else 0
    return {"requests": int(total[1]), "socket_errors": socket_errors, "non_2xx": bad,
            "failed": sum(socket_errors.values()) + bad}


@dataclass
class WrkRun:
    style: str  # "keepalive" or "new_conn"
    proc: subprocess.Popen[bytes]
    out_path: Path
    result: dict[str, Any] = field(default_factory=dict)


class WrkLoad:
    """wrk in the client, for as long as it runs: keep-alive connections and new-connection-per-request ones.

    Each connection waits `delay_ms` between its requests (wrk's Lua `delay`),
    so the load leaves the two cores room for the routers' daemons; 0 is as
    fast as wrk goes. `stop()` sends SIGINT, on which wrk prints its summary.
    """

    def __init__(self, client: Netns, url: str, workdir: Path, *, keepalive_connections: int = 8,
                 new_conn_connections: int = 4, delay_ms: int = 1, timeout_s: float = 2.0) -> None:
        self.client, self.url, self.workdir = client, url, workdir
        self.styles = {"keepalive": (keepalive_connections, []),
                       "new_conn": (new_conn_connections, ["-H", "Connection: close"])}
        self.delay_ms, self.timeout_s = delay_ms, timeout_s
        self.runs: list[WrkRun] = []
        self.started = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        script: list[str] = []
        if self.delay_ms > 0:
            path = self.workdir / "delay.lua"
            path.write_text(WRK_DELAY_LUA.format(ms=self.delay_ms))
            script = ["-s", str(path)]
        self.started = time.monotonic()
        for style, (connections, extra) in self.styles.items():
            if connections <= 0:
                continue
            out_path = self.workdir / f"wrk-{style}.out"
            argv = ["wrk", "-t", "1", "-c", str(connections), "-d", "3600s", "--timeout", f"{self.timeout_s:g}s",
                    *script, *extra, self.url]
            with open(out_path, "wb") as out:
                proc = self.client.popen(argv, stdout=out, stderr=subprocess.STDOUT)
            self.runs.append(WrkRun(style, proc, out_path))
        time.sleep(0.5)
        for run in self.runs:
            if run.proc.poll() is not None:
                raise LabError(f"wrk ({run.style}) exited at once:\n{run.out_path.read_text(errors='replace')}")

    def stop(self) -> dict[str, dict[str, Any]]:
        """SIGINT every wrk, wait for its summary; style -> parse_wrk's dict."""
        self.seconds = time.monotonic() - self.started
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.send_signal(signal.SIGINT)
        for run in self.runs:
            try:
                run.proc.wait(10)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait(5)
            run.result = parse_wrk(run.out_path.read_text(errors="replace"))
        return {run.style: run.result for run in self.runs}

    def kill(self) -> None:
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait(5)


# ----------------------------------------------------------------------------------------------
# Who holds the VIPs


class VipWatch:
    """Samples which routers hold `vip` every `interval_s` in a thread; a move is any change of the holder set."""

    def __init__(self, routers: dict[str, Netns], vip: IPv4Address, interval_s: float = 0.1) -> None:
        self.routers, self.vip, self.interval_s = routers, vip, interval_s
        self.samples = 0
        self.changes: list[tuple[float, tuple[str, ...]]] = []  # (monotonic time, holders) at each change
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vip-watch", daemon=True)

    def holders(self) -> tuple[str, ...]:
        held = []
        for name, ns in self.routers.items():
            for link in ns.ip_json("-4", "addr", "show"):
                if any(a.get("local") == str(self.vip) for a in link.get("addr_info", [])):
                    held.append(name)
                    break
        return tuple(held)

    def start(self) -> None:
        self.changes.append((time.monotonic(), self.holders()))
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                now = self.holders()
            except (LabError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                self.errors.append(str(exc))
                continue
            self.samples += 1
            if now != self.changes[-1][1]:
                self.changes.append((time.monotonic(), now))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def moves(self) -> int:
        return len(self.changes) - 1


# ----------------------------------------------------------------------------------------------
# The wire


@dataclass(frozen=True)
class WireEvent:
    at: float  # time.monotonic() when it was read
    kind: str  # "advert" or "garp"
    source: str  # the sender's IPv4 address
    vrid: int = 0
    priority: int = 0
    address: str = ""  # the GARP's address


def _socket_in(netns: str, family: int, kind: int, proto: int) -> socket.socket:
    """A socket made inside `netns` (setns for this thread only, and back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            return socket.socket(family, kind, proto)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class WireTap:
    """VRRP adverts and gratuitous ARPs as a host on one LAN hears them, with their arrival times.

    A raw protocol-112 socket joined to 224.0.0.18 and a packet socket for ARP
    only, both on the host's interface; a thread reads them until `stop()`.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.events: list[WireEvent] = []
        self._stop = threading.Event()
        ns, ifname = host.netns.name, host.ifname
        self._vrrp = _socket_in(ns, socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
        mreq = socket.inet_aton(VRRP_GROUP) + socket.inet_aton(str(host.ipv4.ip))
        self._vrrp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self._arp = _socket_in(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self._arp.bind((ifname, ETH_P_ARP))
        self._thread = threading.Thread(target=self._run, name=f"tap-{host.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        socks = [self._vrrp, self._arp]
        while not self._stop.is_set():
            ready, _, _ = select.select(socks, [], [], 0.1)
            now = time.monotonic()
            for sock in ready:
                data = sock.recv(2048)
                event = self._vrrp_event(data, now) if sock is self._vrrp else self._garp_event(data, now)
                if event is not None:
                    self.events.append(event)

    @staticmethod
    def _vrrp_event(data: bytes, now: float) -> WireEvent | None:
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 8:
            return None
        src = socket.inet_ntoa(data[12:16])
        return WireEvent(now, "advert", src, vrid=data[ihl + 1], priority=data[ihl + 2])

    @staticmethod
    def _garp_event(data: bytes, now: float) -> WireEvent | None:
        if len(data) < 42:
            return None
        _htype, ptype, _hlen, plen, _op = struct.unpack("!HHBBH", data[14:22])
        if ptype != 0x0800 or plen != 4:
            return None
        spa, tpa = data[28:32], data[38:42]
        if spa != tpa:
            return None
        address = socket.inet_ntoa(spa)
        return WireEvent(now, "garp", address, address=address)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._vrrp.close()
        self._arp.close()

    def adverts(self, source: str | None = None, since: float = 0.0, until: float = float("inf")) -> list[WireEvent]:
        return [e for e in self.events if e.kind == "advert" and (source is None or e.source == source)
                and since <= e.at < until]

    def garps(self, since: float = 0.0, until: float = float("inf"),
              addresses: Iterable[str] | None = None) -> list[WireEvent]:
        wanted = set(addresses) if addresses is not None else None
        return [e for e in self.events if e.kind == "garp" and since <= e.at < until
                and (wanted is None or e.address in wanted)]


def advert_rhythm(times: Sequence[float], advert_int_s: float = 1.0) -> dict[str, Any]:
    """How regular a master's adverts were: rate, and gaps much shorter (extra) or longer (late) than advert_int."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "adverts": len(times),
        "per_s": round((len(times) - 1) / span, 3) if span > 0 else None,
        "extra": sum(1 for g in gaps if g < 0.75 * advert_int_s),
        "late": sum(1 for g in gaps if g > 1.5 * advert_int_s),
        "min_gap_s": round(min(gaps), 3) if gaps else None,
        "max_gap_s": round(max(gaps), 3) if gaps else None,
    }


def wait_table(read: Callable[[], dict[str, set[IPv4Address]]], want: dict[str, set[IPv4Address]],
               timeout_s: float) -> tuple[float | None, dict[str, set[IPv4Address]]]:
    """Seconds until `read()` showed `want` (0.0: at the first look; None: never within timeout_s) and the last view."""
    started = time.monotonic()
    last: dict[str, set[IPv4Address]] = {}

    def matches() -> bool:
        nonlocal last
        try:
            last = read()
        except (OSError, ValueError, KeyError, TypeError, LabError):
            return False
        return all(last.get(k) == v for k, v in want.items())

    if matches():
        return 0.0, last
    try:
        wait_until(matches, timeout_s, interval_s=0.05)
    except LabError:
        return None, last
    return round(time.monotonic() - started, 3), last
