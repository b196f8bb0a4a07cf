"""Chaos under load: failed requests, longest gap and connections kept, per event, with keepalived beside.

Two parts, in one run:

lab: pykeepalived in the guide's LVS lab (`LvsLab`, nftables data plane; NAT,
    DR, and NAT with connection sync: `lvs_sync_daemon`, conntrackd), every
    event of src/pykeepalived/lab/chaos.py (`EVENTS`: master
    SIGKILL, clean stop, public link down and back, partition and heal, a real
    server killed, a real server flapping every 2 s, checker child killed, VRRP
    child killed, reload, the nftables table deleted), each under wrk
    (keep-alive and a new connection per request) and 50 long-lived
    connections (a request every 100 ms on the same socket) through the VIP.
    keepalived 2.2.7 cannot run this lab here: its checker needs IPVS, which
    this kernel lacks.

pair: the VRRP-only events (master SIGKILL, clean stop, link down, partition,
    VRRP child killed) for a keepalived pair and a pykeepalived pair side by
    side, under the same load: two routers (VRRPv2, advert_int 1, priorities
    150 and 100, preempting) holding one VIP, each with a tiny keep-alive HTTP
    server on port 8080, and a client on the same LAN (bench/failover.py's
    set-up with an HTTP server for the streams and wrk). No connection can
    survive a move of the VIP there (the other router has no socket for it),
    so `kept` shows which events move the VIP at all; the gap and the failed
    requests compare the two implementations. Not like for like: VRRP child
    killed. pykeepalived alone (--vrrp) serves VRRP in its main process, so
    that kill is the whole daemon's death with its VIPs left in place (no
    respawn: both routers then hold the VIP, `steady_s` null), where
    keepalived's parent restarts its VRRP child.

Per event: `failed` (wrk's socket errors + non-2xx, per style; wrk retries a
refused connection at once, so a second of refusals counts thousands),
`longest_gap_s` (longest time no long-lived connection got an answer),
`streams.kept` of `streams.connections` (same socket answered after the
event), `steady_s` (from the event's last action to every stream answering
and the expected roles), and the event's own details. One JSON document on
stdout, progress on stderr.

Run (root; wrk and keepalived installed):
    cd /work/main && .venv/bin/python bench/chaos.py [--kinds nat,dr,nat-sync] [--events ...]
        [--pair-events ...] [--only keepalived|pykeepalived] [--streams 50] [--window 2]
        [--skip-lab] [--skip-pair]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from pykeepalived.lab import KeepalivedPeer, LabError, Lan, PyKeepalivedPeer, VrrpSettings, unique_prefix, wait_until
from pykeepalived.lab.chaos import EVENTS, PARTITION_TABLE, ChaosDriver, Fired, Load, chaos_lab, measure_under_load
from pykeepalived.lab.chaos import partition_rules

VIP = IPv4Interface("192.0.2.100/24")
PORT = 8080
VRID = 52
PRIO_MASTER, PRIO_BACKUP = 150, 100
TAKEOVER_TIMEOUT_S = 12.0
HOLD_S = 1.0
IMPLEMENTATIONS = ("keepalived", "pykeepalived")
PAIR_EVENTS = [name for name, spec in EVENTS.items() if spec.vrrp_only]

# A keep-alive HTTP/1.1 server answering every GET with "NAME client=ADDR" (what the streams read).
HTTP_SERVER_SRC = r"""
import http.server, sys
name = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = f"{name} client={self.client_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024
Server(("0.0.0.0", PORT), Handler).serve_forever()
""".replace("PORT", str(PORT))


def log(msg: str) -> None:
    print(f"chaos: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# pykeepalived's full lab


def run_lab(kind: str, events: list[str], load: Load, workdir: Path) -> dict[str, Any]:
    """`kind` nat, dr, tun, or one of them with "-sync": connection sync (conntrackd, consistent flows) on."""
    base, _, sync = kind.partition("-")
    lab = chaos_lab(base, workdir / f"lab-{kind}", prefix=unique_prefix(f"bc{kind[0]}"), sync=sync == "sync")
    results: dict[str, Any] = {}
    try:
        lab.up()
        driver = ChaosDriver(lab, workdir / f"runs-{kind}", streams=load.streams, window_s=load.window_s)
        for name in events:
            log(f"lab {kind}: {name}")
            results[name] = driver.run(name)
    finally:
        lab.close()
    return results


# ----------------------------------------------------------------------------------------------
# VRRP-only pairs


class Pair:
    """Two routers (r1 master, r2 backup) of one implementation on a fresh LAN, a client, servers on 8080."""

    def __init__(self, impl: str, workdir: Path) -> None:
        self.impl = impl
        self.lan = Lan(unique_prefix("bch"))
        self.r1, self.r2 = self.lan.add_host("r1", 11), self.lan.add_host("r2", 12)
        self.client = self.lan.add_host("c", 50)
        self.servers = [h.netns.popen([sys.executable, "-c", HTTP_SERVER_SRC, h.name]) for h in (self.r1, self.r2)]
        cls = KeepalivedPeer if impl == "keepalived" else PyKeepalivedPeer
        self.master = cls(self.r1, [VrrpSettings(vrid=VRID, priority=PRIO_MASTER, vips=[VIP])], workdir)
        self.backup = cls(self.r2, [VrrpSettings(vrid=VRID, priority=PRIO_BACKUP, vips=[VIP])], workdir)

    def start(self) -> None:
        self.master.start()
        self.backup.start()
        wait_until(lambda: self.sole(self.master), 10.0, what=f"{self.impl} r1 sole holder of {VIP.ip}")

    def sole(self, peer: KeepalivedPeer) -> bool:
        other = self.backup if peer is self.master else self.master
        return peer.holds(VIP.ip) and not other.holds(VIP.ip)

    def close(self) -> None:
        for peer in (self.master, self.backup):
            try:
                peer.close()
            except LabError as exc:
                log(f"{peer!r}: {exc}")
        for proc in self.servers:
            proc.kill()
            proc.wait(5)
        self.lan.close()


def _vrrp_pid(peer: KeepalivedPeer) -> int | None:
    try:
        return int(peer.vrrp_pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _main_pid(peer: KeepalivedPeer) -> int | None:
    try:
        return int(peer.pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _quiet_wait(predicate: Callable[[], bool], timeout_s: float) -> float | None:
    try:
        return round(wait_until(predicate, timeout_s, interval_s=0.05), 3)
    except LabError:
        return None


def pair_fire(pair: Pair, name: str) -> Fired:
    """The pair's version of one VRRP-only event (the lab's actions on r1/r2)."""
    m, b = pair.master, pair.backup
    r1 = pair.r1
    started = time.monotonic()
    if name == "master_sigkill":
        m.kill()
        m.remove_vips()
        r1.netns.ip("link", "set", r1.ifname, "down")  # a dead machine: nothing answers, nothing forwards
        return Fired(time.monotonic(), lambda: b.holds(VIP.ip))
    if name == "master_clean_stop":
        m.stop()
        return Fired(started, lambda: b.holds(VIP.ip), detail={"stop_s": round(time.monotonic() - started, 3)})
    if name == "master_link_down":
        r1.netns.ip("link", "set", r1.ifname, "down")
        takeover = _quiet_wait(lambda: b.holds(VIP.ip), TAKEOVER_TIMEOUT_S)
        time.sleep(HOLD_S)
        r1.netns.ip("link", "set", r1.ifname, "up")
        return Fired(time.monotonic(), lambda: pair.sole(m), detail={"takeover_s": takeover})
    if name == "partition":
        for me, peer in ((pair.r1, pair.r2), (pair.r2, pair.r1)):
            me.netns.run(["nft", "-f", "-"], input=partition_rules([str(peer.ipv4.ip)]))
        split = _quiet_wait(lambda: b.holds(VIP.ip), TAKEOVER_TIMEOUT_S)
        time.sleep(HOLD_S)
        for host in (pair.r1, pair.r2):
            host.netns.run(["nft", "delete", "table", "ip", PARTITION_TABLE], check=False)
        return Fired(time.monotonic(), lambda: pair.sole(m), detail={"split_brain_s": split})
    if name == "vrrp_kill":
        old = _vrrp_pid(m)
        if old is None:
            raise LabError(f"no VRRP child pid in {m.vrrp_pid_path}")
        # pykeepalived alone (--vrrp) serves VRRP in its main process, which writes its pid in both files:
        # no supervisor respawns it, so this kills the whole daemon and leaves its VIPs (keepalived keeps a
        # parent that restarts its VRRP child even with --vrrp)
        in_process = old == _main_pid(m)
        os.kill(old, signal.SIGKILL)
        return Fired(time.monotonic(), lambda: _vrrp_pid(m) not in (None, old) and pair.sole(m),
                     detail={"killed_pid": old, "vrrp_in_main_process": in_process})
    raise LabError(f"{name} is not a VRRP-only event")


def run_pair(impl: str, name: str, load: Load, workdir: Path) -> dict[str, Any]:
    pair = Pair(impl, workdir)
    try:
        pair.start()
        result = measure_under_load(pair.client.netns, str(VIP.ip), PORT, workdir / f"pair-{impl}-{name}",
                                    lambda: pair_fire(pair, name), load)
        result["detail"]["final_holder"] = [n for n, p in (("r1", pair.master), ("r2", pair.backup))
                                            if p.holds(VIP.ip)]
        return {"event": name, "impl": impl, **result}
    finally:
        pair.close()


# ----------------------------------------------------------------------------------------------


def headline(result: dict[str, Any]) -> dict[str, Any]:
    streams = result["streams"]
    return {"failed": result["failed"], "longest_gap_s": result["longest_gap_s"],
            "kept": f"{streams['kept']}/{streams['connections']}", "steady_s": result["steady_s"]}


def machine_info() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return ""
        return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else ""

    return {"kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "keepalived": first_line(["keepalived", "--version"]), "wrk": first_line(["wrk", "--version"])}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kinds", default="nat,dr,nat-sync",
                        help="lab kinds for pykeepalived's full-lab events (KIND-sync: with connection sync)")
    parser.add_argument("--events", default=",".join(EVENTS), help="lab events, comma-separated")
    parser.add_argument("--pair-events", default=",".join(PAIR_EVENTS), help="VRRP-only pair events")
    parser.add_argument("--only", choices=IMPLEMENTATIONS, help="pair runs of one implementation only")
    parser.add_argument("--streams", type=int, default=50, help="long-lived connections (default 50)")
    parser.add_argument("--window", type=float, default=2.0, help="seconds watched after the steady state")
    parser.add_argument("--skip-lab", action="store_true", help="no full-lab events")
    parser.add_argument("--skip-pair", action="store_true", help="no VRRP-only pair events")
    args = parser.parse_args(argv)
    args.kinds = [k for k in args.kinds.split(",") if k]
    for k in args.kinds:
        base, dash, rest = k.partition("-")
        if base not in ("nat", "dr", "tun") or (dash and rest != "sync"):
            parser.error(f"unknown lab kind {k!r}: nat, dr, tun, or one of them with -sync")
    args.events = [e for e in args.events.split(",") if e]
    args.pair_events = [e for e in args.pair_events.split(",") if e]
    for e in args.events:
        if e not in EVENTS:
            parser.error(f"unknown event {e!r}: choose from {', '.join(EVENTS)}")
    for e in args.pair_events:
        if e not in PAIR_EVENTS:
            parser.error(f"{e!r} is not a VRRP-only event: choose from {', '.join(PAIR_EVENTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/chaos.py: needs root (network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("bench/chaos.py: needs wrk", file=sys.stderr)
        return 2
    impls = [args.only] if args.only else list(IMPLEMENTATIONS)
    if "keepalived" in impls and not args.skip_pair and shutil.which("keepalived") is None:
        print("bench/chaos.py: needs keepalived for the pair runs (or --only pykeepalived / --skip-pair)",
              file=sys.stderr)
        return 2
    load = Load(streams=args.streams, window_s=args.window)
    started = time.monotonic()
    doc: dict[str, Any] = {"bench": "chaos", "machine": machine_info(),
                           "load": {"streams": load.streams, "stream_interval_s": 0.1,
                                    "wrk_connections": {"keepalive": load.wrk_keepalive,
                                                        "new_conn": load.wrk_new_conn},
                                    "wrk_delay_ms": load.wrk_delay_ms, "window_s": load.window_s},
                           "lab": {}, "pair": {}}
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        workdir = Path(tmp)
        if not args.skip_lab:
            for kind in args.kinds:
                doc["lab"][kind] = run_lab(kind, args.events, load, workdir)
        if not args.skip_pair:
            for name in args.pair_events:
                for impl in impls:  # the two implementations interleaved, event by event
                    log(f"pair {impl}: {name}")
                    doc["pair"].setdefault(name, {})[impl] = run_pair(impl, name, load, workdir)
    doc["summary"] = {
        "lab": {kind: {name: headline(r) for name, r in runs.items()} for kind, runs in doc["lab"].items()},
        "pair": {name: {impl: headline(r) for impl, r in runs.items()} for name, runs in doc["pair"].items()},
    }
    doc["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
