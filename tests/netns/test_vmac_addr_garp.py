"""use_vmac_addr with garp_extra_if: periodic GARPs from the address's own VMAC, compared with keepalived 2.2.7.

r1 runs an instance on eth0 (LAN A) with use_vmac_addr and a second VIP on
eth1 (LAN B), which gets a VMAC of its own there; a client on LAN B counts
the GARPs for that VIP over ~4.5 s of mastership and notes their MAC.
keepalived 2.2.7 keeps `garp_extra_if 1` (without `all`) on for such a VMAC:
one GARP a second after the takeover burst, from 00:00:5e:00:01:VRID.
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
VRID = 57
VMAC = "00:00:5e:00:01:39"
WINDOW_S = 4.5


@pytest.fixture
def lans() -> Iterator[tuple[Host, Host]]:
    with router_on_two_lans("ga", "gb") as hosts:
        yield hosts


def _garps(r1: Host, c2: Host, tmp_path: Path, kind: str) -> list[tuple[float, str]]:
    settings = [VrrpSettings(vrid=VRID, priority=150, vips=[VIP4], version=3, advert_int_s=0.2,
                             extra=["use_vmac_addr", "garp_extra_if 1", "garp_master_repeat 1", "garp_master_delay 0",
                                    "virtual_ipaddress {", f"    {VIP_B} dev eth1", "}"])]
    peer = (KeepalivedPeer if kind == "ka" else PyKeepalivedPeer)(r1, settings, tmp_path)
    pcap = tmp_path / f"{kind}.pcap"
    try:
        with capture(c2, pcap, "arp"):
            peer.start()
            wait_until(lambda: VIP_B.ip in r1.all_addresses(), 5.0, what=f"{kind} master")
            time.sleep(WINDOW_S + 0.3)
            peer.stop()
    finally:
        peer.close()
    rows = fields(pcap, f"arp.opcode == 1 && arp.src.proto_ipv4 == {VIP_B.ip} && arp.dst.proto_ipv4 == {VIP_B.ip}",
                  ["frame.time_epoch", "eth.src"])
    if not rows:
        return []
    start = float(rows[0][0])
    return [(float(t) - start, mac) for t, mac in rows if float(t) - start <= WINDOW_S]


def test_vmac_addr_garp_extra_if_as_keepalived(lans: tuple[Host, Host], tmp_path: Path) -> None:
    r1, c2 = lans
    theirs = _garps(r1, c2, tmp_path, "ka")
    ours = _garps(r1, c2, tmp_path, "py")
    assert len(theirs) == 5 and {mac for _, mac in theirs} == {VMAC}, theirs
    assert len(ours) == len(theirs), f"ours {ours}\nkeepalived's {theirs}"
    assert {mac for _, mac in ours} == {VMAC}, ours
    assert all(abs(a - b) <= 0.25 for (a, _), (b, _) in zip(ours, theirs, strict=True)), \
        f"ours {ours}\nkeepalived's {theirs}"
