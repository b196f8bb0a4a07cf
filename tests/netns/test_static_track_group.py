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

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

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
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {
    192.0.2.201/24
  }
}
"""


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pktg")


def run(box: Box, kind: str) -> list[bool]:
    def vip() -> bool:
        return "192.0.2.201/" in box.ip("addr", "show", "eth0")

    def route() -> bool:
        return "198.51.100.128/25" in box.ip("route", "show")

    conf = box.conf(CONF)
    if kind == "ka":
        proc = box.start_keepalived(conf, "-P")
        log = box.keepalived_log
    else:
        daemon = box.start(conf, "-P")
        log = daemon.log
    seen: list[bool] = []
    try:
        seen.append(wait_for(lambda: vip() and route(), 10) is not None)
        box.ip("link", "set", "st0", "down")
        seen.append(wait_for(lambda: not vip() and not route(), 5) is not None)
        box.ip("link", "set", "st0", "up")
        seen.append(wait_for(lambda: vip() and route(), 10) is not None)
    finally:
        if kind == "ka":
            proc.terminate()
            proc.wait(10)
        else:
            daemon.stop()
        print(log()[-2500:])
    return seen


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_track_group_follows_the_static_entries_interface(box: Box, kind: str) -> None:
    if kind == "ka" and not HAVE_KEEPALIVED:
        pytest.skip("keepalived not installed")
    box.ip("link", "add", "st0", "type", "veth", "peer", "name", "st1")
    box.ip("link", "set", "st1", "up")
    box.ip("link", "set", "st0", "up")
    assert run(box, kind) == [True, True, True]
