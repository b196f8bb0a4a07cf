"""The IPIP devices TUN forwarding sends through, one per real server, named after its address.

nftables cannot encapsulate; `dup to SERVER device pktXXXXXXXX` hands the
packet to an IPIP device whose remote end is that server, and the kernel
wraps it. The devices are ours (prefix `pkt`), made when a TUN real server
appears and removed when it leaves or we stop. Each one's MTU (its
interface's less the 20-byte outer header) is read at every `want`: TUN from
ingress (nft_forward) sends a packet longer than that to the copy path.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct

from .model import DataPlaneError

log = logging.getLogger("pykeepalived.lvs")
PREFIX = "pkt"
SIOCGIFMTU = 0x8921


class Tunnels:
    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.made: set[str] = set()
        self.mtus: dict[str, int] = {}  # device -> its MTU when `want` last ran

    @staticmethod
    def name_for(address: str) -> str:
        return f"{PREFIX}{int(ipaddress.IPv4Address(address)):08x}"

    def want(self, addresses: list[str]) -> None:
        """Make sure an up IPIP device exists towards each address."""
        self.wanted = {self.name_for(a) for a in addresses}
        for address in addresses:
            name = self.name_for(address)
            if name not in self.made:
                self._make(name, address)
                self.made.add(name)
        self.mtus = {name: self._mtu(name) for name in self.wanted}

    def mtu_for(self, address: str) -> int:
        """The MTU of the IPIP device towards `address` when `want` last ran (0: none made)."""
        return self.mtus.get(self.name_for(address), 0)

    @staticmethod
    def _mtu(name: str) -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock, SIOCGIFMTU, struct.pack("16si", name.encode(), 0))
        return int(struct.unpack("16si", answer)[1])

    def release_unwanted(self) -> None:
        for name in sorted(self.made - self.wanted):
            self._remove(name)
            self.made.discard(name)

    @staticmethod
    def _make(name: str, address: str) -> None:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        try:
            with IPRoute() as ipr:
                if not ipr.link_lookup(ifname=name):
                    ipr.link("add", ifname=name, kind="ipip", ipip_remote=address)
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
        except NetlinkError as exc:
            hint = " (this kernel has no IPIP tunnels: CONFIG_NET_IPIP)" if exc.code == 95 else ""
            raise DataPlaneError(f"cannot make the IPIP device {name} towards {address}: {exc}{hint}") from exc

    @staticmethod
    def _remove(name: str) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            with IPRoute() as ipr:
                for index in ipr.link_lookup(ifname=name):
                    ipr.link("del", index=index)
        except NetlinkError as exc:
            log.warning("cannot remove the IPIP device %s: %s", name, exc)
