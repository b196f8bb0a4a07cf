"""linkbeat: the instance's interface is polled once a second instead of followed through netlink.

One namespace, eth0 (the instance's) on a veth whose peer eth1 is there too:
taking eth1 down takes eth0's carrier. With linkbeat_interfaces (or the
top-level linkbeat_use_polling) the daemon logs keepalived 2.2.7's
"Linkbeat reports eth0 down|up" and the instance goes to FAULT and back.
(A flap shorter than the poll interval would tell polling from netlink, but
the kernel's linkwatch folds a sub-millisecond veth flap into no event at
all, and a longer one is caught by a poll now and then: the log lines are
what tells them apart.)
keepalived 2.2.7 runs the first configuration too, for its log lines.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

INSTANCE = vi_1("MASTER")
BLOCK = "global_defs {\n  router_id lb\n}\nlinkbeat_interfaces {\n  eth0\n}\n" + INSTANCE
ROOT = "global_defs {\n  router_id lb\n}\nlinkbeat_use_polling\n" + INSTANCE


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pklb")


def vip(box: Box) -> bool:
    return "192.0.2.201/" in box.ip("addr", "show", "eth0")


@pytest.mark.parametrize("conf", [BLOCK, ROOT], ids=["linkbeat_interfaces", "linkbeat_use_polling"])
def test_polled_interface_faults_and_recovers(box: Box, conf: str) -> None:
    daemon = box.start(box.conf(conf), "-P")
    try:
        daemon.wait_log("Using MII-BMSR/ETHTOOL NIC polling thread(s)...", 10)
        assert wait_for(lambda: vip(box), 10) is not None, daemon.log()
        box.ip("link", "set", "eth1", "down")
        daemon.wait_log("Linkbeat reports eth0 down", 5)
        daemon.wait_log("(VI_1) Entering FAULT STATE", 5)
        assert wait_for(lambda: not vip(box), 5) is not None
        box.ip("link", "set", "eth1", "up")
        daemon.wait_log("Linkbeat reports eth0 up", 5)
        assert wait_for(lambda: vip(box), 10) is not None, daemon.log()
    finally:
        daemon.stop()


@pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")
def test_keepalived_logs_the_same_linkbeat_lines(box: Box) -> None:
    with box.running("ka", box.conf(BLOCK), "-P") as log:
        assert wait_for(lambda: vip(box), 10) is not None, log()
        box.ip("link", "set", "eth1", "down")
        assert wait_for(lambda: "Linkbeat reports eth0 down" in log(), 5) is not None
        box.ip("link", "set", "eth1", "up")
        assert wait_for(lambda: "Linkbeat reports eth0 up" in log(), 5) is not None
        assert "Using MII-BMSR/ETHTOOL NIC polling thread(s)..." in log()
