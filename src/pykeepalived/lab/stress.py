"""False failovers under stress: a pykeepalived pair and a keepalived pair side by side, under the same load.

keepalived issues #2066 and #2238: a VRRP process starved of CPU misses its
adverts, the backup's master-down timer fires and it takes over although the
master is alive (split brain, then a transition back). This lab measures how
often that happens:

- one Lan per implementation (own namespaces: r1 priority 150, r2 priority
  100, and an observer), the same VRRP settings for both (VRRPv3 at 50 ms or
  VRRPv2 at 1 s, see PROFILES);
- every router process and the load run in one CPU-limited cgroup
  (lab/cpu_cgroup.py), so both implementations compete for the same quota;
- the load is stress-ng in each router's namespace (CPU and memory workers);
- once both pairs have settled (r1 MASTER, r2 BACKUP), every "Entering
  MASTER/BACKUP/FAULT STATE" line either router logs is a spurious
  transition, and so is every burst of adverts the backup sends (a backup that
  advertises has taken over). The observer, a raw socket with kernel receive
  timestamps (SO_TIMESTAMPNS, so its own delays do not count), also records
  the longest silence of the master: how close each implementation came to
  the backup's master-down interval.

Nothing here asserts: bench/false_failovers.py and tests/netns/test_false_failovers.py
read the `PairResult`s.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from pykeepalived.lab.cpu_cgroup import CpuCgroup
from pykeepalived.lab.netns import LabError, Netns, StdStream, kill_process_group
from pykeepalived.lab.peers import KeepalivedPeer, PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host, Lan, unique_prefix

VIP = IPv4Interface("192.0.2.100/24")
VRID = 51
PRIO_MASTER = 150
PRIO_BACKUP = 100
IMPLEMENTATIONS = ("pykeepalived", "keepalived")
TRANSITION = re.compile(r"\((?P<name>[^)]+)\) Entering (?P<state>BACKUP|MASTER|FAULT) STATE")


@dataclass(frozen=True)
class Profile:
    """The VRRP settings a pair runs with."""

    name: str
    version: int
    advert_int_s: float

    def down_interval_s(self, priority: int = PRIO_BACKUP) -> float:
        """RFC master-down interval of the backup (v2: skew in seconds; v3: scaled by the interval)."""
        scale = 1.0 if self.version == 2 else self.advert_int_s
        return 3 * self.advert_int_s + (256 - priority) / 256 * scale


PROFILES = {
    "v3-50ms": Profile("v3-50ms", 3, 0.05),
    "v2-1s": Profile("v2-1s", 2, 1.0),
}


@dataclass(frozen=True)
class Load:
    """What runs beside the routers: stress-ng per router namespace, and the cgroup's CPU quota."""

    cpu_workers: int = 2  # per router namespace
    vm_workers: int = 1  # per router namespace
    vm_bytes: str = "128M"  # per vm worker
    cpu_quota_us: int = 100_000  # 0: no cgroup limit
    cpu_period_us: int = 100_000

    def stress_argv(self, seconds: float) -> list[str]:
        argv = ["stress-ng", "--quiet", "--timeout", f"{int(seconds) + 60}s"]
        if self.cpu_workers:
            argv += ["--cpu", str(self.cpu_workers)]
        if self.vm_workers:
            argv += ["--vm", str(self.vm_workers), "--vm-bytes", self.vm_bytes]
        return argv

    def describe(self) -> dict[str, Any]:
        return {"stress_ng_per_router": " ".join(self.stress_argv(0)[4:]),
                "cpu_limit": (f"{self.cpu_quota_us}/{self.cpu_period_us} us" if self.cpu_quota_us else None)}


class CgroupNetns(Netns):
    """A Netns whose popen() starts programs inside `cgroup` (commands run with run()/ip() stay out)."""

    def __init__(self, name: str, cgroup: CpuCgroup | None) -> None:
        super().__init__(name)
        self.cgroup = cgroup

    def popen(self, argv: list[str], *, stdout: StdStream = subprocess.DEVNULL, stderr: StdStream = subprocess.STDOUT,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        full = self.argv(argv)
        if self.cgroup is not None:
            full = self.cgroup.wrap(full)
        try:
            return subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise LabError(f"cannot start {' '.join(argv)} in {self.name}: {exc}") from exc


# Runs in the observer's namespace: one line "SRC PRIO T" per VRRP advert, T the kernel's receive time
# (CLOCK_REALTIME, SO_TIMESTAMPNS). Runs until killed (Netns.popen gives it no stdin to watch).
OBSERVER_SRC = r"""
import socket, struct, sys
SO_TIMESTAMPNS = 35
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
mreq = struct.pack("4s4si", socket.inet_aton("224.0.0.18"), socket.inet_aton("0.0.0.0"),
                   socket.if_nametoindex(sys.argv[1]))
raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
raw.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
out = sys.stdout
print("ready", flush=True)
while True:
    data, anc, _, addr = raw.recvmsg(2048, 64)
    t = 0.0
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", value[:16])
            t = sec + nsec / 1e9
    ihl = (data[0] & 0x0F) * 4
    if len(data) >= ihl + 3:
        out.write(f"{addr[0]} {data[ihl + 2]} {t:.6f}\n")
        out.flush()
"""


@dataclass
class Advert:
    src: str
    prio: int
    t: float  # CLOCK_REALTIME, kernel receive time


class Observer:
    """Every advert on one Lan, heard from a host of its own (outside the cgroup)."""

    def __init__(self, host: Host) -> None:
        self.adverts: list[Advert] = []
        self._lock = threading.Lock()
        self.proc = host.netns.popen([sys.executable, "-c", OBSERVER_SRC, host.ifname], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise LabError(f"the advert observer in {host.netns.name} did not start")
        self._thread = threading.Thread(target=self._read, name="advert-observer", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            src, prio, t = line.decode().split()
            with self._lock:
                self.adverts.append(Advert(src, int(prio), float(t)))

    def between(self, start: float, end: float) -> list[Advert]:
        with self._lock:
            return [a for a in self.adverts if start <= a.t <= end]

    def close(self) -> None:
        kill_process_group(self.proc)
        self._thread.join(timeout=2)
        if self.proc.stdout is not None and not self._thread.is_alive():
            self.proc.stdout.close()


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of `pids` (and their reaped children's), seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _group_pids(pgid: int) -> list[int]:
    from pykeepalived.lab.peers import _group_pids as group_pids

    return group_pids(pgid)


@dataclass
class PairResult:
    """What one implementation's pair did between `start` and `end` (realtime seconds)."""

    implementation: str
    profile: str
    transitions: list[str] = field(default_factory=list)  # log lines after the pair settled: all spurious
    backup_adverts: int = 0  # adverts with priority > 0 from the backup (r2)
    takeovers_on_wire: int = 0  # bursts of them (a new burst after a down interval of silence)
    master_adverts: int = 0
    longest_master_silence_s: float = 0.0
    master_silences_over_down_interval: int = 0
    down_interval_s: float = 0.0
    daemon_cpu_s: float = 0.0
    daemons_alive: bool = True

    @property
    def spurious(self) -> int:
        """Spurious transitions: what the logs show, or the wire when it shows more (a log can lag)."""
        return max(len(self.transitions), 2 * self.takeovers_on_wire)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["spurious_transitions"] = self.spurious
        return d


class Pair:
    """r1 (priority 150) and r2 (100) of one implementation on a Lan of their own, plus an observer."""

    def __init__(self, implementation: str, profile: Profile, workdir: Path, cgroup: CpuCgroup | None,
                 extra_global: str = "") -> None:
        if implementation not in IMPLEMENTATIONS:
            raise LabError(f"unknown implementation {implementation!r}")
        self.implementation = implementation
        self.profile = profile
        self.lan = Lan(unique_prefix(f"st{implementation[:2]}"))
        self.peers: list[KeepalivedPeer] = []
        self.observer: Observer | None = None
        self.stress: list[subprocess.Popen[bytes]] = []
        try:
            r1 = self.lan.add_host("r1", 11)
            r2 = self.lan.add_host("r2", 12)
            obs = self.lan.add_host("obs", 50)
            self.r1_ip, self.r2_ip = str(r1.ipv4.ip), str(r2.ipv4.ip)
            self.routers = [dataclasses.replace(h, netns=CgroupNetns(h.netns.name, cgroup)) for h in (r1, r2)]
            self.observer = Observer(obs)
            for host, prio in zip(self.routers, (PRIO_MASTER, PRIO_BACKUP)):
                settings = [VrrpSettings(vrid=VRID, priority=prio, vips=[VIP], version=profile.version,
                                         advert_int_s=profile.advert_int_s)]
                peer: KeepalivedPeer
                if implementation == "pykeepalived":
                    peer = PyKeepalivedPeer(host, settings, workdir, extra_global=extra_global,
                                            start_timeout_s=30.0)
                else:
                    peer = KeepalivedPeer(host, settings, workdir, extra_global=extra_global,
                                          start_timeout_s=30.0)
                self.peers.append(peer)
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        for peer in self.peers:
            peer.start()

    def settled(self) -> bool:
        r1, r2 = self.peers
        return (r1.states().get("VI_1") == "MASTER" and r2.states().get("VI_1") == "BACKUP"
                and r1.holds(VIP.ip) and not r2.holds(VIP.ip))

    def transition_lines(self) -> list[str]:
        out = []
        for peer in self.peers:
            out += [f"{peer.host.name}: {line.strip()}" for line in peer.log().splitlines() if TRANSITION.search(line)]
        return out

    def daemon_pids(self) -> list[int]:
        pids: list[int] = []
        for peer in self.peers:
            daemon = peer._daemon
            if daemon is not None:
                pids += _group_pids(daemon.pid)
        return pids

    def start_stress(self, load: Load, seconds: float) -> None:
        for host in self.routers:
            self.stress.append(host.netns.popen(load.stress_argv(seconds)))

    def stop_stress(self) -> None:
        for proc in self.stress:
            kill_process_group(proc, 10)
        self.stress = []

    def result(self, start: float, end: float, before: list[str], cpu_s: float) -> PairResult:
        assert self.observer is not None
        res = PairResult(self.implementation, self.profile.name,
                         down_interval_s=round(self.profile.down_interval_s(), 4))
        res.transitions = self.transition_lines()[len(before):]
        adverts = self.observer.between(start, end)
        down = self.profile.down_interval_s()
        last_backup: float | None = None
        for a in adverts:
            if a.src == self.r2_ip and a.prio > 0:
                res.backup_adverts += 1
                if last_backup is None or a.t - last_backup > down:
                    res.takeovers_on_wire += 1
                last_backup = a.t
        master = [a.t for a in adverts if a.src == self.r1_ip and a.prio > 0]
        res.master_adverts = len(master)
        gaps = [b - a for a, b in zip(master, master[1:])]
        res.longest_master_silence_s = round(max(gaps, default=0.0), 4)
        res.master_silences_over_down_interval = sum(1 for g in gaps if g > down)
        res.daemon_cpu_s = round(cpu_s, 2)
        res.daemons_alive = all(p.running() for p in self.peers)
        return res

    def logs(self) -> dict[str, str]:
        return {f"{self.implementation}-{p.host.name}": p.log() for p in self.peers}

    def close(self) -> None:
        self.stop_stress()
        for peer in self.peers:
            try:
                peer.close()
            except Exception:  # keep closing the rest
                pass
        if self.observer is not None:
            self.observer.close()
        self.lan.close()


@dataclass
class RunResult:
    profile: Profile
    load: Load
    duration_s: float
    pairs: list[PairResult]
    cgroup: dict[str, object] | None
    cgroup_stat: dict[str, int]
    extra_global: str
    logs: dict[str, str] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name, "vrrp_version": self.profile.version,
            "advert_int_s": self.profile.advert_int_s, "duration_s": round(self.duration_s, 1),
            "load": self.load.describe(), "cgroup": self.cgroup, "cgroup_cpu_stat": self.cgroup_stat,
            "extra_global_defs": self.extra_global or None,
            "results": {r.implementation: r.as_dict() for r in self.pairs},
        }


def run_side_by_side(profile: Profile, load: Load, duration_s: float, workdir: Path, *,
                     implementations: tuple[str, ...] = IMPLEMENTATIONS, extra_global: str = "",
                     settle_s: float = 3.0, progress: Any = None) -> RunResult:
    """Both pairs up and settled, then `duration_s` under `load`; what each pair did meanwhile."""
    cgroup = CpuCgroup(load.cpu_quota_us, load.cpu_period_us) if load.cpu_quota_us else None
    pairs: list[Pair] = []
    try:
        for impl in implementations:
            pairs.append(Pair(impl, profile, workdir, cgroup, extra_global))
        for pair in pairs:
            pair.start()
        wait_until(lambda: all(p.settled() for p in pairs), 30.0 + 10 * profile.advert_int_s,
                   what="both pairs settled (r1 MASTER, r2 BACKUP)")
        time.sleep(settle_s)
        before = {p.implementation: p.transition_lines() for p in pairs}
        cpu0 = {p.implementation: _cpu_seconds(p.daemon_pids()) for p in pairs}
        stat0 = cgroup.stat() if cgroup else {}
        start = time.time()
        for pair in pairs:
            pair.start_stress(load, duration_s)
        end_at = time.monotonic() + duration_s
        while (left := end_at - time.monotonic()) > 0:
            time.sleep(min(left, 5.0))
            if progress is not None:
                progress(pairs, duration_s - max(0.0, end_at - time.monotonic()))
        for pair in pairs:
            pair.stop_stress()
        time.sleep(max(1.0, 2 * profile.down_interval_s()))  # what the last moments of load caused shows
        end = time.time()
        stat1 = cgroup.stat() if cgroup else {}
        results = [p.result(start, end, before[p.implementation],
                            _cpu_seconds(p.daemon_pids()) - cpu0[p.implementation]) for p in pairs]
        logs: dict[str, str] = {}
        for pair in pairs:
            logs.update(pair.logs())
        return RunResult(profile, load, end - start, results, cgroup.describe() if cgroup else None,
                         {k: stat1.get(k, 0) - stat0.get(k, 0) for k in stat1}, extra_global, logs)
    finally:
        for pair in pairs:
            pair.close()
        if cgroup is not None:
            cgroup.close()
