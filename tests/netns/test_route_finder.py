"""DR's route lookups (lvs/routes.py) are kept from one apply to the next until routing changes."""

from __future__ import annotations

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


def test_answers_are_kept_until_routing_changes() -> None:
    ns = Netns(unique_prefix("rtf"))
    ns.create()
    try:
        setup = ("link set lo up\nlink add pa0 type veth peer name pa1\nlink add pb0 type veth peer name pb1\n"
                 "link set pa0 up\nlink set pa1 up\nlink set pb0 up\nlink set pb1 up\n"
                 "addr add 10.77.0.1/16 dev pa0\n")
        subprocess.run(["ip", "-n", ns.name, "-batch", "-"], input=setup, text=True, check=True)
        out = subprocess.run(ns.argv([sys.executable, "-c", INSIDE]), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n")[:5] == ["pa0 1", "pa0 1", "pb0 2", "pb0 2", "pb0 2"]
    finally:
        ns.delete()
