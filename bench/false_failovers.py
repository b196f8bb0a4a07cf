"""Spurious VRRP transitions under CPU and memory pressure, pykeepalived beside keepalived 2.2.7.

keepalived issues #2066 and #2238: a starved VRRP process misses adverts and
the backup takes over from a live master. Per configuration (VRRPv3 with
adverts every 50 ms; VRRPv2 every 1 s), a pykeepalived pair and a keepalived
pair run side by side (src/pykeepalived/lab/stress.py): every router process
and a stress-ng load in each router's namespace share one cgroup with a CPU
quota, and once both pairs have settled, every state change either router
logs, and every burst of adverts from the backup, is a spurious transition.
The observer also reports each master's longest silence on the wire.

Both pairs get the same config (only what the configuration needs: no
realtime priority, no locked memory, keepalived's defaults), so each
implementation runs with its own defaults; `--extra-global` adds lines to
both configs' global_defs (e.g. "vrrp_rt_priority 50").

Run (root, keepalived and stress-ng installed; 10 minutes per configuration by default):
    cd /work/main && .venv/bin/python bench/false_failovers.py [--duration 600] [--profiles v3-50ms,v2-1s]
        [--cpu-workers 2] [--vm-workers 1] [--vm-bytes 128M] [--cpu-quota-us 100000] [--cpu-period-us 100000]
        [--only pykeepalived|keepalived] [--extra-global 'LINE'] [--logs DIR]
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pykeepalived.lab.stress import IMPLEMENTATIONS, PROFILES, Load, Pair, run_side_by_side


def _progress(pairs: list[Pair], elapsed: float) -> None:
    counts = ", ".join(f"{p.implementation}: {len(p.transition_lines())} transition lines" for p in pairs)
    print(f"  {elapsed:6.0f} s  {counts}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds under load per configuration")
    ap.add_argument("--profiles", default=",".join(PROFILES), help=f"comma-separated, of {', '.join(PROFILES)}")
    ap.add_argument("--cpu-workers", type=int, default=Load.cpu_workers, help="stress-ng --cpu per router")
    ap.add_argument("--vm-workers", type=int, default=Load.vm_workers, help="stress-ng --vm per router")
    ap.add_argument("--vm-bytes", default=Load.vm_bytes, help="stress-ng --vm-bytes")
    ap.add_argument("--cpu-quota-us", type=int, default=Load.cpu_quota_us, help="cgroup CPU quota; 0: no limit")
    ap.add_argument("--cpu-period-us", type=int, default=Load.cpu_period_us)
    ap.add_argument("--only", choices=IMPLEMENTATIONS)
    ap.add_argument("--extra-global", default="", help="lines added to both configs' global_defs")
    ap.add_argument("--logs", type=Path, help="keep the daemons' logs in this directory")
    args = ap.parse_args(argv)

    if os.geteuid() != 0:
        print("needs root (network namespaces, cgroups)", file=sys.stderr)
        return 2
    missing = [tool for tool in ("stress-ng", "keepalived") if shutil.which(tool) is None]
    if missing and not (missing == ["keepalived"] and args.only == "pykeepalived"):
        print(f"not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        profiles = [PROFILES[name] for name in args.profiles.split(",") if name]
    except KeyError as exc:
        print(f"unknown profile {exc}; known: {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    load = Load(cpu_workers=args.cpu_workers, vm_workers=args.vm_workers, vm_bytes=args.vm_bytes,
                cpu_quota_us=args.cpu_quota_us, cpu_period_us=args.cpu_period_us)
    impls = (args.only,) if args.only else IMPLEMENTATIONS
    extra = args.extra_global.replace("\\n", "\n")

    runs: list[dict[str, Any]] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="false-failovers-") as tmp:
        for profile in profiles:
            print(f"{profile.name}: {args.duration:g} s under load", file=sys.stderr, flush=True)
            result = run_side_by_side(profile, load, args.duration, Path(tmp), implementations=impls,
                                      extra_global=extra, progress=_progress)
            runs.append(result.as_dict())
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for name, text in result.logs.items():
                    (args.logs / f"{profile.name}-{name}.log").write_text(text)
    doc = {
        "bench": "false_failovers",
        "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count(),
                 "python": platform.python_version()},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "command": " ".join([os.path.basename(sys.argv[0]), *(argv if argv is not None else sys.argv[1:])]),
        "runs": runs,
        "summary": {run["profile"]: {impl: r["spurious_transitions"] for impl, r in run["results"].items()}
                    for run in runs},
    }
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
