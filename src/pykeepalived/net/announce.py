"""Gratuitous ARP and unsolicited Neighbour Advertisement: telling the LAN a VIP moved.

A new master must make switches and neighbours send VIP traffic to its MAC
at once, before their caches time out. The frames are built here by pure
functions (so they can be checked byte by byte) and sent whole, Ethernet
header included, on an AF_PACKET socket: the kernel's ARP and NDP code would
neither send a request for our own address nor an unsolicited advert on cue.

Layouts follow what keepalived 2.2.7 puts on the wire:
- GARP: Ethernet broadcast, ARP request, sender = target = VIP, target
  hardware address ff:ff:ff:ff:ff:ff, no padding (42 bytes);
- NA: Ethernet 33:33:00:00:00:01, IPv6 to ff02::1 with hop limit 255 (RFC
  4861 requires it for ND), ICMPv6 type 136 with only the Override flag, the
  VIP as target and a target link-layer address option. keepalived uses the
  VIP itself as the IPv6 source; the caller chooses.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from . import NetError

__all__ = ["AnnounceSender", "gratuitous_arp_frame", "unsolicited_na_frame"]

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_BROADCAST = b"\xff" * 6
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_NA_FLAG_OVERRIDE = 0x20000000
ND_OPT_TARGET_LINKADDR = 2
ND_HOP_LIMIT = 255
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = bytes.fromhex("333300000001")


def _check_mac(mac: bytes) -> None:
    if len(mac) != 6:
        raise NetError(f"announcements need a 6-byte Ethernet MAC address, got {len(mac)} bytes")


def gratuitous_arp_frame(mac: bytes, address: IPv4Address) -> bytes:
    """Ethernet broadcast ARP request with sender = target = `address`, from `mac`."""
    _check_mac(mac)
    ethernet = ETH_BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", ARPHRD_ETHER, ETH_P_IP, 6, 4, ARPOP_REQUEST)
    arp += mac + address.packed + ETH_BROADCAST + address.packed
    return ethernet + arp


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    words: tuple[int, ...] = struct.unpack(f"!{len(data) // 2}H", data)
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def icmpv6_checksum(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """RFC 4443 checksum of an ICMPv6 message (its checksum field zero) over the IPv6 pseudo-header."""
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6)
    return ~_ones_complement_sum(pseudo + message) & 0xFFFF


def unsolicited_na_frame(mac: bytes, address: IPv6Address, source: IPv6Address) -> bytes:
    """Ethernet/IPv6 frame to all nodes: Neighbour Advertisement (Override) for `address` at `mac`."""
    _check_mac(mac)
    body = address.packed + struct.pack("!BB", ND_OPT_TARGET_LINKADDR, 1) + mac
    unsummed = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, ND_NA_FLAG_OVERRIDE) + body
    checksum = icmpv6_checksum(source, ALL_NODES, unsummed)
    icmp = struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, checksum, ND_NA_FLAG_OVERRIDE) + body
    ipv6 = struct.pack("!IHBB", 6 << 28, len(icmp), IPPROTO_ICMPV6, ND_HOP_LIMIT) + source.packed + ALL_NODES.packed
    ethernet = ALL_NODES_MAC + mac + struct.pack("!H", ETH_P_IPV6)
    return ethernet + ipv6 + icmp


class AnnounceSender:
    """AF_PACKET sockets, one per interface, opened lazily.

    Sockets are bound with protocol 0, so they receive nothing and need no
    reading. Sending never blocks: a full transmit queue is an error the
    caller logs, as a late GARP is worth little. If the interface was
    deleted and re-created since its socket was opened, the send is retried
    once on a fresh socket.
    """

    def __init__(self) -> None:
        self._sockets: dict[str, socket.socket] = {}

    def _socket(self, ifname: str) -> socket.socket:
        sock = self._sockets.get(ifname)
        if sock is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.bind((ifname, 0))
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._sockets[ifname] = sock
        return sock

    def prepare(self, ifname: str) -> None:
        """Open the interface's socket now, so that the first announcement after a takeover is not delayed."""
        try:
            self._socket(ifname)
        except OSError as exc:
            raise NetError(f"cannot open a packet socket on {ifname}: {exc.strerror}") from exc

    def _drop(self, ifname: str) -> None:
        sock = self._sockets.pop(ifname, None)
        if sock is not None:
            sock.close()

    def send(self, ifname: str, frame: bytes) -> None:
        """Send one whole Ethernet frame out of `ifname`."""
        for attempt in (1, 2):
            try:
                self._socket(ifname).send(frame)
                return
            except OSError as exc:
                self._drop(ifname)
                stale = exc.errno in (errno.ENXIO, errno.ENODEV)
                if attempt == 2 or not stale:
                    reason = "no such interface" if stale else os.strerror(exc.errno or errno.EIO)
                    raise NetError(f"cannot send an announcement on {ifname}: {reason}") from exc

    def close(self) -> None:
        for ifname in list(self._sockets):
            self._drop(ifname)

    def __enter__(self) -> AnnounceSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
