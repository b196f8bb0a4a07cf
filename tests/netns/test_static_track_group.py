"""track_group: instances track the interfaces of their static entries; the entries come back with the link.

A static address and route on a veth (st0, its peer st1 up) name track_group TG, whose
member is VI_1 (on eth0). Taking st0 down puts VI_1 in FAULT (its VIP
goes) and the kernel drops the route; bringing it up lets VI_1 be master
again and the route is added back. keepalived 2.2.7 and pykeepalived run the
same configuration in the same namespace, one after the other. (keepalived
needs the track_group defined before the entries that name it.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id tg
}
track_group TG {
  group {
    VI_1
  }
}
static_ipaddress {
  198.51.100.1/24 dev st0 track_group TG
}
static_routes {
  198.51.100.128/25 via 198.51.100.254 dev st0 track_group TG
}
""" + vi_1("MASTER")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pktg")


def run(box: Box, kind: str) -> list[bool]:
    def vip() -> bool:
        return "192.0.2.201/" in box.ip("addr", "show", "eth0")

    def route() -> bool:
        return "198.51.100.128/25" in box.ip("route", "show")

    conf = box.conf(CONF)
    seen: list[bool] = []
    with box.running(kind, conf, "-P") as log:
        try:
            seen.append(wait_for(lambda: vip() and route(), 10) is not None)
            box.ip("link", "set", "st0", "down")
            seen.append(wait_for(lambda: not vip() and not route(), 5) is not None)
            box.ip("link", "set", "st0", "up")
            seen.append(wait_for(lambda: vip() and route(), 10) is not None)
        finally:
            print(log()[-2500:])
    return seen


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_track_group_follows_the_static_entries_interface(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    box.ip("link", "add", "st0", "type", "veth", "peer", "name", "st1")
    box.ip("link", "set", "st1", "up")
    box.ip("link", "set", "st0", "up")
    assert run(box, kind) == [True, True, True]
