"""The desired table as IPVS services and destinations, the way keepalived 2.2.7 programs them.

Pure: no netlink here. `ipvs_table` maps the checkers' table to the exact
services and destinations keepalived would put in the kernel (so that
`ipvsadm -Sn` reads the same for both), and `changes` orders the edits that
turn one such table into another. The rules were read from keepalived's
behaviour and checked against it in the qemu guest (tests/vm):

- a service per `virtual_server`, per fwmark, and per address of a
  virtual_server_group entry (ranges and prefixes expanded), each with the
  scheduler always set (`wlc` by default);
- persistence: PERSISTENT plus the timeout; a service without a port (or a
  group entry without one) is forced persistent for 360 s, as is
  `persistence_granularity` alone; the netmask is always sent (IPv4 all ones,
  IPv6 128) and carries the granularity only when persistent, never for
  group services; `persistence_engine` only when persistent;
- scheduler flags: `flag-1..3` 0x08/0x10/0x20, `sh-`/`mh-fallback` 0x08 and
  `-port` 0x10 for their own scheduler only, `ops` 0x04 except for TCP and
  SCTP address services;
- destination ports: DR and TUN use the service's port (0 for fwmark
  services); NAT keeps the real server's port, or the service's when it has
  none;
- TUN destinations carry the tunnel type, port and checksum option.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .model import Destination, VirtualService

IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132
PROTOCOLS = {"TCP": IPPROTO_TCP, "UDP": IPPROTO_UDP, "SCTP": IPPROTO_SCTP}
DEFAULT_SCHEDULER = "wlc"
FORCED_PERSISTENCE_S = 360
F_PERSISTENT, F_HASHED, F_ONEPACKET = 0x1, 0x2, 0x4
SCHED_FLAGS = {"flag-1": 0x08, "flag-2": 0x10, "flag-3": 0x20}
OWN_SCHED_FLAGS = {("sh", "sh-fallback"): 0x08, ("sh", "sh-port"): 0x10,
                   ("mh", "mh-fallback"): 0x08, ("mh", "mh-port"): 0x10}
FWD = {"NAT": 0, "TUN": 2, "DR": 3}  # IP_VS_CONN_F_MASQ, _TUNNEL, _DROUTE
TUN_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
TUN_CHECKSUM = {"nocsum": 0, "csum": 1, "remcsum": 2}
V4_ALL_ONES = 0xFFFFFFFF


@dataclass(frozen=True, order=True)
class ServiceKey:
    """How IPVS names a service: family plus fwmark, or family, protocol, address and port."""

    family: int  # 4 or 6
    fwmark: int  # 0 for address services
    protocol: int  # 0 for fwmark services
    address: str  # "" for fwmark services
    port: int


@dataclass(frozen=True)
class ServiceSpec:
    key: ServiceKey
    scheduler: str
    flags: int
    timeout: int
    netmask: int  # IPv4: the mask as a number; IPv6: a prefix length
    pe_name: str | None = None


@dataclass(frozen=True, order=True)
class DestKey:
    address: str
    port: int


@dataclass(frozen=True)
class DestSpec:
    key: DestKey
    fwd: int
    weight: int
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = 0
    tun_port: int = 0
    tun_flags: int = 0


@dataclass(frozen=True)
class IpvsService:
    spec: ServiceSpec
    dests: dict[DestKey, DestSpec]
    owners: tuple[str, ...] = ()  # the virtual services (names) that made it


IpvsTable = dict[ServiceKey, IpvsService]


def family_of(address: str) -> int:
    return ipaddress.ip_address(address).version


def _flags(svc: VirtualService, protocol: int) -> int:
    flags = 0
    for flag in svc.sched_flags:
        flags |= SCHED_FLAGS.get(flag, 0) | OWN_SCHED_FLAGS.get((svc.scheduler, flag), 0)
        if flag == "ops" and not (svc.kind != "fwmark" and protocol in (IPPROTO_TCP, IPPROTO_SCTP)):
            flags |= F_ONEPACKET
    return flags


def _netmask(family: int, granularity: str | None, persistent: bool, grouped: bool) -> int:
    if family == 4:
        if persistent and granularity and not grouped:
            if granularity.isdigit():
                return int(ipaddress.IPv4Network(f"0.0.0.0/{granularity}").netmask)
            return int(ipaddress.IPv4Address(granularity))
        return V4_ALL_ONES
    if persistent and granularity and granularity.isdigit() and not grouped:
        return int(granularity)
    return 128


def service_spec(svc: VirtualService, key: ServiceKey, *, grouped: bool) -> ServiceSpec:
    timeout = svc.persistence_timeout_s or 0
    if not timeout and (svc.persistence_granularity or (not key.fwmark and not key.port)):
        timeout = FORCED_PERSISTENCE_S
    persistent = timeout > 0
    flags = _flags(svc, key.protocol) | (F_PERSISTENT if persistent else 0)
    return ServiceSpec(key=key, scheduler=svc.scheduler or DEFAULT_SCHEDULER, flags=flags, timeout=timeout,
                       netmask=_netmask(key.family, svc.persistence_granularity, persistent, grouped),
                       pe_name=svc.persistence_engine if persistent else None)


def _protocol(svc: VirtualService) -> int:
    return PROTOCOLS.get((svc.protocol or "UDP").upper(), IPPROTO_UDP)  # keepalived's default is UDP


def fwmark_family(svc: VirtualService) -> int:
    """The plan's family (ip_family or what keepalived infers from the config), else the servers', else IPv4."""
    if svc.family is not None:
        return svc.family
    families = {family_of(d.address) for d in svc.destinations}
    return families.pop() if len(families) == 1 else 4


def service_keys(svc: VirtualService) -> list[tuple[ServiceKey, bool]]:
    """The IPVS services a virtual service makes, each with whether it comes from a group."""
    if svc.kind == "fwmark" and svc.fwmark is not None:
        return [(ServiceKey(fwmark_family(svc), svc.fwmark, 0, "", 0), False)]
    if svc.kind == "address" and svc.address is not None:
        return [(ServiceKey(family_of(svc.address), 0, _protocol(svc), svc.address, svc.port or 0), False)]
    keys: list[tuple[ServiceKey, bool]] = []
    for entry in svc.group_entries:
        if entry.fwmark is not None:
            family = entry.family or (svc.family if svc.family is not None else 4)
            keys.append((ServiceKey(family, entry.fwmark, 0, "", 0), True))
        for address in entry.addresses():
            keys.append((ServiceKey(family_of(address), 0, _protocol(svc), address, entry.port or 0), True))
    return keys


def dest_spec(dest: Destination, key: ServiceKey) -> DestSpec:
    method = dest.method if dest.method in FWD else "NAT"
    if method == "NAT":
        port = dest.port if dest.port else key.port
    else:
        port = key.port  # DR and TUN cannot change the port; 0 for fwmark services
    tunnel = (dest.tunnel or {}) if method == "TUN" else {}
    return DestSpec(
        key=DestKey(dest.address, port),
        fwd=FWD[method],
        weight=max(0, min(dest.weight, 2**31 - 1)),
        u_threshold=dest.uthreshold or 0,
        l_threshold=dest.lthreshold or 0,
        tun_type=TUN_TYPES.get(str(tunnel.get("type", "ipip")), 0),
        tun_port=int(tunnel.get("port") or 0),
        tun_flags=TUN_CHECKSUM.get(str(tunnel.get("checksum", "nocsum")), 0),
    )


def ipvs_table(services: tuple[VirtualService, ...] | list[VirtualService]) -> IpvsTable:
    """Every IPVS service with its destinations; services two virtual services share get both's."""
    table: IpvsTable = {}
    for svc in services:
        for key, grouped in service_keys(svc):
            dests = {}
            for dest in svc.destinations:
                if family_of(dest.address) != key.family and dest.method != "TUN":
                    continue  # IPVS refuses a NAT/DR server of the other family
                spec = dest_spec(dest, key)
                dests[spec.key] = spec
            if key in table:  # a TCP and a UDP virtual server sharing a group's fwmark
                known = table[key]
                table[key] = IpvsService(known.spec, {**dests, **known.dests}, known.owners + (svc.name,))
            else:
                table[key] = IpvsService(service_spec(svc, key, grouped=grouped), dests, (svc.name,))
    return table


@dataclass(frozen=True)
class Change:
    """One IPVS command: op is add/edit/delete, of a service or of a destination in `service`."""

    op: str
    service: ServiceSpec
    dest: DestSpec | None = None


def changes(old: IpvsTable, new: IpvsTable) -> list[Change]:
    """The commands that turn kernel table `old` into `new`: removals first, then edits and additions.

    Destinations of a service that goes are not deleted one by one (deleting
    the service takes them); a service whose key stays but whose spec
    changed is edited in place, as keepalived does on reload, so its
    connections and destinations survive.
    """
    out: list[Change] = []
    for key in sorted(old.keys() - new.keys()):
        out.append(Change("delete", old[key].spec))
    for key in sorted(old.keys() & new.keys()):
        for dkey in sorted(old[key].dests.keys() - new[key].dests.keys()):
            out.append(Change("delete", old[key].spec, old[key].dests[dkey]))
    for key in sorted(new.keys()):
        after = new[key]
        known = old.get(key)
        if known is None:
            out.append(Change("add", after.spec))
        elif known.spec != after.spec:
            out.append(Change("edit", after.spec))
        old_dests = known.dests if known is not None else {}
        for dkey in sorted(after.dests):
            spec = after.dests[dkey]
            if dkey not in old_dests:
                out.append(Change("add", after.spec, spec))
            elif old_dests[dkey] != spec:
                out.append(Change("edit", after.spec, spec))
    return out


def without_missing(applied: IpvsTable, present: set[ServiceKey] | frozenset[ServiceKey]) -> tuple[IpvsTable,
                                                                                                     list[ServiceKey]]:
    """What we applied that the kernel still has, and the keys of our services someone else deleted.

    `ipvsadm -C`, `ipvsadm -D` or another tool can delete our services; the
    kernel then lacks them while `applied` still lists them, so `changes`
    would never add them again. Forgetting them here makes the next
    `changes(kept, wanted)` re-add each missing service with all its
    destinations.
    """
    missing = sorted(key for key in applied if key not in present)
    kept = {key: svc for key, svc in applied.items() if key in present}
    return kept, missing
