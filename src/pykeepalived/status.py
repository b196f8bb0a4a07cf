"""`pykeepalived status`: the running checker's table, laid out like `ipvsadm -Ln`, or as JSON.

It reads the status file the checker rewrites after every change (and on
SIGUSR1), so it needs no connection to the daemon and works from any shell in
the router's namespace. It asks a running checker for fresh connection counters
(SIGUSR1) first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from .daemon.run import DEFAULT_STATUS_FILE

METHODS = {"NAT": "Masq", "DR": "Route", "TUN": "Tunnel"}


def _endpoint(address: str | None, port: int | None) -> str:
    if address is None:
        return "?"
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{port if port is not None else 0}"


def _service_line(svc: dict[str, Any]) -> str:
    if svc["kind"] == "fwmark":
        head = f"FWM  {svc['fwmark']}"
    elif svc["kind"] == "group":
        head = f"GRP  {svc['group']}:{svc['port'] or 0}"
    else:
        head = f"{(svc['protocol'] or 'TCP'):<4} {_endpoint(svc['address'], svc['port'])}"
    flags = [svc["scheduler"]]
    if svc.get("sched_flags"):
        flags.append("(" + ",".join(svc["sched_flags"]) + ")")
    if svc.get("persistence_timeout_s"):
        flags.append(f"persistent {svc['persistence_timeout_s']}")
    if not svc.get("quorum_up", True):
        flags.append("[quorum down]")
    return f"{head} {' '.join(flags)}"


def _liveness(status: dict[str, Any]) -> str:
    pid, written = status.get("pid"), status.get("time")
    age = f", written {max(0.0, time.time() - written):.0f} s ago" if isinstance(written, int | float) else ""
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"{age} - NOT RUNNING (this is its last table)"
        except PermissionError:
            pass
    return age


def render(status: dict[str, Any]) -> str:
    lines = [
        f"pykeepalived checker pid {status.get('pid')}, data plane: {status.get('dataplane')}{_liveness(status)}"
        + ("" if status.get("applied", True) else " (last change NOT applied)"),
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn State",
    ]
    if status.get("dataplane_error"):
        lines.insert(1, f"DATA PLANE FAILING: {status['dataplane_error']}")
    counts = status.get("counts", {})
    for svc in status.get("table", {}).get("services", []):
        lines.append(_service_line(svc))
        for d in svc.get("destinations", []):
            state = "sorry" if d.get("sorry") else ("up" if d.get("alive") else "inhibited")
            active, inactive = counts.get(svc["name"], {}).get(
                f"[{d['address']}]:{d['port'] if d['port'] is not None else 0}", (0, 0))
            lines.append(f"  -> {_endpoint(d['address'], d['port']):<28} {METHODS.get(d['method'], d['method']):<7} "
                         f"{d['weight']:<6} {active:<10} {inactive:<9} {state}")
    down = [(s["name"], rs) for s in status.get("services", []) for rs in s["real_servers"] if not rs["alive"]]
    if down:
        lines.append("Failed real servers:")
        for vs_name, rs in down:
            reasons = "; ".join(f"{c['kind']}: {c['last_reason'] or c['verdict']}" for c in rs["checkers"]
                                if c["verdict"] == "down")
            lines.append(f"  {rs['name']} of {vs_name}: {reasons}")
    return "\n".join(lines)


def _ask_fresh(path: str, timeout_s: float = 1.5) -> None:
    """Ask a running checker (SIGUSR1) for a status file with fresh counters, and wait a little for it."""
    try:
        with open(path) as f:
            before = json.load(f)
        pid = before.get("pid")
        if not isinstance(pid, int):
            return
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError, AttributeError):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with open(path) as f:
                if json.load(f).get("time") != before.get("time"):
                    return
        except (OSError, ValueError, AttributeError):
            continue


def status_main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="pykeepalived status", description="Show the running checker's table.")
    p.add_argument("--status-file", default=DEFAULT_STATUS_FILE, metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the whole status as JSON")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    _ask_fresh(args.status_file)
    try:
        with open(args.status_file) as f:
            status = json.load(f)
    except FileNotFoundError:
        print(f"pykeepalived status: {args.status_file} not found: is the checker (pykeepalived -C) running?",
              file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"pykeepalived status: cannot read {args.status_file}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    try:
        if not isinstance(status, dict):
            raise TypeError("not a JSON object")
        print(render(status))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        print(f"pykeepalived status: {args.status_file} is not a checker status file ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return 1
    return 0
