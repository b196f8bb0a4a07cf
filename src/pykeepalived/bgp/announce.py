"""Which VIPs a balancer should announce now: the tier's one rule, in one place.

An address is announced while the data plane forwards as the table says (the
table applied, no data-plane error) and every virtual server on that address
has its quorum. The first condition keeps a balancer whose kernel refuses our
rules from attracting traffic it would black-hole; the second keeps one that
has lost its real servers from taking a share of the flows while other
balancers still have theirs. An address no virtual server is on (a -t
warning) follows the first condition alone.

`Transition` orders a change: withdrawals go out before the data plane
changes, announcements only after it has applied, so that the upstream never
sends a flow to a balancer that is not ready for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..config.bgp_checks import AddressRange, in_ranges
from ..config.values import IPAddress


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    ranges: tuple[AddressRange, ...]  # the addresses the virtual server is on
    quorum: bool


def wanted(announce: Iterable[IPAddress], services: Iterable[ServiceHealth], dataplane_ok: bool) -> frozenset[str]:
    """The prefixes (`A/32`, `A/128`) to announce now."""
    if not dataplane_ok:
        return frozenset()
    services = list(services)
    out = set()
    for address in announce:
        if all(s.quorum for s in services if in_ranges(address, list(s.ranges))):
            out.add(prefix_of(address))
    return frozenset(out)


def prefix_of(address: IPAddress) -> str:
    return f"{address}/{address.max_prefixlen}"


@dataclass(frozen=True, slots=True)
class Transition:
    withdraw: tuple[str, ...]
    announce: tuple[str, ...]


def transition(live: frozenset[str], target: frozenset[str]) -> Transition:
    return Transition(tuple(sorted(live - target)), tuple(sorted(target - live)))
