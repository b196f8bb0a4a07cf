"""Health checking at scale: 5,000 TCP_CHECK and 1,000 HTTP_GET real servers, delay_loop 1 s.

What is measured, for pykeepalived's checker (`pykeepalived -C`) and, as the
anchor in the same run, for HAProxy 2.6 doing the same health checks against
the same servers (real keepalived's checker cannot run here: it exits without
IPVS in the kernel):

* checks per second achieved over a steady window: SYNs received by the
  listeners' namespace (an nftables counter there) - the one count that is
  neutral between them, since their TCP checks are half-open (SYN, SYN-ACK,
  RST: the server never accepts them) and pykeepalived's SYN probes
  (--pk-syn-probe) open no connection on the checker's side (a SYN sent again
  after a loss counts twice; none are lost here). For pykeepalived its own per-checker `attempts` counters
  (status file) are reported beside it;
* CPU of the checker process over that window (utime + stime from
  /proc/PID/stat, all threads), as % of one core, and of the listeners;
* peak memory (VmHWM) and the most file descriptors seen open;
* the time from a server's death (its listening socket closed: connects get
  RST at once) to its removal ("Removing service ..." / "Server ... is DOWN"),
  for 100 TCP and 50 HTTP servers killed at one instant: median, p99, max,
  against the bound delay_loop + connect_timeout x (retry + 1) +
  delay_before_retry x retry. Also first failure -> removal (should be
  delay_before_retry: the excess is scheduling lag under load) and, once the
  servers listen again, the time to "Adding service" / "is UP".

Setup: a Lan with two namespaces, `lb` (the checker) and `srv` (one process,
bench/listeners.py, listening on 5,000 accept-and-close TCP ports 20000+ and
1,000 HTTP ports 30000+ of one address). The two checkers run one after the
other, not together, so neither steals CPU from the other; the listeners stay
the same. Timers: delay_loop 1, connect_timeout 2, retry 1, delay_before_retry
1 (bound 6 s), warmup = delay_loop; HAProxy: inter 1s fastinter 1s fall 2
rise 1, timeout connect/check 2s - the same schedule.

The kernel's share is not the same by default: pykeepalived's nftables table
(`--pk-dataplane auto`, as users run it) registers nat hooks in the checker's
namespace, so the checks' own packets go through conntrack, while HAProxy
runs in a namespace with no table. `--fair-pairs` adds two contenders to the
same run: HAProxy with pykeepalived's table loaded into its namespace (the
ruleset pykeepalived had in force during its steady window, `nft list
ruleset`, loaded as it was), and pykeepalived with `--dataplane none`. The
JSON then has, beside the default `ratio` (pykeepalived with its table /
HAProxy without one), `ratio_same_table` (both with the table: both pay
conntrack) and `ratio_no_table` (neither has one).

`--pk-daemon` runs pykeepalived whole, as `pykeepalived` runs by default: a
parent, which keeps the state model (docs/state.md), and the checker as its
child, feeding it; CPU and memory are summed over both. Without it the
checker runs alone (`-C`), which is what HAProxy's checks compare with.

`--pk-notrack` sets global_defs pykeepalived_checker_notrack: pykeepalived's
table then keeps its own checks out of conntrack (docs/checkers.md). With
`--fair-pairs` a fifth contender, pykeepalived with its table and the checks
tracked, gives `ratio_tracked` and `ratio_tracked_same_table`; the ruleset
loaded under HAProxy leaves out the two chains that untrack marked sockets.
pykeepalived's TCP_CHECKs are SYN probes through a raw socket, its default
(global_defs pykeepalived_syn_probe, docs/checkers.md); `--pk-connect` writes
`pykeepalived_syn_probe off` (a connect per check). `--pk-syn-probe` is
accepted and changes nothing (it was needed before SYN probes were the
default).

Prints one JSON document. Needs root and haproxy. The default run takes about
two minutes, `--fair-pairs` about four; `--quick` (200 TCP + 50 HTTP) about 40 s.

    cd /work/main && .venv/bin/python bench/checks.py [--tcp 5000] [--http 1000] [--window 20]
        [--settle 10] [--kill-tcp 100] [--kill-http 50] [--only pykeepalived|haproxy] [--quick] [--logs DIR]
        [--pk-dataplane auto|none] [--pk-notrack] [--pk-connect] [--pk-daemon] [--profile FILE] [--fair-pairs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import queue
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from pykeepalived.lab import LabError, Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon
from pykeepalived.lab.topology import Host

HERE = Path(__file__).resolve().parent
LISTENERS = HERE / "listeners.py"
TCP_BASE = 20000
HTTP_BASE = 30000
VIP = "192.0.2.200"
LB_HOST, SRV_HOST = 1, 20
NOFILE_WANT = 65536
IMPLEMENTATIONS = ("pykeepalived", "haproxy")
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.1


@dataclass(frozen=True)
class Timers:
    """The checkers' schedule, the same for both implementations."""

    delay_loop_s: float = 1.0
    connect_timeout_s: float = 2.0
    retry: int = 1
    delay_before_retry_s: float = 1.0

    def bound_s(self) -> float:
        """The latest a removal may come after a death (the issue's formula)."""
        return self.delay_loop_s + self.connect_timeout_s * (self.retry + 1) + self.delay_before_retry_s * self.retry


# ----------------------------------------------------------------------------------------------
# configs


def pykeepalived_config(addr: str, tcp_ports: list[int], http_ports: list[int], t: Timers,
                        notrack: bool = False, syn_probe: bool = True) -> str:
    """Two virtual servers, one per checker kind; every failure is logged (checker_log_all_failures).

    `notrack`: global_defs pykeepalived_checker_notrack (the checks' own connections out of conntrack).
    `syn_probe`: global_defs pykeepalived_syn_probe on (TCP_CHECK through a raw socket, the default) or off.

    Logging every failure gives the time of each killed server's first failed
    attempt, so that first failure -> removal (which should be
    delay_before_retry) shows how late the retry ran under load.
    """
    timers = (f"      connect_timeout {t.connect_timeout_s:g}\n      retry {t.retry}\n"
              f"      delay_before_retry {t.delay_before_retry_s:g}\n")
    extra = ("  pykeepalived_checker_notrack\n" if notrack else "") \
        + f"  pykeepalived_syn_probe {'on' if syn_probe else 'off'}\n"
    parts = [f"global_defs {{\n  router_id bench_checks\n  checker_log_all_failures\n{extra}}}\n"]
    for vport, ports, check in ((80, tcp_ports, "TCP_CHECK {\n" + timers + "    }\n"),
                                (8080, http_ports, "HTTP_GET {\n      url {\n        path /\n        status_code 200\n"
                                                   "      }\n" + timers + "    }\n")):
        if not ports:
            continue
        parts.append(f"virtual_server {VIP} {vport} {{\n  delay_loop {t.delay_loop_s:g}\n  lb_algo rr\n"
                     "  lb_kind NAT\n  protocol TCP\n")
        parts += [f"  real_server {addr} {port} {{\n    weight 1\n    {check}  }}\n" for port in ports]
        parts.append("}\n")
    return "".join(parts)


def haproxy_config(addr: str, tcp_ports: list[int], http_ports: list[int], t: Timers) -> str:
    """The same servers and schedule for HAProxy: inter = delay_loop, fastinter = delay_before_retry, fall = retry + 1.

    HAProxy will not start without a listener, hence the frontend on the lb
    namespace's loopback (nothing connects to it). Logs go to stdout in RFC
    5424 form, which carries microsecond timestamps. One thread: like
    pykeepalived's single event loop, and with two threads HAProxy drops a log
    line now and then (a thread that finds the log fd busy skips its line),
    which would lose a removal.
    """
    ms = {k: int(v * 1000) for k, v in (("inter", t.delay_loop_s), ("fast", t.delay_before_retry_s),
                                          ("conn", t.connect_timeout_s))}
    lines = [
        "global",
        "  log stdout format rfc5424 local0",
        "  maxconn 4096",
        "  nbthread 1",
        "defaults",
        "  log global",
        f"  timeout connect {ms['conn']}ms",
        f"  timeout check {ms['conn']}ms",
        "  timeout client 10s",
        "  timeout server 10s",
        f"  default-server inter {ms['inter']}ms fastinter {ms['fast']}ms downinter {ms['inter']}ms "
        f"fall {t.retry + 1} rise 1",
        "frontend fe_unused",
        "  mode tcp",
        "  bind 127.0.0.1:9",
        "  default_backend bk_tcp" if tcp_ports else "  default_backend bk_http",
    ]
    if tcp_ports:
        lines += ["backend bk_tcp", "  mode tcp", "  option log-health-checks"]
        lines += [f"  server t{p} {addr}:{p} check" for p in tcp_ports]
    if http_ports:
        lines += ["backend bk_http", "  mode http", "  option log-health-checks", "  option httpchk GET /",
                  "  http-check expect status 200"]
        lines += [f"  server h{p} {addr}:{p} check" for p in http_ports]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# /proc


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (pykeepalived's checker worker processes are its children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process and its descendants (every thread), in seconds."""
    total = 0.0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def one_status_kib(pid: int, key: str) -> int | None:
    """`key` (VmRSS, VmHWM...) of one process, in KiB; None if it is gone or has no such line."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_status_kib(pid: int, key: str) -> int:
    """The sum of `key` (VmRSS, VmHWM...) over the process and its descendants."""
    found = [kib for p in process_tree(pid) if (kib := one_status_kib(p, key)) is not None]
    if not found:
        raise LabError(f"no {key} in /proc/{pid}/status")
    return sum(found)


def peak_mib_by_process(pid: int) -> dict[str, float]:
    """VmHWM of each process of the tree, named by its role (the daemon's parent, its `--check` child...)."""
    out: dict[str, float] = {}
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        hwm = one_status_kib(p, "VmHWM")
        if hwm is None:
            continue
        if p == pid:
            role = "main"
        else:
            role = next((a for a in argv if a in ("--check", "--vrrp", "--bfd")), "worker")
        name, n = role, 2
        while name in out:
            name, n = f"{role} #{n}", n + 1
        out[name] = round(hwm / 1024, 1)
    return out


def open_fds(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def nofile_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
    return "unknown"


SYN_COUNTER_RULES = ("table inet bench_checks_syns {\n  counter syns {}\n"
                     "  chain input { type filter hook input priority 0; policy accept;\n"
                     "    tcp flags & (syn | ack) == syn counter name syns\n  }\n}\n")


def syns_received(host: Host) -> int:
    """The SYNs the host's namespace received so far (SYN_COUNTER_RULES)."""
    out = host.netns.run(["nft", "-j", "list", "counter", "inet", "bench_checks_syns", "syns"]).stdout
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise LabError(f"no SYN counter in {out!r}")


def tcp_counters(pid: int) -> dict[str, int]:
    """The Tcp: line of /proc/PID/net/snmp: the counters of the namespace `pid` lives in."""
    with open(f"/proc/{pid}/net/snmp", encoding="ascii") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:], strict=True)}


def machine_ticks() -> list[int]:
    """The first line of /proc/stat: user nice system idle iowait irq softirq steal, all cores together."""
    with open("/proc/stat", encoding="ascii") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def machine_usage(before: list[int], after: list[int], wall_s: float) -> dict[str, float]:
    """Busy and softirq time of the whole machine, as % of one core.

    Packets between the namespaces are processed in softirq context, which
    the kernel (with IRQ time accounting) charges to no process: a checker
    that is never idle can still show well under 100 % of a core itself.
    """
    d = [b - a for a, b in zip(before, after, strict=True)]
    busy = sum(d) - d[3] - d[4] - d[7]

    def pct(ticks: int) -> float:
        return round(100 * ticks / CLK_TCK / wall_s, 1)

    # steal: the hypervisor ran something else on our virtual CPUs (a noisy neighbour, not us)
    return {"machine_busy_pct_of_one_core": pct(busy), "machine_softirq_pct_of_one_core": pct(d[6]),
            "machine_steal_pct_of_one_core": pct(d[7])}


def raise_nofile() -> str:
    """Let every process we start (they inherit it) have NOFILE_WANT descriptors; returns the limit now.

    6,000 real servers mean 6,000 listening sockets in the listeners, and a
    checker that could hold one socket per checker at once.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE_WANT
    try:
        if hard != resource.RLIM_INFINITY and hard < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        elif soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft}/{hard}"


# ----------------------------------------------------------------------------------------------
# the listeners


class Listeners:
    """bench/listeners.py in the srv namespace, driven by commands on its stdin."""

    def __init__(self, host: Host, tcp_ports: list[int], http_ports: list[int], stderr_path: Path) -> None:
        argv = [sys.executable, str(LISTENERS), str(host.ipv4.ip)]
        if tcp_ports:
            argv += ["--tcp", f"{tcp_ports[0]}-{tcp_ports[-1]}"]
        if http_ports:
            argv += ["--http", f"{http_ports[0]}-{http_ports[-1]}"]
        self._stderr_path = stderr_path
        self.host = host
        # a count of the SYNs the listeners' namespace receives (one per check: connect, half-open or SYN probe)
        host.netns.run(["nft", "-f", "-"], input=SYN_COUNTER_RULES)
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(host.netns.argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, start_new_session=True)
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="listeners-reader", daemon=True)
        self._reader.start()
        ready = self._answer("ready", 60.0)
        self.pid = int(ready["pid"])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(json.loads(line))

    def _answer(self, cmd: str, timeout_s: float = 10.0) -> dict[str, Any]:
        try:
            msg = self._answers.get(timeout=timeout_s)
        except queue.Empty:
            raise LabError(f"listeners: no answer to {cmd} in {timeout_s:g} s:\n"
                           + self._stderr_path.read_text(errors="replace")[-2000:]) from None
        if msg.get("cmd") != cmd:
            raise LabError(f"listeners: expected {cmd}, got {msg}")
        return msg

    def command(self, verb: str, ports: list[int] | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(" ".join([verb, *map(str, ports or [])]) + "\n")
        self.proc.stdin.flush()
        return self._answer(verb)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5.0)


# ----------------------------------------------------------------------------------------------
# the two checkers


@dataclass
class Events:
    """What a checker's log said about the servers, by port: wall-clock times."""

    down: dict[int, list[float]] = field(default_factory=dict)
    up: dict[int, list[float]] = field(default_factory=dict)
    failed: dict[int, list[float]] = field(default_factory=dict)  # a failed attempt that did not decide yet

    def add(self, kind: str, port: int, t: float) -> None:
        getattr(self, kind).setdefault(port, []).append(t)

    def first_after(self, kind: str, port: int, t0: float) -> float | None:
        return next((t for t in getattr(self, kind).get(port, []) if t >= t0 - 0.002), None)

    def count(self, kind: str, t0: float, t1: float) -> int:
        """Events of `kind` (any port) logged in [t0, t1)."""
        return sum(1 for times in getattr(self, kind).values() for t in times if t0 <= t < t1)


class LogTail:
    """New complete lines of a growing log file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return [line.decode(errors="replace") for line in complete]


class Contender:
    """One checker implementation under test: start, observe, stop."""

    name = ""
    pid = 0

    def __init__(self, lb: Host, workdir: Path, addr: str, tcp_ports: list[int], http_ports: list[int],
                 timers: Timers) -> None:
        self.lb = lb
        self.workdir = workdir
        self.addr = addr
        self.tcp_ports = tcp_ports
        self.http_ports = http_ports
        self.timers = timers
        self.events = Events()
        self.started_at = 0.0

    def start(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def wait_all_checked(self, timeout_s: float) -> float:
        """Block until every server has been checked once; seconds since start."""
        raise NotImplementedError

    def own_attempts(self) -> tuple[float, int] | None:
        """(time, total attempts) from the checker's own counters, if it has any."""
        return None

    def in_steady_state(self) -> None:
        """Called once in the steady window (nothing killed yet)."""

    def poll(self) -> None:
        """Read the log lines written since the last poll into self.events."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def log_paths(self) -> list[Path]:
        return []


PK_LINE = re.compile(r"^(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\.(\d{3}): (.*)$")
PK_DECISION = re.compile(r"^(Removing|Adding) service \[[^\]]+\]:tcp:(\d+) (?:from|to) VS")
PK_RETRY = re.compile(r"^\S+ on service \[[^\]]+\]:tcp:(\d+) failed \(.*\), will retry")


class PyKeepalived(Contender):
    name = "pykeepalived"
    dataplane = "auto"  # --pk-dataplane: none measures the checker without its kernel table (nftables here)
    profile: Path | None = None  # --profile: run under cProfile, the statistics written there at exit
    notrack = False  # --pk-notrack: global_defs pykeepalived_checker_notrack
    syn_probe = True  # global_defs pykeepalived_syn_probe (off with --pk-connect)
    whole_daemon = False  # --pk-daemon: the parent and its checker child (`pykeepalived`), not `pykeepalived -C`

    def start(self) -> None:
        conf = pykeepalived_config(self.addr, self.tcp_ports, self.http_ports, self.timers, self.notrack,
                                   self.syn_probe)
        self.daemon = CheckerDaemon(self.lb, self.workdir, conf, name=self.name)
        base = self.daemon.command()
        if self.whole_daemon:  # the parent (pid, its children's CPU and memory summed) feeds on its child's state
            base = [word for word in base if word != "-C"]
        argv = [*base, "--dataplane", self.dataplane]
        if self.profile is not None:  # python -m cProfile -o FILE -m pykeepalived ...
            argv = [argv[0], "-m", "cProfile", "-o", str(self.profile), *argv[1:]]
        self.daemon.command = lambda: argv  # type: ignore[method-assign]
        self.tail = LogTail(self.daemon.log_path)
        self.started_at = time.monotonic()
        self.daemon.start()
        self.pid = self.daemon.pid

    def alive(self) -> bool:
        return self.daemon.alive()

    def _fresh_status(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """SIGUSR1 makes the daemon rewrite its status file; wait for the new one (os.replace: new inode)."""
        path = self.daemon.status_path
        try:
            before = path.stat().st_ino
        except OSError:
            before = None
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if path.stat().st_ino != before:
                    return self.daemon.status()
            except (OSError, ValueError):
                pass
            if not self.alive():
                raise LabError(f"pykeepalived exited:\n{self.daemon.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise LabError(f"no fresh status file in {timeout_s:g} s")
            time.sleep(0.02)

    def wait_all_checked(self, timeout_s: float) -> float:
        wait_until(lambda: self.daemon.status_path.exists() or not self.alive(), timeout_s,
                   what=f"pykeepalived's status file:\n{self.daemon.log()[-3000:]}")

        def all_checked() -> bool:
            status = self._fresh_status()
            return all(c["attempts"] > 0 for s in status["services"] for r in s["real_servers"]
                       for c in r["checkers"])

        deadline = time.monotonic() + timeout_s
        while not all_checked():  # each status write costs the daemon a few ms per 1,000 servers: not too often
            if time.monotonic() > deadline:
                raise LabError(f"pykeepalived did not check every server in {timeout_s:g} s")
            time.sleep(1.0)
        return time.monotonic() - self.started_at

    def own_attempts(self) -> tuple[float, int]:
        status = self._fresh_status()
        total = sum(c["attempts"] for s in status["services"] for r in s["real_servers"] for c in r["checkers"])
        return float(status["time"]), total

    def poll(self) -> None:
        for line in self.tail.lines():
            m = PK_LINE.match(line)
            if m is None:
                continue
            t = time.mktime(time.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")) + int(m.group(2)) / 1000
            msg = m.group(3)
            if d := PK_DECISION.match(msg):
                self.events.add("down" if d.group(1) == "Removing" else "up", int(d.group(2)), t)
            elif r := PK_RETRY.match(msg):
                self.events.add("failed", int(r.group(1)), t)

    def in_steady_state(self) -> None:
        """Keep the nftables ruleset in force now (every server up): --fair-pairs loads it under HAProxy."""
        if self.dataplane != "none":
            self.ruleset = self.lb.netns.run(["nft", "list", "ruleset"], timeout_s=60.0).stdout

    def stop(self) -> None:
        self.daemon.stop()

    def log_paths(self) -> list[Path]:
        return [self.daemon.log_path, self.daemon.conf_path]


HA_LINE = re.compile(r"^<\d+>1 (\S+) \S+ haproxy \d+ - - (.*)$")
HA_STATE = re.compile(r"^Server bk_\w+/[th](\d+) is (DOWN|UP)")
HA_CHECK = re.compile(r"^Health check for server bk_\w+/[th](\d+) (succeeded|failed).* status: (\d+)/(\d+) (UP|DOWN)")


class Haproxy(Contender):
    name = "haproxy"
    ruleset_text = ""  # --fair-pairs: pykeepalived's nftables ruleset, loaded into the namespace while HAProxy runs

    def start(self) -> None:
        self.loaded_tables: list[str] = []
        self.conntrack_hooks = 0
        if self.ruleset_text:
            self.lb.netns.run(["nft", "-f", "-"], input=self.ruleset_text, timeout_s=60.0)
            self.loaded_tables = re.findall(r"^table (\S+ \S+) \{", self.ruleset_text, re.MULTILINE)
            self.conntrack_hooks = sum(line.strip().startswith("type nat hook")
                                       for line in self.ruleset_text.splitlines())
        self.dir = self.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "haproxy.cfg"
        self.conf_path.write_text(haproxy_config(self.addr, self.tcp_ports, self.http_ports, self.timers))
        self.log_path = self.dir / "log"
        self.err_path = self.dir / "stderr"
        self.tail = LogTail(self.log_path)
        self.checked: set[int] = set()
        self.started_at = time.monotonic()
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = self.lb.netns.popen(["haproxy", "-db", "-f", str(self.conf_path)], stdout=out,
                                            stderr=err)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_all_checked(self, timeout_s: float) -> float:
        want = len(self.tcp_ports) + len(self.http_ports)

        def done() -> bool:
            self.poll()
            if not self.alive():
                raise LabError(f"haproxy exited with {self.proc.returncode}:\n"
                               + self.err_path.read_text(errors="replace")[-3000:])
            return len(self.checked) >= want

        wait_until(done, timeout_s, interval_s=0.2, what=f"haproxy's first check of {want} servers")
        return time.monotonic() - self.started_at

    def poll(self) -> None:
        for line in self.tail.lines():
            m = HA_LINE.match(line)
            if m is None:
                continue
            t = datetime.fromisoformat(m.group(1)).timestamp()
            msg = m.group(2)
            if s := HA_STATE.match(msg):
                self.events.add("down" if s.group(2) == "DOWN" else "up", int(s.group(1)), t)
            elif c := HA_CHECK.match(msg):
                port = int(c.group(1))
                self.checked.add(port)
                if c.group(2) == "failed" and c.group(5) == "UP":
                    self.events.add("failed", port, t)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5.0)
        for table in self.loaded_tables:
            self.lb.netns.run(["nft", "delete", "table", *table.split()], check=False, timeout_s=60.0)

    def log_paths(self) -> list[Path]:
        return [self.log_path, self.err_path, self.conf_path]


# ----------------------------------------------------------------------------------------------
# measuring one contender


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an actual observation, no interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(statistics.median(values), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3), "min": round(min(values), 3)}


def pick(ports: list[int], count: int) -> list[int]:
    """`count` ports spread evenly over the range (the middle of each stretch)."""
    count = min(count, len(ports))
    if count <= 0:
        return []
    step = len(ports) / count
    return [ports[int(i * step + step / 2)] for i in range(count)]


class Sampler:
    """Samples the open descriptors of a process every `interval_s` in a thread; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.pid = pid
        self.peak = open_fds(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="fd-sampler", daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.peak = max(self.peak, open_fds(self.pid))

    def close(self) -> int:
        self._stop.set()
        self._thread.join(timeout=2.0)
        return self.peak


def measure(c: Contender, listeners: Listeners, args: argparse.Namespace, progress: IO[str]) -> dict[str, Any]:
    """Start `c`, settle, measure the steady window, kill servers and time their removal, revive them, stop."""
    timers: Timers = args.timers
    bound = timers.bound_s()
    servers = len(c.tcp_ports) + len(c.http_ports)
    out: dict[str, Any] = {}
    c.start()
    sampler: Sampler | None = None
    try:
        out["all_checked_once_after_s"] = round(c.wait_all_checked(60.0 + servers / 100), 2)
        sampler = Sampler(c.pid)
        print(f"{c.name}: every server checked once after {out['all_checked_once_after_s']} s; "
              f"settling {args.settle:g} s", file=progress, flush=True)
        time.sleep(args.settle)

        # ---- steady window
        own0 = c.own_attempts()
        l0, cpu0, lcpu0, snmp0, syn0, m0, t0, w0 = (
            listeners.command("stats"), cpu_seconds(c.pid), cpu_seconds(listeners.pid), tcp_counters(c.pid),
            syns_received(listeners.host), machine_ticks(), time.monotonic(), time.time())
        time.sleep(args.window)
        l1, cpu1, lcpu1, snmp1, syn1, m1, t1, w1 = (
            listeners.command("stats"), cpu_seconds(c.pid), cpu_seconds(listeners.pid), tcp_counters(c.pid),
            syns_received(listeners.host), machine_ticks(), time.monotonic(), time.time())
        own1 = c.own_attempts()
        c.in_steady_state()
        wall = t1 - t0
        # the checks the servers saw begin (SYNs into their namespace): the same count for a connect, a
        # half-open check and a SYN probe; the checker's ActiveOpens counts no SYN probe, the servers'
        # PassiveOpens no half-open check that its reset ends before the handshake's last ACK
        opens = syn1 - syn0
        http = l1["http"] - l0["http"]
        period = servers * wall / opens if opens else None
        c.poll()
        out.update({
            "window_s": round(wall, 2),
            "checks_per_s": round(opens / wall, 1),
            "tcp_checks_per_s": round((opens - http) / wall, 1),
            "http_checks_per_s": round(http / wall, 1),
            "mean_check_period_s": round(period, 3) if period else None,
            # every server is checked about once per delay_loop (plus the check's own few ms)
            "keeps_schedule": period is not None and period <= 1.1 * timers.delay_loop_s,
            "checker_active_opens_per_s": round((snmp1["ActiveOpens"] - snmp0["ActiveOpens"]) / wall, 1),
            "failed_connects_in_window": snmp1["AttemptFails"] - snmp0["AttemptFails"],
            "http_bad_in_window": l1["http_bad"] - l0["http_bad"],
            # nothing was killed yet: every failure logged so far is a healthy server failed by the checker
            "spurious_failed_checks_in_window": c.events.count("failed", w0, w1),
            "spurious_removals_before_kill": c.events.count("down", 0.0, w1),
            "cpu_s": round(cpu1 - cpu0, 2),
            "cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1),
            "cpu_ms_per_check": round(1000 * (cpu1 - cpu0) / opens, 3) if opens else None,
            "listeners_cpu_pct_of_one_core": round(100 * (lcpu1 - lcpu0) / wall, 1),
            **machine_usage(m0, m1, wall),
        })
        if own0 is not None and own1 is not None:
            out["own_attempts_per_s"] = round((own1[1] - own0[1]) / (own1[0] - own0[0]), 1)
        out["rss_mib"] = round(proc_status_kib(c.pid, "VmRSS") / 1024, 1)
        print(f"{c.name}: {out['checks_per_s']} checks/s, {out['cpu_pct_of_one_core']} % CPU", file=progress,
              flush=True)

        # ---- kill, time the removals
        victims = pick(c.tcp_ports, args.kill_tcp) + pick(c.http_ports, args.kill_http)
        c.poll()
        cpu_k0, tk0 = cpu_seconds(c.pid), time.monotonic()
        killed = {int(p): t for p, t in listeners.command("kill", victims)["t"].items()}

        def all_down() -> bool:
            c.poll()
            if not c.alive():
                raise LabError(f"{c.name} exited during the kill phase")
            return all(c.events.first_after("down", p, t) is not None for p, t in killed.items())

        try:
            wait_until(all_down, bound + 15.0, interval_s=POLL_S, what="every killed server removed")
        except LabError as exc:
            out["kill_phase_error"] = str(exc).splitlines()[0]
        cpu_k1, tk1 = cpu_seconds(c.pid), time.monotonic()
        removal, first_fail, retry_gap = [], [], []
        for port, t_kill in killed.items():
            t_down = c.events.first_after("down", port, t_kill)
            t_fail = c.events.first_after("failed", port, t_kill)
            if t_down is not None:
                removal.append(t_down - t_kill)
                if t_fail is not None and t_fail <= t_down:
                    first_fail.append(t_fail - t_kill)
                    retry_gap.append(t_down - t_fail)
        missing = len(killed) - len(removal)
        out.update({
            "killed": len(killed),
            "not_removed": missing,
            "death_to_removal_s": spread(removal),
            "removal_bound_s": bound,
            "within_bound": missing == 0 and all(r <= bound for r in removal),
            "death_to_first_failure_s": spread(first_fail),
            "first_failure_to_removal_s": spread(retry_gap),
            "retry_lag_over_delay_before_retry_s": spread([g - timers.delay_before_retry_s for g in retry_gap]),
            "cpu_pct_during_removals": round(100 * (cpu_k1 - cpu_k0) / (tk1 - tk0), 1),
        })
        print(f"{c.name}: removals {out['death_to_removal_s']}", file=progress, flush=True)

        # ---- bring them back, time the additions
        opened = {int(p): t for p, t in listeners.command("open", victims)["t"].items()}

        def all_up() -> bool:
            c.poll()
            return all(c.events.first_after("up", p, t) is not None for p, t in opened.items())

        try:
            wait_until(all_up, bound + 15.0, interval_s=POLL_S, what="every revived server added")
        except LabError as exc:
            out["revive_phase_error"] = str(exc).splitlines()[0]
        back = [t_up - t for p, t in opened.items() if (t_up := c.events.first_after("up", p, t)) is not None]
        out["revival_to_adding_s"] = spread(back)
        out["peak_rss_mib"] = round(proc_status_kib(c.pid, "VmHWM") / 1024, 1)
        out["peak_rss_mib_by_process"] = peak_mib_by_process(c.pid)
        out["nofile_limit"] = nofile_limit(c.pid)
    finally:
        if sampler is not None:
            out["peak_open_fds"] = sampler.close()
        c.stop()
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for path in c.log_paths():
                shutil.copy(path, args.logs / f"{c.name}-{path.name}")
    return out


# ----------------------------------------------------------------------------------------------
# the whole benchmark


def run(args: argparse.Namespace, progress: IO[str]) -> dict[str, Any]:
    tcp_ports = list(range(TCP_BASE, TCP_BASE + args.tcp))
    http_ports = list(range(HTTP_BASE, HTTP_BASE + args.http))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp, Lan(unique_prefix("chkb")) as lan:
        workdir = Path(tmp)
        lb, srv = lan.add_host("lb", LB_HOST), lan.add_host("srv", SRV_HOST)
        for host in (lb, srv):
            # 6,000 checks a second leave ~360,000 connections in TIME_WAIT over a minute: let them, quietly
            host.netns.sysctl("net.ipv4.tcp_max_tw_buckets", "1000000")
            host.netns.sysctl("net.core.somaxconn", "4096")
        listeners = Listeners(srv, tcp_ports, http_ports, workdir / "listeners.err")
        try:
            print(f"listening on {args.tcp} TCP + {args.http} HTTP ports", file=progress, flush=True)
            ruleset = ""
            for key in contenders(args):
                cls = PyKeepalived if key.startswith("pykeepalived") else Haproxy
                contender = cls(lb, workdir, str(srv.ipv4.ip), tcp_ports, http_ports, args.timers)
                contender.name = key
                if isinstance(contender, PyKeepalived):
                    contender.dataplane = "none" if key == PK_NO_TABLE else args.pk_dataplane
                    contender.profile = args.profile
                    contender.notrack = args.pk_notrack and key != PK_TRACKED
                    contender.syn_probe = args.pk_syn_probe
                    contender.whole_daemon = args.pk_daemon
                elif key == HA_WITH_TABLE:
                    if not ruleset:
                        raise LabError("pykeepalived left no nftables ruleset to load under HAProxy")
                    contender.ruleset_text = ruleset
                results[key] = measure(contender, listeners, args, progress)
                if isinstance(contender, Haproxy) and contender.ruleset_text:
                    results[key]["nft_ruleset_loaded"] = {"tables": contender.loaded_tables,
                                                          "nat_hooks": contender.conntrack_hooks}
                if isinstance(contender, PyKeepalived) and contender.dataplane != "none" and not ruleset:
                    # without the chains that untrack pykeepalived's marked sockets (--pk-notrack): under HAProxy
                    # they would untrack nothing and cost a socket lookup per reply
                    ruleset = CHECKER_CHAINS.sub("", contender.ruleset)
                time.sleep(1.0)  # let the last TIME_WAIT churn of one not land in the other's window
        finally:
            listeners.close()
    return results


PK_NO_TABLE = "pykeepalived_no_table"  # --fair-pairs: pykeepalived --dataplane none
HA_WITH_TABLE = "haproxy_with_pk_table"  # --fair-pairs: HAProxy with pykeepalived's nftables ruleset loaded
PK_TRACKED = "pykeepalived_tracked"  # --fair-pairs --pk-notrack: pykeepalived with its table, checks tracked
CHECKER_CHAINS = re.compile(r"\tchain checker_notrack_\w+ \{\n.*?\n\t\}\n\n?", re.S)


def contenders(args: argparse.Namespace) -> list[str]:
    """What runs, in order: pykeepalived with its table first, so that HAProxy can get the same table after it."""
    if not args.fair_pairs:
        return list(args.impls)
    return ["pykeepalived", "haproxy", HA_WITH_TABLE, PK_NO_TABLE, *([PK_TRACKED] if args.pk_notrack else [])]


def ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return round(a / b, 2)


def pair_ratio(py: dict[str, Any], ha: dict[str, Any], note: str) -> dict[str, Any]:
    return {
        "note": note,
        "checks_per_s": ratio(py.get("checks_per_s"), ha.get("checks_per_s")),
        "cpu": ratio(py.get("cpu_pct_of_one_core"), ha.get("cpu_pct_of_one_core")),
        "cpu_per_check": ratio(py.get("cpu_ms_per_check"), ha.get("cpu_ms_per_check")),
        "peak_rss": ratio(py.get("peak_rss_mib"), ha.get("peak_rss_mib")),
        "removal_median": ratio(py.get("death_to_removal_s", {}).get("median"),
                                ha.get("death_to_removal_s", {}).get("median")),
        "removal_p99": ratio(py.get("death_to_removal_s", {}).get("p99"),
                             ha.get("death_to_removal_s", {}).get("p99")),
    }


def machine_info() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        return lines[0] if lines else "unknown"

    import pykeepalived

    return {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pykeepalived": pykeepalived.__version__,
        "haproxy": first_line(["haproxy", "-v"]),
    }


def report(results: dict[str, Any], args: argparse.Namespace, elapsed_s: float) -> dict[str, Any]:
    t: Timers = args.timers
    doc: dict[str, Any] = {
        "benchmark": "checks",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(),
        "settings": {
            "tcp_servers": args.tcp,
            "http_servers": args.http,
            "delay_loop_s": t.delay_loop_s,
            "connect_timeout_s": t.connect_timeout_s,
            "retry": t.retry,
            "delay_before_retry_s": t.delay_before_retry_s,
            "warmup_s": t.delay_loop_s,
            "removal_bound_s": t.bound_s(),
            "window_s": args.window,
            "settle_s": args.settle,
            "killed_tcp": min(args.kill_tcp, args.tcp),
            "killed_http": min(args.kill_http, args.http),
            "bench_nofile": args.nofile,
            "pykeepalived_dataplane": args.pk_dataplane,
            "pykeepalived_checker_notrack": args.pk_notrack,
            "pykeepalived_syn_probe": args.pk_syn_probe,
            "pykeepalived_whole_daemon": args.pk_daemon,
            "pykeepalived_profiled": args.profile is not None,
            "fair_pairs": args.fair_pairs,
            "haproxy_equivalent": f"inter {t.delay_loop_s:g}s fastinter {t.delay_before_retry_s:g}s fall "
                                  f"{t.retry + 1} rise 1, timeout connect/check {t.connect_timeout_s:g}s",
        },
        **results,
    }
    pairs = (("ratio", "pykeepalived", "haproxy",
              f"pykeepalived (--pk-dataplane {args.pk_dataplane}) / haproxy (no table in its namespace)"),
             ("ratio_same_table", "pykeepalived", HA_WITH_TABLE,
              "pykeepalived / haproxy with pykeepalived's nftables ruleset loaded: both pay conntrack"),
             ("ratio_no_table", PK_NO_TABLE, "haproxy", "pykeepalived --dataplane none / haproxy: neither has a table"),
             ("ratio_tracked", PK_TRACKED, "haproxy",
              "pykeepalived with its table, checks tracked (no pykeepalived_checker_notrack) / haproxy (no table)"),
             ("ratio_tracked_same_table", PK_TRACKED, HA_WITH_TABLE,
              "pykeepalived with its table, checks tracked / haproxy with the same table"))
    for key, a, b, note in pairs:
        if a in results and b in results:
            doc[key] = pair_ratio(results[a], results[b], note)
    doc["elapsed_s"] = round(elapsed_s, 1)
    return doc


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--tcp", type=int, help="TCP_CHECK real servers (default 5000; --quick 200)")
    ap.add_argument("--http", type=int, help="HTTP_GET real servers (default 1000; --quick 50)")
    ap.add_argument("--window", type=float, help="steady measuring window, s (default 20; --quick 5)")
    ap.add_argument("--settle", type=float, help="wait after every server was checked once, s (default 10; --quick 3)")
    ap.add_argument("--kill-tcp", type=int, help="TCP servers killed at once (default 100; --quick 10)")
    ap.add_argument("--kill-http", type=int, help="HTTP servers killed at once (default 50; --quick 5)")
    ap.add_argument("--only", choices=IMPLEMENTATIONS, help="measure one implementation only")
    ap.add_argument("--quick", action="store_true", help="a small run to try things out")
    ap.add_argument("--logs", type=Path, help="copy the checkers' configs and logs into this directory")
    ap.add_argument("--pk-dataplane", choices=("auto", "none"), default="auto",
                    help="pykeepalived's data plane: auto (nftables here, as users run it) or none (the checker "
                         "alone, without the kernel table of 6,000 real servers)")
    ap.add_argument("--profile", type=Path, help="run pykeepalived under cProfile and write its statistics there "
                    "(its CPU figures then include the profiler's overhead)")
    ap.add_argument("--pk-notrack", action="store_true",
                    help="pykeepalived with global_defs pykeepalived_checker_notrack: its table untracks the "
                         "checks' own connections (docs/checkers.md)")
    syn_choice = ap.add_mutually_exclusive_group()
    syn_choice.add_argument("--pk-connect", dest="pk_syn_probe", action="store_false",
                            help="pykeepalived with global_defs pykeepalived_syn_probe off: a TCP_CHECK connects "
                                 "(by default it is a SYN probe through a raw socket, docs/checkers.md)")
    syn_choice.add_argument("--pk-syn-probe", dest="pk_syn_probe", action="store_true",
                            help="SYN probes, the default (accepted for older command lines)")
    ap.set_defaults(pk_syn_probe=True)
    ap.add_argument("--pk-daemon", action="store_true",
                    help="run pykeepalived as `pykeepalived` runs by default, a parent and its checker child (the "
                         "child feeds its state to the parent), rather than `pykeepalived -C` alone; CPU and "
                         "memory are the two processes' sum")
    ap.add_argument("--fair-pairs", action="store_true",
                    help="also run HAProxy with pykeepalived's nftables ruleset loaded in its namespace and "
                         "pykeepalived with --dataplane none, and report both like-for-like ratios")
    args = ap.parse_args(argv)
    defaults = {"tcp": 200, "http": 50, "window": 5.0, "settle": 3.0, "kill_tcp": 10, "kill_http": 5} if args.quick \
        else {"tcp": 5000, "http": 1000, "window": 20.0, "settle": 10.0, "kill_tcp": 100, "kill_http": 50}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 0 <= args.tcp <= 10000 or not 0 <= args.http <= 10000 or args.tcp + args.http == 0:
        ap.error("--tcp and --http must be 0..10000, not both 0")
    if args.window <= 0 or args.settle < 0:
        ap.error("--window must be positive, --settle not negative")
    args.timers = Timers()
    args.impls = [args.only] if args.only else list(IMPLEMENTATIONS)
    if args.fair_pairs and (args.only or args.pk_dataplane == "none"):
        ap.error("--fair-pairs runs both checkers, pykeepalived with its table and without: not with --only or "
                 "--pk-dataplane none")
    return args


def preflight(impls: list[str]) -> str | None:
    """Why the benchmark cannot run here, or None."""
    if os.geteuid() != 0:
        return "must run as root (it creates network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) not found"
    if "haproxy" in impls and shutil.which("haproxy") is None:
        return "haproxy not found in PATH (install it, or use --only pykeepalived)"
    return None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """First Ctrl-C/SIGTERM unwinds (cleaning up on the way); further ones are ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = preflight(args.impls)
    if problem:
        print(f"checks.py: error: {problem}", file=sys.stderr)
        return 2
    args.nofile = raise_nofile()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        results = run(args, sys.stderr)
    except KeyboardInterrupt:
        print("checks.py: interrupted; lab cleaned up", file=sys.stderr)
        return 130
    except LabError as exc:
        print(f"checks.py: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report(results, args, time.monotonic() - started), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
