"""Throughput through the VIP: the nftables data plane against plain routing and HAProxy, in one run.

The lab (`LvsLab("nat")`: a client, two routers running pykeepalived, three
nginx real servers; the guide's NAT topology) comes up once, and `wrk` in the
client measures, in turns, the same three real servers reached four ways
through router1:

- `direct`: plain IP forwarding to the real servers' own addresses, no NAT and
  no connection tracking (a raw-table `notrack` for those flows, installed only
  during these runs): the ceiling, what the router costs with nothing to do.
- `direct_tracked`: the same path with conntrack on, as any router with a nat
  table has it: what conntrack alone costs.
- `vip`: the VIP, DNATed by pykeepalived's nftables table (round robin).
- `nat_rule`: a second address DNATed by one hand-written nftables rule
  (`dnat to numgen inc mod 3 map {...}`, lab-facts' recipe): the kernel's NAT
  floor, so `vip_over_nat_rule` shows what pykeepalived's layout adds to it.
- `haproxy`: HAProxy 2.6 `mode tcp` on router1 (its default threads), round
  robin over the same three servers: the user-space proxy anchor.
- `stateless`: stateless NAT (issue 18): 203.0.113.20, `lb_algo mh` +
  `mh-port` with `pykeepalived_stateless`, to the same nginx processes on
  second addresses of the real servers (10.11.12.21-23: a real server's
  address and port may serve one stateless service and no other NAT
  service); no conntrack entry in either direction, requests and replies
  sent from router1's ingress hooks (the JSON's `settings.ruleset`:
  `from_ingress` lists the VIPs, `replies_from_ingress` the real servers).
- `dr`: DR from the ingress hook (`fwd`, no copy), 203.0.113.13, `mh` +
  `mh-port` with `pykeepalived_stateless` (no flow sets), the real servers
  holding the VIP on `lo`; `dr_flows`: the same DR path with rr and its
  per-server flow sets (203.0.113.14). The real servers' replies come back
  through router1, their gateway in this lab, routed and untracked like the
  `direct` anchor's (a raw-table `notrack` during these runs); in a real DR
  set-up they would not touch the director at all.
- `stateless_ri` (only with `--proto-reply-ingress`, a feasibility
  experiment, not pykeepalived's data plane): `stateless` with a hand-written
  table `netdev slreply_proto` on router1 during its runs, whose ingress chain
  on the inside interface (priority before pykeepalived's) takes the stateless
  service's replies (saddr 10.11.12.21-23, tcp sport 80, `fib daddr type !=
  local`), sets the VIP as their source and sends them with `fwd ip to ip
  daddr device eth0`: the client is on-link, so its own address is the next
  hop. Since pykeepalived sends these replies from ingress itself (session
  21), this compares the prototype's one rule with the built back chain.
- `direct_ri` (only with `--proto-direct-ingress`, the same experiment's
  ceiling): the `direct` path with both directions sent by `fwd` from
  router1's ingress hooks (no rewrite, no hash): what any design that skips
  the IP stack both ways could reach at best.

Every mode uses the same wrk settings and the same three real servers: wrk's
`setup()` gives each thread a target address (the real servers in turn for
`direct*`, the VIP or HAProxy's address for the others), so the nginx processes
do the same work whichever way they are reached. wrk runs one thread per
connection by default (`--threads` = `--connections`), so that in every mode
a wrk thread talks to one real server at a time. With fewer threads than
connections (3 threads and 30 connections before 2026-12-05), a `direct`
thread still talks to one server only, but a thread's connections through a
VIP are spread over all three: each nginx process then wakes more wrk
threads per batch of answers, and the machine made 0.86 context switches
per kept-alive request through a VIP against 0.59 for `direct` (medians of
20 rounds), a cost of the endpoints that no balancer could avoid and that
the ratios charged to the router (docs/dataplane.md, "One connection per
wrk thread"). Two styles: `keepalive`
(HTTP/1.1 keep-alive) and `new_conn` (`Connection: close`: a TCP handshake
and a new NAT/conntrack entry per request). Modes are interleaved within each
round, `--runs` rounds, and each round starts one mode later than the last
(`--no-rotate`: direct first in every round, as before 2026-12-05), so that no
mode always runs first or last; the summary takes medians per mode and the
ratios of medians. wrk's socket errors and non-2xx answers are reported per run, and
`server_share`: each real server's part of the TCP segments received (its
namespace's InSegs), which shows how evenly a hash spread wrk's connections,
and what each run cost the whole machine (/proc/stat): `cpu_us_per_request`
(busy CPU of every process and softirq over the requests), `cpu_busy_share`
and `context_switches_per_request`; `round_ratios` also compares each mode
with its round's `direct` by CPU per request (`*_over_direct_by_cpu`).

Also, in a separate network namespace: the time to apply one real server of
1,000 going down in one service, and to load 1,000 virtual services
(`bench/schedulers.py`'s `apply_timings`).

Everything shares this machine's cores (wrk, the router's softirq work,
nginx, HAProxy, the daemons' checkers): compare ratios within one run, not
absolute figures across machines. `lab-facts.md` anchors: nftables DNAT 0.85
of direct, HAProxy 0.66 (wrk -t1 -c32, keep-alive).

Prints one JSON document. Needs root, wrk and haproxy; about 8 minutes (`--runs 3`).

    .venv/bin/python bench/dataplane.py [--runs 3] [--duration 4] [--connections 30]
        [--threads N] [--styles keepalive,new_conn] [--no-apply] [--modes direct,stateless,dr]

`round_ratios` gives each mode over the same round's `direct` run and the
median of those; `--modes` narrows a run to a few modes (direct always runs),
so that rounds are short and each mode runs seconds from its anchor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pykeepalived.lab import LabError, unique_prefix
from pykeepalived.lab.lvs_lab import VIP, LvsLab, _url_check
from pykeepalived.lab.netns import Netns

PRIVATE_PREFIX = "10.11.12.0/24"
ROUTER = "router1"
ROUTER_PUBLIC = "203.0.113.2"
VIP_CLIENT = "203.0.113.101"  # the client's source address towards the VIP (see run_bench)
RULE_CLIENT = "203.0.113.102"  # ... and towards RULE_VIP
HAPROXY_PORT = 8080
HTTP_PORT = 80
MODES = ("direct", "direct_ri", "direct_tracked", "vip", "nat_rule", "haproxy", "stateless", "stateless_ri", "dr",
         "dr_flows")
EXPERIMENTS = ("direct_ri", "stateless_ri")  # only by their flags (--proto-*-ingress), never by default
STATELESS_VIP = "203.0.113.20"
STATELESS_CLIENT = "203.0.113.103"
DR_VIP = "203.0.113.13"
DR_CLIENT = "203.0.113.104"
DR_FLOWS_VIP = "203.0.113.14"
DR_FLOWS_CLIENT = "203.0.113.105"
GOAL_STATELESS_OF_DIRECT = 0.95
STYLES = {"keepalive": [], "new_conn": ["-H", "Connection: close"]}
RAW_TABLE = "pkbench_notrack"
RULE_TABLE = "pkbench_natrule"
RULE_VIP = "203.0.113.12"
GOAL_OF_DIRECT = 0.9
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/stat's unit
PROTO_TABLE = "slreply_proto"  # --proto-reply-ingress: stateless replies from ingress (module docstring)
PROTO_PRIORITY = -10  # before pykeepalived's netdev chains (priority 0): a packet fwd'd here is stolen
ROUTER_INSIDE, ROUTER_OUTSIDE = "eth1", "eth0"

HAPROXY_CFG = """\
global
    maxconn 4000
    log stdout format raw local0 err
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend bench
    bind {bind}:{port}
    default_backend pool
backend pool
    balance roundrobin
{servers}
"""

WRK_LUA = """\
-- one target per thread, in turn: wrk connects there whatever the URL says
local targets = {{ {targets} }}
local n = 0
function setup(thread)
  n = n + 1
  local t = targets[((n - 1) % #targets) + 1]
  thread.addr = wrk.lookup(t[1], t[2])[1]
end
"""


class BenchError(Exception):
    """The bench could not measure (a tool missing, a mode that served nothing)."""


# ----------------------------------------------------------------------------- wrk
def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"cannot read wrk's latency {text!r}")
    return float(match[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match[2]]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 latency, socket errors and non-2xx answers from `wrk --latency`."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p99 and p50 and total):
        raise BenchError(f"cannot read wrk's output:\n{output[-1500:]}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": round(float(rps[1]), 1),
        "requests": int(total[1]),
        "p50_ms": round(_seconds(p50[1]) * 1000, 3),
        "p99_ms": round(_seconds(p99[1]) * 1000, 3),
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups())))
        if errors else {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "non_2xx": int(non_2xx[1]) if non_2xx else 0,
    }


class Wrk:
    """wrk in the client namespace, with a Lua script per target list."""

    def __init__(self, client: Netns, workdir: Path, threads: int, connections: int) -> None:
        self.client, self.workdir = client, workdir
        self.threads, self.connections = threads, connections

    def _script(self, name: str, targets: list[tuple[str, int]]) -> Path:
        path = self.workdir / f"{name}.lua"
        path.write_text(WRK_LUA.format(targets=", ".join(f'{{"{a}", "{p}"}}' for a, p in targets)))
        return path

    def run(self, name: str, targets: list[tuple[str, int]], style: str, duration_s: float) -> dict[str, Any]:
        address, port = targets[0]
        argv = ["wrk", "-t", str(self.threads), "-c", str(self.connections), "-d", f"{duration_s:g}s",
                "--latency", "--timeout", "2s", "-s", str(self._script(name, targets)), *STYLES[style],
                f"http://{address}:{port}/"]
        proc = self.client.run(argv, check=False, timeout_s=duration_s + 30)
        if proc.returncode != 0:
            raise BenchError(f"wrk failed ({proc.returncode}) for {name}: {proc.stderr[-800:]}{proc.stdout[-800:]}")
        return parse_wrk(proc.stdout)


# ----------------------------------------------------------------------------- the lab's extras
def second_address(i: int) -> str:
    return f"10.11.12.2{i}"


class BenchLab(LvsLab):
    """The NAT lab plus the stateless NAT and the two DR services (module docstring) on both routers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services_count += 3

    def _configure_hosts(self) -> None:
        super()._configure_hosts()
        for i in range(1, 4):
            ns = self.hosts[f"rs{i}"].netns
            ns.ip("addr", "add", f"{second_address(i)}/24", "dev", "eth0")
            for vip in (DR_VIP, DR_FLOWS_VIP):
                ns.ip("addr", "add", f"{vip}/32", "dev", "lo")

    def _configure_routers(self) -> None:
        super()._configure_routers()
        for router in self.routers.values():
            router.conf_path.write_text(router.conf_path.read_text() + extra_services())


def _service(vip: str, kind: str, algo: str, servers: list[str], stateless: bool) -> list[str]:
    lines = [f"virtual_server {vip} {HTTP_PORT} {{", "    delay_loop 1", f"    lb_algo {algo}",
             *(["    mh-port"] if algo == "mh" else []), f"    lb_kind {kind}", "    protocol TCP",
             *(["    pykeepalived_stateless"] if stateless else [])]
    for address in servers:
        lines += [f"    real_server {address} {HTTP_PORT} {{", *(f"        {x}" for x in _url_check("HTTP_GET", None)),
                  "    }"]
    return [*lines, "}"]


def extra_services() -> str:
    direct = [f"10.11.12.{i}" for i in range(1, 4)]
    return "\n".join([*_service(STATELESS_VIP, "NAT", "mh", [second_address(i) for i in range(1, 4)], True),
                      *_service(DR_VIP, "DR", "mh", direct, True),
                      *_service(DR_FLOWS_VIP, "DR", "rr", direct, False)]) + "\n"


def notrack_rules(servers: list[str], mode: str) -> str:
    """A raw table that keeps flows out of conntrack: the direct ones both ways, or the DR replies."""
    addrs = ", ".join(servers)
    if mode == "direct":
        rules = (f"    ip daddr {{ {addrs} }} tcp dport {HTTP_PORT} notrack\n"
                 f"    ip saddr {{ {addrs} }} tcp sport {HTTP_PORT} notrack\n")
    else:
        rules = f"    ip saddr {{ {DR_VIP}, {DR_FLOWS_VIP} }} tcp sport {HTTP_PORT} notrack\n"
    return (f"table ip {RAW_TABLE} {{\n"
            f"  chain pre {{ type filter hook prerouting priority raw; policy accept;\n{rules}  }}\n}}\n")


def proto_reply_rules(counter: bool = False) -> str:
    """The experiment's ingress chain: stateless replies get the VIP as source and leave by `fwd`, no IP stack.

    `fib daddr type != local` leaves the router's own connections (its
    checkers' to the same addresses) to the IP stack; nftables updates the IP
    and TCP checksums for `ip saddr set`. The service maps port 80 to port 80,
    so the source port stays.
    """
    sources = ", ".join(second_address(i) for i in range(1, 4))
    count = " counter" if counter else ""
    return (f"table netdev {PROTO_TABLE} {{\n"
            f"  chain in_{ROUTER_INSIDE} {{ type filter hook ingress device \"{ROUTER_INSIDE}\" "
            f"priority {PROTO_PRIORITY}; policy accept;\n"
            f"    ip saddr {{ {sources} }} tcp sport {HTTP_PORT} fib daddr type != local{count} "
            f"ip saddr set {STATELESS_VIP} fwd ip to ip daddr device \"{ROUTER_OUTSIDE}\"\n"
            f"  }}\n}}\n")


def proto_direct_rules(servers: list[str]) -> str:
    """The ceiling's ingress chains: the direct flows both ways by `fwd` to their own destination, unchanged."""
    addrs = ", ".join(servers)
    chain = ("  chain in_{dev} {{ type filter hook ingress device \"{dev}\" priority {prio}; policy accept;\n"
             "    {match} fwd ip to ip daddr device \"{out}\"\n  }}\n")
    return (f"table netdev {PROTO_TABLE} {{\n"
            + chain.format(dev=ROUTER_OUTSIDE, prio=PROTO_PRIORITY, out=ROUTER_INSIDE,
                           match=f"ip daddr {{ {addrs} }} tcp dport {HTTP_PORT}")
            + chain.format(dev=ROUTER_INSIDE, prio=PROTO_PRIORITY, out=ROUTER_OUTSIDE,
                           match=f"ip saddr {{ {addrs} }} tcp sport {HTTP_PORT} fib daddr type != local")
            + "}\n")


def nat_rule(servers: list[str]) -> str:
    """The one-rule DNAT of lab-facts.md, on a VIP of its own, ahead of pykeepalived's chains."""
    slots = ", ".join(f"{i} : {a}" for i, a in enumerate(servers))
    return (f"table ip {RULE_TABLE} {{\n"
            f"  chain pre {{ type nat hook prerouting priority dstnat - 1; policy accept;\n"
            f"    ip daddr {RULE_VIP} tcp dport {HTTP_PORT} dnat to numgen inc mod {len(servers)} map {{ {slots} }}\n"
            f"  }}\n}}\n")


class HAProxy:
    """HAProxy in the router's namespace, in the foreground (`-db`), killed by `stop()`."""

    def __init__(self, router: Netns, workdir: Path, servers: list[str]) -> None:
        self.router = router
        self.cfg = workdir / "haproxy.cfg"
        lines = "\n".join(f"    server rs{i} {a}:{HTTP_PORT}" for i, a in enumerate(servers, 1))
        self.cfg.write_text(HAPROXY_CFG.format(bind=ROUTER_PUBLIC, port=HAPROXY_PORT, servers=lines))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, client: Netns) -> None:
        check = self.router.run(["haproxy", "-c", "-q", "-f", str(self.cfg)], check=False)
        if check.returncode != 0:
            raise BenchError(f"haproxy refuses {self.cfg}: {check.stderr[-800:]}")
        proc = self.proc = self.router.popen(["haproxy", "-db", "-f", str(self.cfg)])
        deadline = time.monotonic() + 10
        while True:
            probe = client.run(["curl", "-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}",
                                f"http://{ROUTER_PUBLIC}:{HAPROXY_PORT}/whoami"], check=False)
            if probe.stdout.strip() == "200":
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"haproxy did not start serving on {ROUTER_PUBLIC}:{HAPROXY_PORT}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# ----------------------------------------------------------------------------- measuring
def targets_for(mode: str, servers: list[str]) -> list[tuple[str, int]]:
    if mode.startswith("direct"):
        return [(a, HTTP_PORT) for a in servers]
    if mode == "vip":
        return [(str(VIP), HTTP_PORT)]
    if mode == "nat_rule":
        return [(RULE_VIP, HTTP_PORT)]
    if mode in VIPS:
        return [(VIPS[mode], HTTP_PORT)]
    if mode == "stateless_ri":  # the same service, its replies taken by the prototype
        return [(STATELESS_VIP, HTTP_PORT)]
    return [(ROUTER_PUBLIC, HAPROXY_PORT)]


VIPS = {"stateless": STATELESS_VIP, "dr": DR_VIP, "dr_flows": DR_FLOWS_VIP}
CLIENTS = {"stateless": STATELESS_CLIENT, "dr": DR_CLIENT, "dr_flows": DR_FLOWS_CLIENT}


def tcp_segments_in(ns: Netns) -> int:
    """TCP segments the namespace has received (/proc/net/snmp InSegs): a real server's share of the work."""
    lines = [line.split() for line in ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines() if line.startswith("Tcp:")]
    return int(lines[1][lines[0].index("InSegs")])


def ip_forwarded(ns: Netns) -> int:
    """Datagrams the namespace's IP stack forwarded (/proc/net/snmp ForwDatagrams): which packets took the stack."""
    lines = [line.split() for line in ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines() if line.startswith("Ip:")]
    return int(lines[1][lines[0].index("ForwDatagrams")])


def machine_counters() -> tuple[int, int, int]:
    """(busy ticks, all ticks, context switches) of the whole machine so far, from /proc/stat.

    Busy is user + nice + system + irq + softirq (guest time is inside user
    and nice); all adds idle, iowait and steal. Every namespace shares this
    kernel, so the client's, the router's and the real servers' packet work
    all land here: the ticks between two readings are what a run cost the
    machine, whatever namespace did it.
    """
    lines = Path("/proc/stat").read_text().splitlines()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in lines[0].split()[1:9])
    switches = next(int(line.split()[1]) for line in lines if line.startswith("ctxt "))
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal, switches


def measure_mode(wrk: Wrk, router: Netns, servers: list[str], mode: str, style: str,
                 duration_s: float, server_ns: list[Netns]) -> dict[str, Any]:
    notrack = mode in ("direct", "dr", "dr_flows")
    if notrack:
        router.run(["nft", "-f", "-"], input=notrack_rules(servers, mode))
    if mode == "stateless_ri":
        router.run(["nft", "-f", "-"], input=proto_reply_rules())
    if mode == "direct_ri":
        router.run(["nft", "-f", "-"], input=proto_direct_rules(servers))
    try:
        # every mode starts from an empty conntrack table, as the first one did
        router.run(["conntrack", "-F"], check=False)
        before = [tcp_segments_in(ns) for ns in server_ns]
        forwarded = ip_forwarded(router)
        busy, every, switches = machine_counters()
        result = wrk.run(mode, targets_for(mode, servers), style, duration_s)
        busy_after, every_after, switches_after = machine_counters()
        # the machine's CPU per request (every process and softirq, wrk's and nginx's included): unlike
        # requests/s it does not move with how long a request waits while a core is idle
        result["cpu_busy_share"] = round((busy_after - busy) / ((every_after - every) or 1), 3)
        result["cpu_us_per_request"] = round((busy_after - busy) * 1e6 / CLOCK_TICKS / (result["requests"] or 1), 2)
        # how often a process slept and another ran, per request: wrk's threads and the nginx processes
        # wake each other, and how they pair up sets it (the module docstring: one connection per thread)
        result["context_switches_per_request"] = round((switches_after - switches) / (result["requests"] or 1), 3)
        got = [tcp_segments_in(ns) - b for ns, b in zip(server_ns, before)]
        # router1's IP stack's share of the segments: both directions for direct, the replies for stateless
        result["router_forwarded_per_segment_in"] = round((ip_forwarded(router) - forwarded) / (sum(got) or 1), 3)
        # how evenly the connections landed: wrk's 30 kept-alive connections hashed (mh) over three
        # servers are rarely 10/10/10, where rr and the direct anchor's one-server-per-thread are
        result["server_share"] = [round(g / (sum(got) or 1), 3) for g in got]
        return result
    finally:
        if notrack:
            router.run(["nft", "delete", "table", "ip", RAW_TABLE], check=False)
        if mode in ("stateless_ri", "direct_ri"):
            router.run(["nft", "delete", "table", "netdev", PROTO_TABLE], check=False)


def interleaved_rounds(rounds: int, styles: list[str], modes: Sequence[str],
                       measure: Callable[[str, str], dict[str, Any]],
                       swap: tuple[str, str] | None = None, rotate: bool = True) -> list[dict[str, Any]]:
    """Every mode once per style per round, in turns: a drift of the machine's speed hits every mode alike.

    `rotate`: round n starts at the n-th mode (direct included), so that no
    mode always runs first or last in its round (as many rounds as modes
    give each mode every place once). `swap`: two modes that trade places
    in even rounds, so that neither always follows the other.
    """
    runs: list[dict[str, Any]] = []
    for round_no in range(1, rounds + 1):
        order = list(modes)
        if rotate:
            turn = (round_no - 1) % len(order)
            order = order[turn:] + order[:turn]
        if swap and round_no % 2 == 0 and all(m in order for m in swap):
            i, j = order.index(swap[0]), order.index(swap[1])
            order[i], order[j] = order[j], order[i]
        for style in styles:
            for mode in order:
                print(f"round {round_no}: {style} {mode}", file=sys.stderr, flush=True)
                runs.append({"run": round_no, "style": style, "mode": mode, **measure(mode, style)})
    return runs


def summarize(runs: list[dict[str, Any]], styles: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    summary: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for style in styles:
        per_mode: dict[str, dict[str, float]] = {}
        for mode in MODES:
            mine = [r for r in runs if r["mode"] == mode and r["style"] == style]
            if mine:
                per_mode[mode] = {
                    "median_requests_per_s": round(statistics.median(r["requests_per_s"] for r in mine), 1),
                    "median_p99_ms": round(statistics.median(r["p99_ms"] for r in mine), 3),
                    "median_cpu_us_per_request": round(statistics.median(r["cpu_us_per_request"] for r in mine), 2),
                    "median_cpu_busy_share": round(statistics.median(r["cpu_busy_share"] for r in mine), 3),
                    "runs": len(mine),
                }
        summary[style] = per_mode

        def ratio(a: str, b: str) -> float | None:
            if a in per_mode and b in per_mode and per_mode[b]["median_requests_per_s"]:
                return round(per_mode[a]["median_requests_per_s"] / per_mode[b]["median_requests_per_s"], 3)
            return None

        ratios[style] = {
            "vip_over_direct": ratio("vip", "direct"),
            "vip_over_direct_tracked": ratio("vip", "direct_tracked"),
            "vip_over_nat_rule": ratio("vip", "nat_rule"),
            "nat_rule_over_direct": ratio("nat_rule", "direct"),
            "haproxy_over_direct": ratio("haproxy", "direct"),
            "vip_over_haproxy": ratio("vip", "haproxy"),
            "stateless_over_direct": ratio("stateless", "direct"),
            "dr_over_direct": ratio("dr", "direct"),
            "dr_flows_over_direct": ratio("dr_flows", "direct"),
            "stateless_ri_over_direct": ratio("stateless_ri", "direct"),
            "direct_ri_over_direct": ratio("direct_ri", "direct"),
            "stateless_ri_over_direct_ri": ratio("stateless_ri", "direct_ri"),
            "stateless_ri_over_stateless": ratio("stateless_ri", "stateless"),
            "stateless_over_vip": ratio("stateless", "vip"),
            "stateless_over_haproxy": ratio("stateless", "haproxy"),
            "dr_over_haproxy": ratio("dr", "haproxy"),
            "dr_flows_over_haproxy": ratio("dr_flows", "haproxy"),
        }
        r = ratios[style]

        def at_least(key: str, goal: float) -> bool:
            return r.get(key) is not None and r[key] >= goal

        r["goal_met"] = at_least("vip_over_direct", GOAL_OF_DIRECT) and at_least("vip_over_haproxy", 1.0)
        # issue 18: the stateless paths at 0.95 of direct, conntrack NAT at the floor, all ahead of HAProxy
        r["issue18_goals"] = {
            "stateless_at_095_of_direct": at_least("stateless_over_direct", GOAL_STATELESS_OF_DIRECT),
            "dr_at_095_of_direct": at_least("dr_over_direct", GOAL_STATELESS_OF_DIRECT),
            "conntrack_nat_at_the_floor": at_least("vip_over_nat_rule", 0.97),
            "all_ahead_of_haproxy": all(at_least(k, 1.0) for k in (
                "vip_over_haproxy", "stateless_over_haproxy", "dr_over_haproxy")),
        }
    return summary, ratios


def round_ratios(runs: list[dict[str, Any]], styles: list[str]) -> dict[str, Any]:
    """Each mode over the same round's direct, and the median of those: robust to a drift between rounds.

    The machine's throughput drifts by up to +-30 % between rounds here; a
    ratio of medians mixes rounds, a round's own ratio compares runs seconds
    apart.
    """
    out: dict[str, Any] = {}
    for style in styles:
        mine = [r for r in runs if r["style"] == style]
        anchor = {r["run"]: r for r in mine if r["mode"] == "direct"}
        per_mode: dict[str, Any] = {}
        for mode in MODES:
            theirs = [(r, anchor[r["run"]]) for r in mine if r["mode"] == mode and mode != "direct"
                      and r["run"] in anchor]
            each = [round(r["requests_per_s"] / a["requests_per_s"], 3) for r, a in theirs if a["requests_per_s"]]
            if each:
                per_mode[f"{mode}_over_direct"] = {"median": round(statistics.median(each), 3), "rounds": each}
            # the same comparison by CPU: direct's CPU per request over this mode's, so that 0.95 means
            # "costs the machine 1/0.95 of what routing does", as a throughput ratio of 0.95 would on a
            # machine that every mode kept equally busy
            by_cpu = [round(a["cpu_us_per_request"] / r["cpu_us_per_request"], 3) for r, a in theirs
                      if r["cpu_us_per_request"]]
            if by_cpu:
                per_mode[f"{mode}_over_direct_by_cpu"] = {"median": round(statistics.median(by_cpu), 3),
                                                          "rounds": by_cpu}
        out[style] = per_mode
    return out


def _conntrack_lines(router: Netns, address: str) -> list[str]:
    proc = router.run(["conntrack", "-L", "-s", address], check=False)
    return [line for line in proc.stdout.splitlines() if line.strip()]


def _proto_counter(router: Netns) -> dict[str, int]:
    listed = json.loads(router.run(["nft", "-j", "list", "table", "netdev", PROTO_TABLE]).stdout)["nftables"]
    for item in listed:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return {"packets": expr["counter"]["packets"], "bytes": expr["counter"]["bytes"]}
    raise BenchError(f"no counter in {PROTO_TABLE}")


def check_proto_reply(lab: LvsLab, client: Netns, router: Netns) -> dict[str, Any]:
    """Before measuring: with the prototype on, the VIP answers, replies take it, no conntrack entry, the router's
    own connections to the same servers still work (their replies are local: left to the IP stack)."""
    router.run(["nft", "-f", "-"], input=proto_reply_rules(counter=True))
    try:
        router.run(["conntrack", "-F"], check=False)
        answers = []
        for _ in range(6):
            proc = client.run(["curl", "-s", "-m", "2", "--interface", STATELESS_CLIENT,
                               f"http://{STATELESS_VIP}/whoami"], check=False)
            if proc.returncode != 0:
                raise BenchError(f"curl to {STATELESS_VIP} with the prototype on failed ({proc.returncode}): "
                                 f"{proc.stderr[-400:]}")
            answers.append(proc.stdout.strip())
        counter = _proto_counter(router)
        tracked = _conntrack_lines(router, STATELESS_CLIENT)
        local = router.run(["curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://{second_address(1)}/whoami"], check=False).stdout.strip()
        counts = lab.alive_counts(ROUTER)
        after = _proto_counter(router)
        result = {"curl_answers": answers, "reply_packets_taken": counter["packets"],
                  "conntrack_entries_from_client": tracked, "router_local_curl": local,
                  "reply_packets_after_local_curl": after["packets"],
                  "alive_counts": counts}
        if not counter["packets"] or tracked or local != "200":
            raise BenchError(f"the reply prototype does not work as meant: {result}")
        return result
    finally:
        router.run(["nft", "delete", "table", "netdev", PROTO_TABLE], check=False)


def wait_stateless_ready(lab: LvsLab) -> None:
    """Both routers' checkers see every server of the added services, and router1 built their paths."""
    deadline = time.monotonic() + 20
    names = {f"[{vip}]:tcp:{HTTP_PORT}" for vip in VIPS.values()}
    while True:
        counts = lab.alive_counts(ROUTER)
        if all(counts.get(n) == 3 for n in names) and "keeps per-flow state" not in lab.router(ROUTER).log():
            summary = router_ruleset_summary(lab.router(ROUTER).netns)
            if summary["stateless_chains"] and summary["netdev_ingress_chains"]:
                return
        if time.monotonic() > deadline:
            log = lab.router(ROUTER).log()[-2000:]
            raise BenchError(f"the added services are not ready on {ROUTER}: {counts}\n{log}")
        time.sleep(0.3)


def router_ruleset_summary(router: Netns) -> dict[str, Any]:
    """Which of pykeepalived's paths are in router1's tables (so a run shows what it measured)."""
    listed = json.loads(router.run(["nft", "-j", "list", "chains"]).stdout)["nftables"]
    chains = [item["chain"] for item in listed if "chain" in item and item["chain"].get("table") == "pykeepalived_lvs"]
    return {"stateless_chains": sorted(c["name"] for c in chains if c["name"].endswith("-sl")),
            "netdev_ingress_chains": sorted(c["name"] for c in chains if c.get("family") == "netdev"
                                            and c.get("hook") == "ingress"),
            "dup_prerouting": any(c["name"] == "dup_prerouting" for c in chains),
            "from_ingress": sorted(_ingress_vips(router)),
            "replies_from_ingress": sorted(_ingress_vips(router, "back4"))}


def _ingress_vips(router: Netns, name: str = "fwd4_ports") -> set[str]:
    """The VIPs whose requests leave from the ingress hook (the netdev table's dispatch maps hold them), or with
    `back4`, the real-server addresses whose stateless NAT replies do."""
    proc = router.run(["nft", "-j", "list", "map", "netdev", "pykeepalived_lvs", name], check=False)
    if proc.returncode != 0:
        return set()
    maps = [item["map"] for item in json.loads(proc.stdout)["nftables"] if "map" in item]
    return {elem[0]["concat"][0] for m in maps for elem in m.get("elem", [])
            if isinstance(elem, list) and isinstance(elem[0], dict) and "concat" in elem[0]}


def apply_timings() -> dict[str, Any]:
    """bench/schedulers.py's apply timings, in a namespace of their own (libnftables acts on its own netns)."""
    ns = Netns(unique_prefix("dpapply"))
    print(f"namespace {ns.name}", file=sys.stderr, flush=True)  # likewise
    ns.create()
    try:
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import schedulers; "
                "print(json.dumps(schedulers.apply_timings()))")
        proc = subprocess.run(ns.argv([sys.executable, "-c", code, str(Path(__file__).resolve().parent)]),
                              capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise BenchError(f"apply timings failed: {proc.stderr[-1500:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result
    finally:
        ns.delete()


def machine() -> dict[str, Any]:
    """The machine, and its load when the measuring ended: ratios from a run under load (other work sharing
    the cores) scatter far more than from a quiet one, so a reader should know which it was."""
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    styles = [s for s in args.styles.split(",") if s]
    unknown = set(styles) - set(STYLES)
    if unknown:
        raise BenchError(f"unknown style(s) {', '.join(sorted(unknown))}: choose from {', '.join(STYLES)}")
    regular = [m for m in MODES if m not in EXPERIMENTS]
    asked = [m for m in args.modes.split(",") if m] if args.modes else list(regular)
    if set(asked) - set(regular):
        raise BenchError(f"unknown mode(s) {', '.join(sorted(set(asked) - set(regular)))}: "
                         f"choose from {', '.join(regular)} (the experiments by their flags)")
    if args.proto_reply_ingress:
        asked.append("stateless_ri")
    if args.proto_direct_ingress:
        asked.append("direct_ri")
    modes = [m for m in MODES if m == "direct" or m in asked]  # the anchor always runs
    for tool in ("wrk", "haproxy", "curl", "conntrack", "nft"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (bootstrap.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="pkbench-dp-"))
    prefix = unique_prefix("bdp")
    print(f"namespaces {prefix}", file=sys.stderr, flush=True)  # tests/netns/test_bench_dataplane.py: gone after
    lab = BenchLab("nat", prefix=prefix, name="bench-dp", workdir=workdir / "lab", dataplane="nftables")
    haproxy: HAProxy | None = None
    try:
        print("bringing the NAT lab up", file=sys.stderr, flush=True)
        lab.up()
        client, router = lab.client.netns, lab.router(ROUTER).netns
        servers = [str(rs.address) for rs in lab.real_servers]
        server_ns = [lab.hosts[f"rs{i}"].netns for i in range(1, len(servers) + 1)]
        client.ip("route", "add", PRIVATE_PREFIX, "via", ROUTER_PUBLIC)  # the direct path, through router1
        # The VIP's flows, and nat_rule's, leave from addresses of their own. A real server keeps
        # TIME_WAIT for every `Connection: close` request; the client's TCP timestamps are offset per
        # (source, destination) pair, so a connection that reuses a port another path used moments ago
        # (same 4-tuple at the server, another destination at the client) carries an older timestamp
        # and the server drops its SYN as a stale duplicate (a 1 s retransmission each): an artefact
        # of mixing paths to the same servers, which no real client does at this rate.
        for source in (VIP_CLIENT, RULE_CLIENT, *CLIENTS.values()):
            client.ip("addr", "add", f"{source}/32", "dev", "eth0")
        client.ip("route", "add", f"{VIP}/32", "dev", "eth0", "src", VIP_CLIENT)
        client.ip("route", "add", f"{RULE_VIP}/32", "via", ROUTER_PUBLIC, "src", RULE_CLIENT)
        for mode, vip in VIPS.items():  # none of them is held by VRRP here: routed to router1
            client.ip("route", "add", f"{vip}/32", "via", ROUTER_PUBLIC, "src", CLIENTS[mode])
        wait_stateless_ready(lab)
        proto_check = check_proto_reply(lab, client, router) if "stateless_ri" in modes else None
        router.run(["nft", "-f", "-"], input=nat_rule(servers))
        haproxy = HAProxy(router, workdir, servers)
        haproxy.start(client)
        wrk = Wrk(client, workdir, args.threads, args.connections)
        for mode in modes:  # warm-up: caches, ARP, nginx's first accepts
            wrk.run(mode, targets_for(mode, servers), "keepalive", 1)
        runs = interleaved_rounds(args.runs, styles, modes, lambda mode, style: measure_mode(
            wrk, router, servers, mode, style, args.duration, server_ns),
            swap=("stateless", "stateless_ri") if args.proto_reply_ingress else None, rotate=args.rotate)
        summary, ratios = summarize(runs, styles)
        out: dict[str, Any] = {
            "benchmark": "dataplane",
            "machine": machine(),
            "settings": {"wrk_threads": args.threads, "wrk_connections": args.connections,
                         "duration_s": args.duration, "runs": args.runs, "modes": modes,
                         "rotate": args.rotate,
                         "real_servers": servers,
                         "scheduler": "rr", "haproxy": "mode tcp, balance roundrobin, default threads",
                         "stateless": f"{STATELESS_VIP}: NAT, mh + mh-port, pykeepalived_stateless, to "
                                      f"{', '.join(second_address(i) for i in range(1, 4))}",
                         "dr": f"{DR_VIP}: DR from ingress, mh + mh-port, pykeepalived_stateless",
                         "dr_flows": f"{DR_FLOWS_VIP}: DR from ingress, rr with flow sets",
                         "ruleset": router_ruleset_summary(router)},
            "proto_reply_check": proto_check,
            "anchor_lab_facts": {"nftables_over_direct": 0.85, "haproxy_over_direct": 0.66},
            "goal": {"vip_over_direct_at_least": GOAL_OF_DIRECT, "vip_over_haproxy_above": 1.0,
                     "stateless_and_dr_over_direct_at_least": GOAL_STATELESS_OF_DIRECT,
                     "vip_over_nat_rule_about": 1.0},
            "summary": summary,
            "ratios": ratios,
            "round_ratios": round_ratios(runs, styles),
            "runs": runs,
        }
    finally:
        if haproxy is not None:
            haproxy.stop()
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.apply:
        print("apply timings", file=sys.stderr, flush=True)
        out["apply"] = apply_timings()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds over every mode and style (default 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=30, help="wrk connections (default 30)")
    parser.add_argument("--threads", type=int, default=None,
                        help="wrk threads (default: one per connection, so that a thread talks to one server in "
                             "every mode; 3 before 2026-12-05)")
    parser.add_argument("--styles", default="keepalive,new_conn", help="keepalive,new_conn (default both)")
    parser.add_argument("--no-apply", dest="apply", action="store_false", help="skip the apply timings")
    parser.add_argument("--modes", default="", help=f"a subset of {','.join(MODES)} (direct always runs; "
                                                     "default all)")
    parser.add_argument("--proto-reply-ingress", action="store_true",
                        help="add the mode stateless_ri: stateless with its replies from ingress (an experiment)")
    parser.add_argument("--proto-direct-ingress", action="store_true",
                        help="add the mode direct_ri: direct with both directions from ingress (its ceiling)")
    parser.add_argument("--no-rotate", dest="rotate", action="store_false",
                        help="run the modes in the same order every round, direct first (before 2026-12-05)")
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = args.connections
    if os.geteuid() != 0:
        print("bench/dataplane.py needs root (network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill as on Ctrl-C
    try:
        out = run_bench(args)
    except (BenchError, LabError) as exc:
        print(f"bench/dataplane.py: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
