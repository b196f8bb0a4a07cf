"""Connection counts for NAT services, from the kernel's conntrack table (ctnetlink via pyroute2).

IPVS keeps its own per-destination counters; with nftables the connections
live in conntrack, and a DNATed entry's reply tuple names the real server.
Active means an established TCP connection, inactive everything else (the
split `ipvsadm -Ln` shows, and the one IPVS's lc/wlc weigh: 256 to 1).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from .model import VirtualService

log = logging.getLogger("pykeepalived.lvs")
TCP_ESTABLISHED = 3
PROTOCOLS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": socket.IPPROTO_SCTP}

Counts = dict[str, dict[str, tuple[int, int]]]
Owner = tuple[str, str, str | None, int | None]  # service, destination, VIP, virtual port


def _owners(services: list[VirtualService]) -> dict[tuple[int, str, int | None], list[Owner]]:
    """(protocol, real server address, port or None) -> the services and destinations it serves."""
    owners: dict[tuple[int, str, int | None], list[Owner]] = {}
    for svc in services:
        protos = [PROTOCOLS.get((svc.protocol or "TCP").upper(), socket.IPPROTO_TCP)]
        if svc.kind != "address":
            protos = list(PROTOCOLS.values())
        for dest in svc.destinations:
            address = str(ipaddress.ip_address(dest.address))
            for proto in protos:
                owners.setdefault((proto, address, dest.port or None), []).append(
                    (svc.name, dest.name, svc.address, svc.port))
    return owners


def count_connections(services: list[VirtualService]) -> Counts:
    """Per service and destination: (active, inactive) connections DNATed to it now."""
    counts: Counts = {svc.name: {d.name: (0, 0) for d in svc.destinations} for svc in services}
    owners = _owners(services)
    try:
        from pyroute2 import Conntrack  # type: ignore[import-untyped]

        with Conntrack() as ct:  # IPv4 entries; IPv6 services show zeros for now
            for entry in ct.dump_entries():
                _add(counts, owners, entry)
    except Exception as exc:  # noqa: BLE001 - counts are informative; never let them break the checker
        log.warning("cannot read connection counts from conntrack: %s", exc)
    return counts


def _add(counts: Counts, owners: dict[tuple[int, str, int | None], list[Owner]], entry: object) -> None:
    orig, reply = getattr(entry, "tuple_orig"), getattr(entry, "tuple_reply")
    if reply.saddr == orig.daddr:
        return  # not DNATed: not ours
    found = owners.get((reply.proto, reply.saddr, reply.sport)) or owners.get((reply.proto, reply.saddr, None))
    if not found:
        return
    chosen = next((o for o in found if o[2] == orig.daddr and o[3] in (orig.dport, 0, None)), found[0])
    svc, dest = chosen[0], chosen[1]
    info = getattr(entry, "protoinfo", None)
    active = reply.proto == socket.IPPROTO_TCP and getattr(info, "state", None) == TCP_ESTABLISHED
    a, i = counts[svc][dest]
    counts[svc][dest] = (a + 1, i) if active else (a, i + 1)
