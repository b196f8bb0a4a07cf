"""Which interface reaches a DR real server: the kernel's own route lookup, through netlink.

DR sends the unchanged packet to the real server's MAC address, so the real
server must be on a directly connected network (IPVS refuses otherwise too);
asking the kernel keeps us right when routes change between applies.

The answers are kept from one apply to the next while nothing about routing
changed: a socket subscribed to rtnetlink's link, address, route and rule
groups says whether anything did (its messages are counted, not read). Asking
again at every apply cost about 1 ms per real server (pyroute2 opens a socket
and decodes two answers each time): 3.5 s per apply for 1,000 DR servers.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from .model import DataPlaneError

# rtnetlink multicast groups (linux/rtnetlink.h): links, addresses, routes and policy rules of both families
ROUTING_GROUPS = (0x1  # RTMGRP_LINK
                  | 0x10 | 0x40  # RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE
                  | 0x100 | 0x400  # RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE
                  | 1 << (8 - 1) | 1 << (19 - 1))  # RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE


class RoutingWatch:
    """Whether routing may have changed since the last call: a subscribed rtnetlink socket, drained unread.

    When the socket cannot be made (or its buffer overflowed, ENOBUFS), the
    answer is yes: the caller then asks the kernel again, as before.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._failed = False

    def start(self) -> None:
        """Watch from now on (before the lookups whose answers are kept)."""
        if self._sock is not None or self._failed:
            return
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
            sock.bind((0, ROUTING_GROUPS))
        except OSError:
            self._failed = True
            return
        self._sock = sock

    def changed(self) -> bool:
        if self._sock is None:
            return True  # not watched
        seen = False
        while True:
            try:
                if not self._sock.recv(65536):
                    return True
                seen = True
            except BlockingIOError:
                return seen
            except OSError as exc:  # ENOBUFS: messages were lost, so something changed
                if exc.errno != errno.ENOBUFS:
                    self.close()
                    self._failed = True
                return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class RouteFinder:
    """`ip route get ADDRESS` answers, kept while routing does not change (module docstring).

    `forget()` at the start of each apply drops them if anything changed;
    `release()` at its end closes the netlink connection the lookups shared.
    """

    def __init__(self) -> None:
        self._devices: dict[str, str] = {}
        self._watch = RoutingWatch()
        self._ipr: Any = None

    def forget(self) -> None:
        if self._devices and self._watch.changed():
            self._devices.clear()

    def release(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def close(self) -> None:
        self.release()
        self._watch.close()

    def device_for(self, address: str) -> str:
        device = self._devices.get(address)
        if device is None:
            self._watch.start()
            device = self._devices[address] = self._lookup(address)
        return device

    def _lookup(self, address: str) -> str:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        try:
            if self._ipr is None:
                self._ipr = IPRoute()
            ipr = self._ipr
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
