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
from .route_spans import Route, RoutesRefused, Span, flatten

# rtnetlink multicast groups (linux/rtnetlink.h) that can change what `ip route get` answers: links (a device
# down or renamed), and each family's routes and policy rules. Not addresses: an address that matters brings its
# routes (and IPv6's come and go with router advertisements)
LINK_GROUPS = 0x1  # RTMGRP_LINK
FAMILY_GROUPS = {4: 0x40 | 1 << (8 - 1),  # RTMGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE
                 6: 0x400 | 1 << (19 - 1)}  # RTMGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE


MAIN_TABLE, DEFAULT_TABLE, LOCAL_TABLE = 254, 253, 255
RTN_UNICAST = 1
RTNH_F_DEAD = 1
FR_ACT_TO_TBL = 1
# the rules every table has: (version, priority, table)
DEFAULT_RULES = {(4, 0, LOCAL_TABLE), (4, 32766, MAIN_TABLE), (4, 32767, DEFAULT_TABLE),
                 (6, 0, LOCAL_TABLE), (6, 32766, MAIN_TABLE)}
PLAIN_RULE_ATTRS = {"FRA_TABLE", "FRA_PRIORITY", "FRA_SUPPRESS_PREFIXLEN", "FRA_PROTOCOL"}


def _default_rule(rule: Any, version: int) -> bool:
    """One of the rules the kernel makes, untouched: no selector, its own priority and table."""
    table = rule.get_attr("FRA_TABLE") or rule["table"]
    if rule["action"] != FR_ACT_TO_TBL or rule["src_len"] or rule["dst_len"] or rule["tos"]:
        return False
    if any(name not in PLAIN_RULE_ATTRS for name, _ in rule["attrs"]):
        return False
    return (version, rule.get_attr("FRA_PRIORITY") or 0, table) in DEFAULT_RULES


def _answer(spans: tuple[Span, ...] | RoutesRefused) -> tuple[Span, ...] | str:
    """What a client_spans answer says, comparable: the spans, or why they were refused."""
    return str(spans) if isinstance(spans, RoutesRefused) else spans


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
        # (IP version, the interfaces we send on) -> the main table's spans, or why it cannot be copied
        self._spans: dict[tuple[int, frozenset[str]], tuple[Span, ...] | RoutesRefused] = {}
        self._watch = RoutingWatch()
        self._ipr: Any = None

    def forget(self) -> None:
        if (self._devices or self._spans) and self._watch.changed():
            self._devices.clear()
            self._spans.clear()

    def spans_moved(self) -> bool:
        """Whether the client spans asked for since the last apply are now different (the repair check's question).

        Routing messages (a route added, a link down, an interface made
        again under another index) say that something may have changed;
        the spans are then read again and compared, so a message that
        changes nothing we copied (an IPv6 route's lifetime renewed) moves
        nothing.
        """
        if not self._spans or not self._watch.changed():
            return False
        old = dict(self._spans)
        self._devices.clear()
        self._spans.clear()
        moved = False
        for (version, devices), before in old.items():
            try:
                new: tuple[Span, ...] | RoutesRefused = self.client_spans(version, devices)
            except RoutesRefused as exc:
                new = exc
            moved = moved or _answer(new) != _answer(before)
        self.release()
        return moved

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
            self._watched(6 if ":" in address else 4)
            try:
                device = self._devices[address] = self._lookup(address)
            except DataPlaneError as exc:
                self._devices[address] = exc
                raise
        if isinstance(device, DataPlaneError):
            raise DataPlaneError(str(device))
        return device

    def _watched(self, version: int) -> None:
        """Watch `version`'s routing before a lookup whose answer is kept; watched afresh, what was kept goes."""
        if not self._watch.start(version):
            self._devices.clear()
            self._spans.clear()

    def client_spans(self, version: int, devices: frozenset[str]) -> tuple[Span, ...]:
        """The main table flattened for replies sent from ingress through `devices` (route_spans.flatten).

        RoutesRefused when it cannot be copied: policy rules besides the
        default ones, routes in table `default`, or what `flatten` refuses.
        Kept, the refusal too, while routing does not change.
        """
        key = (version, devices)
        spans = self._spans.get(key)
        if spans is None:
            self._watched(version)
            for stale in [k for k in self._spans if k[0] == version]:  # the interfaces were others then
                del self._spans[stale]
            try:
                spans = self._spans[key] = flatten(self._main_routes(version, devices), version)
            except RoutesRefused as exc:
                self._spans[key] = exc
                raise
        if isinstance(spans, RoutesRefused):
            raise RoutesRefused(str(spans))
        return spans

    def _main_routes(self, version: int, devices: frozenset[str]) -> list[Route]:
        from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

        family = socket.AF_INET if version == 4 else socket.AF_INET6
        try:
            ipr = self._connection()
            for rule in ipr.get_rules(family=family):
                if not _default_rule(rule, version):
                    raise RoutesRefused(f"policy routing rule {rule.get_attr('FRA_PRIORITY') or 0} "
                                        f"(only local, main and default are followed)")
            found: list[Route] = []
            names: dict[int, str] = {}
            for msg in ipr.route("dump", family=family):
                table = msg.get_attr("RTA_TABLE") or msg["table"]
                if table == DEFAULT_TABLE:
                    raise RoutesRefused("table default holds routes (only main is followed)")
                if table != MAIN_TABLE or msg["flags"] & RTNH_F_DEAD:
                    continue
                if msg.get_attr("RTA_NH_ID") is not None:
                    raise RoutesRefused("a route uses a nexthop object (ip nexthop), which is not copied")
                if msg["tos"] or msg["src_len"]:
                    raise RoutesRefused("a route selects by TOS or source, which interval maps cannot")
                dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if version == 4 else "::")
                oif = msg.get_attr("RTA_OIF") or 0
                if oif and oif not in names:
                    try:
                        names[oif] = socket.if_indextoname(oif)
                    except OSError:
                        names[oif] = ""
                device = names.get(oif, "")
                # a hole where fwd would do it wrong: an IPv6 next hop for IPv4 (RTA_VIA), a route's own MTU
                # (fwd checks none; the stack sends "fragmentation needed")
                metrics = msg.get_attr("RTA_METRICS")
                own_mtu = metrics is not None and bool(metrics.get_attr("RTAX_MTU"))
                forwards = (msg["type"] == RTN_UNICAST and device in devices and not own_mtu
                            and msg.get_attr("RTA_VIA") is None)
                found.append(Route(network=f"{dst}/{msg['dst_len']}", metric=msg.get_attr("RTA_PRIORITY") or 0,
                                   forwards=forwards,
                                   gateway=msg.get_attr("RTA_GATEWAY"), ifindex=oif, device=device,
                                   multipath=msg.get_attr("RTA_MULTIPATH") is not None))
            return found
        except (NetlinkError, OSError) as exc:
            raise RoutesRefused(f"cannot read the routing table: {exc}") from exc

    def _connection(self) -> Any:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]

        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def _lookup(self, address: str) -> str:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            ipr = self._connection()
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
