"""DR, TUN and stateless NAT's requests without the IP stack: the netdev family's ingress hook hands the packet on.

The prerouting path (nft_rules' `dup_prerouting`) copies every packet of a
DR flow to the real server (`dup`) and drops the original: a copy of the
whole packet, a route lookup for the copy, and the original's trip through
the IP stack up to prerouting, per packet. nftables' `fwd ip to ADDR device
DEV` (kernel 5.3 and later) sends the packet itself through the neighbour
layer: the real server's MAC address (ARP/ND, cached), the router's as
source, the IP header untouched but for the TTL. From the ingress hook it
leaves before the router's IP stack sees it at all: no conntrack, no
routing, no filter. So a table `netdev pykeepalived_lvs` holds every DR
service it can:

- one base chain `ingress-<device>` on each of the router's interfaces
  (every one that is up but `lo`, listed at each apply) dispatches host-addressed
  packets by `daddr . l4proto . dport` (or `daddr . l4proto` for port-0
  services) through the maps `fwd4_*`/`fwd6_*` into the service's chain;
- the service chain and its real servers' chains are laid out as the
  prerouting path's (flow sets, persistence sets, consistent flows), with
  `fwd` in place of `dup` + `drop`; a new flow's pick from a slot map
  writes the server's address into the destination and reaches the
  server's chain by that address through an entry chain that writes the
  VIP back (`nft_rules.entries_map`: the slots are data, see Direct), where the service
  has one VIP and its servers distinct addresses;
- with `pykeepalived_stateless` and a hashing scheduler (sh, mh, dh) there
  are no flow sets: every packet is hashed over the stable table
  (stable_table.py: a failed server's flows move, no others), nothing is
  written per packet, and a weight or config change moves the flows Maglev
  moves.

TUN, only where `pykeepalived_stateless` is honoured (a hashing scheduler,
no persistence, not fwmark) and our IPIP device `pkt<hex>` towards each
real server exists: the server chains end in `fwd ip to SERVER device
pkt<hex>` (the tunnel is NOARP, so the neighbour layer hands the packet
straight to its xmit, which wraps it towards the real server). A packet
longer than the tunnel's MTU, or a fragment, is first `accept`ed back to
the router's IP stack: `fwd` from ingress would drop the one without the
ICMP "fragmentation needed" (the tunnel sends it along the packet's route,
which a packet from ingress has not got) and split the other's datagram
between two paths (defragmentation happens after ingress). There the
service's copy path in table ip (`add_copy_path`) dups it through the
same device: the tunnel answers ICMP, fragments, or segments a GSO
packet. That copy path has no flow sets and carries the very rule that
picks the server at ingress (`_stateless_pick`: the same key, the same
stable table, built once per apply and sent in the same transaction), so
a packet of a flow reaches the same real server whichever path it takes.
With flow sets that cannot be promised: the copy path's sets live in
table ip and know none of the flows that ingress scheduled, so it would
schedule a flow's too-long packets (a NIC's GRO merges a flow's segments
into such packets; a non-DF one is delivered, fragmented) anew: rr, wrr
and the load-based schedulers to whichever server is next, a hash
scheduler to the flow's own server only until a table change moves its
slot, persistence by a client set ingress never filled. So TUN services
with a scheduler that needs flow sets, persistence, or a hash scheduler
without `pykeepalived_stateless` keep the copy path for every packet, as
before.

Stateless NAT (a service nft_stateless.choose runs, `takes` says where):
its requests are rewritten here as nft_stateless' prerouting chain would
rewrite them (the real server's port, then its address, with nftables'
checksum updates) and leave with `fwd`, picked by the same key over the
same stable table (`_stateless_pick`), so that the packets ingress leaves
to the IP stack (fragments, IPv4 by their offset bits and IPv6 by their
fragment header, whose datagram must stay whole) reach the same real
server through the table-ip chain. That chain also keeps the replies, the
ICMP errors and the router's own clients. Only where every real server is
on a directly connected network (`fwd` names the neighbour; a server
behind a gateway keeps the IP stack's route) and DR's MTU condition holds
(the IP stack sends "fragmentation needed" for a narrower link).

Left on the prerouting path besides: fwmark services (the admin's mangle
rules set the mark after ingress), DR services whose real servers are
reached through an interface with a smaller MTU than another (`takes`:
`fwd` sends no ICMP about a packet too big), and any DR or TUN service when
the router has no interface but `lo`. What changes for users is nothing but
this: the packet's TTL is decremented (the copy's was not; for TUN the inner
packet's), and packets that never reach the IP stack are not seen by a
router's own firewall (the copy bypassed its forward chain too; for
stateless NAT, the requests no longer pass the router's forward chain,
nor the `ip` tables' prerouting and postrouting hooks: a request with a
TTL of 1 is forwarded with 0, not answered with "time exceeded"). An
interface that appears after an apply, or an MTU that changes, is followed
at the next repair check (half a second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import nft_rules as rules
from . import sched
from .model import DataPlaneError, Destination, VirtualService
from .nft_limits import HASH_SCHEDULERS, IPV4, NETDEV as NETDEV, Family, family_of, forwarding
from .route_spans import RoutesRefused, Span
from .stable_table import service_table

Json = dict[str, Any]

INGRESS_CHAIN = "ingress"
INGRESS_PRIORITY = 0


def _maps(fam: Family) -> tuple[str, str]:
    tag = "4" if fam is IPV4 else "6"
    return f"fwd{tag}_ports", f"fwd{tag}_allports"


def _reply_maps(fam: Family) -> tuple[str, str, str]:
    """(stateless NAT replies by source -> their service's chain, spans -> gateway, spans -> interface)."""
    tag = "4" if fam is IPV4 else "6"
    return f"back{tag}", f"via{tag}", f"dev{tag}"


def _version(fam: Family) -> int:
    return 4 if fam is IPV4 else 6


def takes(svc: VirtualService, ctx: rules.BuildContext, stateless_nat: frozenset[str] = frozenset()) -> bool:
    """Whether this service is forwarded from ingress (else the prerouting copy path builds it).

    DR: not when an interface towards one of its real servers has a smaller
    MTU than an interface packets may come in on: `fwd` checks no MTU, so a
    packet too big for the real server's link would be dropped without the
    ICMP "fragmentation needed" (IPv6: "packet too big") that the copy path
    sends, as IPVS does, and path MTU discovery would hang. TUN: only
    stateless (module docstring: its too-long packets take a copy path that
    must pick the same server), with an IPIP device made towards each real
    server (its MTU known). NAT: only the services nft_stateless runs
    (`stateless_nat`), on DR's MTU condition, and only when every real
    server is on a directly connected network: `fwd` hands the packet to the
    neighbour it names, and a server behind a gateway would need the
    gateway's address (the IP stack's route does that; such a service keeps
    nft_stateless' prerouting path alone).
    """
    devices = ctx.ingress_devices()
    method = forwarding(svc)
    if not devices or any(d.kind == "fwmark" for d in rules.dispatches(svc)):
        return False
    if method == "TUN":
        return stateless(svc) and all(ctx.tunnel_mtu(d.address) > 0 for d in svc.destinations)
    if method == "NAT":
        if svc.name not in stateless_nat:
            return False
        try:
            return _mtus_allow(svc, ctx, devices)
        except DataPlaneError:  # a server behind a gateway, or none reachable: the IP stack routes it
            return False
    return method == "DR" and _mtus_allow(svc, ctx, devices)


def _mtus_allow(svc: VirtualService, ctx: rules.BuildContext, devices: tuple[tuple[str, int], ...]) -> bool:
    """No interface packets may come in on is wider than the one towards any of the service's real servers."""
    mtus = dict(devices)
    largest = max(mtus.values())
    return all(mtus.get(ctx.device_for(d.address), 0) >= largest for d in svc.destinations)


def refusal(svc: VirtualService) -> str | None:
    """Why `pykeepalived_stateless` cannot drop a DR/TUN service's flow sets (None: it can, or nothing asked)."""
    if not svc.stateless or forwarding(svc) == "NAT":
        return None
    if svc.scheduler not in HASH_SCHEDULERS:
        return (f"scheduler {svc.scheduler} needs the flow sets to keep a connection on its server; "
                f"stateless DR and TUN need a hashing one ({', '.join(HASH_SCHEDULERS)})")
    if svc.persistence_timeout_s:
        return "persistence remembers clients"
    if any(d.kind == "fwmark" for d in rules.dispatches(svc)):
        return "fwmark services keep the copy path (the mark is set after ingress)"
    return None


def stateless(svc: VirtualService) -> bool:
    """Whether the service is asked to be stateless and can be: every packet hashed, no flow sets."""
    return svc.stateless and refusal(svc) is None


def empty_ruleset() -> rules.Ruleset:
    rs = rules.Ruleset(NETDEV)
    for fam in (rules.IPV4, rules.IPV6):
        ports, allports = _maps(fam)
        rs.sets[ports] = {"_kind": "map", "type": [fam.addr_type, "inet_proto", "inet_service"], "map": "verdict"}
        rs.sets[allports] = {"_kind": "map", "type": [fam.addr_type, "inet_proto"], "map": "verdict"}
        back, via, dev = _reply_maps(fam)
        rs.sets[back] = {"_kind": "map", "type": [fam.addr_type, "inet_proto", "inet_service"], "map": "verdict"}
        rs.sets[via] = {"_kind": "map", "type": fam.addr_type, "map": fam.addr_type, "flags": ["interval"]}
        rs.sets[dev] = {"_kind": "map", "type": fam.addr_type, "map": "iface_index", "flags": ["interval"]}
    return rs


def reply_spans(svc: VirtualService, ctx: rules.BuildContext, devices: Sequence[str]) -> tuple[Span, ...] | None:
    """The spans a stateless NAT service's replies are sent by from ingress; None: they stay in the IP stack.

    `devices`: its real servers' interfaces (`takes` has found every one
    on-link). Only where the routing table can be copied (route_spans) and
    no interface a reply may leave by is narrower than one a real server of
    the service is on: `fwd` checks no MTU, and a reply the real server
    sized for its own link would be dropped without an ICMP error.
    """
    try:
        spans = ctx.client_spans(_version(family_of(svc)))
    except RoutesRefused:
        return None
    if not spans:
        return None
    mtus = dict(ctx.ingress_devices())
    widest = max((mtus.get(device, 0) for device in devices), default=0)
    return spans if all(mtus.get(span.device, 0) >= widest for span in spans) else None


def ingress_chain(device: str) -> str:
    return rules.safe_name(f"{INGRESS_CHAIN}-{device}")


def finish(rs: rules.Ruleset, ctx: rules.BuildContext) -> None:
    """Hook an ingress chain on each interface, with a lookup for each map that holds a service.

    One chain per device: libnftables 1.0.6's JSON takes one `dev` per
    chain (the text syntax's `devices = { ... }` has no JSON form there).
    Stateless NAT's replies are looked up only on the interfaces its real
    servers are on (`ctx.reply_devices`, which add_cached filled), first
    there: they are most of what comes in on them, and each would otherwise
    miss the requests' lookups before. A reply that comes in elsewhere (a
    real server that routes back another way) crosses the IP stack.
    """
    host = {"match": {"op": "==", "left": {"meta": {"key": "pkttype"}}, "right": "host"}}
    l4 = {"meta": {"key": "l4proto"}}
    lookups: list[Json] = []
    replies: list[Json] = []
    for fam in (rules.IPV4, rules.IPV6):
        ports, allports = _maps(fam)
        daddr = {"payload": {"protocol": fam.payload, "field": "daddr"}}
        if rs.elements.get(ports):
            lookups.append({"vmap": {"key": {"concat": [
                daddr, l4, {"payload": {"protocol": "th", "field": "dport"}}]}, "data": f"@{ports}"}})
        if rs.elements.get(allports):
            lookups.append({"vmap": {"key": {"concat": [daddr, l4]}, "data": f"@{allports}"}})
        back, via, dev = _reply_maps(fam)
        if rs.elements.get(back):  # stateless NAT's replies, and the routes they leave by
            saddr = {"payload": {"protocol": fam.payload, "field": "saddr"}}
            replies.append({"vmap": {"key": {"concat": [
                saddr, l4, {"payload": {"protocol": "th", "field": "sport"}}]}, "data": f"@{back}"}})
            for span in ctx.client_spans(_version(fam)):  # as reply_spans had them: kept for the apply
                key = {"range": [span.first, span.last]}
                rs.element(dev, key, span.ifindex)
                if span.gateway is not None:
                    rs.element(via, key, span.gateway)
    for device in sorted({name for name, _ in ctx.ingress_devices()}):
        chain = rs.chain(ingress_chain(device), type="filter", hook="ingress", dev=device, prio=INGRESS_PRIORITY,
                         policy="accept")
        for lookup in (replies + lookups if device in ctx.reply_devices else lookups):
            rs.rule(chain, host, lookup)
    ctx.reply_devices.clear()


FRAGMENT_BITS = 0x3FFF  # IPv4 frag-off: more-fragments and the offset (not DF)


def _fragment_rule(fam: Family) -> list[Json]:
    """A fragment goes to the IP stack whole: its datagram must not be split between ingress and the stack.

    IPv4: more-fragments or an offset. IPv6: a fragment header (a later
    fragment has no transport header, so the dispatch would not match it;
    the first one would).
    """
    if fam is IPV4:
        frag = {"&": [{"payload": {"protocol": "ip", "field": "frag-off"}}, FRAGMENT_BITS]}
        return [{"match": {"op": "!=", "left": frag, "right": 0}}, {"accept": None}]
    return [{"match": {"op": "==", "left": {"exthdr": {"name": "frag"}}, "right": True}}, {"accept": None}]


def add_cached(rs: rules.Ruleset, svc: VirtualService, ctx: rules.BuildContext) -> None:
    """`add_service`, merged from the service's last build while nothing it reads changed (nft_rules.build's way).

    A change to one service then rebuilds that one alone, as in table ip; a
    change within a service reuses its servers' parts (DestPart).
    """
    method = forwarding(svc)
    extra: tuple[Any, ...] = ()
    if method == "TUN":
        extra = tuple(ctx.tunnel_mtu(d.address) for d in svc.destinations)
    elif method == "NAT":  # what _fragment_key leaves out for NAT, which numbers no chains in table ip
        devices = tuple(ctx.device_for(d.address) for d in svc.destinations)
        spans = reply_spans(svc, ctx, devices)
        if spans is not None:  # its replies come in there: finish puts their lookup first on those
            ctx.reply_devices.update(devices)
        extra = (tuple(ctx.number(svc.name, d.name) for d in svc.destinations), devices,
                 None if spans is None else any(span.gateway is not None for span in spans))
    key = (rules._fragment_key(svc, ctx), extra)
    cached = ctx.forward_fragments.get(svc.name)
    if cached is None or not (cached.svc is svc or cached.svc == svc) or cached.key != key:
        piece = rules.Ruleset(rs.family)
        # the servers' numbers and devices (TUN: tunnels), which add_service would ask for again
        known = (extra[0], extra[1]) if method == "NAT" else (key[0][0], key[0][1])
        add_service(piece, svc, ctx, known)
        cached = ctx.forward_fragments[svc.name] = rules.Fragment(svc, key, piece, None)
    rules._merge(rs, cached.piece)


def forget_others(ctx: rules.BuildContext, services: Sequence[VirtualService]) -> None:
    """Drop the cached builds of services no longer taken from ingress."""
    for name in set(ctx.forward_fragments) - {svc.name for svc in services}:
        del ctx.forward_fragments[name]


@dataclass(frozen=True)
class DestPart:
    """What one real server adds to its DR/TUN service in the netdev table, as `Ruleset` holds it.

    Made once per server and what it depends on (BuildContext.forward_parts):
    1,000 DR servers' 3,000 rules, written out as JSON at every apply, were
    most of a change to one of them.
    """

    chain: str
    rules: tuple[str, ...]
    refs: frozenset[str]
    sets: tuple[tuple[str, Json], ...]
    names: tuple[str, ...]  # its chain and sets, for Ruleset.services
    base_rules: tuple[str, ...]  # what it adds to the service's chain
    base_refs: frozenset[str]


@dataclass(frozen=True)
class Servers(rules.MergedServers):
    """A DR/TUN service's servers' DestParts merged (add_service): chains, their rules, sets, the base's rules."""

    devices: frozenset[str]  # the servers' devices (TUN: tunnels)
    nat_ports: tuple[int | None, ...]  # NAT: the distinct ports to write (None: the VIP's), in order


def _merge_parts(fam: Family, keys: Sequence[tuple[str, tuple[Any, ...]]], client: Any,
                 parts: dict[tuple[Any, ...], Any]) -> Servers:
    """Each server's DestPart (kept by its key, what `_dest_part` reads besides `fam` and `client`), merged."""
    chains: dict[str, Json] = {}
    rule_texts: dict[str, tuple[str, ...]] = {}
    refs: dict[str, frozenset[str]] = {}
    sets: dict[str, Json] = {}
    names: list[str] = []
    per_dest: dict[str, str] = {}
    base_rules: list[str] = []
    base_refs: set[str] = set()
    for name, key in keys:
        part = parts.get(key)
        if part is None:
            _, base, number, address, device, mtu, hashed, tun, proto, timeout, _, nat, nat_port = key
            part = rules.remember(parts, key, _dest_part(fam, base, number, address, device, mtu, hashed, tun, proto,
                                                         timeout, client, nat, nat_port))
        chains[part.chain] = {}
        rule_texts[part.chain] = part.rules
        refs[part.chain] = part.refs
        sets.update(part.sets)
        names.extend(part.names)
        per_dest[name] = part.chain
        base_rules.extend(part.base_rules)
        base_refs.update(part.base_refs)
    return Servers(chains, rule_texts, refs, sets, tuple(names), per_dest, tuple(base_rules), frozenset(base_refs),
                   frozenset(key[4] for _, key in keys), tuple(dict.fromkeys(key[12] for _, key in keys)))


def _dest_part(fam: Family, base: str, number: int, address: str, device: str, mtu: int, hashed: bool, tun: bool,
               proto: str, persistence_timeout_s: int | None, client: Any, nat: bool, nat_port: int | None) -> DestPart:
    """One server's DestPart; `nat`: stateless NAT's rewrite first, with `nat_port` when the VIP's port differs."""
    piece = rules.Ruleset(fam)
    chain = piece.chain(f"{base}-{number}")
    names = [chain]
    if not hashed:
        flows_of = rules.flow_key(fam)
        flows = f"{base}-{number}-flows"
        piece.sets[flows] = {"_kind": "set", "type": [fam.addr_type, "inet_service", "inet_service"],
                             "flags": ["timeout"], "timeout": rules.FLOW_TIMEOUT_S.get(proto, 900),
                             "size": rules.FLOW_SET_SIZE}
        names.append(flows)
        piece.rule(base, {"match": {"op": "==", "left": flows_of, "right": f"@{flows}"}},
                   {"goto": {"target": chain}})
        piece.rule(chain, {"set": {"op": "update", "elem": flows_of, "set": f"@{flows}"}})
    if persistence_timeout_s:
        clients = f"{base}-{number}-clients"
        piece.sets[clients] = {"_kind": "set", "type": fam.addr_type, "flags": ["timeout"],
                               "timeout": persistence_timeout_s, "size": rules.PERSIST_SET_SIZE}
        names.append(clients)
        piece.rule(chain, {"set": {"op": "update", "elem": client, "set": f"@{clients}"}})
    if tun:  # too long for the tunnel: to the IP stack, whose copy path sends the ICMP (or fragments)
        length = {"meta": {"key": "length"}}
        piece.rule(chain, {"match": {"op": ">", "left": length, "right": mtu}}, {"accept": None})
    if nat:  # stateless NAT: the real server's port (if it differs from the VIP's), then its address
        if nat_port is not None:
            piece.rule(chain, {"mangle": {"key": {"payload": {"protocol": proto, "field": "dport"}},
                                          "value": nat_port}})
        piece.rule(chain, {"mangle": {"key": {"payload": {"protocol": fam.payload, "field": "daddr"}},
                                      "value": address}})
    piece.rule(chain, {"fwd": {"dev": device, "family": fam.name, "addr": address}})
    return DestPart(chain, piece.rules[chain], piece.refs[chain], tuple(piece.sets.items()), tuple(names),
                    piece.rules.get(base, ()), piece.refs.get(base, frozenset()))


def add_service(rs: rules.Ruleset, svc: VirtualService, ctx: rules.BuildContext,
                known: tuple[tuple[int, ...], tuple[str, ...]] | None = None) -> None:
    """One DR or TUN service's chains and sets in the netdev table (`takes` said yes).

    `known`: each server's number and device (TUN: tunnel), in order, as the caller has them already.
    """
    fam = family_of(svc)
    tun = forwarding(svc) == "TUN"
    base = rules.service_chain(svc.name)
    chains = rs.services.setdefault(svc.name, [])
    chains.append(rs.chain(base))
    ports, allports = _maps(fam)
    for dispatch in rules.dispatches(svc):
        rs.element(ports if dispatch.kind == "port" else allports, dispatch.key, {"goto": {"target": base}})
    nat = forwarding(svc) == "NAT"
    hashed = nat or stateless(svc)  # NAT: `takes` had it from nft_stateless.choose
    if tun and fam is IPV4 or nat:
        # a fragment: to the IP stack whole, where defragmentation (if any) and the copy path (TUN) or
        # nft_stateless' prerouting chain (NAT) see its datagram
        rs.rule(base, *_fragment_rule(fam))
    proto = (svc.protocol or "TCP").lower() if svc.kind == "address" else "tcp"
    persist = bool(svc.persistence_timeout_s)
    client = rules._saddr(fam, svc)
    parts = ctx.forward_parts
    if known is None:
        known = (tuple(ctx.number(svc.name, d.name) for d in svc.destinations),
                 tuple(ctx.tunnel_for(d.address) if tun else ctx.device_for(d.address) for d in svc.destinations))
    numbers, devices = known
    servers = tuple([(d.name, d.address, d.port or svc.port) for d in svc.destinations])
    mtus = tuple(ctx.tunnel_mtu(d.address) for d in svc.destinations) if tun else ()
    # the servers' parts merged, kept by what they read (not whether each is eligible): a server going down or up
    # merges one piece, not 1,000 chains, rules and sets one by one
    merged_key = ("servers", fam.name, base, hashed, tun, proto, svc.persistence_timeout_s,
                  svc.persistence_granularity, nat, svc.port, numbers, devices, servers, mtus)
    merged: Servers | None = parts.get(merged_key)
    if merged is None:
        keys: list[tuple[str, tuple[Any, ...]]] = []
        for at, (name, address, port) in enumerate(servers):
            nat_port = port if nat and port and port != svc.port else None
            keys.append((name, (fam.name, base, numbers[at], address, devices[at], mtus[at] if tun else 0, hashed,
                                tun, proto, svc.persistence_timeout_s, svc.persistence_granularity, nat, nat_port)))
        merged = rules.remember(parts, merged_key, _merge_parts(fam, keys, client, parts))
    rs.chains.update(merged.chains)
    rs.rules.update(merged.rules)
    rs.refs.update(merged.refs)
    rs.sets.update(merged.sets)
    chains.extend(merged.names)
    per_dest = merged.per_dest
    rs.rules[base] = rs.rules.get(base, ()) + merged.base_rules
    rs.refs[base] = rs.refs.get(base, frozenset()) | merged.base_refs
    if persist:
        for dest in svc.destinations:
            number = ctx.number(svc.name, dest.name)
            rs.rule(base, {"match": {"op": "==", "left": client, "right": f"@{base}-{number}-clients"}},
                    {"goto": {"target": per_dest[dest.name]}})
    # every server behind one interface, on one port (DR: the VIP's): stateless picks need no server chain
    direct = Direct(devices[0], proto, nat, merged.nat_ports[0]) \
        if hashed and not tun and len(merged.devices) == 1 and len(merged.nat_ports) == 1 else None
    _schedule(rs, fam, svc, base, per_dest, ctx, hashed, direct)
    if nat and (spans := reply_spans(svc, ctx, devices)) is not None:
        _add_replies(rs, fam, svc, base, proto, any(span.gateway is not None for span in spans), ctx)


def _add_replies(rs: rules.Ruleset, fam: Family, svc: VirtualService, base: str, proto: str,
                 via_gateways: bool, ctx: rules.BuildContext) -> None:
    """Stateless NAT's replies from ingress: the VIP and its port as source, then `fwd` by the copied routes.

    As nft_stateless' postrouting chain rewrites them, but sent from the
    ingress hook of the interface they come in on. Left to the IP stack:
    fragments (their datagram stays whole), replies for the router itself
    (its checkers', its local clients': `fib daddr type local`), and replies
    to an address no copied route forwards (route_spans' holes), which
    match neither rule and leave the chain unchanged.
    """
    back = f"{base}-back"
    vip, vport = str(svc.address), int(svc.port or 0)
    # weight 0 and down too: its flows' last packets; the part kept while these hold (a server going down changes
    # none of them: 1,000 servers' map elements written out again were 7 ms of such an apply)
    endpoints = tuple([(d.address, d.port or vport) for d in svc.destinations])
    key = ("back", fam.name, proto, vip, vport, back, via_gateways, endpoints)
    piece = ctx.forward_parts.get(key)
    if piece is None:
        piece = rules.remember(ctx.forward_parts, key, _replies_part(fam, back, proto, vip, vport, endpoints,
                                                                      via_gateways))
    rs.services[svc.name].append(back)
    rules._merge(rs, piece)


def _replies_part(fam: Family, back: str, proto: str, vip: str, vport: int, endpoints: tuple[tuple[str, int], ...],
                  via_gateways: bool) -> rules.Ruleset:
    """`_add_replies`' chain and map elements, as a piece to merge."""
    piece = rules.Ruleset(NETDEV)
    back_map, via, dev = _reply_maps(fam)
    piece.chain(back)
    for address, port in endpoints:
        piece.element(back_map, {"concat": [address, proto, port]}, {"goto": {"target": back}})
    piece.rule(back, *_fragment_rule(fam))
    local = {"fib": {"result": "type", "flags": ["daddr"]}}
    piece.rule(back, {"match": {"op": "==", "left": local, "right": "local"}}, {"accept": None})
    daddr = {"payload": {"protocol": fam.payload, "field": "daddr"}}
    rewrite: list[Json] = []
    if any(port != vport for _, port in endpoints):
        rewrite.append({"mangle": {"key": {"payload": {"protocol": proto, "field": "sport"}}, "value": vport}})
    rewrite.append({"mangle": {"key": {"payload": {"protocol": fam.payload, "field": "saddr"}}, "value": vip}})
    device = {"map": {"key": daddr, "data": f"@{dev}"}}
    if via_gateways:  # first: a span with a gateway is in both maps
        piece.rule(back, {"match": {"op": "==", "left": daddr, "right": f"@{via}"}}, *rewrite,
                   {"fwd": {"dev": device, "family": fam.name, "addr": {"map": {"key": daddr, "data": f"@{via}"}}}})
    piece.rule(back, {"match": {"op": "==", "left": daddr, "right": f"@{dev}"}}, *rewrite,
               {"fwd": {"dev": device, "family": fam.name, "addr": daddr}})
    return piece


def add_copy_path(rs: rules.Ruleset, svc: VirtualService, ctx: rules.BuildContext) -> None:
    """The table-ip half of a TUN service taken from ingress: where its too-long packets and fragments go.

    As nft_rules' copy path (`dup` through the IPIP device, then `drop`), but
    without flow sets and with the ingress chain's own pick rule, so that
    both halves send a flow to the same real server (module docstring).
    The nft_layout caller hooks `dup_prerouting` afterwards.
    """
    base = rules.service_chain(svc.name)
    chains = rs.services.setdefault(svc.name, [])
    chains.append(rs.chain(base))
    for dispatch in rules.dispatches(svc):  # never fwmark: `takes` leaves those to nft_rules
        kind = "ports" if dispatch.kind == "port" else "allports"
        rs.element(f"dup_{kind}", dispatch.key, {"goto": {"target": base}})
    per_dest: dict[str, str] = {}
    for dest in svc.destinations:
        chain = per_dest[dest.name] = rs.chain(f"{base}-{ctx.number(svc.name, dest.name)}")
        chains.append(chain)
        rs.rule(chain, {"dup": {"addr": dest.address, "dev": ctx.tunnel_for(dest.address)}})
        rs.rule(chain, {"drop": None})
    _schedule(rs, rs.family, svc, base, per_dest, ctx, hashed=True)


@dataclass(frozen=True)
class Direct:
    """A stateless DR or NAT service whose every real server is behind `device` (and, NAT, on one port).

    Its pick then writes the server's address from a slot map of addresses
    (`fwd ... addr <map>`; NAT: the rewrite first, `fwd` to the new
    destination), not a `goto` to the server's chain from a verdict map:
    the kernel validates a whole table (every path from every base chain,
    each element of a verdict map) at each commit that adds a `goto`
    element, 3.5-4 ms for a verdict map of 65,521 slots, and a server going
    down rewrote ~65 of them. An address slot map's elements are data, not
    validated. The same packets go to the same servers the same way.
    """

    device: str
    proto: str
    nat: bool
    nat_port: int | None  # NAT: the port every server listens on where it is not the VIP's


def _stateless_pick(rs: rules.Ruleset, fam: Family, svc: VirtualService, base: str, dests: Sequence[Destination],
                    per_dest: dict[str, str], ctx: rules.BuildContext, direct: Direct | None = None) -> list[Json]:
    """The rule that sends every packet of a flow to its server by hash over the stable table ([]: no server).

    TUN's ingress chain and its copy path (`add_copy_path`) both get this
    rule from the same inputs: the same key (the scheduler's, `rules.selector`),
    the same table and the same server chain names, so the same server.
    With `direct`, the rule hands the packet on itself (Direct).
    """
    if len(dests) == 1:
        return [{"goto": {"target": per_dest[dests[0].name]}}]
    table = service_table(svc, list(dests), ctx.tables)  # its base kept from apply to apply
    if not table:
        return []
    pick = rules.selector(fam, svc, len(table))
    if direct is None:
        return [rules.picks(rs, f"{base}-picks", table, dests, per_dest, ctx, pick)]
    texts = [ctx.address_text(d.address) for d in dests]
    address = {"map": {"key": pick, "data": f"@{rs.slot_map(f'{base}-addrs', f'{fam.payload} daddr', texts, table)}"}}
    if not direct.nat:
        return [{"fwd": {"dev": direct.device, "family": fam.name, "addr": address}}]
    daddr = {"payload": {"protocol": fam.payload, "field": "daddr"}}
    port: list[Json] = [] if direct.nat_port is None else [
        {"mangle": {"key": {"payload": {"protocol": direct.proto, "field": "dport"}}, "value": direct.nat_port}}]
    # the port first, as the server chains and nft_stateless: dh hashes the destination address, rewritten next
    return [*port, {"mangle": {"key": daddr, "value": address}},
            {"fwd": {"dev": direct.device, "family": fam.name, "addr": daddr}}]


def _schedule(rs: rules.Ruleset, fam: Family, svc: VirtualService, base: str, per_dest: dict[str, str],
              ctx: rules.BuildContext, hashed: bool, direct: Direct | None = None) -> None:
    """A new flow's server: as nft_rules' prerouting path picks it, with the service's own address family."""
    dests = rules.eligible(svc, ctx.overloaded)
    if hashed:  # nothing remembers a flow: the table alone must keep the others' flows in place
        if dests and (rule := _stateless_pick(rs, fam, svc, base, dests, per_dest, ctx, direct)):
            rs.rule(base, *rule)
        return
    into = rules.pick_chain(rs, svc, base)
    if not dests:
        return  # as an empty IPVS service: the packet goes on to the router's own stack
    if len(dests) == 1:
        rs.rule(into, {"goto": {"target": per_dest[dests[0].name]}})
        return
    key = rules.consistent_key(fam, svc, ctx)
    table: Sequence[int]
    if key is not None:
        table = ctx.tables.maglev([d.name for d in dests], [d.weight for d in dests],
                                  sched.maglev_size_for(len(dests)))
        pick: Json = {"jhash": {"mod": len(table), "seed": rules.HASH_SEED, "expr": key}}
    elif svc.scheduler in HASH_SCHEDULERS:
        # the stable table, as without flow sets: a server going down rewrites its own ~65 slots of 65,521, not the
        # ~450 a new Maglev table moves (its replay, 3 ms, and their elements, 2 ms), and a backup that takes over
        # without the flow sets finds the other servers' flows where they were
        table = service_table(svc, list(dests), ctx.tables)
        pick = rules.selector(fam, svc, len(table))
    else:
        table = rules.slot_table(svc, dests, ctx)
        pick = rules.selector(fam, svc, len(table))
    if table and (key is not None or rules.in_slot_map(svc, table)):
        if key is None:  # the next build starts from it (sticky_spread), as nft_rules' copy path does
            rules._record_table(rs, svc, dests, table)
        # data slots where it can (`rules.pick_by_address`), which the kernel does not validate at each change
        by_address = rules.pick_by_address(rs, fam, svc, base, dests, per_dest, ctx, table, pick)
        rs.rule(into, *(by_address or [rules.picks(rs, f"{base}-picks", table, dests, per_dest, ctx, pick)]))
    elif table:  # a short rr/wrr cycle or random: in the rule, as nft_rules keeps it
        rs.rule(into, {"vmap": {"key": pick, "data": {"set": [
            [slot, {"goto": {"target": per_dest[dests[i].name]}}] for slot, i in enumerate(table)]}}})
