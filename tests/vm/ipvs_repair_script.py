"""Run inside the qemu guest by test_ipvs_repair.py: IPVS services of ours deleted by someone else come back.

Prints one JSON document: `ipvsadm -Sn` after the first apply, and what
`repair_now()` answered and left after `ipvsadm -D` of one service, after
`ipvsadm -C`, and when nothing is missing; and that a later change still
applies as a diff.
"""

from __future__ import annotations

import json
import subprocess

from pykeepalived.lvs.ipvs import IpvsBackend
from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService


def saved() -> list[str]:
    out = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line.strip())


def ipvsadm(*args: str) -> None:
    subprocess.run(["ipvsadm", *args], check=True)


WEB = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=(
    Destination("10.11.12.1", 80, 1), Destination("10.11.12.2", 80, 2)))
FWMARK = VirtualService("fw", "fwmark", fwmark=80, scheduler="wlc", persistence_timeout_s=30, family=4,
                        destinations=(Destination("10.11.12.1", None, 1, method="DR"),))
WEB_LATER = VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", destinations=(
    Destination("10.11.12.1", 80, 1), Destination("10.11.12.3", 80, 1)))


def main() -> None:
    out: dict[str, object] = {}
    backend = IpvsBackend()
    backend.apply_now(DesiredTable((WEB, FWMARK)))
    out["first"] = saved()
    out["nothing"] = backend.repair_now()
    ipvsadm("-D", "-t", "203.0.113.10:80")
    out["deleted_one"] = backend.repair_now()
    out["after_one"] = saved()
    ipvsadm("-C")
    out["cleared"] = backend.repair_now()
    out["after_clear"] = saved()
    out["nothing_again"] = backend.repair_now()
    ipvsadm("-C")  # and the next change comes before repair() looks: it adds what it lacks
    backend.repair_now()
    backend.apply_now(DesiredTable((WEB_LATER, FWMARK)))
    out["later"] = saved()
    backend.close_now()
    out["closed"] = saved()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
