"""pykeepalived_bgp's checks across blocks, and its completed values.

Run after parsing (bfd_instance and virtual_server blocks may come after the
BGP block): what the speaker refers to must exist, and the values the
rendered bgpd.conf needs (router id, keepalive) are written into the model so
that `-t`'s dump shows what will run.
"""

from __future__ import annotations

import ipaddress

from .context import ParseContext
from .model import BgpSpeaker, KeepalivedConfig, VirtualServer
from .values import IPAddress


def bgp_rules(ctx: ParseContext) -> None:
    bgp = ctx.config.bgp
    if bgp is None:
        return
    _router_id(ctx, bgp)
    if bgp.keepalive_s is None:
        bgp.keepalive_s = max(1, bgp.hold_time_s // 3)
    for neighbor in bgp.neighbors:
        if neighbor.bfd is None:
            continue
        bfd = ctx.config.bfd_instances.get(neighbor.bfd)
        if bfd is None:
            ctx.error(neighbor.location, f"neighbor {neighbor.address}: bfd_instance {neighbor.bfd} does not exist",
                      "bfd")
        elif bfd.neighbor_ip != neighbor.address:
            ctx.warn(neighbor.location, f"neighbor {neighbor.address}: bfd_instance {neighbor.bfd} watches "
                                        f"{bfd.neighbor_ip}, not this neighbor", "bfd")
    served = served_addresses(ctx.config)
    families = {n.address.version for n in bgp.neighbors}
    for address in bgp.announce:
        if not in_ranges(address, served):
            ctx.warn(bgp.location, f"pykeepalived_bgp: no virtual_server is on announced address {address}; "
                                   "it is announced whenever the data plane is programmed", "announce")
        if address.version not in families:
            ctx.warn(bgp.location, f"pykeepalived_bgp: announced address {address} has no IPv{address.version} "
                                   "neighbor to carry it; it is never announced", "announce")


def _router_id(ctx: ParseContext, bgp: BgpSpeaker) -> None:
    if bgp.router_id is not None:
        return
    for neighbor in bgp.neighbors:
        if neighbor.source_ip is not None and neighbor.source_ip.version == 4:
            bgp.router_id = neighbor.source_ip
            return
    word = ctx.config.global_defs.router_id
    try:
        address = ipaddress.ip_address(word or "")
    except ValueError:
        address = None
    if address is not None and address.version == 4:
        bgp.router_id = address
        return
    ctx.error(bgp.location, "pykeepalived_bgp needs a router_id (an IPv4 address): give router_id, an IPv4 "
                            "source_ip to a neighbor, or a global_defs router_id that is an IPv4 address",
              "router_id")


AddressRange = tuple[IPAddress, IPAddress]  # first and last address, one family


def service_ranges(vs: VirtualServer, config: KeepalivedConfig) -> list[AddressRange]:
    """The addresses a virtual server listens on: its own, or its group's addresses, ranges and prefixes."""
    if vs.address is not None:
        return [(vs.address, vs.address)]
    group = config.virtual_server_groups.get(vs.group) if vs.group else None
    out: list[AddressRange] = []
    for entry in group.entries if group is not None else ():
        if entry.address is None:
            continue
        if entry.last_address is not None:
            out.append((entry.address, entry.last_address))
        elif entry.prefix_len is not None:
            net = ipaddress.ip_network(f"{entry.address}/{entry.prefix_len}", strict=False)
            out.append((net.network_address, net.broadcast_address))
        else:
            out.append((entry.address, entry.address))
    return out


def in_ranges(address: IPAddress, ranges: list[AddressRange]) -> bool:
    return any(first.version == address.version and first <= address <= last  # type: ignore[operator]
               for first, last in ranges)


def served_addresses(config: KeepalivedConfig) -> list[AddressRange]:
    return [r for vs in config.virtual_servers for r in service_ranges(vs, config)]
