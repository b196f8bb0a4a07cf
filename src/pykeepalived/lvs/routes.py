"""Which interface reaches a DR real server: the kernel's own route lookup, through netlink.

DR sends the unchanged packet to the real server's MAC address, so the real
server must be on a directly connected network (IPVS refuses otherwise too);
asking the kernel keeps us right when routes change between applies.
"""

from __future__ import annotations

from .model import DataPlaneError


class RouteFinder:
    """`ip route get ADDRESS` answers, cached for one apply."""

    def __init__(self) -> None:
        self._devices: dict[str, str] = {}

    def forget(self) -> None:
        self._devices.clear()

    def device_for(self, address: str) -> str:
        if address not in self._devices:
            self._devices[address] = self._lookup(address)
        return self._devices[address]

    @staticmethod
    def _lookup(address: str) -> str:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        try:
            with IPRoute() as ipr:
                routes = ipr.route("get", dst=address)
                if not routes:
                    raise DataPlaneError(f"no route to real server {address}")
                route = routes[0]
                if route.get_attr("RTA_GATEWAY"):
                    raise DataPlaneError(f"real server {address} is reached through a gateway; DR needs it on a "
                                         "directly connected network")
                links = ipr.get_links(route.get_attr("RTA_OIF"))
                return str(links[0].get_attr("IFLA_IFNAME"))
        except NetlinkError as exc:
            raise DataPlaneError(f"no route to real server {address}: {exc}") from exc
