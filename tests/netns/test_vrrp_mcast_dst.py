"""mcast_dst_ip: adverts to another multicast group, with keepalived 2.2.7 on the same group.

Both routers send to 224.0.0.33 (IPv4) / ff02::33 (IPv6) and hear each other
there: one master, failover on a clean stop; nothing goes to 224.0.0.18 /
ff02::12.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, VIP6, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "md")


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_mcast_dst_ip_with_keepalived(lab: Lab, tmp_path: Path, family: int) -> None:
    group = "224.0.0.33" if family == 4 else "ff02::33"
    vip = VIP4 if family == 4 else VIP6

    def settings(priority: int) -> list[VrrpSettings]:
        return [VrrpSettings(vrid=53, priority=priority, vips=[vip], version=3, advert_int_s=0.2,
                             extra=[f"mcast_dst_ip {group}"])]

    ours = lab.peer("py", lab.r1, settings(150))
    theirs = lab.peer("ka", lab.r2, settings(100))
    pcap = tmp_path / "lan.pcap"
    with capture(lab.c, pcap, "ip proto 112 or ip6 proto 112"):
        theirs.start()
        wait_sole_holder(theirs, [ours], vip, 5.0, 0.0)
        ours.start()
        wait_sole_holder(ours, [theirs], vip, 5.0, 1.0)  # we hear keepalived there and it hears us
        ours.stop()
        wait_sole_holder(theirs, [ours], vip, 3.0, 0.5)
    dst_field = "ip.dst" if family == 4 else "ipv6.dst"
    src_field = "ip.src" if family == 4 else "ipv6.src"
    rows = fields(pcap, "vrrp", [src_field, dst_field])
    ours_src = str(lab.r1.ipv4.ip) if family == 4 else str(lab.r1.link_local())
    assert {dst for src, dst in rows if src == ours_src} == {group}, rows
    assert {dst for _, dst in rows} == {group}, rows
    assert "not acted on" not in ours.log(), "mcast_dst_ip still reported as parsed only"
