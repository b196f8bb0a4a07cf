"""Gratuitous ARP / NA pacing compared with keepalived 2.2.7 on the wire, for the same configuration.

vrrp_garp_interval, vrrp_gna_interval, garp_group and vrrp_min_garp: each
daemon runs alone on r1 and becomes master; the client captures the GARPs
(NAs) of the first ~3 s of mastership. The counts, the order of the
addresses and the times (from the first announcement, 0.12 s margin) must
match keepalived's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, pytest.mark.slow, needs_tshark]

V4 = [ip_interface("192.0.2.100/24"), ip_interface("192.0.2.101/24")]
V6 = [ip_interface("2001:db8::100/64"), ip_interface("2001:db8::101/64")]
WINDOW_S = 3.0
MARGIN_S = 0.12

CASES = {
    "garp_interval": (4, "vrrp_garp_interval 0.3", ["garp_master_delay 2", "garp_master_repeat 4"]),
    "gna_interval": (6, "vrrp_gna_interval 0.3", ["garp_master_delay 2", "garp_master_repeat 3"]),
    "garp_group": (4, "", ["garp_master_delay 2", "garp_master_repeat 3"]),
    "min_garp": (4, "vrrp_min_garp", []),
}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "gp")


def _announcements(lab: Lab, tmp_path: Path, kind: str, case: str) -> list[tuple[float, str]]:
    family, global_lines, extra = CASES[case]
    vips: list[IPv4Interface | IPv6Interface] = list(V4 if family == 4 else V6)  # type: ignore[arg-type]
    extra_global = global_lines
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=91, priority=150, vips=vips, version=3, advert_int_s=0.2,
                                                extra=extra)], extra_global=extra_global)
    if case == "garp_group":  # a top-level block: appended to the rendered file
        conf = peer.conf_path  # type: ignore[attr-defined]
        group = f"\ngarp_group {{\n    garp_interval 0.25\n    interface {lab.r1.ifname}\n}}\n"
        conf.write_text(conf.read_text() + group)
    pcap = tmp_path / f"{kind}-{case}.pcap"
    with capture(lab.c, pcap, "arp or icmp6"):
        peer.start()
        wait_until(lambda: peer.holds(vips[0].ip), 5.0, what=f"{peer!r} master")
        time.sleep(WINDOW_S + 0.5)
        peer.stop()
    if family == 4:
        rows = fields(pcap, "arp.opcode == 1 && arp.src.proto_ipv4 == arp.dst.proto_ipv4",
                      ["frame.time_epoch", "arp.src.proto_ipv4"])
    else:
        rows = fields(pcap, "icmpv6.type == 136 && icmpv6.nd.na.flag.o == 1",
                      ["frame.time_epoch", "icmpv6.nd.na.target_address"])
    assert rows, f"no announcements from {kind}"
    start = float(rows[0][0])
    return [(float(t) - start, addr) for t, addr in rows if float(t) - start <= WINDOW_S]


@pytest.mark.parametrize("case", list(CASES))
def test_announcement_pacing_as_keepalived(lab: Lab, tmp_path: Path, case: str) -> None:
    theirs = _announcements(lab, tmp_path, "ka", case)
    ours = _announcements(lab, tmp_path, "py", case)
    assert [a for _, a in ours] == [a for _, a in theirs], f"ours {ours}\nkeepalived's {theirs}"
    for (t_ours, _), (t_theirs, _) in zip(ours, theirs, strict=True):
        assert abs(t_ours - t_theirs) <= MARGIN_S, f"ours {ours}\nkeepalived's {theirs}"
