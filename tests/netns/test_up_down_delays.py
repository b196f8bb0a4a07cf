"""interface_up_down_delays: an interface's change reaches VRRP only once it has lasted the delay.

One namespace, eth0 (the instance's) on a veth whose peer eth1 is there too.
With `eth0 1.5 1` (down after 1.5 s, up after 1 s; keepalived 2.2.7 cuts
either to under 2 adverts, 2 s here): eth0 down for half a second and back
is never seen (keepalived logs "eth0: Adding flags change ..." only), the
instance stays master with its VIP; eth0 down for good puts it in FAULT
only after 1.5 s; back up, it leaves FAULT after about 1 s.
keepalived 2.2.7 runs the same configuration for the same flap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id ud
}
interface_up_down_delays {
  eth0 1.5 1
}
""" + vi_1("MASTER")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkud")


def vip(box: Box) -> bool:
    return "192.0.2.201/" in box.ip("addr", "show", "eth0")


def short_flap(box: Box, log: Callable[[], str]) -> None:
    box.ip("link", "set", "eth1", "down")
    assert wait_for(lambda: "eth0: Adding flags change" in log(), 1) is not None, log()
    time.sleep(0.3)
    box.ip("link", "set", "eth1", "up")
    time.sleep(2.0)
    assert "FAULT" not in log(), log()
    assert vip(box)


def test_changes_are_held_for_their_delay(box: Box) -> None:
    daemon = box.start(box.conf(CONF), "-P")
    try:
        assert wait_for(lambda: vip(box), 10) is not None, daemon.log()
        short_flap(box, daemon.log)
        box.ip("link", "set", "eth1", "down")
        took = wait_for(lambda: "(VI_1) Entering FAULT STATE" in daemon.log(), 8)
        assert took is not None and took >= 1.2, (took, daemon.log())
        box.ip("link", "set", "eth1", "up")
        took = wait_for(lambda: vip(box), 10)
        assert took is not None and took >= 0.8, (took, daemon.log())
    finally:
        daemon.stop()


@pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")
def test_keepalived_holds_the_short_flap_too(box: Box) -> None:
    with box.running("ka", box.conf(CONF), "-P") as log:
        assert wait_for(lambda: vip(box), 10) is not None, log()
        short_flap(box, log)
