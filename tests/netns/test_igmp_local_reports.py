"""disable_local_igmp: no IGMP reports for link-local groups while VRRP runs, the setting back after.

keepalived 2.2.7 writes 0 to /proc/sys/net/ipv4/igmp_link_local_mcast_reports
(a per-namespace setting) when its VRRP process starts, if it was 1, and
writes 1 back when it stops. Checked on keepalived too, in a namespace of
its own, and on the wire: the daemon joins 224.0.0.18 on eth0, and with the
option no IGMP report for it leaves.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id igmp
  disable_local_igmp
}
vrrp_instance VI_1 {
  state BACKUP
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
    yield from make_box("pkig")


def reports(box: Box) -> str:
    return subprocess.run(["ip", "netns", "exec", box.netns, "cat", "/proc/sys/net/ipv4/igmp_link_local_mcast_reports"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("kind", ["py", "ka"])
def test_reports_off_while_running(box: Box, kind: str) -> None:
    if kind == "ka" and not HAVE_KEEPALIVED:
        pytest.skip("keepalived not installed")
    assert reports(box) == "1"
    conf = box.conf(CONF)
    if kind == "ka":
        proc = box.start_keepalived(conf, "-P")
        log = box.keepalived_log
    else:
        daemon = box.start(conf, "-P")
        log = daemon.log
    try:
        assert wait_for(lambda: "Entering BACKUP STATE" in log(), 10) is not None, log()
        assert reports(box) == "0"
    finally:
        if kind == "ka":
            proc.terminate()
            proc.wait(10)
        else:
            daemon.stop()
    assert reports(box) == "1"
