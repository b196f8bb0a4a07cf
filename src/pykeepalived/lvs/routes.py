"""Which interface reaches a DR real server: the kernel's own route lookup, through netlink.

DR sends the unchanged packet to the real server's MAC address, so the real
server must be on a directly connected network (IPVS refuses otherwise too);
asking the kernel keeps us right when routes change between applies.

The answers are kept from one apply to the next while nothing about routing
changed: a socket subscribed to rtnetlink's link group and the route and rule
groups of the families asked about says whether anything did (its messages
are counted, not read). Asking
again at every apply cost about 1 ms per real server (pyroute2 opens a socket
and decodes two answers each time): 3.5 s per apply for 1,000 DR servers.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from .model import DataPlaneError

# rtnetlink multicast groups (linux/rtnetlink.h) that can change what `ip route get` answers: links (a device
# down or renamed), and each family's routes and policy rules. Not addresses: an address that matters brings its
# routes (and IPv6's come and go with router advertisements)
LINK_GROUPS = 0x1  # RTMGRP_LINK
FAMILY_GROUPS = {4: 0x40 | 1 << (8 - 1),  # RTMGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE
                 6: 0x400 | 1 << (19 - 1)}  # RTMGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE


class RoutingWatch:
    """Whether routing may have changed since the last call: a subscribed rtnetlink socket, drained unread.

    When the socket cannot be made (or its buffer overflowed, ENOBUFS), the
    answer is yes: the caller then asks the kernel again, as before.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._failed = False
        self._families: frozenset[int] = frozenset()

    def start(self, family: int) -> bool:
        """Watch `family`'s routing from now on (before the lookups whose answers are kept); False when the
        watch had to start afresh and what was kept before may have missed a change."""
        if self._failed or (self._sock is not None and family in self._families):
            return True
        families = self._families | {family}
        self.close()
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
            sock.bind((0, LINK_GROUPS | sum(FAMILY_GROUPS[f] for f in families)))
        except OSError:
            self._failed = True
            return False
        self._sock, self._families = sock, frozenset(families)
        return False

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
            self._families = frozenset()


class RouteFinder:
    """`ip route get ADDRESS` answers, kept while routing does not change (module docstring).

    `forget()` at the start of each apply drops them if anything changed;
    `release()` at its end closes the netlink connection the lookups shared.
    """

    def __init__(self) -> None:
        self._devices: dict[str, str | DataPlaneError] = {}  # a failure too: stateless NAT asks of routed servers
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
        """The interface `address` is reached through, directly (DataPlaneError: no route, or a gateway's).

        A failure is kept as an answer is: stateless NAT asks about every real
        server to learn whether it may `fwd` from ingress (nft_forward.takes),
        and servers behind a gateway would otherwise be asked again at each apply.
        """
        device = self._devices.get(address)
        if device is None:
            if not self._watch.start(6 if ":" in address else 4):
                self._devices.clear()  # watched afresh: what was kept is asked again
            try:
                device = self._devices[address] = self._lookup(address)
            except DataPlaneError as exc:
                self._devices[address] = exc
                raise
        if isinstance(device, DataPlaneError):
            raise DataPlaneError(str(device))
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
            return socket.if_indextoname(route.get_attr("RTA_OIF"))  # libc: pyroute2's link dump cost as much again
        except (NetlinkError, OSError) as exc:
            raise DataPlaneError(f"no route to real server {address}: {exc}") from exc
