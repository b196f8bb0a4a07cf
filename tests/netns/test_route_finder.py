"""DR's route lookups (lvs/routes.py) are kept from one apply to the next until routing changes."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.netns import Netns

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

# runs in the namespace: one lookup, the same apply again (kept), then the server's network moves to the other
# interface (asked again); a neighbour entry and an IPv6 address change nothing an IPv4 lookup depends on (kept)
INSIDE = """
import json
import subprocess
from pykeepalived.lvs.routes import RouteFinder
finder = RouteFinder()
asked = []
lookup = finder._lookup
finder._lookup = lambda address: asked.append(address) or lookup(address)
def apply():
    finder.forget()
    try:
        return finder.device_for("10.77.0.5")
    finally:
        finder.release()
print(apply(), len(asked))
print(apply(), len(asked))
subprocess.run(["ip", "addr", "del", "10.77.0.1/16", "dev", "pa0"], check=True)
subprocess.run(["ip", "addr", "add", "10.77.0.1/16", "dev", "pb0"], check=True)
print(apply(), len(asked))
subprocess.run(["ip", "neigh", "replace", "10.77.0.9", "lladdr", "02:00:00:00:00:09", "dev", "pb0"], check=True)
print(apply(), len(asked))
subprocess.run(["ip", "-6", "addr", "add", "fd00:77::1/64", "dev", "pb0", "nodad"], check=True)
print(apply(), len(asked))
finder.close()
"""


TWO_LINKS = ("link set lo up\nlink add pa0 type veth peer name pa1\nlink add pb0 type veth peer name pb1\n"
             "link set pa0 up\nlink set pa1 up\nlink set pb0 up\nlink set pb1 up\n"
             "addr add 10.77.0.1/16 dev pa0\n")


def run_inside(prefix: str, setup: str, script: str) -> str:
    """`script`'s output, run in a namespace of its own made by `setup` (`ip -batch`), removed afterwards."""
    ns = Netns(unique_prefix(prefix))
    ns.create()
    try:
        subprocess.run(["ip", "-n", ns.name, "-batch", "-"], input=setup, text=True, check=True)
        out = subprocess.run(ns.argv([sys.executable, "-c", script]), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout
    finally:
        ns.delete()


def test_answers_are_kept_until_routing_changes() -> None:
    out = run_inside("rtf", TWO_LINKS, INSIDE)
    assert out.split("\n")[:5] == ["pa0 1", "pa0 1", "pb0 2", "pb0 2", "pb0 2"]


# runs in the namespace: the main table as spans (route_spans), what is left out, what is refused, and whether a
# change is seen by spans_moved (the repair check's question)
SPANS = """
import json
import subprocess
from pykeepalived.lvs.routes import RouteFinder
from pykeepalived.lvs.route_spans import RoutesRefused
finder = RouteFinder()
devices = frozenset({"pa0", "pb0"})
def ip(*argv):
    subprocess.run(["ip", *argv], check=True)
def show():
    finder.forget()
    try:
        return [[s.first, s.last, s.gateway, s.device] for s in finder.client_spans(4, devices)]
    except RoutesRefused as exc:
        return str(exc)
    finally:
        finder.release()
print(json.dumps(show()))
ip("route", "add", "blackhole", "198.51.100.0/24")
ip("route", "add", "203.0.113.0/24", "via", "10.77.0.9", "mtu", "1400")
print(json.dumps(show()))
print(json.dumps(finder.spans_moved()))
ip("route", "add", "192.0.2.0/24", "via", "10.78.0.9")
print(json.dumps(finder.spans_moved()))
print(json.dumps(finder.spans_moved()))
ip("rule", "add", "from", "10.99.0.0/16", "lookup", "100", "pref", "1000")
print(json.dumps(show()))
ip("rule", "del", "pref", "1000")
ip("route", "replace", "default", "nexthop", "via", "10.77.0.9", "nexthop", "via", "10.78.0.9")
print(json.dumps(show()))
finder.close()
"""


def test_the_main_table_as_spans_and_what_cannot_be_copied() -> None:
    out = run_inside("rts", TWO_LINKS + "addr add 10.78.0.1/16 dev pb0\nroute add default via 10.77.0.254\n", SPANS)
    first, holes, moved, added, again, rule, multipath = [json.loads(line) for line in out.splitlines()]
    assert ["10.77.0.0", "10.77.255.255", None, "pa0"] in first  # on the link: to the destination itself
    assert ["10.78.0.0", "10.78.255.255", None, "pb0"] in first
    assert ["1.0.0.0", "10.76.255.255", "10.77.0.254", "pa0"] in first  # the default route, by its gateway
    assert not any(s[0].startswith(("127.", "224.")) for s in first)  # loopback and multicast: holes
    # a blackhole and a route with its own MTU are holes (the IP stack answers for them)
    for inside in ("198.51.100.1", "203.0.113.1"):
        address = ipaddress.ip_address(inside)
        assert not any(ipaddress.ip_address(s[0]) <= address <= ipaddress.ip_address(s[1]) for s in holes)
    assert ["198.51.101.0", "203.0.112.255", "10.77.0.254", "pa0"] in holes
    assert ["203.0.114.0", "223.255.255.255", "10.77.0.254", "pa0"] in holes
    assert moved is False  # nothing changed since the spans were read
    assert added is True and again is False  # a new route moves them once
    assert rule.startswith("policy routing rule 1000")
    assert "several next hops" in multipath
