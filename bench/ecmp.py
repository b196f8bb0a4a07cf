"""Issue 19's tier: requests/s through the VIP with 1, 2 and 3 balancers, and how connections live through changes.

The lab (`EcmpLab`: a client, an upstream FRR router doing BGP ECMP with a
5-tuple hash, three balancers running pykeepalived with one stateless DR
service over mh, three nginx real servers) comes up once for the throughput
part. `wrk` in the client measures, in turns within each round:

- `direct`: the three real servers' own addresses, through the upstream only
  (one wrk thread per server): the anchor, the path with no balancer at all;
- `tier_3`, `tier_2`, `tier_1`: the VIP with 3, 2 and 1 balancers holding a
  path on the upstream. A balancer is taken out by setting its link down (the
  upstream drops its path when the BGP hold time runs out, as for a dead
  machine) and put back by setting it up (its session comes back in about two
  seconds); the bench waits for the upstream's path count each time.

Two styles: `keepalive` (HTTP/1.1 keep-alive) and `new_conn` (`Connection:
close`). Per run: requests/s, p50/p99, wrk's errors; `balancer_share`: each
balancer's part of the service's packets (its own nftables counter table),
which shows how evenly the upstream's ECMP hash spread wrk's connections;
`cpu`: the machine's user/system/softirq seconds during the run, and each
balancer's processes' (pykeepalived, its checkers and bgpd) CPU seconds.

Scaling cannot be judged from requests/s here: the lab's hosts are network
namespaces sharing 2 cores, and a packet's forwarding work (the upstream's
route, the balancer's ingress `fwd`) runs in the softirq of the CPU that sent
it, so it is not attributable to a balancer and does not grow with their
number. `balancer_share` and the per-balancer process CPU are what a reader
can judge: each balancer's share of the work, and that its control plane
costs about nothing.

Then connection survival, each in a fresh lab of three balancers (as
tests/netns/test_ecmp_lab.py's soak tests): `--survival-connections`
long-lived connections (a request every 100 ms each), then

- `crash_hold_time`: lb2's link down and pykeepalived and bgpd SIGKILLed;
  when the upstream dropped its path (hold time 3 s), and what became of the
  connections (kept / lost, the worst pause of a kept one, whether any
  changed real server);
- `crash_bfd`: the same with BFD (100 ms x 3) between the upstream and each
  balancer;
- `add_balancer`: a fourth balancer joins; flows ECMP moved to it and between
  the others, and the connections' fate.

Prints one JSON document. Needs root, FRR and wrk; about 4 minutes.

    .venv/bin/python bench/ecmp.py [--runs 3] [--duration 4] [--connections 60] [--threads 3]
        [--styles keepalive,new_conn] [--survival-connections 200] [--no-survival] [--speaker pykeepalived|frr]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pykeepalived.lab import LabError, Netns, wait_until
from pykeepalived.lab.ecmp_lab import HTTP_PORT, EcmpLab
from pykeepalived.lab.streams import LineStreams

STYLES = {"keepalive": [], "new_conn": ["-H", "Connection: close"]}
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
TIERS = (3, 2, 1)
LAB_NAME = "ecmpbench"  # namespaces ecmpbenc-XXXXXX-*
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The bench could not measure (a tool missing, wrk's output unreadable)."""


# ----------------------------------------------------------------------------- wrk
def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"cannot read wrk's latency {text!r}")
    return float(match[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match[2]]


def parse_wrk(output: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    if not (rps and p50 and p99 and total):
        raise BenchError(f"cannot read wrk's output:\n{output[-1500:]}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"requests_per_s": round(float(rps[1]), 1), "requests": int(total[1]),
            "p50_ms": round(_seconds(p50[1]) * 1000, 3), "p99_ms": round(_seconds(p99[1]) * 1000, 3),
            "socket_errors": sum(map(int, errors.groups())) if errors else 0,
            "non_2xx": int(non_2xx[1]) if non_2xx else 0}


def run_wrk(client: Netns, workdir: Path, name: str, targets: list[tuple[str, int]], style: str,
            args: argparse.Namespace) -> dict[str, Any]:
    script = workdir / f"{name}.lua"
    script.write_text(WRK_LUA.format(targets=", ".join(f'{{"{a}", "{p}"}}' for a, p in targets)))
    address, port = targets[0]
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration:g}s", "--latency",
            "--timeout", "2s", "-s", str(script), *STYLES[style], f"http://{address}:{port}/"]
    proc = client.run(argv, check=False, timeout_s=args.duration + 30)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}) for {name}: {proc.stderr[-800:]}{proc.stdout[-800:]}")
    return parse_wrk(proc.stdout)


# ----------------------------------------------------------------------------- CPU
def machine_cpu_s() -> dict[str, float]:
    """The machine's user, system and softirq seconds so far (/proc/stat's cpu line)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, softirq = (int(x) for x in fields[:7])
    return {"user": (user + nice) / CLK_TCK, "system": system / CLK_TCK, "softirq": softirq / CLK_TCK}


def namespace_cpu_s(ns: Netns) -> float:
    """utime + stime of every process in the namespace (a balancer's pykeepalived, its children, bgpd)."""
    total = 0
    for pid in ns.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


# ----------------------------------------------------------------------------- throughput
def set_tier(lab: EcmpLab, size: int) -> float:
    """Leave `size` balancers with a path (links of the others down, the first ones up); seconds it took."""
    t0 = time.monotonic()
    for b in lab.balancers.values():
        b.netns.ip("link", "set", b.host.ifname, "up" if b.number <= size else "down")
    lab.wait_paths(n=size, timeout_s=20.0)
    # a balancer back from a link down announces once its quorum is met: wait until it sees every server again,
    # so that every run measures the same table on every balancer
    wait_until(lambda: all(lab.serving(b) for b in lab.balancers.values() if b.number <= size), 20.0,
               interval_s=0.1, what="the tier's balancers seeing every real server")
    return time.monotonic() - t0


def measure(lab: EcmpLab, workdir: Path, mode: str, style: str, args: argparse.Namespace) -> dict[str, Any]:
    servers = [(str(rs), HTTP_PORT) for rs in lab.plan.real_servers]
    targets = servers if mode == "direct" else [(str(lab.vip), HTTP_PORT)]
    lab.reset_counters()
    cpu0, own0 = machine_cpu_s(), {n: namespace_cpu_s(b.netns) for n, b in lab.balancers.items()}
    result = run_wrk(lab.client.netns, workdir, mode, targets, style, args)
    cpu1, own1 = machine_cpu_s(), {n: namespace_cpu_s(b.netns) for n, b in lab.balancers.items()}
    packets = lab.packet_counts()
    total = sum(packets.values()) or 1
    result["balancer_share"] = {n: round(c / total, 3) for n, c in packets.items() if c}
    result["cpu"] = {"machine_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
                     "balancer_processes_s": {n: round(own1[n] - own0[n], 3) for n in own0}}
    return result


def throughput(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    styles = [s for s in args.styles.split(",") if s]
    runs: list[dict[str, Any]] = []
    switches: list[float] = []
    with EcmpLab(balancers=3, speaker=args.speaker, name=LAB_NAME, workdir=workdir / "tier") as lab:
        for style in styles:  # warm-up: ARP and neighbour caches, nginx's first connections
            run_wrk(lab.client.netns, workdir, "warm", [(str(lab.vip), HTTP_PORT)], style,
                    argparse.Namespace(**{**vars(args), "duration": 1}))
        for round_no in range(1, args.runs + 1):
            for mode in ("direct", *(f"tier_{n}" for n in TIERS)):
                if mode.startswith("tier_"):
                    switches.append(set_tier(lab, int(mode.split("_")[1])))
                for style in styles:
                    print(f"round {round_no}: {style} {mode}", file=sys.stderr, flush=True)
                    runs.append({"run": round_no, "style": style, "mode": mode,
                                 **measure(lab, workdir, mode, style, args)})
            switches.append(set_tier(lab, 3))
        speaker = lab.speaker.value
    summary: dict[str, Any] = {}
    for style in styles:
        per_mode = {}
        for mode in ("direct", *(f"tier_{n}" for n in TIERS)):
            rps = [r["requests_per_s"] for r in runs if r["style"] == style and r["mode"] == mode]
            per_mode[mode] = {"requests_per_s_median": round(statistics.median(rps), 1),
                              "requests_per_s_runs": rps}
        direct = per_mode["direct"]["requests_per_s_median"] or 1
        for mode, entry in per_mode.items():
            entry["of_direct"] = round(entry["requests_per_s_median"] / direct, 3)
        summary[style] = per_mode
    return {"speaker": speaker, "summary": summary, "runs": runs,
            "tier_switch_s": [round(s, 2) for s in switches]}


# ----------------------------------------------------------------------------- survival
def _owners(lab: EcmpLab, streams: LineStreams) -> dict[int, str]:
    seen = {flow: name for name in lab.balancers for flow in lab.flows_seen(name)}
    client = str(lab.client.ipv4.ip)
    return {c.serial: seen.get((client, c.sock.getsockname()[1]), "?")
            for c in streams.current.values() if c.sock is not None}


def _with_streams(lab: EcmpLab, count: int, event: Callable[[LineStreams], dict[str, Any]]) -> dict[str, Any]:
    lab.reset_counters()
    streams = lab.streams(count, stall_s=20.0)
    streams.start(ready_timeout_s=30.0)
    try:
        time.sleep(0.5)
        mark = streams.mark()
        before = _owners(lab, streams)
        figures = event(streams)
        t_event = figures.pop("_since")
        wait_until(lambda: streams.all_answering(since=t_event, fresh_s=2.0), 30.0,
                   what=f"every connection answering again: {streams.summary_line()}")
        report = streams.report(mark, time.monotonic())
    finally:
        streams.stop()
    figures.update({"connections": report["connections"], "kept": report["kept"], "lost": report["lost"],
                    "lost_reasons": report["lost_reasons"], "changed_real_server": report["moved"],
                    "worst_kept_gap_s": report["worst_kept_gap_s"],
                    "per_balancer_before": {n: sum(1 for o in before.values() if o == n) for n in lab.balancers}})
    return figures


def crash(args: argparse.Namespace, workdir: Path, bfd: bool) -> dict[str, Any]:
    with EcmpLab(balancers=3, bfd=bfd, speaker=args.speaker, name=LAB_NAME, workdir=workdir / f"crash-{bfd}") as lab:
        victim = lab.balancer(2)

        def event(_: LineStreams) -> dict[str, Any]:
            t_down = lab.kill_balancer(2)
            wait_until(lambda: str(victim.address) not in lab.upstream_paths(), 15.0, interval_s=0.005,
                       what="the upstream dropping lb2")
            gone = time.monotonic()
            return {"_since": gone, "path_gone_after_s": round(gone - t_down, 3),
                    "paths_after": lab.upstream_paths()}

        return _with_streams(lab, args.survival_connections, event)


def add_fourth(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with EcmpLab(balancers=3, speaker=args.speaker, name=LAB_NAME, workdir=workdir / "add") as lab:
        def event(streams: LineStreams) -> dict[str, Any]:
            before = _owners(lab, streams)
            t0 = time.monotonic()
            lab.add_balancer()
            lab.wait_paths(n=4, timeout_s=20.0)
            took = time.monotonic() - t0
            lab.reset_counters()
            time.sleep(1.0)
            after = _owners(lab, streams)
            moved = [o for s, o in after.items() if s in before and o != before[s]]
            return {"_since": time.monotonic() - 0.5, "fourth_path_after_s": round(took, 2),
                    "flows_moved_to_lb4": sum(1 for o in moved if o == "lb4"),
                    "flows_moved_between_lb1_to_lb3": sum(1 for o in moved if o != "lb4")}

        return _with_streams(lab, args.survival_connections, event)


# ----------------------------------------------------------------------------- main
def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("wrk", "nft", "/usr/lib/frr/bgpd", "/usr/lib/frr/zebra"):
        if shutil.which(tool) is None and not os.access(tool, os.X_OK):
            raise BenchError(f"{tool} not found")
    workdir = Path(tempfile.mkdtemp(prefix="bench-ecmp-"))
    try:
        out: dict[str, Any] = {"bench": "ecmp", "settings": {
            "runs": args.runs, "duration_s": args.duration, "wrk_connections": args.connections,
            "wrk_threads": args.threads, "styles": args.styles, "survival_connections": args.survival_connections},
            "throughput": throughput(args, workdir)}
        if not args.no_survival:
            print("survival: crash, hold time", file=sys.stderr, flush=True)
            out["crash_hold_time"] = crash(args, workdir, bfd=False)
            print("survival: crash, BFD", file=sys.stderr, flush=True)
            out["crash_bfd"] = crash(args, workdir, bfd=True)
            print("survival: a fourth balancer", file=sys.stderr, flush=True)
            out["add_balancer"] = add_fourth(args, workdir)
        out["machine"] = machine()
        return out
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of every mode and style (default 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run (default 4)")
    parser.add_argument("--connections", type=int, default=60, help="wrk connections (default 60)")
    parser.add_argument("--threads", type=int, default=3, help="wrk threads (default 3: one per real server)")
    parser.add_argument("--styles", default="keepalive,new_conn", help="keepalive,new_conn (default both)")
    parser.add_argument("--survival-connections", type=int, default=200, help="long-lived connections (200)")
    parser.add_argument("--no-survival", action="store_true", help="throughput only")
    parser.add_argument("--speaker", choices=["pykeepalived", "frr"], default=None,
                        help="who announces the VIP (default: pykeepalived where this tree has it)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/ecmp.py: needs root (network namespaces)", file=sys.stderr)
        return 1
    try:
        print(json.dumps(run_bench(args), indent=1))
    except (BenchError, LabError) as exc:
        print(f"bench/ecmp.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
