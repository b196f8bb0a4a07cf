"""GARP and unsolicited NA frames, checked byte by byte against layouts written out here.

The layouts are spelled field by field from RFC 826 / RFC 4861 / RFC 8200 and
cross-checked against frames keepalived 2.2.7 put on the wire (captured with
tcpdump: MAC 1a:5c:d5:e6:b6:37, VIP 10.0.0.100 and 2001:db8::100). The
ICMPv6 checksum is recomputed here independently of the code under test and,
when tshark is installed, confirmed by Wireshark's dissector.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pykeepalived.net import NetError
from pykeepalived.net.announce import gratuitous_arp_frame, unsolicited_na_frame

MAC = bytes.fromhex("1a5cd5e6b637")
VIP4 = IPv4Address("10.0.0.100")
VIP6 = IPv6Address("2001:db8::100")
LINK_LOCAL = IPv6Address("fe80::185c:d5ff:fee6:b637")

KEEPALIVED_GARP = bytes.fromhex(
    "ffffffffffff1a5cd5e6b6370806"  # Ethernet: broadcast <- MAC, ARP
    "0001080006040001"  # Ethernet/IPv4, hlen 6, plen 4, request
    "1a5cd5e6b6370a000064"  # sender MAC, sender IP 10.0.0.100
    "ffffffffffff0a000064"  # target MAC broadcast, target IP 10.0.0.100
)
KEEPALIVED_NA = bytes.fromhex(
    "3333000000011a5cd5e6b63786dd"  # Ethernet: 33:33:00:00:00:01 <- MAC, IPv6
    "60000000"
    "0020"
    "3a"
    "ff"  # version 6, TC 0, flow 0; payload 32; ICMPv6; hop limit 255
    "20010db8000000000000000000000100"  # source 2001:db8::100 (keepalived uses the VIP)
    "ff020000000000000000000000000001"  # destination ff02::1
    "88"
    "00"
    "52b3"
    "20000000"  # NA, code 0, checksum, flags: Override only
    "20010db8000000000000000000000100"  # target 2001:db8::100
    "0201"
    "1a5cd5e6b637"  # option: target link-layer address, 1 x 8 bytes
)


def reference_checksum(src: IPv6Address, dst: IPv6Address, icmp: bytes) -> int:
    """RFC 8200 section 8.1 pseudo-header + RFC 1071 sum, written independently of the code."""
    data = src.packed + dst.packed + len(icmp).to_bytes(4, "big") + bytes(3) + bytes([58]) + icmp
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def na_layout(mac: bytes, target: IPv6Address, source: IPv6Address) -> bytes:
    icmp = bytes([136, 0, 0, 0, 0x20, 0, 0, 0]) + target.packed + bytes([2, 1]) + mac
    checksum = reference_checksum(source, IPv6Address("ff02::1"), icmp)
    icmp = icmp[:2] + checksum.to_bytes(2, "big") + icmp[4:]
    ipv6 = bytes([0x60, 0, 0, 0]) + len(icmp).to_bytes(2, "big") + bytes([58, 255]) + source.packed
    ipv6 += IPv6Address("ff02::1").packed
    return bytes.fromhex("333300000001") + mac + bytes.fromhex("86dd") + ipv6 + icmp


def test_garp_is_the_frame_keepalived_sends() -> None:
    assert gratuitous_arp_frame(MAC, VIP4) == KEEPALIVED_GARP


def test_garp_layout_field_by_field() -> None:
    mac = bytes.fromhex("020000000001")
    frame = gratuitous_arp_frame(mac, IPv4Address("192.0.2.7"))
    assert len(frame) == 42
    assert frame[0:6] == b"\xff" * 6
    assert frame[6:12] == mac
    assert frame[12:14] == b"\x08\x06"
    assert frame[14:22] == bytes([0, 1, 8, 0, 6, 4, 0, 1])
    assert frame[22:28] == mac and frame[28:32] == bytes([192, 0, 2, 7])
    assert frame[32:38] == b"\xff" * 6 and frame[38:42] == bytes([192, 0, 2, 7])


def test_na_is_the_frame_keepalived_sends() -> None:
    assert unsolicited_na_frame(MAC, VIP6, VIP6) == KEEPALIVED_NA


def test_na_from_link_local_source_matches_layout_and_checksum() -> None:
    frame = unsolicited_na_frame(MAC, VIP6, LINK_LOCAL)
    assert frame == na_layout(MAC, VIP6, LINK_LOCAL)
    assert len(frame) == 14 + 40 + 32
    icmp = frame[54:]
    assert icmp[0] == 136 and icmp[1] == 0
    flags = struct.unpack("!I", icmp[4:8])[0]
    assert flags == 0x20000000  # Override set, Router and Solicited clear
    # a correct checksum makes the sum over pseudo-header and message 0xffff, i.e. reference 0
    assert reference_checksum(LINK_LOCAL, IPv6Address("ff02::1"), icmp) == 0


@pytest.mark.parametrize("target", ["2001:db8::1", "fe80::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "::1"])
def test_na_checksum_holds_for_other_addresses(target: str) -> None:
    address = IPv6Address(target)
    frame = unsolicited_na_frame(MAC, address, address)
    assert frame == na_layout(MAC, address, address)


def test_frames_refuse_a_mac_that_is_not_ethernet() -> None:
    with pytest.raises(NetError, match="6-byte"):
        gratuitous_arp_frame(b"\x01\x02\x03\x04", VIP4)
    with pytest.raises(NetError, match="6-byte"):
        unsolicited_na_frame(b"", VIP6, VIP6)


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_gratuitous_arp_and_na_with_good_checksum(tmp_path: Path) -> None:
    path = tmp_path / "announce.pcap"
    path.write_bytes(_pcap([gratuitous_arp_frame(MAC, VIP4), unsolicited_na_frame(MAC, VIP6, LINK_LOCAL)]))
    summary = subprocess.run(
        ["tshark", "-n", "-r", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Gratuitous ARP for 10.0.0.100 (Request)" in summary
    assert "Neighbor Advertisement 2001:db8::100 (ovr) is at 1a:5c:d5:e6:b6:37" in summary
    detail = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-V", "-Y", "icmpv6"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "Hop Limit: 255" in detail
    checksum_lines = [line for line in detail.splitlines() if line.strip().startswith("Checksum:")]
    assert checksum_lines and all("[correct]" in line for line in checksum_lines)
