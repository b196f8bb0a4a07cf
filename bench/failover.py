"""Failover gap: how long new TCP connections to the VIP fail when the master goes away.

What is measured: a client probes VIP:PORT with a new non-blocking TCP connect
every 10 ms (each attempt with its own 300 ms timeout, many in flight, so slow
attempts never delay the cadence). Both routers run a tiny TCP server on
0.0.0.0:PORT, so an attempt succeeds exactly when the router the client's
neighbour cache points at holds the VIP. The gap of one run is the longest time
between the starts of two successive successful attempts, less the 10 ms probe
interval (0 if no attempt failed).

Three events, each for a real keepalived pair and for a pykeepalived pair in
the same run (both routers of a pair run the same implementation):
  a  master SIGKILLed and its VIPs removed at once (a dead machine), VRRPv2, advert_int 1
  b  master stopped cleanly (SIGTERM: priority-0 advert), same settings
  c  master SIGKILLed, VRRPv3, advert_int 0.1
Priorities 150 (r1, master) and 100 (r2, backup).

Why: this is what a user of the VIP sees, and lab-facts.md has anchor figures
for keepalived 2.2.7 on this kind of machine (2.68 s, 0.66 s, 0.35 s).

Fairness: after a kill the backup waits for its master-down timer, which
started at the master's last advert, so the gap depends on when in the advert
cycle the kill falls (anywhere in [down_interval - advert_int, down_interval]).
The prober therefore also listens for VRRP adverts (raw socket, IP protocol
112, joined to 224.0.0.18 on the client's eth0), and the event is triggered a
fixed delay (0.5 x advert_int by default) after one of the master's adverts,
the same for both implementations. Each run reports that phase, when the VIP
vanished and when the new master's first advert was seen, so the figures can
be checked; `served_again_after_last_master_advert_s` does not depend on how
long the lab's kill()/remove_vips() took.

Every run gets a fresh Lan (own namespaces, fresh neighbour caches); runs of
the two implementations are interleaved. Prints one JSON document.

On a loaded machine: a run that cannot get steady before its event (nothing
measured yet) is run again, up to 3 times. After the takeover the bench waits
up to 10 s for 1 s of clean connects: a client that missed the new master's
first gratuitous ARP burst is only served again by the second one,
garp_master_delay (5 s) later, and such a run is a measurement (a gap of about
5 s), not an error. A run still not clean then is reported as unsettled, with
the client's neighbour entry and who holds the VIP. The prober takes the
connects the kernel completed before it times any out, so a stall of the
prober itself does not count as failures.

Run (root, keepalived installed):
    cd /work/main && .venv/bin/python bench/failover.py [--runs 3] [--events a,b,c]
        [--only keepalived|pykeepalived] [--delay 0.5] [--logs DIR]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from types import FrameType
from typing import IO, Any

from pykeepalived.lab import (
    KeepalivedPeer,
    LabError,
    Lan,
    PyKeepalivedPeer,
    VrrpSettings,
    unique_prefix,
    wait_until,
)
from pykeepalived.lab.netns import Netns, kill_process_group
from pykeepalived.lab.topology import Host

VIP = IPv4Interface("192.0.2.100/24")
PORT = 8080
VRID = 51
PRIO_MASTER = 150
PRIO_BACKUP = 100
PROBE_INTERVAL_S = 0.010
PROBE_TIMEOUT_S = 0.300
STEADY_S = 1.0  # successes wanted before the event and after the takeover
STEADY_CAP_S = 10.0
# After the takeover: 1 s of clean connects is normally there 1.3 s after the new master's first advert.
# The cap leaves room for keepalived's second gratuitous ARP burst (garp_master_delay, 5 s) should the
# client have missed the first; a run still not clean then is reported as unsettled, with what the
# client's neighbour table and the routers showed, instead of ending the whole benchmark.
TAIL_CAP_S = 10.0
PRE_EVENT_TRIES = 3  # a run that cannot get steady before the event (nothing measured yet) is run again
MIN_LEAD_S = 0.003  # an advert is only used if its trigger moment is still this far ahead

ANCHORS_S = {"a": 2.68, "b": 0.66, "c": 0.35}
IMPLEMENTATIONS = ("keepalived", "pykeepalived")


@dataclass(frozen=True)
class Event:
    """One failure of the master and the VRRP settings it is measured with."""

    key: str
    description: str
    action: str  # "kill" or "stop"
    version: int
    advert_int_s: float

    def down_interval_s(self, priority: int) -> float:
        """RFC master-down interval of a backup of `priority` (v2 skew in whole seconds, v3 scaled)."""
        scale = 1.0 if self.version == 2 else self.advert_int_s
        return 3 * self.advert_int_s + (256 - priority) / 256 * scale

    def settings(self, priority: int) -> list[VrrpSettings]:
        return [VrrpSettings(vrid=VRID, priority=priority, vips=[VIP], version=self.version,
                             advert_int_s=self.advert_int_s)]


EVENTS = {
    "a": Event("a", "master SIGKILL, VIPs removed at once", "kill", 2, 1.0),
    "b": Event("b", "master clean stop (SIGTERM, priority-0 advert)", "stop", 2, 1.0),
    "c": Event("c", "master SIGKILL, VIPs removed at once", "kill", 3, 0.1),
}

# ----------------------------------------------------------------------------------------------
# processes inside the namespaces

TCP_SERVER_SRC = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()
"""

# Runs in the client namespace. argv: VIP PORT INTERVAL TIMEOUT IFNAME. Writes JSON lines:
#   {"k":"ready","t":T}
#   {"k":"p","t":START,"ok":BOOL,"d":DURATION,"e":ERROR}      one per connect attempt
#   {"k":"a","t":T,"src":IP,"ver":V,"vrid":N,"prio":P}       one per VRRP advert heard
# Times are CLOCK_MONOTONIC, which the parent shares. Exits when its stdin closes.
PROBER_SRC = r"""
import errno
import json
import select
import socket
import struct
import sys
import time

def main():
    vip, port = sys.argv[1], int(sys.argv[2])
    interval, timeout, ifname = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    out = sys.stdout
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    mreq = struct.pack("4s4si", socket.inet_aton("224.0.0.18"), socket.inet_aton("0.0.0.0"),
                       socket.if_nametoindex(ifname))
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    raw.setblocking(False)
    ep = select.epoll()
    ep.register(raw.fileno(), select.EPOLLIN)
    ep.register(0, select.EPOLLIN | select.EPOLLHUP)
    linger = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up on either side
    inflight = {}  # fd -> (socket, start); insertion order = start order

    def emit(obj):
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def finish(fd, ok, err):
        sock, start = inflight.pop(fd)
        now = time.monotonic()
        try:
            ep.unregister(fd)
        except (OSError, ValueError):
            pass
        sock.close()
        emit({"k": "p", "t": start, "ok": ok, "d": round(now - start, 6), "e": err})

    def attempt():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        start = time.monotonic()
        rc = s.connect_ex((vip, port))
        fd = s.fileno()
        inflight[fd] = (s, start)
        if rc == 0:
            finish(fd, True, "")
        elif rc == errno.EINPROGRESS:
            ep.register(fd, select.EPOLLOUT)
        else:
            finish(fd, False, errno.errorcode.get(rc, str(rc)))

    def read_adverts():
        while True:
            try:
                data, addr = raw.recvfrom(2048)
            except BlockingIOError:
                return
            now = time.monotonic()
            ihl = (data[0] & 0x0F) * 4
            v = data[ihl:ihl + 3]
            if len(v) == 3:
                emit({"k": "a", "t": now, "src": addr[0], "ver": v[0] >> 4, "vrid": v[1], "prio": v[2]})

    emit({"k": "ready", "t": time.monotonic()})
    out.flush()
    next_t = time.monotonic()
    def collect(wait):  # take every completion the kernel has; False once stdin is closed
        for fd, mask in ep.poll(max(0.0, wait)):
            if fd == 0:
                if not sys.stdin.buffer.read1(4096):
                    return False
            elif fd == raw.fileno():
                read_adverts()
            elif fd in inflight:
                err = inflight[fd][0].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                finish(fd, err == 0, "" if err == 0 else errno.errorcode.get(err, str(err)))
        return True

    while True:
        now = time.monotonic()
        if now >= next_t:
            attempt()
            next_t += interval
            while next_t <= now:  # fell behind (scheduler): skip slots rather than burst
                next_t += interval
        wake = next_t
        if inflight:
            wake = min(wake, next(iter(inflight.values()))[1] + timeout)
        alive = collect(wake - time.monotonic())
        # Only now time out what is still in flight: after a stall of this process (a loaded
        # machine), connects the kernel completed meanwhile are in the poll above, not failures.
        now = time.monotonic()
        if any(now - start >= timeout for _, start in inflight.values()):
            alive = collect(0.0) and alive
            for fd, (sock, start) in list(inflight.items()):
                if now - start < timeout:
                    break
                finish(fd, False, "timeout")
        out.flush()
        if not alive:
            return

main()
"""


@dataclass
class Probe:
    t: float
    ok: bool
    err: str


@dataclass
class Advert:
    t: float
    src: str
    prio: int


class Prober:
    """The prober subprocess in the client namespace, and what it has reported so far."""

    def __init__(self, netns: Netns, ifname: str, stderr_path: Path) -> None:
        self.probes: list[Probe] = []  # in the order they started (they report in the order they finish)
        self._failed_t: list[float] = []  # start times of the failed ones, sorted
        self.adverts: list[Advert] = []
        self.ready_t: float | None = None
        self._cond = threading.Condition()
        self._stderr_path = stderr_path
        argv = [sys.executable, "-c", PROBER_SRC, str(VIP.ip), str(PORT), str(PROBE_INTERVAL_S),
                str(PROBE_TIMEOUT_S), ifname]
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(netns.argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, start_new_session=True)
        self._reader = threading.Thread(target=self._read, name="prober-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self._cond:
                if msg["k"] == "p":
                    bisect.insort(self.probes, Probe(msg["t"], msg["ok"], msg["e"]), key=_start)
                    if not msg["ok"]:
                        bisect.insort(self._failed_t, msg["t"])
                elif msg["k"] == "a":
                    if msg["vrid"] == VRID:
                        self.adverts.append(Advert(msg["t"], msg["src"], msg["prio"]))
                elif msg["k"] == "ready":
                    self.ready_t = msg["t"]
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Wait (re-checking every 20 ms, not on each of the ~100 reports a second) until predicate() is truthy."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                if self.proc.poll() is not None:
                    raise LabError(f"prober exited with {self.proc.returncode} while waiting for {what}:\n"
                                   + self._stderr_path.read_text(errors="replace")[-2000:])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"timed out after {timeout_s:g} s waiting for {what}")
                self._cond.wait(min(left, 0.02))

    def clean_since(self) -> float | None:
        """Start of the current run of successes, counting only attempts old enough to have reported.

        Attempts count in the order they started (a slow failure reports after quicker successes
        that started later); two binary searches, so waiting stays cheap however long a run is.
        """
        settled = time.monotonic() - PROBE_TIMEOUT_S
        k = bisect.bisect_right(self._failed_t, settled)
        after = self._failed_t[k - 1] if k else None
        i = 0 if after is None else bisect.bisect_right(self.probes, after, key=_start)
        if i >= len(self.probes) or self.probes[i].t > settled:
            return None
        return self.probes[i].t

    def clean_for(self, seconds: float, not_before: float = 0.0) -> bool:
        """True once every settled attempt since max(not_before, start of the clean run) succeeded for `seconds`."""
        start = self.clean_since()
        return start is not None and time.monotonic() - PROBE_TIMEOUT_S - max(start, not_before) >= seconds

    def next_advert(self, src: str, after: float, timeout_s: float) -> Advert:
        """The first advert from `src` with non-zero priority heard after `after`."""
        def find() -> Advert | None:
            return next((a for a in self.adverts if a.src == src and a.prio > 0 and a.t > after), None)
        advert: Advert = self.wait_for(find, timeout_s, f"a VRRP advert from {src}")
        return advert

    def snapshot(self) -> tuple[list[Probe], list[Advert]]:
        """Copies of everything reported so far."""
        with self._cond:
            return list(self.probes), list(self.adverts)

    def close(self) -> None:
        """Stop the prober: EOF on its stdin, then SIGKILL to its group if it lingers."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            kill_process_group(self.proc, 2.0)
        self._reader.join(timeout=2.0)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


def _start(p: Probe) -> float:
    return p.t


def start_tcp_server(host: Host) -> subprocess.Popen[bytes]:
    proc: subprocess.Popen[bytes] = host.netns.popen([sys.executable, "-c", TCP_SERVER_SRC.format(port=PORT)])
    return proc


# ----------------------------------------------------------------------------------------------
# one run


@dataclass
class Timeline:
    """Moments of one run (monotonic seconds)."""

    steady_from: float = 0.0
    master_advert: float = 0.0  # the advert the trigger was aligned to
    trigger: float = 0.0
    killed: float | None = None  # kill() returned
    event_done: float = 0.0  # remove_vips() or stop() returned
    new_master_advert: float = 0.0
    end: float = 0.0  # attempts started after this are ignored (may not have reported)
    settled: bool = True  # False: no STEADY_S of clean connects after the takeover within TAIL_CAP_S
    unsettled_why: str = ""


@dataclass
class PreEventError(LabError):
    """The run never got to its event (no steady service, no master advert): nothing was measured."""


@dataclass
class RunResult:
    gap_s: float
    attempts: int
    failed: int
    detail: dict[str, Any] = field(default_factory=dict)


def make_peer(impl: str, host: Host, settings: list[VrrpSettings], workdir: Path) -> KeepalivedPeer:
    if impl == "keepalived":
        return KeepalivedPeer(host, settings, workdir)
    return PyKeepalivedPeer(host, settings, workdir)


def sole_holder(holder: KeepalivedPeer, other: KeepalivedPeer) -> bool:
    return holder.holds(VIP.ip) and not other.holds(VIP.ip)


def align_trigger(prober: Prober, master_ip: str, event: Event, delay_s: float) -> Advert:
    """Sleep until `delay_s` after a master advert (one still far enough ahead); return that advert."""
    after = time.monotonic()
    while True:
        advert = prober.next_advert(master_ip, after, 3 * event.advert_int_s + 2.0)
        if advert.t + delay_s - time.monotonic() >= MIN_LEAD_S:
            break
        after = advert.t
    time.sleep(max(0.0, advert.t + delay_s - time.monotonic()))
    return advert


def fire(event: Event, master: KeepalivedPeer, tl: Timeline) -> None:
    tl.trigger = time.monotonic()
    if event.action == "kill":
        master.kill()
        tl.killed = time.monotonic()
        master.remove_vips()
    else:
        master.stop()
    tl.event_done = time.monotonic()


def run_once(impl: str, event: Event, delay_s: float, workdir: Path, logs: Path | None, tag: str) -> RunResult:
    """One measured run; a run that fails before its event (a loaded machine) is tried again."""
    for attempt in range(1, PRE_EVENT_TRIES + 1):
        try:
            result = _run_once(impl, event, delay_s, workdir, logs, tag)
        except PreEventError as exc:
            if attempt == PRE_EVENT_TRIES:
                raise
            print(f"{tag}: no measurement ({exc}); trying again", file=sys.stderr, flush=True)
            continue
        result.detail["tries"] = attempt
        return result
    raise AssertionError("unreachable")


def _run_once(impl: str, event: Event, delay_s: float, workdir: Path, logs: Path | None, tag: str) -> RunResult:
    """Build a fresh Lan, elect r1, probe, fire the event, wait for r2 to serve, analyse."""
    with Lan(unique_prefix("fo")) as lan:
        r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 50)
        servers = [start_tcp_server(r1), start_tcp_server(r2)]
        master = make_peer(impl, r1, event.settings(PRIO_MASTER), workdir)
        backup = make_peer(impl, r2, event.settings(PRIO_BACKUP), workdir)
        prober: Prober | None = None
        try:
            master.start()
            backup.start()
            try:
                wait_until(lambda: sole_holder(master, backup), event.down_interval_s(PRIO_MASTER) + 5.0,
                           interval_s=0.02, what=f"{master!r} sole holder of {VIP.ip}")
            except LabError as exc:
                raise PreEventError(str(exc)) from exc
            prober = Prober(c.netns, c.ifname, workdir / f"prober-{tag}.err")
            tl = measure(prober, event, master, str(r1.ipv4.ip), str(r2.ipv4.ip), delay_s)
            result = analyse(prober, event, tl)
            result.detail["final_holder"] = "r2" if sole_holder(backup, master) else "not r2 alone"
            if not tl.settled:
                result.detail["unsettled"] = tl.unsettled_why
                result.detail["client_neighbour"] = c.netns.ip("-4", "neigh", "show", str(VIP.ip)).strip()
                result.detail["vip_on"] = [h for h, p in (("r1", master), ("r2", backup)) if p.holds(VIP.ip)]
            return result
        finally:
            if prober is not None:
                prober.close()
            for peer in (master, backup):
                peer.close()
            for proc in servers:
                kill_process_group(proc, 2.0)
            if logs is not None:
                save_logs(logs, tag, master, backup)


def measure(prober: Prober, event: Event, master: KeepalivedPeer, master_ip: str, backup_ip: str,
            delay_s: float) -> Timeline:
    tl = Timeline()
    try:
        prober.wait_for(lambda: prober.clean_for(STEADY_S), STEADY_CAP_S, f"{STEADY_S:g} s of successful connects")
        tl.steady_from = prober.clean_since() or 0.0
        tl.master_advert = align_trigger(prober, master_ip, event, delay_s).t
    except LabError as exc:
        raise PreEventError(str(exc)) from exc
    fire(event, master, tl)
    takeover_cap = event.down_interval_s(PRIO_BACKUP) + 3.0
    tl.new_master_advert = prober.next_advert(backup_ip, tl.trigger, takeover_cap).t
    try:
        prober.wait_for(lambda: prober.clean_for(STEADY_S, tl.new_master_advert), TAIL_CAP_S,
                        f"{STEADY_S:g} s of successful connects after the takeover")
    except LabError as exc:
        if prober.proc.poll() is not None:
            raise
        tl.settled, tl.unsettled_why = False, str(exc)
    tl.end = time.monotonic() - PROBE_TIMEOUT_S
    return tl


def analyse(prober: Prober, event: Event, tl: Timeline) -> RunResult:
    all_probes, adverts = prober.snapshot()
    probes = sorted((p for p in all_probes if tl.steady_from <= p.t <= tl.end), key=lambda p: p.t)
    ok = [p.t for p in probes if p.ok]
    failed = [p for p in probes if not p.ok]
    gaps = [b - a for a, b in zip(ok, ok[1:], strict=False)]
    if failed and (not ok or failed[-1].t > ok[-1]):  # unsettled: still failing at the end
        gaps.append(tl.end - (ok[-1] if ok else tl.steady_from))
    gap = max(0.0, max(gaps, default=0.0) - PROBE_INTERVAL_S) if failed else 0.0
    master_src = next(a.src for a in adverts if a.t == tl.master_advert)
    last_master = max(a.t for a in adverts if a.src == master_src and a.prio > 0 and a.t <= tl.event_done)
    served_again = next((t for t in ok if t > failed[-1].t), None) if failed else None

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - tl.trigger, 4)

    detail: dict[str, Any] = {
        "trigger_after_master_advert_s": round(tl.trigger - tl.master_advert, 4),
        "last_master_advert_rel_s": rel(last_master),
        "kill_returned_rel_s": rel(tl.killed),
        "event_done_rel_s": rel(tl.event_done),
        "master_adverts_after_trigger": [(rel(a.t), a.prio) for a in adverts
                                         if a.src == master_src and a.t > tl.trigger],
        "new_master_first_advert_rel_s": rel(tl.new_master_advert),
        "new_master_advert_after_last_master_advert_s": round(tl.new_master_advert - last_master, 4),
        "first_failed_attempt_rel_s": rel(failed[0].t) if failed else None,
        "last_failed_attempt_rel_s": rel(failed[-1].t) if failed else None,
        "first_success_after_failures_rel_s": rel(served_again),
        # Independent of how long kill()/remove_vips() took to make the VIP vanish on r1:
        # when the client could connect again, counted from the master's last advert.
        "served_again_after_last_master_advert_s": None if served_again is None
        else round(served_again - last_master, 4),
        "failure_kinds": sorted({p.err for p in failed}),
        "max_attempt_spacing_s": round(max((b.t - a.t for a, b in zip(probes, probes[1:], strict=False)),
                                           default=0.0), 4),
    }
    if event.action == "kill":
        bound = event.down_interval_s(PRIO_BACKUP) - (tl.trigger - last_master)
        detail["protocol_gap_bound_s"] = round(bound, 4)
    return RunResult(round(gap, 4), len(probes), len(failed), detail)


def save_logs(logs: Path, tag: str, master: KeepalivedPeer, backup: KeepalivedPeer) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    for role, peer in (("r1", master), ("r2", backup)):
        (logs / f"{tag}-{role}.log").write_text(peer.log())


# ----------------------------------------------------------------------------------------------
# the whole benchmark


def summarise(results: list[RunResult]) -> dict[str, Any]:
    gaps = [r.gap_s for r in results]
    served = [r.detail["served_again_after_last_master_advert_s"] for r in results]
    served_known = [s for s in served if s is not None]
    return {
        "gaps_s": gaps,
        "median_s": round(statistics.median(gaps), 4) if gaps else None,
        "max_s": max(gaps, default=None),
        "failed_attempts": [r.failed for r in results],
        "served_again_after_last_master_advert_s": served,
        "served_again_median_s": round(statistics.median(served_known), 4) if served_known else None,
        "unsettled_runs": [i + 1 for i, r in enumerate(results) if "unsettled" in r.detail],
        "runs": [{"gap_s": r.gap_s, "attempts": r.attempts, "failed": r.failed, **r.detail} for r in results],
    }


def run_all(impls: list[str], events: list[Event], runs: int, delay_frac: float, logs: Path | None,
            progress: IO[str]) -> dict[str, dict[str, list[RunResult]]]:
    out: dict[str, dict[str, list[RunResult]]] = {e.key: {i: [] for i in impls} for e in events}
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        for event in events:
            for n in range(runs):
                for impl in impls:  # interleaved, so slow drift of the machine hits both alike
                    tag = f"{event.key}-{impl}-{n + 1}"
                    started = time.monotonic()
                    res = run_once(impl, event, delay_frac * event.advert_int_s, Path(tmp), logs, tag)
                    out[event.key][impl].append(res)
                    note = " UNSETTLED: " + res.detail["unsettled"] if "unsettled" in res.detail else ""
                    print(f"{tag}: gap {res.gap_s:.3f} s, {res.failed} failed "
                          f"({time.monotonic() - started:.1f} s){note}", file=progress, flush=True)
    return out


def machine_info() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        return lines[0] if lines else "unknown"

    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = "unknown"
    import pykeepalived

    return {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "debian": debian,
        "python": platform.python_version(),
        "keepalived": first_line(["keepalived", "--version"]),
        "pykeepalived": pykeepalived.__version__,
    }


def report(results: dict[str, dict[str, list[RunResult]]], events: list[Event], impls: list[str],
           args: argparse.Namespace, elapsed_s: float) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "benchmark": "failover",
        "measure": "longest gap between successful new TCP connects to the VIP, probed every 10 ms, "
                   "minus the probe interval",
        "machine": machine_info(),
        "settings": {
            "probe_interval_s": PROBE_INTERVAL_S,
            "probe_timeout_s": PROBE_TIMEOUT_S,
            "priorities": {"r1_master": PRIO_MASTER, "r2_backup": PRIO_BACKUP},
            "vrid": VRID,
            "vip": str(VIP),
            "runs": args.runs,
            "trigger_delay_after_master_advert": f"{args.delay} x advert_int",
            "times_rel_s": "relative to the trigger (start of kill/stop)",
        },
        "anchors_s": dict(ANCHORS_S),
        "anchors_note": "lab-facts.md figures for keepalived 2.2.7, kill moment not aligned to the advert "
                        "phase; here the event comes a fixed delay after a master advert, so a kill gap "
                        "is about down_interval - delay - time for the VIP to vanish",
        "events": {},
        "elapsed_s": round(elapsed_s, 1),
    }
    for event in events:
        entry: dict[str, Any] = {
            "description": event.description,
            "vrrp_version": event.version,
            "advert_int_s": event.advert_int_s,
            "backup_down_interval_s": round(event.down_interval_s(PRIO_BACKUP), 4),
            "anchor_gap_s": ANCHORS_S[event.key],
        }
        for impl in impls:
            entry[impl] = summarise(results[event.key][impl])
        if len(impls) == 2:
            entry["median_gap_s_side_by_side"] = {i: entry[i]["median_s"] for i in IMPLEMENTATIONS}
        doc["events"][event.key] = entry
    return doc


def render(doc: dict[str, Any]) -> str:
    """JSON with indent 2, except that each run's details stay on one line (readable side by side)."""
    compact: dict[str, str] = {}
    for event in doc["events"].values():
        for impl in IMPLEMENTATIONS:
            for i, run in enumerate(event.get(impl, {}).get("runs", [])):
                token = f"@@run-{len(compact)}@@"
                compact[token] = json.dumps(run, separators=(", ", ": "))
                event[impl]["runs"][i] = token
    text = json.dumps(doc, indent=2)
    for token, line in compact.items():
        text = text.replace(json.dumps(token), line)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=3, help="runs per implementation and event (default 3)")
    ap.add_argument("--only", choices=IMPLEMENTATIONS, help="measure one implementation only")
    ap.add_argument("--events", default="a,b,c", help="comma-separated subset of a,b,c (default all)")
    ap.add_argument("--delay", type=float, default=0.5,
                    help="trigger this many advert intervals after a master advert (default 0.5)")
    ap.add_argument("--logs", type=Path, help="keep every run's daemon logs in this directory")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if not 0 <= args.delay < 1:
        ap.error("--delay must be in [0, 1)")
    keys = [k.strip() for k in args.events.split(",") if k.strip()]
    bad = [k for k in keys if k not in EVENTS]
    if bad or not keys:
        ap.error(f"--events: unknown {','.join(bad) or '(empty)'}; choose from a,b,c")
    args.event_list = [EVENTS[k] for k in dict.fromkeys(keys)]
    args.impls = [args.only] if args.only else list(IMPLEMENTATIONS)
    return args


def preflight(impls: list[str]) -> str | None:
    """Why the benchmark cannot run here, or None."""
    if os.geteuid() != 0:
        return "must run as root (it creates network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) not found"
    if "keepalived" in impls and shutil.which("keepalived") is None:
        return "keepalived not found in PATH (install it, or use --only pykeepalived)"
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
        print(f"failover.py: error: {problem}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        results = run_all(args.impls, args.event_list, args.runs, args.delay, args.logs, sys.stderr)
    except KeyboardInterrupt:
        print("failover.py: interrupted; lab cleaned up", file=sys.stderr)
        return 130
    except LabError as exc:
        print(f"failover.py: error: {exc}", file=sys.stderr)
        return 1
    doc = report(results, args.event_list, args.impls, args, time.monotonic() - started)
    print(render(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
