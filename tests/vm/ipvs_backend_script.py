"""Run inside the qemu guest by test_ipvs_backend.py: the IPVS backend through a sequence of tables.

Prints one JSON document: `ipvsadm -Sn` after each step, the commands each
step cost, the counts, and what a second backend adopting the table did.
"""

from __future__ import annotations

import json
import subprocess

from pykeepalived.lvs.ipvs import IpvsBackend, IpvsOptions, kernel_has_ipvs
from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, GroupEntry, VirtualService


def saved() -> list[str]:
    out = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line.strip())


WEB = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=(
    Destination("10.11.12.1", 80, 1), Destination("10.11.12.2", 80, 2)))
FWMARK = VirtualService("fw", "fwmark", fwmark=80, scheduler="wlc", persistence_timeout_s=30, family=4,
                        persistence_granularity="255.255.255.0", destinations=(
                            Destination("10.11.12.1", None, 1, method="DR"),
                            Destination("10.11.12.3", None, 1, method="DR")))
V6 = VirtualService("v6", "address", "2001:db8::10", 443, "TCP", scheduler="sh", sched_flags=("sh-port",),
                    persistence_timeout_s=60, persistence_granularity="64", destinations=(
                        Destination("2001:db8:1::1", 443, 1, uthreshold=100, lthreshold=10),))
TUN = VirtualService("tun", "address", "203.0.113.12", 53, "UDP", scheduler="mh", sched_flags=("ops",), destinations=(
    Destination("10.11.12.5", 53, 1, method="TUN", tunnel={"type": "gue", "port": 6080, "checksum": "csum"}),))
GROUP = VirtualService("grp", "group", group="G", scheduler="lc", protocol="TCP", group_entries=(
    GroupEntry("range", "203.0.113.20", "203.0.113.21", port=25), GroupEntry("fwmark", fwmark=7)),
    destinations=(Destination("10.11.12.1", 25, 1),))
WEB_LATER = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="wlc", destinations=(
    Destination("10.11.12.2", 80, 0, alive=False), Destination("10.11.12.3", 80, 5)))
BROKEN = VirtualService("bad", "address", "203.0.113.13", 80, "TCP", scheduler="no-such-scheduler",
                        destinations=(Destination("10.11.12.1", 80, 1),))


def main() -> None:
    out: dict[str, object] = {"has_ipvs": kernel_has_ipvs()}
    backend = IpvsBackend()
    backend.apply_now(DesiredTable((WEB, FWMARK, V6, TUN, GROUP)))
    out["first"], out["first_commands"] = saved(), backend.commands
    backend.apply_now(DesiredTable((WEB_LATER, FWMARK, V6)))
    out["second"], out["second_commands"] = saved(), backend.commands - out["first_commands"]  # type: ignore[operator]
    out["counts"] = backend.counts_now()
    # someone else adds a service with our key between two applies: ours edits it instead of failing
    subprocess.run(["ipvsadm", "-A", "-u", "203.0.113.12:53", "-s", "rr"], check=True)
    backend.apply_now(DesiredTable((WEB_LATER, FWMARK, V6, TUN)))
    out["raced"] = [line for line in saved() if "203.0.113.12" in line]
    backend.apply_now(DesiredTable((WEB_LATER, FWMARK, V6)))
    try:
        backend.apply_now(DesiredTable((WEB_LATER, FWMARK, V6, BROKEN)))
        out["broken"] = None
    except DataPlaneError as exc:
        out["broken"] = str(exc)
    out["after_broken"] = saved()
    restarted = IpvsBackend()  # a new daemon over what the old one left: it adopts and converges
    restarted.apply_now(DesiredTable((WEB, FWMARK)))
    out["adopted"] = saved()
    restarted.close_now()
    out["closed"] = saved()
    # global_defs' lvs_flush, lvs_timeouts and lvs_flush_on_stop
    timeouts = ["ipvsadm", "-L", "--timeout"]
    out["timeouts_before"] = subprocess.run(timeouts, capture_output=True, text=True, check=True).stdout.strip()
    flushing = IpvsBackend(IpvsOptions(flush_at_start=True, flush_on_stop="all", timeouts=(7200, None, 30)))
    flushing.apply_now(DesiredTable((WEB,)))
    out["flushed_at_start"] = saved()
    out["timeouts_set"] = subprocess.run(timeouts, capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["ipvsadm", "-A", "-t", "192.0.2.99:80", "-s", "rr"], check=True)  # a service of someone else
    flushing.close_now()
    out["flushed_at_stop"] = saved()
    out["timeouts_after"] = subprocess.run(timeouts, capture_output=True, text=True, check=True).stdout.strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
