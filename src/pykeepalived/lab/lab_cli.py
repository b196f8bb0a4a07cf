"""`pykeepalived lab up|down|status`: the guide's LVS lab, or issue 19's ECMP tier, on this machine, from a shell.

`up` builds the lab (lvs_lab.LvsLab, or ecmp_lab.EcmpLab for `up ecmp`),
leaves it running and prints how to use it; `down` and `status` work from the state file in the lab's directory,
so they may run in any later process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import ecmp_lab
from .ecmp_lab import EcmpLab, Speaker, destroy_tier, tier_status
from .lvs_lab import (
    DEFAULT_NAME,
    FWMARK,
    FWMARK_VIP,
    HTTP_PORT,
    HTTPS_PORT,
    PRIVATE_VIP,
    VIP,
    LabKind,
    LabRecord,
    LvsLab,
    default_dir,
    destroy,
    owned,
    router_holdings,
    state_path,
)
from .netns import LabError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
STATUS_TIMEOUT_S = 10.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pykeepalived lab",
                                description="The Red Hat guide's LVS topology, or an ECMP tier of balancers behind "
                                            "a BGP router, in network namespaces.")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and start pykeepalived on both routers")
    up.add_argument("kind", choices=[*(k.value for k in LabKind), ecmp_lab.KIND],
                    help="forwarding method (lb_kind) of the LVS lab, or ecmp: N active balancers announcing the VIP "
                         "over BGP to an upstream FRR router")
    up.add_argument("--balancers", type=int, default=3, metavar="N", help="ecmp: how many balancers (default 3)")
    up.add_argument("--bfd", action="store_true", help="ecmp: BFD between the upstream and each balancer")
    up.add_argument("--speaker", choices=[s.value for s in Speaker],
                    help="ecmp: who announces the VIP: pykeepalived's pykeepalived_bgp, or a bgpd the lab runs "
                         "beside it (default: pykeepalived where this tree has it)")
    down = sub.add_parser("down", help="stop everything and delete the lab's namespaces")
    status = sub.add_parser("status", help="which router is master, and its checker's table")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    for cmd in (up, down, status):
        cmd.add_argument("--name", default=DEFAULT_NAME, help=f"lab name (default {DEFAULT_NAME})")
        cmd.add_argument("--dir", type=Path, help="configs, logs and state file (default /run/pykeepalived/lab/NAME)")
    return p


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir is not None else default_dir(args.name)


def _lab_flags(args: argparse.Namespace) -> str:
    flags = f" --name {args.name}" if args.name != DEFAULT_NAME else ""
    return flags + (f" --dir {args.dir}" if args.dir is not None else "")


# ----------------------------------------------------------------------------------------------
# up


def _host_lines(record: LabRecord) -> list[str]:
    lines = []
    for role, entry in record.hosts.items():
        addrs = "  ".join(f"{k} {v}" for k, v in entry.items() if k != "namespace")
        lines.append(f"  {role:<8} {entry['namespace']:<26} {addrs}")
    return lines


def describe_up(lab: LvsLab, flags: str) -> str:
    """What `lab up` prints: hosts, addresses, VIPs and commands to copy."""
    record = LabRecord.load(lab.state_path)
    master = lab.routers["router1"]
    client_ns = lab.client.netns.name
    vips = "".join(f" {vip}/32" for vip in lab.vips)
    crash = "; ".join(f"ip -n {master.netns.name} addr del {vip}/32 dev {'eth1' if vip == PRIVATE_VIP else 'eth0'}"
                      for vip in lab.vips)
    lines = [
        f"LVS lab {lab.name!r} ({lab.kind.name}) is up; configs, logs and state in {lab.workdir}",
        "",
        "hosts (network namespaces):",
        *_host_lines(record),
        "",
        f"VIPs held by the master:{vips}",
        f"  virtual_server {VIP} {HTTP_PORT}: rr over rs1..rs3 port {HTTP_PORT} ({lab.kind.name})",
        f"  virtual_server fwmark {FWMARK}: {FWMARK_VIP} ports {HTTP_PORT} and {HTTPS_PORT}, persistence 30 s",
    ]
    if lab.kind is LabKind.NAT:
        lines.append(f"  real servers route via the private VIP {PRIVATE_VIP}")
    elif lab.gateway is not None:
        lines.append(f"  real servers hold {VIP} and {FWMARK_VIP} on {lab.rs_vip_device} and route via "
                     f"{lab.gateway.name} ({lab.gateway.netns.name})")
    lines += [f"note: {note}" for note in lab.notes]
    checker = master.checker_status()
    if checker.get("dataplane") == "none":
        lines.append("note: data plane 'none': the routers keep the table but forward nothing yet, so requests to "
                     "the VIPs do not reach the real servers")
    elif checker.get("applied") is False:
        lines.append(f"note: the {checker.get('dataplane')} data plane has not applied the table (yet); "
                     f"see {master.log_path}")
    lines += [
        "",
        "try:",
        f"  ip netns exec {client_ns} curl -s http://{VIP}/whoami",
        f"  ip netns exec {client_ns} curl -sk https://{FWMARK_VIP}/whoami",
        f"  ip netns exec {lab.real_servers[0].host.netns.name} curl -s http://127.0.0.1/whoami"
        "     # a real server directly",
        f"  pykeepalived lab status{flags}",
        f"  pykeepalived status --status-file {master.status_file}",
        f"  tail -f {master.log_path}",
        f"stop the master cleanly (router2 takes over at once):  kill -TERM {master.pid}",
        f"crash it (router2 takes over after ~3 s):  kill -KILL -- -{master.pid}; {crash}",
        f"take it all down:  pykeepalived lab down{flags}",
    ]
    return "\n".join(lines)


def describe_tier(lab: EcmpLab, flags: str) -> str:
    """What `lab up ecmp` prints: hosts, the upstream's paths, and commands to copy."""
    record = LabRecord.load(lab.state_path)
    client_ns, up_ns = lab.client.netns.name, lab.upstream.netns.name
    lb2 = lab.balancers.get("lb2") or next(iter(lab.balancers.values()))
    up_dir = lab.upstream_frr.dir if lab.upstream_frr is not None else lab.workdir / "upstream"
    vty = f"vtysh --vty_socket {up_dir} -d bgpd -c"
    speaker = ("pykeepalived's pykeepalived_bgp (announced while the service is healthy)"
               if lab.speaker is Speaker.PYKEEPALIVED else "a bgpd the lab runs beside pykeepalived (always announced)")
    lines = [
        f"ECMP lab {lab.name!r}: {len(lab.balancers)} balancers, AS {lab.plan.balancer_as}, announcing {lab.vip}/32 "
        f"to the upstream (AS {lab.plan.upstream_as}); configs, logs and state in {lab.workdir}",
        "",
        "hosts (network namespaces):",
        *_host_lines(record),
        "",
        f"upstream paths to {lab.vip}: {', '.join(lab.upstream_paths())} (ECMP, 5-tuple hash)",
        f"  virtual_server {lab.vip} {ecmp_lab.HTTP_PORT}: mh + mh-port, DR, stateless, over "
        f"{', '.join(str(rs) for rs in lab.plan.real_servers)}; the same table on every balancer",
        f"  speaker: {speaker}" + ("; BFD 100 ms x 3 to the upstream" if lab.bfd else ""),
        *[f"note: {note}" for note in lab.notes],
        "",
        "try:",
        f"  ip netns exec {client_ns} curl -s http://{lab.vip}/whoami",
        f"  for i in $(seq 30); do ip netns exec {client_ns} curl -s http://{lab.vip}/whoami; done | sort | uniq -c",
        f"  ip -n {up_ns} route show {lab.vip}                  # one nexthop per balancer",
        f"  {vty} 'show bgp summary'",
        f"  ip netns exec {lb2.netns.name} nft list table netdev ecmplab    # flows that reached {lb2.name}",
        f"  pykeepalived status --status-file {lb2.status_file}",
        f"  pykeepalived lab status{flags}                      # paths and SYNs per balancer",
        f"crash {lb2.name} (the upstream drops its path after the hold time, 2-3 s; BFD: ~0.35 s):",
        f"  ip -n {lb2.netns.name} link set eth0 down; kill -KILL -- -{lb2.pid}; "
        f"ip netns pids {lb2.netns.name} | xargs -r kill -KILL",
        f"take it all down:  pykeepalived lab down{flags}",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("pykeepalived lab up: needs root (network namespaces)", file=sys.stderr)
        return EXIT_ERROR
    if args.kind == ecmp_lab.KIND:
        tier = EcmpLab(balancers=args.balancers, bfd=args.bfd, speaker=args.speaker, name=args.name,
                       workdir=_dir(args))
        tier.up()
        print(describe_tier(tier, _lab_flags(args)))
        return EXIT_OK
    lab = LvsLab(args.kind, name=args.name, workdir=_dir(args))
    lab.up()
    print(describe_up(lab, _lab_flags(args)))
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# down


def cmd_down(args: argparse.Namespace) -> int:
    directory = _dir(args)
    try:
        kind = LabRecord.load(state_path(directory)).kind
    except FileNotFoundError:
        kind = ""
    record = destroy_tier(directory) if kind == ecmp_lab.KIND else destroy(directory)
    if record is None:
        print(f"pykeepalived lab: no lab {args.name!r} ({state_path(directory)} not found)", file=sys.stderr)
        return EXIT_ERROR
    print(f"lab {record.name!r} ({record.kind}) is down: {len(record.namespaces)} namespaces deleted; "
          f"logs stay in {directory}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# status


def _checker(status_file: str, as_json: bool) -> tuple[int, str]:
    """`pykeepalived status` for one router's checker, run as a user would."""
    argv = [sys.executable, "-m", "pykeepalived", "status", "--status-file", status_file, *(["--json"] * as_json)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=STATUS_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return 1, f"pykeepalived status timed out after {STATUS_TIMEOUT_S:g} s"
    return proc.returncode, (proc.stdout if proc.returncode == 0 else proc.stderr).rstrip()


def lab_status(record: LabRecord) -> dict[str, Any]:
    """The lab as `lab status --json` shows it: who holds the VIPs, what runs, the master's checker table."""
    holdings = router_holdings(record)
    masters = [name for name, held in holdings.items() if str(VIP) in held]
    routers: dict[str, Any] = {}
    for name, router in record.routers.items():
        proc = record.processes.get(name)
        running = proc is not None and owned(proc)
        routers[name] = {"namespace": router.namespace, "pykeepalived_running": running,
                         "pid": proc.pid if proc is not None and running else None, "holds": holdings[name],
                         "status_file": router.status_file, "log": router.log}
    checker: Any = None
    if len(masters) == 1:
        code, out = _checker(record.routers[masters[0]].status_file, as_json=True)
        checker = json.loads(out) if code == 0 else {"error": out}
    return {"name": record.name, "kind": record.kind, "phase": record.phase, "dir": record.dir,
            "master": masters[0] if len(masters) == 1 else None, "vip_holders": masters, "routers": routers,
            "hosts": record.hosts, "notes": record.notes, "master_checker": checker}


def render_status(record: LabRecord, status: dict[str, Any]) -> str:
    lines = [f"lab {record.name!r}: {record.kind.upper()}, {record.phase}, files in {record.dir}"]
    for name, r in status["routers"].items():
        running = f"pykeepalived pid {r['pid']}" if r["pykeepalived_running"] else "pykeepalived NOT running"
        lines.append(f"  {name:<8} {r['namespace']:<26} {running}; holds {', '.join(r['holds']) or 'no VIP'}")
    lines += [f"note: {note}" for note in record.notes]
    holders = status["vip_holders"]
    if len(holders) != 1:
        lines.append(f"{VIP} is held by {'both ' + ' and '.join(holders) if holders else 'no router'}")
        return "\n".join(lines)
    master = holders[0]
    _, out = _checker(record.routers[master].status_file, as_json=False)
    lines += ["", f"master: {master}; its checker (pykeepalived status --status-file "
                  f"{record.routers[master].status_file}):", out]
    return "\n".join(lines)


def render_tier_status(status: dict[str, Any]) -> str:
    lines = [f"lab {status['name']!r}: ECMP, {status['phase']}, files in {status['dir']}",
             f"upstream ({status['upstream_namespace']}) paths to {status['vip']}: "
             f"{', '.join(status['upstream_paths']) or 'none'}"]
    for name, b in status["balancers"].items():
        running = f"pykeepalived pid {b['pid']}" if b["pykeepalived_running"] else "pykeepalived NOT running"
        alive = b.get("real_servers_alive")
        announced = b.get("announced")
        speaker = "" if announced is None else f"; announces {', '.join(announced) or 'nothing'}"
        lines.append(f"  {name:<5} {b['address']:<16} {running}; real servers alive: "
                     f"{'?' if alive is None else alive}{speaker}; SYNs received: {b.get('syns', '?')}")
    lines += [f"note: {note}" for note in status["notes"]]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    path = state_path(_dir(args))
    try:
        record = LabRecord.load(path)
    except FileNotFoundError:
        print(f"pykeepalived lab: no lab {args.name!r} ({path} not found)", file=sys.stderr)
        return EXIT_ERROR
    if record.kind == ecmp_lab.KIND:
        tier = tier_status(record)
        print(json.dumps(tier, indent=1) if args.json else render_tier_status(tier))
        return EXIT_OK
    status = lab_status(record)
    print(json.dumps(status, indent=1) if args.json else render_status(record, status))
    return EXIT_OK


def lab_main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return commands[args.command](args)
    except LabError as exc:
        print(f"pykeepalived lab {args.command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
