"""From the parsed configuration to the desired table's entries: a pure translation.

Names follow keepalived's log spelling (`[10.0.0.1]:tcp:80`, `FWM 1`,
`[group]:80`) so that log lines, notify_fifo lines and the status view read
the same as keepalived's. The checker shell decides which servers are in the
table (its pools); this module only says what a service and a destination
look like, so that `-t` (`lvs/choose.py`) can ask the nftables backend about a
config without building a single probe.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from ..config.model import KeepalivedConfig, RealServer, VirtualServer
from ..config.vocabulary import Family
from .model import DataPlaneError, Destination, GroupEntry, VirtualService


def trio(address: object, protocol: str | None, port: int | None) -> str:
    """keepalived's `[address]:proto:port` (proto `none` when the service has none, e.g. fwmark)."""
    return f"[{address}]:{(protocol or 'none').lower()}:{port or 0}"


def service_name(vs: VirtualServer) -> str:
    if vs.kind == "group":
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.kind == "fwmark":
        return f"FWM {vs.fwmark}"
    return trio(vs.address, vs.protocol, vs.port)


def real_server_name(vs: VirtualServer, rs: RealServer) -> str:
    return trio(rs.address, vs.protocol, rs.port)


def sorry_server_name(vs: VirtualServer) -> str | None:
    if vs.sorry_server is None:
        return None
    return trio(vs.sorry_server.address, vs.protocol, vs.sorry_server.port or vs.port)


def group_entries(config: KeepalivedConfig) -> dict[str, tuple[GroupEntry, ...]]:
    return {
        name: tuple(
            GroupEntry(e.kind, str(e.address) if e.address is not None else None,
                       str(e.last_address) if e.last_address is not None else None, e.prefix_len, e.port, e.fwmark,
                       e.family)
            for e in group.entries
        )
        for name, group in config.virtual_server_groups.items()
    }


def service_family(vs: VirtualServer) -> Family | None:
    """The address family keepalived gives the service: what fwmark services need to be told.

    ip_family; else (fwmark) the first real or sorry server not behind a
    tunnel; else a persistence_granularity with a dot means IPv4, other
    granularity IPv6; else the tunnelled servers' one family.
    """
    if vs.ip_family is not None or vs.kind != "fwmark":
        return vs.ip_family
    servers = [(rs.address.version, rs.lvs_method or vs.lvs_method) for rs in vs.real_servers]
    if vs.sorry_server is not None:
        servers.append((vs.sorry_server.address.version, vs.sorry_server_lvs_method or vs.lvs_method))
    for version, method in servers:
        if method != "TUN":
            return version
    if vs.persistence_granularity:
        return 4 if "." in vs.persistence_granularity else 6
    families = {version for version, _ in servers}
    return families.pop() if len(families) == 1 else None


def real_destination(vs: VirtualServer, rs: RealServer, weight: int, alive: bool) -> Destination:
    return Destination(
        sys.intern(str(rs.address)), rs.port, weight,  # one string per host, not per server (or port)
        method=rs.lvs_method or vs.lvs_method or "NAT", alive=alive,
        uthreshold=rs.uthreshold, lthreshold=rs.lthreshold, tunnel=rs.tunnel or vs.tunnel,
    )


def sorry_destination(vs: VirtualServer, weight: int, alive: bool) -> Destination:
    sorry = vs.sorry_server
    if sorry is None:
        raise DataPlaneError(f"virtual server {service_name(vs)} has no sorry server")
    return Destination(str(sorry.address), sorry.port if sorry.port is not None else vs.port, weight,
                       method=vs.sorry_server_lvs_method or vs.lvs_method or "NAT", alive=alive, sorry=True)


def desired_service(vs: VirtualServer, name: str, destinations: Iterable[Destination], quorum_up: bool,
                    groups: dict[str, tuple[GroupEntry, ...]],
                    pool: tuple[tuple[str, int], ...] | None = None) -> VirtualService:
    """The desired table entry for one virtual server with the given destinations in it (`pool`: service_pool's,
    kept by the caller; None: made here)."""
    return VirtualService(
        name=name,
        kind=vs.kind,
        address=str(vs.address) if vs.address is not None else None,
        port=vs.port,
        protocol=vs.protocol,
        fwmark=vs.fwmark,
        group=vs.group,
        group_entries=groups.get(vs.group or "", ()),
        family=service_family(vs),
        scheduler=vs.lvs_sched or "wlc",
        sched_flags=tuple(vs.sched_flags),
        method=vs.lvs_method or "NAT",
        persistence_timeout_s=vs.persistence_timeout_s,
        persistence_granularity=vs.persistence_granularity,
        persistence_engine=vs.persistence_engine,
        quorum_up=quorum_up,
        destinations=tuple(destinations),
        stateless=vs.pykeepalived_stateless,
        pool=service_pool(vs) if pool is None else pool,
    )


def service_pool(vs: VirtualServer) -> tuple[tuple[str, int], ...]:
    """Every configured real server of `vs` as (name, configured weight): stable_table.py's base.

    It depends on the configuration only, so the checker makes it once per
    service (check/plan.py) and every table entry it builds shares it: made
    at each decision, it was 5,000 new names and pairs per entry of the
    benchmark's largest service, kept by every holder of an older entry.
    """
    return tuple((real_destination(vs, rs, 1, True).name, rs.weight if rs.weight is not None else vs.weight)
                 for rs in vs.real_servers)


def configured_services(config: KeepalivedConfig) -> list[tuple[VirtualServer, VirtualService]]:
    """Every table a virtual server can come to hold: all its real servers in, and its sorry server alone.

    What `-t` shows the nftables backend: every destination the checkers
    could ever put in, without building a probe.
    """
    groups = group_entries(config)
    out: list[tuple[VirtualServer, VirtualService]] = []
    for vs in config.virtual_servers:
        name = service_name(vs)
        servers = [real_destination(vs, rs, rs.weight if rs.weight is not None else vs.weight, True)
                   for rs in vs.real_servers]
        out.append((vs, desired_service(vs, name, servers, True, groups)))
        if vs.sorry_server is not None:
            out.append((vs, desired_service(vs, name, [sorry_destination(vs, 1, True)], False, groups)))
    return out
