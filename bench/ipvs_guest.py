"""IPVS (keepalived 2.2.7's and ours) against our nftables paths, in the qemu guest: RATIOS ONLY.

Why: this machine's kernel has no IPVS, so bench/dataplane.py cannot say how
our nftables paths compare with the kernel's IPVS that keepalived programs.
The qemu guest of tests/vm (Debian's kernel, IPVS as modules, this machine's
files) can, but it runs under software emulation (TCG): every packet and every
Python line costs many times what it costs on the host. The emulation slows
every path alike, so the ratios between paths measured in the same run mean
something; the absolute requests/s are emulation's and mean nothing.

Run from the host (root; it boots the guest once, 2 vCPUs):

    .venv/bin/python bench/ipvs_guest.py [--runs 4] [--duration 3] [--styles keepalive] [--live-daemons]

Inside, one lab (bench/dataplane.py's BenchLab: the NAT lab with pykeepalived on
nftables, `timeout_scale` 10) and wrk in the client reach the same three nginx
real servers these ways:

- `direct`: routed through router1, no NAT, untracked (dataplane.py's anchor);
  `direct_router2`: the same through router2 (to the real servers' second
  addresses), the anchor for the IPVS paths, which go through router2;
- `ipvs_nat_keepalived`, `ipvs_dr_keepalived`: IPVS NAT and DR, rr, programmed
  by keepalived 2.2.7 itself (`keepalived -C`: its checker, HTTP_GET on each
  real server, fills the IPVS table) in router2, whose pykeepalived was stopped
  and its nftables tables deleted;
- `ipvs_nat_pykeepalived`, `ipvs_dr_pykeepalived`: the same two services on
  other VIPs, programmed by pykeepalived `--dataplane ipvs -C` in router2 at
  the same time (each daemon leaves the other's services alone);
- `nft_nat` (rr, conntrack NAT), `nft_stateless` (mh, stateless NAT),
  `nft_dr` (DR from the ingress hook, mh stateless) and `nft_dr_flows` (the
  same DR with rr and flow sets): pykeepalived's nftables paths in router1
  (dataplane.py's `vip`, `stateless`, `dr`, `dr_flows`).

The VIPs of router2's services are on its `lo` (no VRRP there: the checkers
alone program IPVS); the client routes each VIP to its router and leaves from
a source address of its own per mode; the real servers send NAT replies for
router2's modes back through router2, and every DR reply through router1
(untracked there, as dataplane.py's DR replies are). The three daemons
(router1's pykeepalived, keepalived and pykeepalived in router2) are stopped
(SIGSTOP) once their tables are in the kernel, and continued before the
teardown: their checkers (Python, under emulation) would otherwise share the 2
vCPUs with nginx, wrk and the forwarding (a run with them live measured about
a quarter of the throughput); `--live-daemons` keeps them running. No data path needs its daemon: IPVS,
conntrack and the nftables sets and maps all live in the kernel. Modes
are interleaved within each round; medians per mode, ratios of medians: each
over `direct`, the IPVS ones also over `direct_router2`, and each of ours over
keepalived's IPVS for the same method (NAT or DR).

Prints one JSON document on the host. Leaves nothing behind: the guest runs
in RAM and is thrown away; on the host only qemu's temporary directory, removed.
About 7 minutes (4 rounds) on this 2-core machine, shared.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
for _path in (str(REPO), str(BENCH)):  # tests.vm (the guest harness) and dataplane (the lab's pieces)
    if _path not in sys.path:
        sys.path.insert(0, _path)

import dataplane  # noqa: E402
from dataplane import HTTP_PORT, RAW_TABLE, BenchError, BenchLab, Wrk, notrack_rules, second_address  # noqa: E402

from pykeepalived.lab import LabError, unique_prefix  # noqa: E402
from pykeepalived.lab.lvs_lab import MARK_TABLE, VIP  # noqa: E402
from pykeepalived.lab.netns import Netns, kill_process_group  # noqa: E402

TIME_SCALE = 10.0  # the lab's own waits, stretched for Python under emulation (tests/vm uses 5; the host is shared)
GUEST_TIMEOUT_S = 1800
GUEST_MEMORY_MB = 1536
GUEST_WORKDIR = "/run/pkvm-ipvs-bench"  # the guest's own tmpfs: nothing of the lab reaches the host
JSON_MARK = "IPVS_GUEST_JSON "
ROUTER1, ROUTER2 = "router1", "router2"
ROUTER1_PUBLIC, ROUTER2_PUBLIC, ROUTER2_PRIVATE = "203.0.113.2", "203.0.113.3", "10.11.12.9"
DAEMON_START_S = 240.0  # keepalived and pykeepalived filling their IPVS services under emulation
DAEMON_STOP_S = 60.0
PROBE_TRIES = 3


@dataclass(frozen=True)
class IpvsService:
    """One IPVS service in router2: its VIP, forwarding method, which daemon owns it, the client's source."""

    mode: str
    vip: str
    kind: str  # NAT or DR
    daemon: str  # keepalived or pykeepalived
    client: str


IPVS_SERVICES = (
    IpvsService("ipvs_nat_keepalived", "203.0.113.30", "NAT", "keepalived", "203.0.113.110"),
    IpvsService("ipvs_dr_keepalived", "203.0.113.31", "DR", "keepalived", "203.0.113.111"),
    IpvsService("ipvs_nat_pykeepalived", "203.0.113.32", "NAT", "pykeepalived", "203.0.113.112"),
    IpvsService("ipvs_dr_pykeepalived", "203.0.113.33", "DR", "pykeepalived", "203.0.113.113"),
)
DIRECT_ROUTER2_CLIENT = "203.0.113.114"
# ours -> dataplane.py's mode of the same path
OURS = {"nft_nat": "vip", "nft_stateless": "stateless", "nft_dr": "dr", "nft_dr_flows": "dr_flows"}
MODES = ("direct", "direct_router2", *(s.mode for s in IPVS_SERVICES), *OURS)
METHOD_OF = {"nft_nat": "nat", "nft_stateless": "nat", "ipvs_nat_pykeepalived": "nat",
             "nft_dr": "dr", "nft_dr_flows": "dr", "ipvs_dr_pykeepalived": "dr"}
KEEPALIVED_IPVS = {"nat": "ipvs_nat_keepalived", "dr": "ipvs_dr_keepalived"}


# ----------------------------------------------------------------------------- inside the guest
def ipvs_config(daemon: str, servers: list[str]) -> str:
    """A checker-only keepalived.conf with this daemon's two services (dataplane.py's service blocks)."""
    lines = ["global_defs {", f"    router_id {ROUTER2}-{daemon}", "}"]
    for svc in IPVS_SERVICES:
        if svc.daemon == daemon:
            lines += dataplane._service(svc.vip, svc.kind, "rr", servers, False)
    return "\n".join(lines) + "\n"


class IpvsDaemon:
    """keepalived 2.2.7 or pykeepalived (`--dataplane ipvs`), checker only, in router2's namespace."""

    def __init__(self, daemon: str, netns: Netns, workdir: Path, servers: list[str]) -> None:
        self.daemon, self.netns, self.dir = daemon, netns, workdir
        self.conf = workdir / f"{daemon}.conf"
        self.conf.write_text(ipvs_config(daemon, servers))
        self.log_path = workdir / f"{daemon}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        pid, cpid = str(self.dir / f"{self.daemon}.pid"), str(self.dir / f"{self.daemon}-check.pid")
        common = ["-n", "-l", "-D", "-G", "-C", "-f", str(self.conf), "-p", pid, "-c", cpid]
        if self.daemon == "keepalived":
            return ["keepalived", *common]
        return [sys.executable, "-m", "pykeepalived", *common, "--dataplane", "ipvs",
                "--status-file", str(self.dir / "pykeepalived.status.json")]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = self.netns.popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (each deletes its own services), then the whole group killed if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DAEMON_STOP_S)
            except subprocess.TimeoutExpired:
                pass
        kill_process_group(self.proc)


def ipvs_table(netns: Netns) -> list[str]:
    """`ipvsadm -Sn` in that namespace, one line per service or real server."""
    return netns.run(["ipvsadm", "-Sn"]).stdout.splitlines()


def wait_ipvs_ready(netns: Netns, daemons: list[IpvsDaemon], servers: list[str]) -> list[str]:
    """Every service of both daemons in the kernel with all three real servers; the table, once it is."""
    deadline = time.monotonic() + DAEMON_START_S
    while True:
        table = ipvs_table(netns)
        ready = all(any(line.startswith(f"-a -t {svc.vip}:{HTTP_PORT} -r {rs}:{HTTP_PORT}") for line in table)
                    for svc in IPVS_SERVICES for rs in servers)
        if ready:
            return table
        for d in daemons:
            if d.proc is not None and d.proc.poll() is not None:
                raise BenchError(f"{d.daemon} exited with {d.proc.returncode} in {ROUTER2}:\n{d.log_tail()}")
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {d.daemon}\n{d.log_tail()}" for d in daemons)
            raise BenchError(f"the IPVS services are not all filled after {DAEMON_START_S:g} s:\n"
                             + "\n".join(table) + f"\n{tails}")
        time.sleep(1)


def wait_nft_ready(lab: BenchLab) -> None:
    """dataplane.py's readiness of the stateless and DR services, retried: its 20 s are too short here."""
    deadline = time.monotonic() + 20 * TIME_SCALE
    while True:
        try:
            dataplane.wait_stateless_ready(lab)
            return
        except BenchError:
            if time.monotonic() > deadline:
                raise


@dataclass
class Paths:
    """What each mode needs: wrk's targets, and the router (and notrack rules) to untrack its flows."""

    targets: dict[str, list[tuple[str, int]]]
    notrack: dict[str, tuple[Netns, str]]


def set_up_paths(lab: BenchLab, servers: list[str]) -> Paths:
    """Routes, addresses and notrack rules for every mode (module docstring)."""
    client, router1, router2 = lab.client.netns, lab.router(ROUTER1).netns, lab.router(ROUTER2).netns
    server_ns = [lab.hosts[f"rs{i}"].netns for i in range(1, len(servers) + 1)]
    seconds = [second_address(i) for i in range(1, len(servers) + 1)]
    # dataplane.py's own paths through router1, as its run_bench sets them up
    client.ip("route", "add", dataplane.PRIVATE_PREFIX, "via", ROUTER1_PUBLIC)
    for mode, vip in dataplane.VIPS.items():
        client.ip("addr", "add", f"{dataplane.CLIENTS[mode]}/32", "dev", "eth0")
        client.ip("route", "add", f"{vip}/32", "via", ROUTER1_PUBLIC, "src", dataplane.CLIENTS[mode])
    client.ip("addr", "add", f"{dataplane.VIP_CLIENT}/32", "dev", "eth0")
    client.ip("route", "add", f"{VIP}/32", "dev", "eth0", "src", dataplane.VIP_CLIENT)
    # router2: the IPVS VIPs are local there; NAT replies (and direct_router2's) come back through it
    client.ip("addr", "add", f"{DIRECT_ROUTER2_CLIENT}/32", "dev", "eth0")
    for address in seconds:
        client.ip("route", "add", f"{address}/32", "via", ROUTER2_PUBLIC, "src", DIRECT_ROUTER2_CLIENT)
    back_via_router2 = [DIRECT_ROUTER2_CLIENT]
    for svc in IPVS_SERVICES:
        router2.ip("addr", "add", f"{svc.vip}/32", "dev", "lo")
        client.ip("addr", "add", f"{svc.client}/32", "dev", "eth0")
        client.ip("route", "add", f"{svc.vip}/32", "via", ROUTER2_PUBLIC, "src", svc.client)
        if svc.kind == "DR":
            for ns in server_ns:
                ns.ip("addr", "add", f"{svc.vip}/32", "dev", "lo")
        else:
            back_via_router2.append(svc.client)
    for ns in server_ns:
        for source in back_via_router2:
            ns.ip("route", "add", f"{source}/32", "via", ROUTER2_PRIVATE)
    dr_vips = [svc.vip for svc in IPVS_SERVICES if svc.kind == "DR"]
    targets = {mode: dataplane.targets_for(theirs, servers) for mode, theirs in OURS.items()}
    targets["direct"] = dataplane.targets_for("direct", servers)
    targets["direct_router2"] = [(a, HTTP_PORT) for a in seconds]
    targets.update({svc.mode: [(svc.vip, HTTP_PORT)] for svc in IPVS_SERVICES})
    notrack = {"direct": (router1, notrack_rules(servers, "direct")),
               "direct_router2": (router2, notrack_rules(seconds, "direct")),
               "nft_dr": (router1, notrack_rules(servers, "dr")),
               "nft_dr_flows": (router1, notrack_rules(servers, "dr"))}
    # the IPVS DR replies cross router1 (the real servers' gateway), untracked as our DR's are; the rules'
    # daddr half never matches there
    notrack.update({svc.mode: (router1, notrack_rules(dr_vips, "direct")) for svc in IPVS_SERVICES
                    if svc.kind == "DR"})
    return Paths(targets, notrack)


def clear_nft(netns: Netns) -> list[str]:
    """Delete every nftables table but the lab's mark table; what was deleted.

    In one guest run router2 still held pykeepalived's stateless and DR rules
    long after its stop (not looked into: its clean stop removes them, and the
    next run found none): their ingress chains ran on every IPVS packet and the
    stateless reverse rewrite turned direct_router2's replies into the stateless
    VIP's. The IPVS paths must cross a router with nothing of ours.
    """
    listed = json.loads(netns.run(["nft", "-j", "list", "tables"]).stdout)["nftables"]
    deleted = []
    for item in listed:
        table = item.get("table")
        if table is not None and table["name"] != MARK_TABLE:
            netns.run(["nft", "delete", "table", table["family"], table["name"]])
            deleted.append(f"{table['family']} {table['name']}")
    return deleted


def signal_groups(procs: list[subprocess.Popen[bytes]], sig: int) -> None:
    """Signal each daemon's whole process group (Netns.popen made each a session of its own)."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass


def probe(lab: BenchLab, paths: Paths, mode: str) -> str | None:
    """A request by curl to each target of the mode (three tries: a loaded emulated guest can stall one);
    None if all answered, else why not, with what the routers and a real server show, to tell a path that
    cannot work here from a mistake."""
    client = lab.client.netns
    for address, port in paths.targets[mode]:
        for _ in range(PROBE_TRIES):
            got = client.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{address}:{port}/whoami"], check=False, timeout_s=30)
            if got.stdout.strip() == "200":
                break
        else:
            return failure_report(lab, mode, address, port, got)
    return None


def failure_report(lab: BenchLab, mode: str, address: str, port: int,
                   got: subprocess.CompletedProcess[str]) -> str:
    """Why a probe failed, with the routes, sysctls, IPVS connections and rules that bear on it."""
    client = lab.client.netns
    notes = [f"curl to {address}:{port} gave {got.stdout.strip() or 'nothing'} (exit {got.returncode})"]
    for ns, argv in ((client, ["ip", "route", "get", address]),
                     (lab.hosts["rs1"].netns, ["ip", "-4", "route"]),
                     (lab.hosts["rs1"].netns, ["ip", "-4", "neigh"]),
                     (lab.router(ROUTER2).netns, ["ip", "-4", "neigh"]),
                     (lab.router(ROUTER2).netns, ["sysctl", "net.ipv4.ip_forward", "net.ipv4.vs.conntrack"]),
                     (lab.router(ROUTER2).netns, ["ipvsadm", "-Lnc"]),
                     (lab.router(ROUTER2).netns, ["nft", "list", "ruleset"]),
                     (lab.router(ROUTER2).netns, ["ip", "-s", "-4", "addr"])):
        out = ns.run(argv, check=False, timeout_s=30)
        notes.append(f"{ns.name}$ {' '.join(argv)}\n{(out.stdout + out.stderr)[-1500:]}")
    print(f"probe {mode} failed:\n" + "\n".join(notes), file=sys.stderr, flush=True)
    return "\n".join(notes)[-6000:]


def measure(wrk: Wrk, lab: BenchLab, paths: Paths, mode: str, style: str, duration_s: float,
            server_ns: list[Netns]) -> dict[str, Any]:
    """One wrk run of one mode, from empty conntrack tables, with each real server's share of the segments."""
    notrack = paths.notrack.get(mode)
    if notrack is not None:
        notrack[0].run(["nft", "-f", "-"], input=notrack[1])
    try:
        for router in (ROUTER1, ROUTER2):
            lab.router(router).netns.run(["conntrack", "-F"], check=False)
        before = [dataplane.tcp_segments_in(ns) for ns in server_ns]
        result = wrk.run(mode, paths.targets[mode], style, duration_s)
        got = [dataplane.tcp_segments_in(ns) - b for ns, b in zip(server_ns, before)]
        result["server_share"] = [round(g / (sum(got) or 1), 3) for g in got]
        return result
    finally:
        if notrack is not None:
            notrack[0].run(["nft", "delete", "table", "ip", RAW_TABLE], check=False)


def summarize(runs: list[dict[str, Any]], styles: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Medians per mode; ratios of medians over direct, over direct_router2, and ours over keepalived's IPVS."""
    summary: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for style in styles:
        medians: dict[str, float] = {}
        per_mode: dict[str, Any] = {}
        for mode in MODES:
            mine = [r for r in runs if r["mode"] == mode and r["style"] == style]
            if mine:
                medians[mode] = statistics.median(r["requests_per_s"] for r in mine)
                per_mode[mode] = {"median_requests_per_s": round(medians[mode], 1),
                                  "median_p99_ms": round(statistics.median(r["p99_ms"] for r in mine), 3),
                                  "runs": len(mine),
                                  "errors": sum(sum(r["socket_errors"].values()) + r["non_2xx"] for r in mine)}
        summary[style] = per_mode

        def ratio(a: str, b: str) -> float | None:
            return round(medians[a] / medians[b], 3) if a in medians and medians.get(b) else None

        def per_round(a: str, b: str) -> float | None:
            """The median over rounds of a's figure over b's in the same round: steadier than the ratio of
            medians when the host's load drifts between rounds."""
            pairs = {(r["run"], r["mode"]): r["requests_per_s"] for r in runs if r["style"] == style}
            got = [pairs[(n, a)] / pairs[(n, b)] for n, m in pairs if m == a and pairs.get((n, b))]
            return round(statistics.median(got), 3) if got else None

        ratios[style] = {
            "over_direct": {m: ratio(m, "direct") for m in MODES if m != "direct"},
            "over_direct_per_round": {m: per_round(m, "direct") for m in MODES if m != "direct"},
            "ipvs_over_direct_router2": {s.mode: ratio(s.mode, "direct_router2") for s in IPVS_SERVICES},
            "ours_over_keepalived_ipvs": {f"{m}_over_{KEEPALIVED_IPVS[method]}": ratio(m, KEEPALIVED_IPVS[method])
                                          for m, method in METHOD_OF.items()},
            "ours_over_keepalived_ipvs_per_round": {
                f"{m}_over_{KEEPALIVED_IPVS[method]}": per_round(m, KEEPALIVED_IPVS[method])
                for m, method in METHOD_OF.items()},
        }
    return summary, ratios


def run_inside(args: argparse.Namespace) -> dict[str, Any]:
    """The whole measurement, in the guest: lab up, IPVS daemons up, rounds of wrk, everything down."""
    styles = [s for s in args.styles.split(",") if s]
    unknown = set(styles) - set(dataplane.STYLES)
    if unknown:
        raise BenchError(f"unknown style(s) {', '.join(sorted(unknown))}: choose from {', '.join(dataplane.STYLES)}")
    workdir = Path(GUEST_WORKDIR)
    workdir.mkdir(parents=True, exist_ok=True)
    lab = BenchLab("nat", prefix=unique_prefix("bipvs"), name="bench-ipvs", workdir=workdir / "lab",
                   dataplane="nftables", timeout_scale=TIME_SCALE)
    daemons: list[IpvsDaemon] = []
    frozen: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    try:
        print("bringing the NAT lab up (pykeepalived on nftables)", file=sys.stderr, flush=True)
        lab.up()
        servers = [str(rs.address) for rs in lab.real_servers]
        server_ns = [lab.hosts[f"rs{i}"].netns for i in range(1, len(servers) + 1)]
        wait_nft_ready(lab)
        lab_up_s = time.monotonic() - started
        # router2 becomes the IPVS director: its pykeepalived (the VRRP backup, nftables) goes
        lab.stop_router(ROUTER2)
        router2 = lab.router(ROUTER2).netns
        router2_tables = clear_nft(router2)
        paths = set_up_paths(lab, servers)
        print("starting keepalived and pykeepalived --dataplane ipvs in router2", file=sys.stderr, flush=True)
        daemons = [IpvsDaemon(d, router2, workdir, servers) for d in ("keepalived", "pykeepalived")]
        for d in daemons:
            d.start()
        table = wait_ipvs_ready(router2, daemons, servers)
        if not args.live_daemons:
            frozen = [p for p in (lab.router(ROUTER1).proc, *(d.proc for d in daemons)) if p is not None]
            signal_groups(frozen, signal.SIGSTOP)
        failed = {mode: why for mode in MODES if (why := probe(lab, paths, mode)) is not None}
        modes = [m for m in MODES if m not in failed]
        if "direct" in failed:
            raise BenchError(f"the direct anchor does not answer: {failed['direct']}")
        wrk = Wrk(lab.client.netns, workdir, args.threads, args.connections)
        for mode in modes:  # warm-up: ARP, caches, nginx's first accepts
            print(f"warm-up {mode}", file=sys.stderr, flush=True)
            measure(wrk, lab, paths, mode, "keepalive", 1, server_ns)
        runs = dataplane.interleaved_rounds(args.runs, styles, modes, lambda mode, style: measure(
            wrk, lab, paths, mode, style, args.duration, server_ns))
        summary, ratios = summarize(runs, styles)
        return {
            "guest": {**dataplane.machine(), "lab_up_s": round(lab_up_s, 1),
                      "measuring_s": round(time.monotonic() - started - lab_up_s, 1)},
            "settings": {"wrk_threads": args.threads, "wrk_connections": args.connections,
                         "duration_s": args.duration, "runs": args.runs, "styles": styles, "real_servers": servers,
                         "lab_timeout_scale": TIME_SCALE,
                         "daemons_during_runs": "running" if args.live_daemons else
                         "stopped (SIGSTOP) once their tables were in the kernel, continued before the teardown",
                         "router1": "pykeepalived --dataplane nftables (VRRP master): nft_* modes, direct",
                         "router2": "keepalived 2.2.7 -C and pykeepalived --dataplane ipvs -C at once, "
                                    "VIPs on lo: ipvs_* modes, direct_router2",
                         "router2_nft_tables_deleted": router2_tables,
                         "ipvs_services": {s.mode: f"{s.vip}:{HTTP_PORT} {s.kind} rr by {s.daemon}"
                                           for s in IPVS_SERVICES},
                         "nft_modes": {m: f"bench/dataplane.py's {d}" for m, d in OURS.items()},
                         "ipvs_table": table,
                         "router1_ruleset": dataplane.router_ruleset_summary(lab.router(ROUTER1).netns)},
            "failed_modes": failed,
            "summary": summary,
            "ratios": ratios,
            "runs": runs,
        }
    finally:
        signal_groups(frozen, signal.SIGCONT)
        for d in daemons:
            d.stop()
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


# ----------------------------------------------------------------------------- on the host
def guest_script(args: argparse.Namespace) -> str:
    """The guest's shell script: IPVS modules, this checkout's code with bytecode kept, then `--inside`."""
    from tests.vm.inner_pytest import bytecode_exports

    inside = [sys.executable, str(Path(__file__).resolve()), "--inside", "--runs", str(args.runs),
              "--duration", f"{args.duration:g}", "--connections", str(args.connections),
              "--threads", str(args.threads), "--styles", args.styles,
              *(["--live-daemons"] if args.live_daemons else [])]
    return "\n".join([
        "modprobe ip_vs && modprobe ip_vs_rr || exit 3",
        f"cd {shlex.quote(str(REPO))} || exit 3",
        f"mkdir -p {GUEST_WORKDIR}-tmp && export TMPDIR={GUEST_WORKDIR}-tmp",
        f"export PYTHONPATH={shlex.quote(str(REPO / 'src'))}",
        *bytecode_exports(),
        shlex.join(inside),
    ])


def run_host(args: argparse.Namespace) -> dict[str, Any]:
    """Boot the guest once, run the measurement inside, return its JSON with the guest's settings added."""
    from tests.vm.conftest import compile_checkout
    from tests.vm.guest import GuestError, guest_available, guest_cpus, run_in_guest

    reason = guest_available()
    if reason is not None:
        raise BenchError(f"the qemu guest cannot run here: {reason}")
    compile_checkout()  # the guest sees the checkout read-only: without bytecode every import compiles again
    compileall.compile_dir(BENCH, quiet=1)
    cpus = guest_cpus()
    try:
        result = run_in_guest(guest_script(args), timeout_s=GUEST_TIMEOUT_S, memory_mb=GUEST_MEMORY_MB, cpus=cpus)
    except GuestError as exc:
        raise BenchError(f"the guest failed: {exc}") from None
    found = [line[len(JSON_MARK):] for line in result.output.splitlines() if line.startswith(JSON_MARK)]
    if result.returncode != 0 or not found:
        raise BenchError(f"the measurement in the guest failed (exit {result.returncode}):\n{result.output[-5000:]}")
    print("\n".join(line for line in result.output.splitlines() if not line.startswith(JSON_MARK)),
          file=sys.stderr, flush=True)  # the guest's progress and any probe's report
    inside: dict[str, Any] = json.loads(found[-1])
    return {
        "benchmark": "ipvs_guest",
        "note": "qemu TCG software emulation: absolute requests/s are the emulation's and mean nothing; "
                "only ratios between modes of this one run do",
        "host": dataplane.machine(),
        "qemu": {"accel": "tcg", "cpu": "max", "vcpus": cpus, "memory_mb": GUEST_MEMORY_MB,
                 "boot_s": round(result.boot_s, 1), "elapsed_s": round(result.elapsed_s, 1)},
        **inside,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="rounds over every mode (default 4)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (default 3)")
    parser.add_argument("--connections", type=int, default=30, help="wrk connections (default 30)")
    parser.add_argument("--threads", type=int, default=3, help="wrk threads (default 3: one per real server)")
    parser.add_argument("--styles", default="keepalive", help="keepalive and/or new_conn (default keepalive)")
    parser.add_argument("--live-daemons", action="store_true",
                        help="keep the daemons running during the runs (default: stopped with SIGSTOP, their "
                             "checkers' Python under emulation otherwise takes the guest's vCPUs)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # the guest's half
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/ipvs_guest.py needs root (qemu's 9p share of /, network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill as on Ctrl-C
    try:
        if args.inside:
            print(JSON_MARK + json.dumps(run_inside(args)), flush=True)
        else:
            print(json.dumps(run_host(args)), flush=True)
    except (BenchError, LabError) as exc:
        print(f"bench/ipvs_guest.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
