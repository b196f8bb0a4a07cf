"""dynamic_interfaces: an instance whose interface is missing waits for it, and follows it when it is recreated.

keepalived 2.2.7 accepts a configuration naming an interface that does not
exist when global_defs has dynamic_interfaces ("will use if created"); the
instance stays in FAULT until the interface appears with an address, then
runs; the interface deleted puts it back in FAULT, and recreated it runs
again. Here dyn0 (a veth whose peer dyn1 is in the same namespace) is made,
deleted and made again under a running daemon, ours and keepalived's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id dyn
  dynamic_interfaces
}
""" + vi_1("MASTER", interface="dyn0", vip="198.51.100.201/24")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkdy")


def make_dyn0(box: Box) -> None:
    box.ip("link", "add", "dyn0", "type", "veth", "peer", "name", "dyn1")
    box.ip("addr", "add", "198.51.100.1/24", "dev", "dyn0")
    box.ip("link", "set", "dyn1", "up")
    box.ip("link", "set", "dyn0", "up")


def vip(box: Box) -> bool:
    try:
        return "198.51.100.201/" in box.ip("addr", "show", "dyn0")
    except Exception:
        return False


def faults(log: Callable[[], str]) -> int:
    return log().count("(VI_1) Entering FAULT STATE")


@pytest.mark.parametrize("kind", ["py", "ka"])
def test_instance_follows_its_interface(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    conf = box.conf(CONF)
    with box.running(kind, conf, "-P") as log:
        assert wait_for(lambda: "Entering" in log() or "Startup complete" in log(), 10) is not None, log()
        make_dyn0(box)
        assert wait_for(lambda: vip(box), 15) is not None, log()
        before = faults(log)
        box.ip("link", "del", "dyn0")
        assert wait_for(lambda: faults(log) > before, 5) is not None, log()
        make_dyn0(box)
        assert wait_for(lambda: vip(box), 15) is not None, log()
