"""garp_extra_if: periodic GARPs on the other interfaces an instance has VIPs on, compared with keepalived 2.2.7.

r1 runs an instance on eth0 (LAN A) with a second VIP on eth1 (LAN B); a
client on LAN B counts the GARPs for that VIP over ~4.5 s of mastership.
`garp_extra_if all 1` (or global_defs' `vrrp_garp_extra_if all 1`):
keepalived sends one a second after the takeover burst; `garp_extra_if 1`
(VMACs only) it turns off: only the burst.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import KeepalivedPeer, PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .router_fixtures import router_on_two_lans
from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, pytest.mark.slow, needs_tshark]

VIP_B = ip_interface("198.51.100.100/24")
WINDOW_S = 4.5


@pytest.fixture
def lans() -> Iterator[tuple[Host, Host]]:
    with router_on_two_lans("xa", "xb") as hosts:
        yield hosts


def _garps(r1: Host, c2: Host, tmp_path: Path, kind: str, line: str) -> list[float]:
    instance_line, global_line = ("", line) if line.startswith("vrrp_") else (line, "")
    settings = [VrrpSettings(vrid=58, priority=150, vips=[VIP4], version=3, advert_int_s=0.2,
                             extra=[instance_line, "garp_master_repeat 1", "garp_master_delay 0",
                                    "virtual_ipaddress {", f"    {VIP_B} dev eth1", "}"])]
    peer = (KeepalivedPeer if kind == "ka" else PyKeepalivedPeer)(r1, settings, tmp_path, extra_global=global_line)
    pcap = tmp_path / f"{kind}-{line.replace(' ', '_')}.pcap"
    try:
        with capture(c2, pcap, "arp"):
            peer.start()
            wait_until(lambda: VIP_B.ip in r1.addresses("eth1"), 5.0, what=f"{kind} master")
            time.sleep(WINDOW_S + 0.3)
            peer.stop()
    finally:
        peer.close()
    rows = fields(pcap, f"arp.opcode == 1 && arp.src.proto_ipv4 == {VIP_B.ip} && arp.dst.proto_ipv4 == {VIP_B.ip}",
                  ["frame.time_epoch"])
    times = [float(row[0]) for row in rows]
    return [t - times[0] for t in times if t - times[0] <= WINDOW_S] if times else []


@pytest.mark.parametrize("line", ["garp_extra_if all 1", "garp_extra_if 1", "vrrp_garp_extra_if all 1"])
def test_garp_extra_if_as_keepalived(lans: tuple[Host, Host], tmp_path: Path, line: str) -> None:
    r1, c2 = lans
    theirs = _garps(r1, c2, tmp_path, "ka", line)
    ours = _garps(r1, c2, tmp_path, "py", line)
    assert len(theirs) == (5 if "all" in line else 1), theirs
    assert len(ours) == len(theirs), f"ours {ours}\nkeepalived's {theirs}"
    assert all(abs(a - b) <= 0.25 for a, b in zip(ours, theirs, strict=True)), f"ours {ours}\nkeepalived's {theirs}"
