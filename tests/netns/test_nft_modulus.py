"""A pick rule's new modulus written in place (nft_modulus), in a namespace of its own, against libnftables' result.

One real server of an rr pool of 100 (a slot map, CYCLE_SLOT_MAP_MIN) going
down shortens the pool's cycle: the rule `numgen inc mod 100` becomes `mod
99` and slot 99 goes. The backend replaces that rule in the element batch
by the kernel's own encoding of it with the new number, without
libnftables. What the kernel then holds must be what libnftables makes of
the same change (the backend's direct_elements=False); when the kernel's chain is not as expected,
or the change has other commands, libnftables makes the change as before.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pykeepalived.lab import Netns, unique_prefix

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SCRIPT = r"""
import json
import subprocess
from dataclasses import replace

from pykeepalived.lvs.model import DesiredTable, Destination, VirtualService
from pykeepalived.lvs.nft import NftablesBackend

subprocess.run(["ip", "-batch", "-"], check=True, text=True,
               input="link add pkmod0 type veth peer name pkmod1\nlink set pkmod0 up\nlink set pkmod1 up\n"
                     "addr add 10.20.255.254/16 dev pkmod0\n")


def service(name, vip, method, scheduler="rr"):
    dests = tuple(Destination(f"10.20.0.{i + 1}", 80, 1, method=method) for i in range(100))
    return VirtualService(name, "address", vip, 80, "TCP", scheduler=scheduler, method=method, destinations=dests)


def down(svc, index):
    dests = list(svc.destinations)
    dests[index] = replace(dests[index], alive=False)
    return replace(svc, destinations=tuple(dests))


def listing():
    # every table of ours, as JSON without handles, set elements sorted (their order is the kernel's hash order)
    out = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    items = []
    for item in json.loads(out)["nftables"]:
        (kind, body), = item.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if "elem" in body:
            body["elem"] = sorted(body["elem"], key=json.dumps)
        items.append({kind: body})
    return sorted(items, key=json.dumps)


def by_libnftables(start, table):
    # what libnftables alone makes of the same change (every element and rule through it), then our table goes
    other = NftablesBackend(direct_elements=False)
    other.apply_now(start)
    other.apply_now(table)
    made = listing()
    other.close_now()
    return made


calls = []


def started(table):
    # a backend that has applied `table`, its libnftables commands counted from now on
    backend = NftablesBackend()
    backend.apply_now(table)
    real_cmd = backend.nft._nft.cmd
    backend.nft._nft.cmd = lambda text: (calls.append(text[:60]), real_cmd(text))[1]
    return backend


def step(backend, label, start, table):
    calls.clear()
    before = backend.nft.elements.rules_replaced
    backend.apply_now(table)
    now = listing()
    result[label] = {"libnftables": list(calls), "replaced": backend.nft.elements.rules_replaced - before,
                     "rules": [json.dumps(r) for r in now if "rule" in r and "numgen" in json.dumps(r)]}
    backend.close_now()
    result[label]["same_as_libnftables"] = now == by_libnftables(start, table)


result = {}
nat, dr = service("nat", "192.0.2.10", "NAT"), service("dr", "192.0.2.20", "DR")
up = DesiredTable((nat, dr))
one_down = DesiredTable((down(nat, 7), down(dr, 99)))
step(started(up), "down", up, one_down)
step(started(one_down), "back", one_down, up)

# the kernel's pick chain is not as the diff expects (a rule more): libnftables makes the whole change
backend = started(up)
subprocess.run(["nft", "insert", "rule", "netdev", "pykeepalived_lvs", "vs-dr-pick", "counter"], check=True)
step(backend, "unexpected", up, one_down)

# a change with other commands (a service more) takes the moduli through libnftables too
step(started(one_down), "with_others", one_down, DesiredTable((nat, dr, service("more", "192.0.2.30", "NAT"))))
print(json.dumps(result))
"""


def test_new_moduli_replace_the_rules_in_place_as_libnftables_would_make_them() -> None:
    ns = Netns(unique_prefix("nftmod"))
    ns.create()
    try:
        proc = subprocess.run(ns.argv([sys.executable, "-c", SCRIPT]), capture_output=True, text=True, timeout=120)
    finally:
        ns.delete()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    for label in ("down", "back"):  # both pools' rules in the element batch, libnftables not called
        assert result[label]["libnftables"] == [], result[label]
        assert result[label]["replaced"] == 2, result[label]
        assert result[label]["same_as_libnftables"], result[label]
    assert any("mod 99" in rule or '"mod": 99' in rule for rule in result["down"]["rules"]), result["down"]
    assert result["unexpected"]["replaced"] == 0, result["unexpected"]
    assert result["unexpected"]["libnftables"], result["unexpected"]
    assert result["unexpected"]["same_as_libnftables"], result["unexpected"]
    assert result["with_others"]["replaced"] == 0, result["with_others"]
    assert result["with_others"]["same_as_libnftables"], result["with_others"]
