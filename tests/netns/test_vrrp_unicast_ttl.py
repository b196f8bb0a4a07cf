"""unicast_ttl: the TTL / hop limit of unicast adverts, compared with keepalived 2.2.7 on the wire.

keepalived 2.2.7 sends unicast adverts with unicast_ttl when set; without it,
IPv4 adverts keep TTL 255 and IPv6 ones the kernel's default hop limit (it
sets no unicast hop limit). It does not check the TTL of unicast adverts it
receives (only a peer's min_ttl/max_ttl), so a pair with a low TTL still
elects one master.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings
from pykeepalived.lab.topology import Host

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, VIP6, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "ut")


def _address(host: Host, family: int) -> str:
    return str(host.ipv4.ip if family == 4 else host.ipv6.ip)


def _settings(me: Host, peer: Host, priority: int, family: int, ttl: int | None) -> list[VrrpSettings]:
    extra = [f"unicast_src_ip {_address(me, family)}", "unicast_peer {", f"    {_address(peer, family)}", "}"]
    if ttl is not None:
        extra.append(f"unicast_ttl {ttl}")
    return [VrrpSettings(vrid=61, priority=priority, vips=[VIP4 if family == 4 else VIP6], version=3,
                         advert_int_s=0.2, extra=extra)]


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("ttl", [None, 7], ids=["default", "ttl7"])
def test_unicast_ttl_as_keepalived(lab: Lab, tmp_path: Path, family: int, ttl: int | None) -> None:
    vip = VIP4 if family == 4 else VIP6
    ours = lab.peer("py", lab.r1, _settings(lab.r1, lab.r2, 150, family, ttl))
    theirs = lab.peer("ka", lab.r2, _settings(lab.r2, lab.r1, 100, family, ttl))
    pcap = tmp_path / "r2.pcap"
    with capture(lab.r2, pcap, "ip proto 112 or ip6 proto 112"):
        theirs.start()  # keepalived is master alone first, then we preempt: both send adverts
        wait_sole_holder(theirs, [ours], vip, 5.0, 0.0)
        ours.start()
        wait_sole_holder(ours, [theirs], vip, 5.0, 1.0)
    ttl_field = "ip.ttl" if family == 4 else "ipv6.hlim"
    src_field = "ip.src" if family == 4 else "ipv6.src"
    rows = fields(pcap, "vrrp && vrrp.prio > 0", [src_field, ttl_field])
    by_source: dict[str, set[str]] = {}
    for src, hops in rows:
        by_source.setdefault(src, set()).add(hops)
    mine, keepalived = by_source.get(_address(lab.r1, family)), by_source.get(_address(lab.r2, family))
    assert mine and keepalived, by_source
    assert mine == keepalived, f"ours {mine}, keepalived's {keepalived}"
    if ttl is not None:
        assert mine == {str(ttl)}
    elif family == 4:
        assert mine == {"255"}
