"""Reloads as the network sees them: pykeepalived in the NAT lab under wrk, keepalived 2.2.7 in a VRRP-only lab.

The sequence (lab/reload_driver.py `reload_configs`, the one
tests/netns/test_reload_chaos.py runs): the master's config reloaded
`--unchanged` times as it is (20), then with a real server added (rs4), with
one removed (rs3), with the master's priority 150 -> 120 (still above the
backup's 100: nothing may move) and with that last config broken
(virtual_router_id 300). One reload every `--pace` seconds (1 s: each
reload's window holds one advert interval of its own).

pykeepalived: the guide's NAT lab (`LvsLab("nat")`, pykeepalived on both
routers, nftables data plane) with wrk in the client through the VIP,
keep-alive connections and new connections per request in parallel
(`--delay-ms` between a connection's requests, so the load leaves the daemons
room on two cores). Reloads go through `pykeepalived reload -p PIDFILE` where
the build has it, else SIGHUP and the children's log lines.

keepalived 2.2.7: this kernel has no IPVS, so keepalived's checker cannot
program its virtual servers here; what is measured is its VRRP reload, in a
lab of the same shape (public and private LANs, the same two routers' configs
from `render_router_conf`, virtual_server blocks included and parsed) with
`keepalived --vrrp`, and no traffic through the VIP (null in the JSON).

For both, per reload and summed: whether it was accepted, its latency (signal
to the "reload finished" line: our parent's "Reload N finished" where it logs
one, else both children's "VRRP/checker reload finished"; keepalived's
"Reload complete"; seen by polling the log every 5 ms; the broken config's
through the command is the command's wall time), the master's adverts heard on the public LAN within 1 s of it (1 is
the advert timer untouched, 2 an extra advert), gratuitous ARPs for the VIPs
on both LANs until the next reload, VIP moves (the holder sampled every
0.1 s), state changes logged by either router, the master's advertised
priority after it; ours also the nftables table right after the reload and
the status file's lag. Prints one JSON document; about 2 minutes.

`--ipvs` (a kernel with IPVS: the qemu guest of tests/vm, with `--time-scale
5`) puts pykeepalived's lab on `--dataplane ipvs` and runs keepalived with its
checker, real servers and wrk as ours, the table read with `ipvsadm -Ln`.

    PYTHONPATH=$PWD/src .venv/bin/python bench/reload.py [--unchanged 20] [--pace 1.0] [--delay-ms 1]
        [--keepalive-connections 8] [--new-connections 4] [--only pykeepalived|keepalived] [--logs DIR]
        [--ipvs] [--time-scale 1]
"""

from __future__ import annotations

import argparse
import datetime
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
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from pykeepalived.lab import LabError, Lan, Netns, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import (
    CLIENT_HOST,
    PRIVATE_NET,
    PRIVATE_NET6,
    PRIVATE_VIP,
    PUBLIC_NET,
    PUBLIC_NET6,
    ROUTER_SPECS,
    VIP,
    FWMARK_VIP,
    LabKind,
    LvsLab,
    render_router_conf,
)
from pykeepalived.lab.reload_driver import (
    SPARE_HOST,
    LogCursor,
    ReloadOutcome,
    ReloadStep,
    VipWatch,
    WireTap,
    WrkLoad,
    add_spare_real_server,
    advert_rhythm,
    break_conf,
    has_reload_command,
    names_file_line,
    nft_real_servers,
    reload_configs,
    reload_keepalived,
    reload_pykeepalived,
    state_entries,
    status_real_servers,
    wait_table,
)
from pykeepalived.lab.servers import NginxServer, self_signed, stop_servers

SERVICES = ("[203.0.113.10]:tcp:80", "FWM 80")
CHAINS = ("vs-_203.0.113.10__tcp_80", "vs-FWM_80")
GARP_SETTLE_S = 6.0  # the new master's second GARP burst (garp_master_delay 5 s) passes before the first reload
VIPS = [str(v) for v in (VIP, FWMARK_VIP, PRIVATE_VIP)]
MASTER = ROUTER_SPECS[0]
MASTER_PUBLIC = "203.0.113.2"
BASE = [IPv4Address(f"10.11.12.{n}") for n in (1, 2, 3)]
SPARE = IPv4Address(f"10.11.12.{SPARE_HOST}")


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


class Observers:
    """Taps on both LANs and the VIP watch, started together and stopped together."""

    def __init__(self, public: Any, private: Any, routers: dict[str, Netns]) -> None:
        self.taps = [WireTap(public), WireTap(private)]
        self.public_tap = self.taps[0]
        self.watch = VipWatch(routers, VIP)
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()
        for tap in self.taps:
            tap.stop()

    def garps(self, since: float, until: float) -> int:
        return sum(len(t.garps(since, until, VIPS)) for t in self.taps)


class PhasedLoad:
    """wrk through the VIP in two phases: the accepted reloads, then the broken config and what follows it.

    A failure then says which part of the sequence caused it: wrk only
    reports totals.
    """

    def __init__(self, client: Netns, workdir: Path, args: argparse.Namespace) -> None:
        self.client, self.workdir, self.args = client, workdir, args
        self.current: tuple[str, WrkLoad] | None = None
        self.results: dict[str, dict[str, Any]] = {}

    def start(self, phase: str) -> None:
        args = self.args
        wrk = WrkLoad(self.client, f"http://{VIP}/", self.workdir / phase, delay_ms=args.delay_ms,
                      keepalive_connections=args.keepalive_connections, new_conn_connections=args.new_connections)
        self.current = (phase, wrk)
        wrk.start()

    def stop(self) -> None:
        if self.current is not None:
            phase, wrk = self.current
            self.current = None
            load = wrk.stop()
            self.results[phase] = {"seconds": round(wrk.seconds, 1), **load,
                                   "failed": sum(r["failed"] for r in load.values())}

    def switch(self, phase: str) -> None:
        self.stop()
        self.start(phase)

    def kill(self) -> None:
        if self.current is not None:
            self.current[1].kill()

    def summary(self) -> dict[str, Any]:
        return {"wrk": self.results,
                "requests": sum(r[s]["requests"] for r in self.results.values() for s in ("keepalive", "new_conn")
                                if s in r),
                "failed_requests": {phase: r["failed"] for phase, r in self.results.items()}}


def run_sequence(steps: list[ReloadStep], conf_path: Path, reload: Callable[[ReloadStep], ReloadOutcome],
                 obs: Observers, pace_s: float, table: Callable[[ReloadStep], dict[str, Any]] | None,
                 tail_s: float = 1.5, load: PhasedLoad | None = None) -> dict[str, Any]:
    """Write each step's config, reload, look; the per-reload records and the phase times."""
    records: list[dict[str, Any]] = []
    marks: list[float] = []
    for step in steps:
        if step.broken and load is not None:
            load.switch("broken_config")
        conf_path.write_text(step.conf)
        started = time.monotonic()
        outcome = reload(step)
        done = time.monotonic()
        marks.append(started)
        record: dict[str, Any] = {"step": step.name, "expected_ok": step.expect_ok, "ok": outcome.ok,
                                  "via": outcome.via, "latency_s": round(outcome.seconds, 4)}
        if outcome.exit_code is not None:
            record["exit_code"] = outcome.exit_code
        if step.broken:
            said = outcome.output + outcome.log
            record["names_file_line"] = names_file_line(said, conf_path)
            record["said"] = said.strip()[-600:]
        if table is not None:
            record.update(table(step))
        records.append(record)
        time.sleep(max(0.2, pace_s - (done - started)))
    end = time.monotonic() + tail_s
    time.sleep(tail_s)  # the last reload's window, and a takeover it may cause
    if load is not None:
        load.stop()
    for i, record in enumerate(records):
        start = marks[i]
        until = marks[i + 1] if i + 1 < len(marks) else end
        heard = obs.public_tap.adverts(MASTER_PUBLIC, start, until)
        record["master_adverts_within_1s"] = len([e for e in heard if e.at < start + 1.0])
        record["master_priority_after"] = heard[-1].priority if heard else None
        record["garps"] = obs.garps(start, until)
    return {"records": records, "start": marks[0], "end": end, "unchanged_end": marks[len(marks) - 4],
            "marks": {s.name: round(m - marks[0], 2) for s, m in zip(steps, marks) if not s.name.startswith("unch")}}


def summarize(run: dict[str, Any], obs: Observers, logs: dict[str, str]) -> dict[str, Any]:
    records = run["records"]
    unchanged = [r for r in records if r["step"].startswith("unchanged")]
    adverts = [e.at for e in obs.public_tap.adverts(MASTER_PUBLIC, run["start"], run["end"])]
    unchanged_adverts = [a for a in adverts if a < run["unchanged_end"]]
    accepted = [r["latency_s"] for r in records if r["ok"]]
    return {
        "reloads": len(records),
        "change_steps_at_s": run["marks"],
        "as_expected": sum(1 for r in records if r["ok"] == r["expected_ok"]),
        "latency_s": {"unchanged_median": _median([r["latency_s"] for r in unchanged]),
                      "unchanged_max": max((r["latency_s"] for r in unchanged), default=None),
                      "accepted_median": _median(accepted),
                      **{r["step"]: r["latency_s"] for r in records if not r["step"].startswith("unchanged")}},
        "vip_moves": obs.watch.moves,
        "vip_holders_timeline": [(round(at - run["start"], 2), ",".join(h) or "-") for at, h in obs.watch.changes],
        "state_changes_logged": {name: len(state_entries(text)) for name, text in logs.items()},
        "backup_entered_master": sum(1 for _, s in state_entries(logs.get("router2", "")) if s == "MASTER"),
        "master_adverts_unchanged_phase": advert_rhythm(unchanged_adverts),
        "master_adverts_whole_sequence": advert_rhythm(adverts),
        "reloads_with_an_extra_advert": sum(1 for r in records if r["master_adverts_within_1s"] > 1),
        "garps_unchanged_phase": sum(r["garps"] for r in unchanged),
        "garps_whole_sequence": sum(r["garps"] for r in records),
    }


# ----------------------------------------------------------------------------- pykeepalived
def bench_pykeepalived(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    lab = LvsLab("nat", prefix=unique_prefix("brl"), name="bench-reload", workdir=workdir / "lab",
                 dataplane="ipvs" if args.ipvs else "nftables", timeout_scale=args.time_scale)
    spare = None
    wrk: PhasedLoad | None = None
    obs: Observers | None = None
    try:
        print("pykeepalived: bringing the NAT lab up", file=sys.stderr, flush=True)
        lab.up()
        spare = add_spare_real_server(lab)
        master, backup = lab.router("router1"), lab.router("router2")
        use_command = has_reload_command()
        cursors = {"router1": LogCursor(master.log_path), "router2": LogCursor(backup.log_path)}
        obs = Observers(lab.client, lab.real_servers[0].host, {"router1": master.netns, "router2": backup.netns})
        wrk = PhasedLoad(lab.client.netns, workdir / "wrk", args)
        wrk.start("accepted_reloads")
        time.sleep(GARP_SETTLE_S)

        def reload(step: ReloadStep) -> ReloadOutcome:
            # SIGHUP, as keepalived gets it: the latency is signal -> both children's "reload finished";
            # the broken config through the command where there is one, for its exit status and message
            return reload_pykeepalived(master.netns, master.pid_files[0], master.log_path, step.name,
                                       use_command=use_command and step.broken, parent_reports=use_command,
                                       conf_path=master.conf_path)

        def table(step: ReloadStep) -> dict[str, Any]:
            want = set(step.real_servers)
            if args.ipvs:
                ipvs = ipvs_real_servers(master.netns)
                right = all(ipvs.get(n) == want for n in SERVICES)
            else:
                nft = nft_real_servers(master.netns)
                right = all(nft.get(c) == want for c in CHAINS)
            lag, _ = wait_table(lambda: status_real_servers(master.checker_status()),
                                {name: want for name in SERVICES}, 3.0 * args.time_scale)
            return {"table_right_after_ok": right, "status_lag_s": lag}

        print("pykeepalived: reloading", file=sys.stderr, flush=True)
        run = run_sequence(reload_configs(BASE, SPARE, unchanged=args.unchanged), master.conf_path, reload, obs,
                           args.pace, table, load=wrk)
        obs.stop()
        logs = {name: c.since() for name, c in cursors.items()}
        summary = summarize(run, obs, logs)
        summary["tables_right_after_ok"] = sum(1 for r in run["records"] if r["table_right_after_ok"])
        summary.update(wrk.summary())
        return {"lab": f"NAT (LvsLab), {'IPVS' if args.ipvs else 'nftables'} data plane, wrk through the VIP",
                "reload_via": "SIGHUP to the parent" + (", the broken config by pykeepalived reload -p PIDFILE"
                                                        if use_command else " (no pykeepalived reload here)"),
                "summary": summary, "reloads": run["records"], "_logs": logs}
    finally:
        if wrk is not None:
            wrk.kill()
        if obs is not None:
            obs.stop()
        if args.logs:
            for router in lab.routers.values():
                shutil.copy(router.log_path, Path(args.logs) / f"pykeepalived-{router.name}.log")
        if spare is not None:
            stop_servers([spare])
        lab.close()


# ----------------------------------------------------------------------------- keepalived
class KeepalivedRouter:
    """keepalived --vrrp on one lab router, on a config file of ours (render_router_conf)."""

    def __init__(self, ns: Netns, name: str, workdir: Path, *, vrrp_only: bool = True) -> None:
        self.ns, self.name, self.vrrp_only = ns, name, vrrp_only
        self.conf = workdir / f"{name}.conf"
        self.pid = workdir / f"{name}.pid"
        self.vrrp_pid = workdir / f"{name}_vrrp.pid"
        self.checkers_pid = workdir / f"{name}_checkers.pid"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            mode = ["--vrrp"] if self.vrrp_only else ["-c", str(self.checkers_pid)]
            self.proc = self.ns.popen(["keepalived", "-n", "-l", "-D", "-G", "-f", str(self.conf), *mode,
                                       "-p", str(self.pid), "-r", str(self.vrrp_pid)], stdout=log,
                                      env=dict(os.environ, TMPDIR=str(self.conf.parent)))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(8)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def ipvs_real_servers(ns: Netns) -> dict[str, set[IPv4Address]]:
    """Service (named as our status names it) -> its real servers in the namespace's IPVS table (`ipvsadm -Ln`)."""
    table: dict[str, set[IPv4Address]] = {}
    current: set[IPv4Address] | None = None
    for line in ns.run(["ipvsadm", "-Ln"]).stdout.splitlines():
        head = re.match(r"^(TCP|UDP|FWM)\s+(\S+)", line)
        if head:
            address, _, port = head[2].rpartition(":")
            name = f"FWM {head[2]}" if head[1] == "FWM" else f"[{address}]:{head[1].lower()}:{port}"
            current = table.setdefault(name, set())
        elif current is not None and (dest := re.match(r"^\s+->\s+([\d.]+):\d+", line)):
            current.add(IPv4Address(dest[1]))
    return table


def start_real_servers(private: Lan, workdir: Path) -> list[NginxServer]:
    """rs1..rs4 on the private LAN (nginx on 80 and 443, default route via the private VIP), as LvsLab's."""
    cert, key = self_signed(workdir / "tls", "lab", "reload.lab.example")
    servers = []
    for number in (*[int(str(a).rsplit(".", 1)[1]) for a in BASE], SPARE_HOST):
        host = private.hosts.get(f"rs{number}") or private.add_host(f"rs{number}", number)
        host.netns.ip("route", "replace", "default", "via", str(PRIVATE_VIP))
        nginx = NginxServer(host, workdir / host.name, addresses=["0.0.0.0"], ports=[80], tls_ports=[443],
                            cert=cert, key=key, name=host.name)
        nginx.start()
        servers.append(nginx)
    return servers


def bench_keepalived(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    prefix = unique_prefix("brk")
    public = private = None
    routers: dict[str, KeepalivedRouter] = {}
    obs: Observers | None = None
    wrk: PhasedLoad | None = None
    servers: list[NginxServer] = []
    try:
        print("keepalived: bringing the VRRP-only lab up", file=sys.stderr, flush=True)
        workdir.mkdir(parents=True, exist_ok=True)
        public = Lan(prefix, ipv4_net=PUBLIC_NET, ipv6_net=PUBLIC_NET6)
        private = Lan(f"{prefix}-priv", ipv4_net=PRIVATE_NET, ipv6_net=PRIVATE_NET6)
        client = public.add_host("c", CLIENT_HOST)
        observer = private.add_host("rs1", 1)
        for spec in ROUTER_SPECS:
            eth0 = public.add_host(spec.name, spec.public_host)
            private.attach(eth0, "eth1", spec.private_host)
            router = routers[spec.name] = KeepalivedRouter(eth0.netns, spec.name, workdir, vrrp_only=not args.ipvs)
            router.conf.write_text(render_router_conf(LabKind.NAT, spec, BASE))
            if args.ipvs:
                eth0.netns.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", *[
                    f"net.ipv4.conf.{i}.rp_filter=0" for i in ("all", "default", "eth0", "eth1")]])
        if args.ipvs:
            servers = start_real_servers(private, workdir)
        for router in routers.values():  # the MASTER first, as LvsLab does
            router.start()
            log_of = router.log
            wait_until(lambda: len(state_entries(log_of())) >= 2, 15.0,
                       what=f"keepalived on {router.name} entering a state")
        master = routers[MASTER.name]
        wait_until(lambda: IPv4Address(str(VIP)) in {IPv4Address(a["local"]) for link in
                                                      master.ns.ip_json("-4", "addr", "show")
                                                      for a in link.get("addr_info", [])}, 15.0,
                   what="keepalived's master holding the VIP")
        table: Callable[[ReloadStep], dict[str, Any]] | None = None
        if args.ipvs:
            wait_until(lambda: ipvs_real_servers(master.ns).get(SERVICES[0]) == set(BASE), 30.0,
                       what="keepalived's IPVS table with rs1..rs3")

            def table(step: ReloadStep) -> dict[str, Any]:
                want = set(step.real_servers)
                now = ipvs_real_servers(master.ns)
                lag, _ = wait_table(lambda: ipvs_real_servers(master.ns), {name: want for name in SERVICES}, 3.0)
                return {"table_right_after_ok": all(now.get(n) == want for n in SERVICES), "table_lag_s": lag}

        cursors = {name: LogCursor(r.log_path) for name, r in routers.items()}
        obs = Observers(client, observer, {name: r.ns for name, r in routers.items()})
        if args.ipvs:
            wrk = PhasedLoad(client.netns, workdir / "wrk", args)
            wrk.start("accepted_reloads")
        time.sleep(GARP_SETTLE_S)

        def reload(step: ReloadStep) -> ReloadOutcome:
            return reload_keepalived(master.pid, master.log_path, step.name)

        print("keepalived: reloading", file=sys.stderr, flush=True)
        steps = reload_configs(BASE, SPARE, unchanged=args.unchanged)
        # tail 5 s: a broken config that stopped the master shows as the backup's takeover within 3.6 s
        run = run_sequence(steps, master.conf, reload, obs, args.pace, table, tail_s=5.0, load=wrk)
        obs.stop()
        logs = {name: c.since() for name, c in cursors.items()}
        summary = summarize(run, obs, logs)
        if wrk is not None:
            summary["tables_right_after_ok"] = sum(1 for r in run["records"] if r["table_right_after_ok"])
            summary.update(wrk.summary())
        else:
            summary["requests"] = summary["failed_requests"] = None
            summary["wrk"] = "not run: no IPVS on this kernel, keepalived's virtual servers cannot forward here"
        summary["master_keepalived_running_at_end"] = master.proc is not None and master.proc.poll() is None
        lab = ("NAT, keepalived with its checker on IPVS, wrk through the VIP" if args.ipvs else
               "VRRP only (same two routers' configs, keepalived --vrrp), no traffic through the VIP")
        return {"lab": lab,
                "version": subprocess.run(["keepalived", "--version"], capture_output=True, text=True,
                                          check=False).stderr.splitlines()[0],
                "reload_via": "SIGHUP to the parent",
                "broken_line": break_conf(steps[-2].conf)[1],
                "summary": summary, "reloads": run["records"], "_logs": logs}
    finally:
        if wrk is not None:
            wrk.kill()
        if obs is not None:
            obs.stop()
        for router in routers.values():
            router.stop()
            if args.logs and router.log_path.exists():
                shutil.copy(router.log_path, Path(args.logs) / f"keepalived-{router.name}.log")
        stop_servers(servers)
        for lan in (private, public):
            if lan is not None:
                lan.close()


# ----------------------------------------------------------------------------- main
def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "load_average_1min": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--unchanged", type=int, default=20, help="reloads of the unchanged config (default 20)")
    parser.add_argument("--pace", type=float, default=1.0, help="seconds from one reload to the next (default 1)")
    parser.add_argument("--delay-ms", type=int, default=1, help="wrk: ms between a connection's requests (default 1)")
    parser.add_argument("--keepalive-connections", type=int, default=8, help="wrk keep-alive connections (8)")
    parser.add_argument("--new-connections", type=int, default=4, help="wrk connection-per-request connections (4)")
    parser.add_argument("--only", choices=("pykeepalived", "keepalived"), help="measure one implementation")
    parser.add_argument("--logs", metavar="DIR", help="keep every daemon's log there")
    parser.add_argument("--ipvs", action="store_true",
                        help="IPVS for both: pykeepalived's lab on --dataplane ipvs, keepalived with its checker, "
                             "real servers and wrk (a kernel with IPVS: the qemu guest of tests/vm)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="stretch the lab's waits (5 in the qemu guest, whose Python is slow)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/reload.py needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("wrk", "nft", "keepalived"):
        if shutil.which(tool) is None and not (tool == "keepalived" and args.only == "pykeepalived") \
                and not (tool == "wrk" and args.only == "keepalived"):
            print(f"bench/reload.py: {tool} is not installed (bootstrap.sh installs it)", file=sys.stderr)
            return 1
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill as on Ctrl-C
    started = time.monotonic()
    out: dict[str, Any] = {
        "benchmark": "reload",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "settings": {"unchanged_reloads": args.unchanged, "pace_s": args.pace, "advert_int_s": 1,
                     "priorities": {"router1": MASTER.priority, "router2": ROUTER_SPECS[1].priority},
                     "changed_priority": 120, "real_servers": [str(a) for a in BASE], "added": str(SPARE),
                     "removed": str(BASE[-1]), "broken": "virtual_router_id 300",
                     "wrk": {"keepalive_connections": args.keepalive_connections,
                             "new_conn_connections": args.new_connections, "delay_ms": args.delay_ms}},
    }
    workdir = Path(tempfile.mkdtemp(prefix="pkbench-reload-"))
    try:
        for name, bench in (("pykeepalived", bench_pykeepalived), ("keepalived", bench_keepalived)):
            if args.only in (None, name):
                result = bench(args, workdir / name)
                result.pop("_logs", None)
                out[name] = result
    except LabError as exc:
        print(f"bench/reload.py: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["elapsed_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
