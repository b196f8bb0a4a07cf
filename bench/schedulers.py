"""How the nftables data plane really spreads new connections, scheduler by scheduler, against IPVS.

For every scheduler the nftables backend offers under a keepalived name (rr,
wrr, sh, dh, mh, lc, wlc, sed, nq, fo, ovf, twos, lblc, lblcr; not `random`),
one NAT virtual service 203.0.113.10:80 with three real servers
10.11.12.1-3:80 of weights 1, 2, 3 (rr and wrr also 1, 1, 1) takes
`--connections` new TCP connections, and we count which real server answered
each one. Connections are opened one after another and are either "short"
(open, read the reply, close) or "long" (kept open until the run ends, so
active counts grow). Load-based schedulers get `rebalance` with fresh
conntrack counts every 50 connections, as the daemon does every second. dh,
lblc and lblcr hash the destination, so their service has three VIPs
(203.0.113.10-12) and connections cycle over them; sh and mh hash the source,
so connections cycle over 254 client addresses 198.51.100.1-254.

Reading the first line (JSON), one entry per run:

- `expected`: the share IPVS would give each real server. rr: equal; wrr, sh,
  mh: by weight (sh/mh over many clients); lc, wlc, sed, nq, fo, ovf, twos:
  IPVS's own choice rule replayed connection by connection (a short connection
  ends as inactive, a long one stays active; IPVS lists real servers newest
  first, which decides ties; twos with a seeded random; `refused` is what ovf
  would turn away once every server has more active connections than its
  weight). dh, lblc, lblcr: null, every VIP should go to one real server.
- `measured` / `measured_share`: real counts (per VIP for dh, lblc, lblcr).
- `max_deviation`: the largest |expected - measured| share; for dh, lblc,
  lblcr the largest share of a VIP's connections not on its main server.
- `map_share`: slot shares in the service's nftables map when the run ended
  (the table's granularity: 3 slots for rr, 509 for mh, 256 for lc...).

The second line times `apply_now` for every scheduler: one of 1,000 real
servers of a service going down (median of 5, with the process's CPU time:
the machine is shared, and CPU time moves less with the others' load), and
loading 1,000 virtual
services with 3 real servers each (the same three) into an empty table (one
call); for rr, wlc and mh also 1,000 services with three real servers of
their own each; and, for mh, one of 1,000 down by data path
(`one_of_1000_mh_by_path_s`: DR from ingress with flow sets, DR stateless,
stateless NAT; the real servers on a veth of the namespace, DR's route
lookups kept between applies), and for DR with flow sets by scheduler
(`one_of_1000_dr_by_scheduler_s`: mh, wlc, rr, from ingress and on the copy
path in table ip, which fwmark services and a narrower link towards the
real servers get). With `--compare-libnftables` every apply timing is taken
twice in the same run, alternately, with the slot maps' elements written over
nfnetlink (`lvs/nft_elements.py`, the default) and through libnftables as
before (`direct_elements=False`): the second line then also holds
`libnftables_path` (the same figures), `speedup` (libnftables' wall time over
ours, per figure) and `speedup_cpu` (the same with CPU time, which moves less
with the others' load): the ratios that hold on a shared machine.

Everything runs in one network namespace (deleted at the end, also on error
or Ctrl-C): addresses on `lo`, the real servers as one asyncio process, and
the measuring part run inside it (libnftables acts on its own namespace);
connections from inside the namespace are DNATed by the nat output hook.
Needs root and python3-nftables. About a minute.

    .venv/bin/python bench/schedulers.py [--connections 600] [--apply-only] [--compare-libnftables]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from pyroute2 import Conntrack  # type: ignore[import-untyped]

from pykeepalived.lab import Netns, unique_prefix
from pykeepalived.lab.netns import run_cmd
from pykeepalived.lvs.model import DesiredTable, Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft import NftablesBackend
from pykeepalived.lvs.nft_rules import TABLE

REAL = ("10.11.12.1", "10.11.12.2", "10.11.12.3")
VIPS = ("203.0.113.10", "203.0.113.11", "203.0.113.12")
CLIENTS = tuple(f"198.51.100.{i}" for i in range(1, 255))
PORT = 80
W = (1, 2, 3)
REBALANCE_EVERY = 50
TIMEOUT_S = 1.0
LOAD = ("lc", "wlc", "sed", "nq", "fo", "ovf", "twos")
BY_DEST = ("dh", "lblc", "lblcr")
BOTH = ("short", "long")
OWN_POOLS = ("rr", "wlc", "mh")
APPLY_SCHEDULERS = ("rr", "wrr", "sh", "dh", "mh", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "lblc", "lblcr")
RUNS: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (
    ("rr", (1, 1, 1), ("short",)), ("rr", W, ("short",)), ("wrr", (1, 1, 1), ("short",)), ("wrr", W, ("short",)),
    ("sh", W, ("short",)), ("mh", W, ("short",)), ("dh", W, ("short",)), ("lblc", W, BOTH), ("lblcr", W, BOTH),
    *((s, W, BOTH) for s in LOAD),
)


# ----------------------------------------------------------------------------- what IPVS would do
def ipvs_pick(sched: str, weights: list[int], active: list[int], inactive: list[int],
              rng: random.Random) -> int | None:
    """The real server ip_vs_<sched>.c picks (None: refused), as its source reads."""
    live = [i for i in reversed(range(len(weights))) if weights[i] > 0]  # list_add: newest first
    overhead = [a * 256 + n for a, n in zip(active, inactive)]  # ip_vs_dest_conn_overhead
    if sched == "lc":
        return min(live, key=lambda i: overhead[i])
    if sched == "wlc":
        return min(live, key=lambda i: Fraction(overhead[i], weights[i]))
    if sched == "nq" and any(active[i] == 0 for i in live):
        return next(i for i in live if active[i] == 0)
    if sched in ("sed", "nq"):
        return min(live, key=lambda i: Fraction(active[i] + 1, weights[i]))
    if sched in ("fo", "ovf"):
        ok = [i for i in live if sched == "fo" or active[i] <= weights[i]]
        return max(ok, key=lambda i: weights[i]) if ok else None
    if sched == "twos":  # two weighted-random candidates, the less loaded per weight wins
        a, b = rng.choices(live, [weights[i] for i in live], k=2)
        return b if overhead[b] * weights[a] < overhead[a] * weights[b] else a
    raise ValueError(sched)


def expected_share(sched: str, weights: tuple[int, ...], mode: str, n: int) -> dict[str, float] | None:
    if sched in BY_DEST:
        return None
    if sched in ("rr", "wrr", "sh", "mh"):
        w = [1] * len(weights) if sched == "rr" else list(weights)
        return {r: round(x / sum(w), 4) for r, x in zip(REAL, w)}
    active, inactive, got = [0] * len(weights), [0] * len(weights), Counter[str]()
    rng = random.Random(1)
    for _ in range(n):
        i = ipvs_pick(sched, list(weights), active, inactive, rng)
        if i is None:
            got["refused"] += 1
            continue
        got[REAL[i]] += 1
        (active if mode == "long" else inactive)[i] += 1
    return {k: round(v / n, 4) for k, v in sorted(got.items())}


# ----------------------------------------------------------------------------- inside the namespace
async def serve() -> None:
    """The three real servers: say who answered, keep the connection until the client closes it."""
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(writer.get_extra_info("sockname")[0].encode() + b"\n")
        await writer.drain()
        try:
            await reader.read()
        except ConnectionError:
            pass  # the client may reset instead of closing; nothing to answer either way
        writer.close()

    servers = [await asyncio.start_server(answer, host, PORT, backlog=1024) for host in REAL]
    await asyncio.gather(*(s.serve_forever() for s in servers))


async def connect(vip: str, client: str) -> tuple[str, asyncio.StreamWriter]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(vip, PORT, local_addr=(client, 0)), TIMEOUT_S)
    line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
    return line.decode().strip(), writer


def service(sched: str, weights: tuple[int, ...], n_real: int = 3, vip: str = VIPS[0],
            name: str = "web") -> VirtualService:
    reals = REAL if n_real == 3 else tuple(f"10.20.{i // 250}.{i % 250 + 1}" for i in range(n_real))
    dests = tuple(Destination(a, PORT, w) for a, w in zip(reals, weights))
    if sched in BY_DEST:  # the three VIPs of the distribution runs; a service of its own VIP otherwise
        entries = tuple(GroupEntry("address", address=v, port=PORT) for v in (VIPS if vip == VIPS[0] else (vip,)))
        return VirtualService(name, "group", group=f"vips-{name}", group_entries=entries, protocol="TCP",
                              scheduler=sched, destinations=dests)
    return VirtualService(name, "address", vip, PORT, "TCP", scheduler=sched, destinations=dests)


def map_share(backend: NftablesBackend) -> dict[str, float]:
    """Slot shares of the map that picks a real server (literal in the rule, or a named slot map), as listed."""
    listing = backend.nft.run([{"list": {"table": {"family": "ip", "name": TABLE}}}])
    named = {item["map"]["name"]: item["map"].get("elem", []) for item in listing.get("nftables", [])
             if isinstance(item.get("map"), dict) and "name" in item["map"]}
    slots: Counter[str] = Counter()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node["map"].get("data") if isinstance(node.get("map"), dict) else None
            pairs = data["set"] if isinstance(data, dict) and "set" in data else \
                named.get(data[1:], []) if isinstance(data, str) and data.startswith("@") else []
            for _, target in pairs:  # an address, or {"concat": [address, port]}
                slots[target["concat"][0] if isinstance(target, dict) else target] += 1
            node = list(node.values())
        for value in node if isinstance(node, list) else ():
            walk(value)

    walk([item for item in listing.get("nftables", []) if "rule" in item])
    total = sum(slots.values()) or 1
    return {k: round(v / total, 4) for k, v in sorted(slots.items())}


def flush_conntrack() -> None:
    with Conntrack() as ct:
        ct.flush()


async def measure(sched: str, weights: tuple[int, ...], mode: str, n: int) -> dict[str, Any]:
    backend = NftablesBackend()  # a fresh one: no counts left from the previous run
    backend.apply_now(DesiredTable((service(sched, weights),)))
    vips = VIPS if sched in BY_DEST else VIPS[:1]
    got: dict[str, Counter[str]] = {vip: Counter() for vip in vips}
    kept: list[asyncio.StreamWriter] = []
    try:
        for k in range(n):
            if sched in LOAD and k and k % REBALANCE_EVERY == 0:
                await backend.rebalance(await backend.counts())
            try:
                server, writer = await connect(vips[k % len(vips)], CLIENTS[k % len(CLIENTS)])
            except OSError:  # timeouts too: an empty map drops, as IPVS refuses
                got[vips[k % len(vips)]]["failed"] += 1
                continue
            got[vips[k % len(vips)]][server] += 1
            if mode == "long":
                kept.append(writer)
            else:
                writer.close()
                await writer.wait_closed()
        slots = map_share(backend)
    finally:
        for writer in kept:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in kept), return_exceptions=True)
        backend.close_now()
        await asyncio.sleep(0.3)  # the servers' FINs, before conntrack forgets the NAT
        await asyncio.to_thread(flush_conntrack)  # the next run starts from zero, as a new IPVS service
    expected = expected_share(sched, weights, mode, n)
    total = Counter[str]()
    for counts in got.values():
        total.update(counts)
    result: dict[str, Any] = {"scheduler": sched, "weights": list(weights), "mode": mode, "expected": expected}
    if expected is None:
        result["note"] = "destination hashing: every VIP should go to one real server (which one is the hash's)"
        result["measured"] = {vip: dict(sorted(c.items())) for vip, c in got.items()}
        result["max_deviation"] = round(max(1 - max(c.values()) / sum(c.values()) for c in got.values()), 4)
    else:
        share = {k: round(v / n, 4) for k, v in sorted(total.items())}
        result["measured"] = dict(sorted(total.items()))
        result["measured_share"] = share
        result["max_deviation"] = round(max(abs(expected.get(k, 0) - share.get(k, 0))
                                            for k in set(expected) | set(share)), 4)
    result["map_share"] = slots
    return result


def one_down(backend: NftablesBackend, up: VirtualService, runs: int) -> dict[str, float]:
    """`up` applied, then real server 100 k of it down, `runs` times: the down applies' wall and CPU times.

    The heap is frozen after the first apply, as the checker freezes its
    start-up heap, first table included (daemon/gc_quiet.py): without it
    the young collections during the first applies walked the objects the
    load had just made, which a running checker's never do (before
    2026-12-05: stateless NAT 11.6 and 13.7 ms against 9.2 and 9.8 frozen,
    alternate runs of the part-timing script under load, docs/dataplane.md).
    """
    times, cpu = [], []
    try:
        for k in range(runs):
            backend.apply_now(DesiredTable((up,)))
            if k == 0:
                gc.freeze()
            # the other 999 stay the same objects, as the checker keeps them (check/plan.py, one per state)
            dests = tuple(replace(d, alive=False) if i == 100 * k else d for i, d in enumerate(up.destinations))
            down = DesiredTable((replace(up, destinations=dests),))
            c0, t0 = time.process_time(), time.perf_counter()
            backend.apply_now(down)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)  # this process's CPU, kernel work for its syscalls included
    finally:
        gc.unfreeze()
    return {"median": round(statistics.median(times), 4), "min": round(min(times), 4),
            "max": round(max(times), 4), "cpu_median": round(statistics.median(cpu), 4)}


PATHS = ("dr", "dr_stateless", "stateless_nat")


def as_dr(svc: VirtualService) -> VirtualService:
    """`svc` with its real servers reached by direct routing."""
    return replace(svc, method="DR", destinations=tuple(replace(d, method="DR") for d in svc.destinations))


def path_service(path: str) -> VirtualService:
    """The mh service of 1,000 real servers on one of PATHS."""
    up = service("mh", (1,) * 1000, n_real=1000)
    if path == "stateless_nat":
        return replace(up, stateless=True)
    return replace(as_dr(up), stateless=path == "dr_stateless")


@contextmanager
def servers_veth() -> Iterator[str]:
    """A veth pair of this namespace holding 10.20.255.254/16 while the block runs (its name): DR needs the real
    servers on a directly connected network."""
    run_cmd(["ip", "-batch", "-"], input="link add pkbench0 type veth peer name pkbench1\nlink set pkbench0 up\n"
                                         "link set pkbench1 up\naddr add 10.20.255.254/16 dev pkbench0\n")
    try:
        yield "pkbench0"
    finally:
        run_cmd(["ip", "link", "del", "pkbench0"])


def path_timings(runs: int = 3) -> dict[str, Any]:
    """One of 1,000 real servers down in an mh service by data path (median of `runs`, wall and CPU), and its load."""
    out: dict[str, Any] = {}
    with servers_veth():
        for path in PATHS:
            backend = NftablesBackend()
            up = path_service(path)
            t0 = time.perf_counter()
            backend.apply_now(DesiredTable((up,)))
            load = time.perf_counter() - t0
            timed = one_down(backend, up, runs)
            backend.close_now()
            out[path] = {"median": timed["median"], "cpu_median": timed["cpu_median"], "load": round(load, 4)}
    return out


DR_SCHEDULERS = ("mh", "wlc", "rr")


def dr_timings(runs: int = 5) -> dict[str, Any]:
    """One of 1,000 DR real servers down, by scheduler, from ingress and on the copy path in table ip.

    The copy path is what DR services ingress does not take get (fwmark,
    no interface but lo, a narrower link towards the real servers): here
    the servers' side of the veth gets the smaller MTU.
    """
    out: dict[str, Any] = {"ingress": {}, "copy_path": {}}
    with servers_veth() as device:
        for where in ("ingress", "copy_path"):
            if where == "copy_path":
                run_cmd(["ip", "link", "set", device, "mtu", "1400"])
            for sched in DR_SCHEDULERS:
                backend = NftablesBackend()
                out[where][sched] = one_down(backend, as_dr(service(sched, (1,) * 1000, n_real=1000)), runs)
                backend.close_now()
    return out


def apply_timings(schedulers: tuple[str, ...] = APPLY_SCHEDULERS, compare: bool = False,
                  paths: bool = False) -> dict[str, Any]:
    """The apply figures; with `compare`, each taken with both element paths (module docstring), alternately;
    with `paths`, also path_timings."""
    element_paths = (True, False) if compare else (True,)  # nfnetlink, then libnftables
    runs: dict[bool, dict[str, Any]] = {path: {"one_of_1000_real_servers_down_s": {},
                                               "load_1000_services_x3_s": {}} for path in element_paths}
    for sched in schedulers:
        for direct in element_paths:
            backend = NftablesBackend(direct_elements=direct)
            runs[direct]["one_of_1000_real_servers_down_s"][sched] = one_down(
                backend, service(sched, (1,) * 1000, n_real=1000), 5)
            backend.close_now()
    for sched in schedulers:
        table = DesiredTable(tuple(service(sched, (1, 1, 1), vip=f"10.30.{i // 250}.{i % 250 + 1}",
                                           name=f"vs{i}") for i in range(1000)))
        if compare:  # the first load of a scheduler in a process costs up to 0.1 s more: neither path pays it
            warm = NftablesBackend()
            warm.apply_now(table)
            warm.close_now()
        for direct in element_paths:
            backend = NftablesBackend(direct_elements=direct)
            c0, t0 = time.process_time(), time.perf_counter()
            backend.apply_now(table)
            runs[direct]["load_1000_services_x3_s"][sched] = round(time.perf_counter() - t0, 4)
            runs[direct].setdefault("load_1000_services_x3_cpu_s", {})[sched] = round(time.process_time() - c0, 4)
            backend.close_now()
    # the same with three real servers of its own per service: no two slot maps alike, none shared
    for direct in element_paths:
        runs[direct]["load_1000_services_x3_own_pools_s"] = {}
    for sched in (s for s in OWN_POOLS if s in schedulers):
        for direct in element_paths:
            backend = NftablesBackend(direct_elements=direct)
            services = []
            for i in range(1000):
                svc = service(sched, (1, 1, 1), vip=f"10.30.{i // 250}.{i % 250 + 1}", name=f"vs{i}")
                own = tuple(replace(d, address=f"10.{40 + i // 250}.{i % 250}.{n + 1}")
                            for n, d in enumerate(svc.destinations))
                services.append(replace(svc, destinations=own))
            c0, t0 = time.process_time(), time.perf_counter()
            backend.apply_now(DesiredTable(tuple(services)))
            runs[direct]["load_1000_services_x3_own_pools_s"][sched] = round(time.perf_counter() - t0, 4)
            runs[direct].setdefault("load_1000_services_x3_own_pools_cpu_s", {})[sched] = round(
                time.process_time() - c0, 4)
            backend.close_now()
    out = runs[True]
    if paths:  # on a thread of its own, as the daemon applies: pyroute2's route lookups refuse a running loop
        with ThreadPoolExecutor(max_workers=1) as pool:
            out["one_of_1000_mh_by_path_s"] = pool.submit(path_timings).result()
            out["one_of_1000_dr_by_scheduler_s"] = pool.submit(dr_timings).result()
    if compare:
        ours, theirs = runs[True], runs[False]
        out["libnftables_path"] = theirs
        out["speedup"] = {
            "one_of_1000_real_servers_down": {
                s: round(theirs["one_of_1000_real_servers_down_s"][s]["median"]
                         / ours["one_of_1000_real_servers_down_s"][s]["median"], 2) for s in schedulers},
            **{key: {s: round(theirs[f"{key}_s"][s] / ours[f"{key}_s"][s], 2) for s in ours[f"{key}_s"]}
               for key in ("load_1000_services_x3", "load_1000_services_x3_own_pools")}}
        out["speedup_cpu"] = {  # CPU time moves less with the others' load than wall time
            "one_of_1000_real_servers_down": {
                s: round(theirs["one_of_1000_real_servers_down_s"][s]["cpu_median"]
                         / ours["one_of_1000_real_servers_down_s"][s]["cpu_median"], 2) for s in schedulers},
            **{key: {s: round(theirs[f"{key}_cpu_s"][s] / ours[f"{key}_cpu_s"][s], 2) for s in ours[f"{key}_cpu_s"]}
               for key in ("load_1000_services_x3", "load_1000_services_x3_own_pools")}}
    return out


async def inside(n: int, apply_only: bool = False, schedulers: tuple[str, ...] = APPLY_SCHEDULERS,
                 compare: bool = False) -> None:
    if apply_only:
        print(json.dumps({"benchmark": "schedulers-apply", **apply_timings(schedulers, compare, paths=True)}),
              flush=True)
        return
    deadline = time.monotonic() + 10
    for host in REAL:  # wait for the real servers to listen
        while True:
            try:
                _, writer = await connect(host, CLIENTS[0])
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        writer.close()
    results = []
    for sched, weights, modes in RUNS:
        for mode in modes:
            print(f"{sched} {weights} {mode}", file=sys.stderr, flush=True)
            results.append(await measure(sched, weights, mode, n))
    print(json.dumps({"benchmark": "schedulers", "connections": n, "runs": results}), flush=True)
    print(json.dumps({"benchmark": "schedulers-apply", **apply_timings(schedulers, compare, paths=True)}), flush=True)


# ----------------------------------------------------------------------------- outside: the namespace
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=600, help="new connections per run")
    parser.add_argument("--apply-only", action="store_true", help="print only the apply timings (second line)")
    parser.add_argument("--apply-schedulers", default=",".join(APPLY_SCHEDULERS),
                        help="comma-separated schedulers the apply timings cover")
    parser.add_argument("--compare-libnftables", action="store_true",
                        help="time every apply also with the elements through libnftables (the anchor)")
    parser.add_argument("--role", choices=("outside", "serve", "inside"), default="outside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.role == "serve":
        asyncio.run(serve())
        return 0
    if args.role == "inside":
        asyncio.run(inside(args.connections, args.apply_only, tuple(args.apply_schedulers.split(",")),
                           args.compare_libnftables))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill as on Ctrl-C
    ns = Netns(unique_prefix("sched"))
    ns.create()
    print(f"namespace {ns.name}", file=sys.stderr, flush=True)  # tests/netns/test_bench_schedulers.py: gone after
    server: subprocess.Popen[bytes] | None = None
    try:
        batch = "".join(f"addr add {a}/32 dev lo\n" for a in (*REAL, *VIPS, *CLIENTS))
        run_cmd(["ip", "-n", ns.name, "-batch", "-"], input=batch)
        me = [sys.executable, str(Path(__file__).resolve())]
        server = ns.popen([*me, "--role", "serve"], stderr=None)
        proc = subprocess.run(ns.argv([*me, "--role", "inside", "--connections", str(args.connections),
                                       "--apply-schedulers", args.apply_schedulers,
                                       *(["--apply-only"] if args.apply_only else []),
                                       *(["--compare-libnftables"] if args.compare_libnftables else [])]),
                              stdout=subprocess.PIPE, text=True, timeout=900, check=False)
        sys.stdout.write(proc.stdout)
        return proc.returncode
    finally:
        ns.delete()  # kills the real servers too
        if server is not None:
            server.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
