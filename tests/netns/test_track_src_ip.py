"""track_src_ip: the configured source address leaves the interface, the instance goes to FAULT.

r1 runs the instance under test with mcast_src_ip on an extra address of its
interface and the higher priority; r2 runs keepalived 2.2.7 as backup.
Deleting the source address from r1 must put r1's instance in FAULT (it stops
advertising: keepalived takes the VIP); adding it back lets r1 preempt again.

keepalived 2.2.7 itself never faults on track_src_ip (its netlink handler
compares the start of the sockaddr, not the address, with the removed one):
the last test shows it, so that the day a keepalived peer does, we notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpPeer, VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

VRID = 61


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "ts")


def _source(lab: Lab) -> str:
    net = lab.r1.ipv4.network
    return str(ip_interface(f"{net.network_address + 211}/{net.prefixlen}"))


def _peer(lab: Lab, kind: str, priority: int, extra: list[str], host_is_r1: bool) -> VrrpPeer:
    host = lab.r1 if host_is_r1 else lab.r2
    return lab.peer(kind, host, [VrrpSettings(vrid=VRID, priority=priority, vips=[VIP4], version=3,
                                              advert_int_s=0.2, extra=extra)])


def test_track_src_ip_faults_when_the_source_goes(lab: Lab) -> None:
    kind = "py"
    source = _source(lab)
    lab.r1.netns.ip("addr", "add", source, "dev", lab.r1.ifname)
    ours = _peer(lab, kind, 150, [f"mcast_src_ip {source.split('/')[0]}", "track_src_ip"], True)
    theirs = _peer(lab, "ka", 100, [], False)
    theirs.start()
    ours.start()
    wait_sole_holder(ours, [theirs], VIP4, 5.0, 0.5)

    lab.r1.netns.ip("addr", "del", source, "dev", lab.r1.ifname)
    wait_sole_holder(theirs, [ours], VIP4, 5.0, 1.0)
    wait_until(lambda: ours.states().get("VI_1") == "FAULT", 3.0, what=f"{kind}: FAULT after the source left")

    lab.r1.netns.ip("addr", "add", source, "dev", lab.r1.ifname)
    wait_sole_holder(ours, [theirs], VIP4, 5.0, 0.5)
    assert ours.states().get("VI_1") == "MASTER"


@pytest.mark.parametrize("track", [False, True], ids=["keepalived", "keepalived-track_src_ip"])
def test_keepalived_2_2_7_keeps_advertising(lab: Lab, track: bool) -> None:
    """keepalived 2.2.7 keeps advertising from a vanished source, with or without track_src_ip."""
    kind = "ka"
    source = _source(lab)
    lab.r1.netns.ip("addr", "add", source, "dev", lab.r1.ifname)
    extra = [f"mcast_src_ip {source.split('/')[0]}", *(["track_src_ip"] if track else [])]
    ours = _peer(lab, kind, 150, extra, True)
    theirs = _peer(lab, "ka", 100, [], False)
    theirs.start()
    ours.start()
    wait_sole_holder(ours, [theirs], VIP4, 5.0, 0.5)
    lab.r1.netns.ip("addr", "del", source, "dev", lab.r1.ifname)
    wait_sole_holder(ours, [theirs], VIP4, 0.5, 1.5)
