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

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id igmp
  disable_local_igmp
}
""" + vi_1("BACKUP")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkig")


def reports(box: Box) -> str:
    return subprocess.run(["ip", "netns", "exec", box.netns, "cat", "/proc/sys/net/ipv4/igmp_link_local_mcast_reports"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("kind", ["py", "ka"])
def test_reports_off_while_running(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    assert reports(box) == "1"
    conf = box.conf(CONF)
    with box.running(kind, conf, "-P") as log:
        assert wait_for(lambda: "Entering BACKUP STATE" in log(), 10) is not None, log()
        assert reports(box) == "0"
    assert reports(box) == "1"
