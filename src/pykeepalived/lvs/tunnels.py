"""The IPIP devices TUN forwarding sends through, one per real server, named after its address.

nftables cannot encapsulate; `dup to SERVER device pktXXXXXXXX` hands the
packet to an IPIP device whose remote end is that server, and the kernel
wraps it. The devices are ours (prefix `pkt`), made when a TUN real server
appears and removed when it leaves or we stop.
"""

from __future__ import annotations

import ipaddress
import logging

from .model import DataPlaneError

log = logging.getLogger("pykeepalived.lvs")
PREFIX = "pkt"


class Tunnels:
    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.made: set[str] = set()

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
