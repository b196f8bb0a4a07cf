"""use_ipvlan: the ipvlan interface a VRRP instance sends from, made as keepalived 2.2.7 makes it.

keepalived 2.2.7 (vrrp_vmac.c netlink_link_add_ipvlan): an ipvlan in mode L2
with IFLA_IPVLAN_FLAGS bridge (0), private (1) or vepa (2) on the instance's
interface, created up, enslaved to the interface's VRF master if it has one;
IPv6 disabled on it for an IPv4 instance without eVIPs of the other family;
the configured address (with its prefix) added to it. An interface of that
name left by an earlier run is made afresh; one that is not an ipvlan is
never touched. On stop ours are deleted.

pyroute2 does not encode IFLA_IPVLAN_FLAGS, so the RTM_NEWLINK request is
built here (`newlink_request`, checked by a unit test against pyroute2's
decoder) and sent on a plain NETLINK_ROUTE socket.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from . import NetError
from .rtnl import RtnlHandle, link_kind, netlink_reason
from .devconf import write_conf

__all__ = ["IpvlanManager", "newlink_request"]

RTM_NEWLINK = 16
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_IFNAME, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO = 3, 5, 10, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_IPVLAN_MODE, IFLA_IPVLAN_FLAGS = 1, 2
IPVLAN_MODE_L2 = 0
IFF_UP = 0x1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def newlink_request(name: str, base_index: int, flags: int, master_index: int | None, seq: int) -> bytes:
    """RTM_NEWLINK (create, exclusive, up) for an L2 ipvlan `name` on `base_index` with IFLA_IPVLAN_FLAGS `flags`."""
    data = _attr(IFLA_IPVLAN_MODE, struct.pack("=H", IPVLAN_MODE_L2)) \
        + _attr(IFLA_IPVLAN_FLAGS, struct.pack("=H", flags))
    linkinfo = _attr(IFLA_INFO_KIND, b"ipvlan") + _attr(IFLA_INFO_DATA, data)
    attrs = _attr(IFLA_LINK, struct.pack("=I", base_index)) + _attr(IFLA_IFNAME, name.encode() + b"\0") \
        + _attr(IFLA_LINKINFO, linkinfo)
    if master_index:
        attrs += _attr(IFLA_MASTER, struct.pack("=I", master_index))
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attrs
    header = struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK,
                         NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, 0)
    return header + body


def _talk(request: bytes, seq: int) -> None:
    """Send one request and wait for its acknowledgement; a NetError with the kernel's reason if refused."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(5.0)
        sock.bind((0, 0))
        sock.send(request)
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind, _, mseq, _ = struct.unpack_from("=IHHII", data, offset)
                if kind == NLMSG_ERROR and mseq == seq:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        raise NetError(os.strerror(-code))
                    return
                offset += max(16, (length + 3) & ~3)




class IpvlanManager(RtnlHandle):
    """Creates and deletes the ipvlan interfaces of this process; open() inside the running loop."""

    def __init__(self) -> None:
        super().__init__()
        self._ours: list[str] = []
        self._seq = 1

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(self._ours)

    async def link(self, ifname: str) -> Any | None:
        if self._ipr is None:
            raise NetError("IpvlanManager is not open")
        try:
            links = await self._ipr.link("get", ifname=ifname)
        except NetlinkError as exc:
            if getattr(exc, "code", 0) in (errno.ENODEV, errno.EINVAL, errno.ERANGE):
                return None
            raise NetError(f"cannot look up interface {ifname}: {netlink_reason(exc)}") from exc
        return links[0] if links else None

    async def create(self, name: str, base: str, flags: int, address: IPv4Interface | IPv6Interface | None, *,
                     ipv6: bool) -> int:
        """Make (or remake) the ipvlan `name` on `base`, up, with `address`; returns its index.

        ipv6: keep IPv6 on it (an IPv6 instance, or eVIPs of the other family)."""
        what = f"cannot create ipvlan interface {name} on {base}"
        base_link = await self.link(base)
        if base_link is None:
            raise NetError(f"{what}: no interface '{base}'")
        old = await self.link(name)
        if old is not None:
            if link_kind(old) != "ipvlan":
                raise NetError(f"{what}: {name} exists and is not an ipvlan")
            try:  # an earlier run's: make it afresh
                await self._ipr.link("del", index=old["index"])
            except (NetlinkError, OSError) as exc:
                raise NetError(f"{what}: cannot remove the old {name}: {netlink_reason(exc)}") from exc
        master = base_link.get_attr("IFLA_MASTER")
        master_index = int(master) if master and await self._is_vrf(int(master)) else None
        self._seq += 1
        try:
            _talk(newlink_request(name, int(base_link["index"]), flags, master_index, self._seq), self._seq)
        except NetError as exc:
            raise NetError(f"{what}: {exc}") from exc
        except OSError as exc:
            raise NetError(f"{what}: {netlink_reason(exc)}") from exc
        self._ours.append(name)
        link = await self.link(name)
        if link is None:
            raise NetError(f"{what}: it vanished")
        index = int(link["index"])
        write_conf(6, name, "disable_ipv6", "0" if ipv6 else "1")
        if address is not None:
            family = socket.AF_INET if address.version == 4 else socket.AF_INET6
            try:
                await self._ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                                     family=family)
            except NetlinkError as exc:
                if getattr(exc, "code", 0) != errno.EEXIST:
                    raise NetError(f"{what}: cannot add {address}: {netlink_reason(exc)}") from exc
        return index

    async def _is_vrf(self, index: int) -> bool:
        try:
            links = await self._ipr.link("get", index=index)
        except (NetlinkError, OSError):
            return False
        return bool(links) and link_kind(links[0]) == "vrf"

    async def remove(self, name: str) -> None:
        """Delete an ipvlan of ours; gone already is fine."""
        if name not in self._ours:
            return
        self._ours.remove(name)
        link = await self.link(name)
        if link is None or link_kind(link) != "ipvlan":
            return
        try:
            await self._ipr.link("del", index=link["index"])
        except NetlinkError as exc:
            if getattr(exc, "code", 0) not in (errno.ENODEV, errno.ENOENT):
                raise NetError(f"cannot remove ipvlan interface {name}: {netlink_reason(exc)}") from exc
