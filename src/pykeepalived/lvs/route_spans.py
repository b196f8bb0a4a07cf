"""The router's routes to clients as disjoint address spans: what a stateless reply sent from ingress needs.

A reply taken at the ingress hook (nft_forward) never reaches the IP stack,
so nothing routes it: the chain itself must name the next hop and the
device (`fwd ip to HOP device DEV`). nftables has no route lookup that
answers with a gateway, but interval maps can hold one: address -> next hop
and address -> interface. Those maps refuse overlapping elements, while a
routing table is made of nested prefixes resolved by the longest match, so
the table is flattened here into disjoint spans, each with the route that
wins over it.

Only what a plain routing table says can be copied this way, so `flatten`
refuses (RoutesRefused, with the reason) what it cannot express: multipath
routes, two routes to one prefix with the same metric, more than
MAX_ROUTES routes (a full BGP table would be a map of a million spans,
rebuilt at every change). Policy rules and a non-empty table `default` are
refused by the caller that reads them (routes.py). Addresses a packet from
ingress must not be sent to by this path (multicast, broadcast, loopback,
IPv6 link-local) and routes that do not forward (blackhole, unreachable,
prohibit, throw, through a device that is down or not ours to send on)
leave holes: a reply to such an address misses the maps and goes to the IP
stack, which does what the route says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .model import DataPlaneError

MAX_ROUTES = 64

# never sent from ingress: multicast, broadcast and reserved (IPv4 224/3), loopback, "this network", IPv6's
# link-local (every interface has a route to fe80::/64, so its routes would tie) and multicast
HOLES = {4: ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"),
         6: ("::/127", "::ffff:0:0/96", "fe80::/10", "ff00::/8")}


class RoutesRefused(DataPlaneError):
    """The routing table cannot be copied into interval maps; the message says why."""


@dataclass(frozen=True)
class Route:
    """One route of the main table, as far as forwarding a reply needs it."""

    network: str  # "10.0.0.0/8", "::/0"
    metric: int
    forwards: bool  # a unicast route through an interface we may send on (else a hole: module docstring)
    gateway: str | None  # None: the destination itself is on the link
    ifindex: int
    device: str
    multipath: bool = False


@dataclass(frozen=True)
class Span:
    """Addresses first..last (inclusive) go to `gateway` (None: to themselves) through interface `ifindex`."""

    first: str
    last: str
    gateway: str | None
    ifindex: int
    device: str


Target = tuple[str | None, int, str] | None  # (gateway, ifindex, device), or a hole


def flatten(routes: Iterable[Route], version: int) -> tuple[Span, ...]:
    """The spans the longest-prefix match of `routes` gives, holes left out (RoutesRefused: module docstring)."""
    holes = [ipaddress.ip_network(h) for h in HOLES[version]]
    best: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, tuple[int, Target]] = {}
    count = 0
    for route in routes:
        network = ipaddress.ip_network(route.network, strict=False)
        if network.version != version or any(_within(network, hole) for hole in holes):
            continue
        count += 1
        if count > MAX_ROUTES:
            raise RoutesRefused(f"more than {MAX_ROUTES} routes in the main table")
        if route.multipath:
            raise RoutesRefused(f"the route to {network} has several next hops")
        target: Target = (route.gateway, route.ifindex, route.device) if route.forwards else None
        kept = best.get(network)
        if kept is not None and kept[0] == route.metric and kept[1] != target:
            raise RoutesRefused(f"two routes to {network} have the same metric {route.metric}")
        if kept is None or route.metric < kept[0]:
            best[network] = (route.metric, target)
    painted: list[tuple[int, int, Target]] = []
    for network, (_, target) in sorted(best.items(), key=lambda item: item[0].prefixlen):
        painted = _paint(painted, int(network.network_address), int(network.broadcast_address), target)
    for hole in holes:
        painted = _paint(painted, int(hole.network_address), int(hole.broadcast_address), None)
    return tuple(Span(_text(first, version), _text(last, version), *target)
                 for first, last, target in _merged(painted) if target is not None)


def _within(network: ipaddress.IPv4Network | ipaddress.IPv6Network,
            hole: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return (network.version == hole.version and network.prefixlen >= hole.prefixlen
            and network.network_address in hole)


def _paint(spans: Sequence[tuple[int, int, Target]], first: int, last: int,
           target: Target) -> list[tuple[int, int, Target]]:
    """`spans` with first..last given to `target`, over whatever was there (a more specific route wins)."""
    out: list[tuple[int, int, Target]] = []
    for start, end, old in spans:
        if end < first or start > last:
            out.append((start, end, old))
            continue
        if start < first:
            out.append((start, first - 1, old))
        if end > last:
            out.append((last + 1, end, old))
    out.append((first, last, target))
    out.sort(key=lambda span: span[0])
    return out


def _merged(spans: Sequence[tuple[int, int, Target]]) -> list[tuple[int, int, Target]]:
    """Neighbouring spans with the same target as one (fewer map elements)."""
    out: list[tuple[int, int, Target]] = []
    for start, end, target in spans:
        if out and out[-1][1] + 1 == start and out[-1][2] == target:
            out[-1] = (out[-1][0], end, target)
        else:
            out.append((start, end, target))
    return out


def _text(value: int, version: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))
