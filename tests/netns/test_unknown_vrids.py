"""log_unknown_vrids: every advert for a VRID no instance has is logged, with the interface it came on.

keepalived 2.2.7 (vrrp_scheduler.c) logs "Unknown VRID(N) received on
interface(IF). ignoring..." for each such advert, with no rate limit, when
global_defs has log_unknown_vrids; without it nothing is logged. Here an
advert for VRID 52 is sent from eth1 to 224.0.0.18 and arrives on eth0,
where the daemon's only instance is VRID 51.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id uv
%s}
""" + vi_1("BACKUP")

SEND = """
import socket
from ipaddress import ip_address
from pykeepalived.vrrp.packet import Advert, encode_advert
src, dst = ip_address("192.0.2.2"), ip_address("224.0.0.18")
pdu = encode_advert(Advert(version=2, vrid=52, priority=100, advert_int_cs=100,
                           addresses=(ip_address("192.0.2.202"),), auth_type=0, auth_data=b""), src, dst)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth1")
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.0.2.2"))
for _ in range(3):
    s.sendto(pdu, ("224.0.0.18", 0))
"""

LINE = "Unknown VRID(52) received on interface(eth0). ignoring..."


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkuv")


def send_vrid_52(box: Box) -> None:
    subprocess.run(["ip", "netns", "exec", box.netns, sys.executable, "-c", SEND], check=True)


@pytest.mark.parametrize("on", [True, False], ids=["log_unknown_vrids", "default"])
def test_unknown_vrid_adverts_are_logged(box: Box, on: bool) -> None:
    box.ip("addr", "add", "192.0.2.2/24", "dev", "eth1")
    for key in ("accept_local=1", "rp_filter=0"):  # 192.0.2.2 is local too: let eth0 take packets from it
        subprocess.run(["ip", "netns", "exec", box.netns, "sysctl", "-qw", f"net.ipv4.conf.eth0.{key}"], check=True)
    daemon = box.start(box.conf(CONF % ("  log_unknown_vrids\n" if on else "")), "-P")
    try:
        daemon.wait_log("(VI_1) Entering BACKUP STATE", 10)
        send_vrid_52(box)
        if on:
            daemon.wait_log(LINE, 5)
            time.sleep(0.5)
            assert daemon.log().count(LINE) == 3, daemon.log()  # each one, no rate limit
        else:
            time.sleep(1.0)
            assert "Unknown VRID" not in daemon.log(), daemon.log()
    finally:
        daemon.stop()
