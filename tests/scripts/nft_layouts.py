"""Every layout of virtual service the nftables backend builds, through five changes and a removal.

DR shapes run twice: on the copy path in table ip (no interface but lo), then from ingress (a veth pair).

Prints the failures as JSON, [] when the kernel accepted every transaction
(tests/netns/test_nft_layouts.py).
"""

import itertools
import json
import subprocess
from pykeepalived.lvs.model import DataPlaneError, DesiredTable, Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft import NftablesBackend
from pykeepalived.lvs.nft_rules import SCHEDULERS

def dests(v6, method, port, alive, weights=(1, 2, 3)):
    fmt = "2001:db8:1::{}" if v6 else "10.11.12.{}"
    return tuple(Destination(fmt.format(i), port, w, method=method, alive=i <= alive)
                 for i, w in zip((1, 2, 3), weights))

def shapes():
    for sched in SCHEDULERS:
        for persist in (None, 60):
            yield f"{sched}-nat-p{persist}", dict(scheduler=sched, persistence_timeout_s=persist), False, "NAT", 80
    for method in ("DR", "TUN"):
        for persist in (None, 60):
            yield f"{method}-p{persist}", dict(scheduler="wlc", persistence_timeout_s=persist), False, method, 80
    yield "nat-noport", dict(scheduler="rr"), False, "NAT", None
    yield "nat-gran", dict(scheduler="rr", persistence_timeout_s=30, persistence_granularity="255.255.255.0"), \
        False, "NAT", None
    yield "ftp", dict(port=21, scheduler="rr"), False, "NAT", 21
    yield "v6-ftp", dict(port=21, scheduler="rr"), True, "NAT", 21
    yield "v6-nat", dict(scheduler="wrr"), True, "NAT", 80
    yield "v6-nat-p", dict(scheduler="mh", persistence_timeout_s=60), True, "NAT", 8080
    yield "v6-dr", dict(scheduler="rr"), True, "DR", 80
    yield "v6-dr-gran", dict(scheduler="rr", persistence_timeout_s=30, persistence_granularity="64"), True, "DR", 80
    yield "fwmark", dict(kind="fwmark", address=None, port=None, protocol=None, fwmark=5, scheduler="wlc",
                         persistence_timeout_s=30), False, "NAT", None
    yield "group", dict(kind="group", address=None, port=None, group="G", scheduler="sh", group_entries=(
        GroupEntry("range", "203.0.113.20", "203.0.113.22", port=80), GroupEntry("fwmark", fwmark=7))), \
        False, "NAT", 80

def with_consistent_flows():
    """Every shape, then again in consistent mode those it changes: persistence and DR/TUN."""
    for name, fields, v6, method, port in shapes():
        yield name, fields, v6, method, port, False
        if fields.get("persistence_timeout_s") or method != "NAT":
            yield f"{name}-consistent", fields, v6, method, port, True

def from_ingress():
    """The DR shapes again once the namespace has an interface besides lo: nft_forward takes them from ingress."""
    subprocess.run(["ip", "link", "add", "pkl0", "type", "veth", "peer", "name", "pkl1"], check=True)
    for device in ("pkl0", "pkl1"):
        subprocess.run(["ip", "link", "set", device, "up"], check=True)
    for name, fields, v6, method, port, consistent in with_consistent_flows():
        if method == "DR":
            yield f"{name}-ingress", fields, v6, method, port, consistent

failures = []
for name, fields, v6, method, port, consistent in itertools.chain(with_consistent_flows(), from_ingress()):
    base = dict(kind="address", address="2001:db8::10" if v6 else "203.0.113.10", port=80, protocol="TCP",
                method=method)
    base.update(fields)
    b = NftablesBackend(consistent_flows=consistent)
    b.ctx.device_for = lambda address: "pkl0" if name.endswith("-ingress") else "lo"
    b.ctx.tunnel_for = lambda address: "lo"  # the rules only name a device; IPIP ones are tested in the guest
    b.tunnels.want = lambda addresses: None
    steps = [("3 up", dests(v6, method, port, 3)), ("1 up", dests(v6, method, port, 1)),
             ("none up", dests(v6, method, port, 0)), ("3 up, new weights", dests(v6, method, port, 3, (5, 0, 1))),
             ("2 up", dests(v6, method, port, 2))]
    for step, ds in steps:
        svc = VirtualService(name, destinations=ds, **base)
        try:
            b.apply_now(DesiredTable((svc,)))
        except DataPlaneError as exc:
            failures.append([name, step, str(exc)[:300]])
            break
    try:
        b.apply_now(DesiredTable(()))
    except DataPlaneError as exc:
        failures.append([name, "removal", str(exc)[:300]])
    b.close_now()
print(json.dumps(failures))
