"""What the nftables backend cannot build, and the address family of a service: the `-t` part of nft_rules.

Split from nft_rules.py so that `-t` (lvs/choose.py's dataplane_problems)
checks a config without importing the ruleset builder and what it needs
(json, hashlib through the schedulers); nft_rules re-exports every name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from ..config.model import GlobalDefs
from ..config.vocabulary import LOAD_SCHEDULERS, LbKind, Scheduler, TableScheduler
from .model import DataPlaneError, VirtualService

HASH_SCHEDULERS: Final[tuple[Scheduler, ...]] = ("sh", "dh", "mh", "lblc", "lblcr")
ROUND_SCHEDULERS: Final[tuple[TableScheduler, ...]] = ("rr", "wrr", "random")
SCHEDULERS: Final[tuple[TableScheduler, ...]] = ROUND_SCHEDULERS + HASH_SCHEDULERS + tuple(sorted(LOAD_SCHEDULERS))
MAX_GROUP_ADDRESSES = 256


class CannotExpress(DataPlaneError):
    """The config asks for something this backend cannot build; the message says what and why."""


@dataclass(frozen=True)
class Family:
    name: str  # nftables family: "ip" or "ip6"
    addr_type: str

    @property
    def payload(self) -> str:
        return self.name


IPV4 = Family("ip", "ipv4_addr")
IPV6 = Family("ip6", "ipv6_addr")
NETDEV = Family("netdev", "")  # DR/TUN from ingress (nft_forward); here so that nft.py names it without that module


# --------------------------------------------------------------------------- what a service needs
def family_of(svc: VirtualService) -> Family:
    if svc.address is not None:
        return family_of_address(svc.address)
    for entry in svc.group_entries:
        if entry.address is not None:
            return family_of_address(entry.address)
    if svc.family == 6:
        return IPV6
    for dest in svc.destinations:
        return family_of_address(dest.address)
    return IPV4


def forwarding(svc: VirtualService) -> LbKind:
    """NAT, DR or TUN for the whole service; a mix cannot be built (the chains differ in kind)."""
    methods = svc.methods
    if len(methods) > 1:
        raise CannotExpress(f"virtual server {svc.name}: real servers mix forwarding methods "
                            f"({', '.join(sorted(methods))}); the nftables backend needs one per service")
    return next(iter(methods))


def check_service(svc: VirtualService) -> None:
    """Raise CannotExpress for what the nftables backend cannot do (used by `-t` and before applying)."""
    method = forwarding(svc)
    if svc.scheduler not in SCHEDULERS:
        raise CannotExpress(f"virtual server {svc.name}: scheduler {svc.scheduler} is not known to nftables")
    if "ops" in svc.sched_flags:
        raise CannotExpress(f"virtual server {svc.name}: one-packet scheduling (ops) cannot be expressed "
                            "in nftables (conntrack pins every flow)")
    if svc.persistence_engine:
        raise CannotExpress(f"virtual server {svc.name}: persistence_engine {svc.persistence_engine} "
                            "needs IPVS's persistence engines")
    family = family_of(svc)
    for dest in svc.destinations:
        if family_of_address(dest.address) != family:
            raise CannotExpress(f"virtual server {svc.name}: real server {dest.name} is not of the "
                                "service's address family (nftables cannot translate between families)")
        if method == "TUN":
            kind = (dest.tunnel or {}).get("type", "ipip")
            if kind != "ipip":
                raise CannotExpress(f"virtual server {svc.name}: tunnel type {kind} is not supported by the "
                                    "nftables backend (ipip only)")
            if family is IPV6:
                raise CannotExpress(f"virtual server {svc.name}: TUN over IPv6 is not supported by the "
                                    "nftables backend")
    if method == "NAT" and svc.destinations:
        with_port = {bool(d.port) for d in svc.destinations}
        if len(with_port) > 1:
            raise CannotExpress(f"virtual server {svc.name}: some real servers have a port and some do not; "
                                "nftables NAT rewrites either both address and port or the address only")
    for entry in svc.group_entries:
        if entry.address_count() > MAX_GROUP_ADDRESSES:
            raise CannotExpress(f"virtual server group {svc.group}: an entry covers more than "
                                f"{MAX_GROUP_ADDRESSES} addresses")


_DOTTED_QUAD = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")


@lru_cache(maxsize=1 << 16)
def family_of_address(address: str) -> Family:
    """IPv4 or IPv6; remembered, as every apply asks again for each real server (1,000: 1 ms a time)."""
    if _DOTTED_QUAD.fullmatch(address):
        return IPV4  # the common case, without ipaddress's cost (1,000 servers: 3 ms)
    return IPV6 if ipaddress.ip_address(address).version == 6 else IPV4


# --------------------------------------------------------------------------- the scheduling mode
def consistent_flows(g: GlobalDefs) -> bool:
    """Whether persistence and DR/TUN flows choose by hash, alike on every router (nft_rules' module docstring).

    global_defs `pykeepalived_consistent_flows on|off` decides; unset, it is
    on when `lvs_sync_daemon` is configured: who asks for connection sync
    wants connections to outlive the master, and conntrackd cannot carry the
    dynamic sets that persistence and DR/TUN keep. Read once, when the
    nftables backend starts.
    """
    if g.pykeepalived_consistent_flows is not None:
        return g.pykeepalived_consistent_flows
    return g.lvs_sync_daemon is not None
