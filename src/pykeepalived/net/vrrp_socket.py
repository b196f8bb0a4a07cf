"""The raw IP protocol 112 socket VRRP adverts travel on, one per interface and family.

The kernel builds the IP header (no IP_HDRINCL), so what we set is what RFC
5798 asks of it: TTL / hop limit 255 (receivers drop anything else; unicast
adverts: unicast_ttl, else 255 on IPv4 and the kernel's default on IPv6, as
keepalived 2.2.7 sends them), and, as
keepalived does, DSCP CS6 (TOS / traffic class 0xc0, IPTOS_PREC_INTERNETCONTROL)
and no DF bit on IPv4.

Choosing the source address: the socket is *not* bound to it. An IPv4 raw
socket bound to a local address only receives datagrams sent to that
address, which would silence every multicast advert; so the source goes in
an IP_PKTINFO / IPV6_PKTINFO control message with every send instead, which
has the same effect on the wire and also survives the address appearing
later (an IPv6 link-local still doing DAD, a unicast_src_ip added by a
script).

Receiving: IP_MULTICAST_ALL / IPV6_MULTICAST_ALL are switched off so that
only the group joined here is delivered (Linux otherwise hands a raw socket
every group any socket joined), multicast loop is off so we never read our
own adverts, and the socket is bound to its device. IPv4 hands over the
whole datagram (the caller reads TTL and addresses from the header); IPv6
hands over the VRRP PDU only, with destination and hop limit from control
messages.

IPv6: IPV6_CHECKSUM is not set: the VRRP codec computes the checksum itself.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from . import NetError

__all__ = ["IPPROTO_VRRP", "ReceivedPacket", "VrrpSocket"]

IPPROTO_VRRP = 112
IPTOS_PREC_INTERNETCONTROL = 0xC0
VRRP_TTL = 255
RCVBUF_BYTES = 1 << 18
_MAX_DATAGRAM = 65535
_CMSG_BYTES = 256
# Not all of these are exported by Python's socket module (linux/in.h, linux/in6.h).
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IP_PKTINFO = 8
IP_MULTICAST_ALL = 49
IPV6_MULTICAST_ALL = 29

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class ReceivedPacket:
    """One datagram read from a VrrpSocket.

    data: IPv4: the whole datagram incl. IP header (as the raw socket gives it);
          IPv6: the VRRP PDU only.
    dst:  IPv6: from IPV6_PKTINFO; IPv4: the header's destination.
    hop_limit: IPv6: from IPV6_HOPLIMIT; IPv4: None (the TTL is in the header).
    """

    data: bytes
    family: int  # 4 or 6
    src: IPAddress
    dst: IPAddress
    hop_limit: int | None
    ifindex: int


def _version(family: int) -> int:
    if family in (4, socket.AF_INET):
        return 4
    if family in (6, socket.AF_INET6):
        return 6
    raise NetError(f"unknown address family {family}")


def _strip_scope(text: str) -> str:
    return text.split("%", 1)[0]


class VrrpSocket:
    """A raw socket for IP protocol 112 on one interface.

    SO_BINDTODEVICE, joined to the multicast group (IP_ADD_MEMBERSHIP with
    ip_mreqn/ifindex; IPV6_JOIN_GROUP), multicast loop off, TTL/hop limit 255
    for multicast and unicast (or the `ttl` given to send()), IPv4 TOS / IPv6 traffic class 0xc0; the kernel
    builds the IP header. Non-blocking, with a large enough receive buffer:
    register `fileno()` with the event loop and call `receive()` until None.
    """

    def __init__(self, sock: socket.socket, version: int, ifname: str, ifindex: int, source: IPAddress | None) -> None:
        """Use `VrrpSocket.open()`; this only takes ownership of a configured socket."""
        self._sock = sock
        self._version = version
        self._ifname = ifname
        self._ifindex = ifindex
        self._source = source

    @classmethod
    def open(
        cls,
        family: int,
        ifname: str,
        *,
        source: IPAddress | None,
        group: IPAddress | None,
        ttl: int = VRRP_TTL,
        rcvbuf_bytes: int = RCVBUF_BYTES,
    ) -> VrrpSocket:
        """Open the socket; `source`: adverts leave from it; `group` None: unicast only."""
        version = _version(family)
        what = f"cannot open a VRRP IPv{version} socket on {ifname}"
        for name, value in (("source", source), ("group", group)):
            if value is not None and value.version != version:
                raise NetError(f"{what}: {name} {value} is not IPv{version}")
        if group is not None and not group.is_multicast:
            raise NetError(f"{what}: group {group} is not a multicast address")
        if not 1 <= ttl <= 255:
            raise NetError(f"{what}: TTL {ttl} outside 1..255")
        try:
            ifindex = socket.if_nametoindex(ifname)
        except OSError:
            raise NetError(f"{what}: no such interface") from None
        af = socket.AF_INET if version == 4 else socket.AF_INET6
        try:
            sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        except OSError as exc:
            raise NetError(f"{what}: {os.strerror(exc.errno or errno.EPERM)}") from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
            if version == 4:
                _setup_ipv4(sock, ifindex, group, ttl)
            else:
                _setup_ipv6(sock, ifindex, group, ttl)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise NetError(f"{what}: {os.strerror(exc.errno or errno.EINVAL)}") from exc
        return cls(sock, version, ifname, ifindex, source)

    @property
    def ifname(self) -> str:
        return self._ifname

    @property
    def ifindex(self) -> int:
        return self._ifindex

    @property
    def family(self) -> int:
        """4 or 6."""
        return self._version

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, pdu: bytes, dst: IPAddress, *, ttl: int | None = None) -> None:
        """Send one VRRP PDU to `dst` (the group or a unicast peer); the kernel adds the IP header.

        ttl: this packet's TTL / hop limit instead of the socket's (unicast_ttl);
        -1 on IPv6 is the interface's default hop limit (net.ipv6.conf.IF.hop_limit,
        what keepalived's IPv6 unicast adverts get without unicast_ttl).
        """
        if dst.version != self._version:
            raise NetError(f"cannot send a VRRP packet to {dst} on an IPv{self._version} socket")
        if ttl is not None and not (1 <= ttl <= 255 or (ttl == -1 and self._version == 6)):
            raise NetError(f"cannot send a VRRP packet to {dst}: TTL {ttl} outside 1..255")
        try:
            if self._version == 4:
                ancillary = []
                if self._source is not None:
                    pktinfo = struct.pack("=i4s4s", self._ifindex, self._source.packed, bytes(4))
                    ancillary.append((socket.IPPROTO_IP, IP_PKTINFO, pktinfo))
                if ttl is not None:
                    ancillary.append((socket.IPPROTO_IP, socket.IP_TTL, struct.pack("=i", ttl)))
                self._sock.sendmsg([pdu], ancillary, 0, (str(dst), 0))
            else:
                source = self._source.packed if self._source is not None else bytes(16)
                pktinfo = struct.pack("=16sI", source, self._ifindex)
                scope = self._ifindex if dst.is_link_local or dst.is_multicast else 0
                ancillary6 = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
                if ttl == -1:
                    ttl = _default_hop_limit(self._ifname)
                if ttl is not None:
                    ancillary6.append((socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", ttl)))
                self._sock.sendmsg([pdu], ancillary6, 0, (str(dst), 0, 0, scope))
        except OSError as exc:
            reason = os.strerror(exc.errno or errno.EIO)
            raise NetError(f"cannot send a VRRP packet to {dst} on {self._ifname}: {reason}") from exc

    def receive(self) -> ReceivedPacket | None:
        """One packet, or None if nothing is waiting."""
        while True:
            try:
                data, ancillary, flags, address = self._sock.recvmsg(_MAX_DATAGRAM, _CMSG_BYTES)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                reason = os.strerror(exc.errno or errno.EIO)
                raise NetError(f"cannot receive VRRP packets on {self._ifname}: {reason}") from exc
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                continue  # cannot happen with these buffer sizes; never hand over half a packet
            packet = self._decode(data, ancillary, address)
            if packet is not None:
                return packet

    def _decode(self, data: bytes, ancillary: list[tuple[int, int, bytes]], address: object) -> ReceivedPacket | None:
        src = ip_address(_strip_scope(address[0])) if isinstance(address, tuple) else None
        ifindex = self._ifindex
        if self._version == 4:
            if len(data) < 20 or src is None:
                return None
            for level, kind, value in ancillary:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    ifindex = struct.unpack_from("=i", value)[0]
            return ReceivedPacket(data, 4, src, IPv4Address(data[16:20]), None, ifindex)
        dst: IPAddress | None = None
        hop_limit: int | None = None
        for level, kind, value in ancillary:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == socket.IPV6_PKTINFO and len(value) >= 20:
                dst = IPv6Address(value[:16])
                ifindex = struct.unpack_from("=I", value, 16)[0]
            elif kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                hop_limit = struct.unpack_from("=i", value)[0]
        if src is None or dst is None:
            return None
        return ReceivedPacket(data, 6, src, dst, hop_limit, ifindex)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> VrrpSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _default_hop_limit(ifname: str) -> int | None:
    """The interface's default IPv6 hop limit (None: unreadable, the socket's then)."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/hop_limit") as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return value if 1 <= value <= 255 else None


def _setup_ipv4(sock: socket.socket, ifindex: int, group: IPAddress | None, ttl: int) -> None:
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IPTOS_PREC_INTERNETCONTROL)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    # struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}: choose the interface by index.
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("=4s4si", bytes(4), bytes(4), ifindex))
    if group is not None:
        mreqn = struct.pack("=4s4si", group.packed, bytes(4), ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)


def _setup_ipv6(sock: socket.socket, ifindex: int, group: IPAddress | None, ttl: int) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, IPTOS_PREC_INTERNETCONTROL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    except OSError as exc:  # kernels before 4.20; the bound device still limits what arrives
        if exc.errno != errno.ENOPROTOOPT:
            raise
    if group is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group.packed + struct.pack("=I", ifindex))
