"""Stateless NAT for hash-scheduled services: every packet rewritten by rule, no conntrack entry at all.

Why: conntrack and its NAT cost 15-30 % of plain routing on this data plane
(docs/dataplane.md, "Throughput"), the floor of any conntrack NAT. A service
whose scheduler hashes (sh, mh, dh and their -port forms) picks the same real
server for every packet of a flow, so nothing needs remembering: the
destination can be rewritten on each packet on the way in and the source on
the way back, with `notrack` keeping conntrack out of both directions.

Asked for per virtual server with `pykeepalived_stateless` (ours), because
users lose things they may rely on (docs/dataplane.md lists them): a pool
change moves the flows Maglev moves (conntrack would pin them), a weight-0
server loses its connections at once, the real server's address and port
answer as the VIP to everyone who crosses the router, and a firewall's
`ct state` rules see these packets as untracked.

Layout, in the family's table (`ip` or `ip6 pykeepalived_lvs`), only while a stateless
service exists:

- `sl_prerouting` (filter, prerouting, priority raw: before conntrack):
  `daddr . l4proto . dport` in `sl_ports` goes to the service's `-sl` chain:
  `notrack`, the real server's port, then its address, chosen by the
  service's hash over a weighted Maglev table of the configured pool whose
  unavailable servers' slots alone go to others (stable_table.py): the same
  on both routers, so a failover keeps flows, and a server's failure moves
  its flows and no others (with all servers up it is the conntrack path's
  table). Replies
  (`saddr . l4proto . sport` in `sl_sources`) are untracked too, unless they
  are for the router itself (its checkers' and local clients' connections
  stay tracked: `fib daddr type local`, in `sl_untrack`).
- `sl_postrouting` (filter, postrouting, after routing, where a local source
  address is no martian): replies get the VIP and its port as source.
- ICMP errors (destination-unreachable, with IPv4's fragmentation-needed,
  IPv6's packet-too-big, time-exceeded) about a stateless flow carry the
  flow's headers inside, and conntrack, which translates them for NAT, has
  no entry. nftables 1.0.6 rewrites the inner header only with raw payload
  writes, which update no checksum, so each rewrite is made checksum-neutral:
  IPv4 writes the ones'-complement difference into the ICMP header's bytes
  4-5 (zero in these messages, "unused" above the MTU: `compensation`);
  ICMPv6's checksum covers the outer addresses, so an outer address is first
  set through nftables' own checksum update to a stand-in whose sum carries
  the inner change, then overwritten raw with the real one (`_with_sum`).
  The quoted IPv4 header's own checksum is left stale; receivers do not
  check it. Errors for the VIP from the client's side (a hop's "packet too
  big" for a reply) go to the real server that sent it, chosen by the same
  hash over the quoted client fields; errors about a request, from the
  router itself (its link to the real servers is narrower) or from a real
  server, get the VIP into the inner header (and as source: always for
  IPv6, from a server for IPv4).

What stays on conntrack NAT, and why (`refusal` says it per service): other
schedulers, persistence, FTP (port 21: the helper needs conntrack), fwmark,
port-0 and multi-address services (the way back must name one VIP and
port), and real servers whose address and port also
serve another NAT service (the way back could not tell them apart). The
service also keeps its conntrack chain for the router's own clients.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import nft_rules as rules
from .model import Destination, VirtualService
from .nft_limits import HASH_SCHEDULERS, IPV4, forwarding
from .stable_table import service_table

Json = dict[str, Any]

PREROUTING_CHAIN = "sl_prerouting"
POSTROUTING_CHAIN = "sl_postrouting"
ICMP_IN_CHAIN = "sl_icmp_in"  # errors for a VIP about a reply: to the real server
ICMP_OUT_CHAIN = "sl_icmp_out"  # errors about a request: the VIP into the inner header
PORTS_MAP = "sl_ports"
REPLIES_MAP = "sl_replies"
SOURCES_MAP = "sl_sources"  # the same keys, to UNTRACK_CHAIN: a verdict map, as static set elements are not diffed
UNTRACK_CHAIN = "sl_untrack"
RAW_PRIORITY = -300  # before conntrack (-200): an untracked packet never makes an entry
SOURCE_PRIORITY = 100  # srcnat: after routing, after any filter in postrouting
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}

SERVERS_SUFFIX = "-sli-servers"  # a service's map: real server address -> its error chain

ICMP_SPARE = (32, 16)  # IPv4 bytes 4-5: zero in the errors we rewrite; the checksum compensation goes here


# --------------------------------------------------------------------------- checksums
def _ones_add(a: int, b: int) -> int:
    total = a + b
    return (total & 0xFFFF) + (total >> 16)


def _ones_sum(words: Iterable[int]) -> int:
    total = 0
    for word in words:
        total = _ones_add(total, word)
    return total


def words_of(value: str | int, bits: int = 16) -> list[int]:
    """The 16-bit words an address (dotted text) or a port puts into a checksum, in network order."""
    if isinstance(value, int):
        return [value & 0xFFFF] if bits == 16 else [(value >> 16) & 0xFFFF, value & 0xFFFF]
    packed = _packed(value)
    return [int.from_bytes(packed[i:i + 2], "big") for i in range(0, len(packed), 2)]


@lru_cache(maxsize=1 << 14)
def _packed(address: str) -> bytes:
    """An address in network order, remembered: a stateless service asks for each server's nine times an apply
    (1,000 servers: 0.1 s of `ipaddress` parsing)."""
    return ipaddress.ip_address(address).packed


def compensation(old: Sequence[int], new: Sequence[int]) -> int:
    """The word that, written where a zero was, keeps a ones'-complement checksum right when `old` becomes `new`.

    The ICMP checksum covers the whole message: replacing words whose sum
    is S_old by words summing to S_new changes the sum by S_new - S_old; a
    zero word turned into S_old - S_new takes that back, so the checksum
    field need not change (RFC 1624's incremental update, applied to a
    spare word instead of the checksum, which nftables cannot compute).
    """
    word = _ones_add(_ones_sum(old), ~_ones_sum(new) & 0xFFFF)
    return 0 if word == 0xFFFF else word  # 0xffff is the ones'-complement zero: adding it changes nothing


# --------------------------------------------------------------------------- which services
def _rs_port(svc: VirtualService, dest: Destination) -> int | None:
    return dest.port if dest.port else svc.port


def refusal(svc: VirtualService) -> str | None:
    """Why `pykeepalived_stateless` cannot be honoured for this service alone (None: it can)."""
    if forwarding(svc) != "NAT":
        return None  # DR and TUN are nft_forward's
    if svc.scheduler not in HASH_SCHEDULERS:
        return (f"scheduler {svc.scheduler} needs state per connection; stateless NAT needs a hashing one "
                f"({', '.join(HASH_SCHEDULERS)})")
    if svc.persistence_timeout_s:
        return "persistence remembers clients (conntrack NAT keeps it)"
    found = rules.dispatches(svc)
    if len(found) != 1 or found[0].kind != "port":
        return "only a service on one address and port can be stateless (the way back names one VIP and port)"
    proto = (svc.protocol or "TCP").lower()
    if proto not in PROTO_NUMBERS:
        return f"protocol {proto}"
    if proto == "tcp" and svc.port == rules.FTP_PORT:
        return "FTP needs the conntrack helper"
    return None


def _endpoints(svc: VirtualService) -> list[tuple[str, str | None, int | None]]:
    """(address, protocol or None for any, port or None for any) each real server answers from."""
    proto = (svc.protocol or "").lower() or None
    if svc.kind == "fwmark":
        proto = None  # the admin's marks may carry any protocol
    return [(d.address, proto, _rs_port(svc, d) or None) for d in svc.destinations]


def _overlap(a: tuple[str, str | None, int | None], b: tuple[str, str | None, int | None]) -> bool:
    return (a[0] == b[0] and (a[1] is None or b[1] is None or a[1] == b[1])
            and (a[2] is None or b[2] is None or a[2] == b[2]))


def choose(services: Sequence[VirtualService]) -> tuple[frozenset[str], dict[str, str]]:
    """The services to run statelessly, and why each other one that asked cannot be.

    Besides `refusal`, a real server's address, protocol and port may serve
    one stateless service and nothing else that NATs: its replies are
    matched by that source alone, and would be rewritten to the wrong VIP
    (or taken from conntrack's un-NAT) otherwise.
    """
    refused: dict[str, str] = {}
    wanted: list[VirtualService] = []
    for svc in services:
        if not svc.stateless:
            continue
        why = refusal(svc)
        if why is None and forwarding(svc) == "NAT":
            wanted.append(svc)
        elif why is not None:
            refused[svc.name] = why
    others = [s for s in services if forwarding_is_nat(s)]
    for svc in wanted:
        mine = _endpoints(svc)
        for other in others:
            if other.name == svc.name:
                continue
            shared = [a for a in mine for b in _endpoints(other) if _overlap(a, b)]
            if shared:
                address, _, port = shared[0]
                refused[svc.name] = (f"real server {address}:{port} also serves virtual server {other.name}; "
                                     "its replies could not be told apart without conntrack")
                break
    return frozenset(s.name for s in wanted if s.name not in refused), refused


def forwarding_is_nat(svc: VirtualService) -> bool:
    try:
        return forwarding(svc) == "NAT"
    except rules.CannotExpress:
        return False


# --------------------------------------------------------------------------- building
@dataclass(frozen=True)
class IcmpLayout:
    """Where an ICMP error of one family keeps the quoted packet's fields (bit offsets from the ICMP header)."""

    protocol: str  # "icmp" or "icmpv6" (nftables' payload protocol and l4proto)
    types: tuple[str, ...]
    checks: tuple[tuple[int, int, int], ...]  # (offset, bits, value) the message must have for us to rewrite it
    proto: tuple[int, int]  # the quoted packet's protocol (IPv6: its next header, so no extension header)
    saddr: int
    daddr: int
    sport: int
    dport: int
    addr_bits: int
    outer_saddr: int  # the outer header's addresses, from the network header
    outer_daddr: int


ICMP4 = IcmpLayout("icmp", ("destination-unreachable", "time-exceeded"),
                   ((32, 16, 0), (64, 8, 0x45)),  # bytes 4-5 zero (the spare word), quoted header without options
                   (136, 8), 160, 192, 224, 240, 32, 96, 128)
ICMP6 = IcmpLayout("icmpv6", ("destination-unreachable", "packet-too-big", "time-exceeded"),
                   ((64, 4, 6),),  # the quoted packet is IPv6
                   (112, 8), 128, 256, 384, 400, 128, 64, 192)


def _raw(offset: int, length: int, base: str = "th") -> Json:
    return {"payload": {"base": base, "offset": offset, "len": length}}


def _anon(pairs: list[tuple[Any, Any]]) -> Json:
    return {"set": [[k, v] for k, v in pairs]}


def _set(key: Any, value: Any) -> Json:
    return {"mangle": {"key": key, "value": value}}


def _eq(left: Any, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _field(protocol: str, name: str) -> Json:
    return {"payload": {"protocol": protocol, "field": name}}


def _chunks(address: str) -> list[tuple[int, int]]:
    """(bit offset within the address, 32-bit value): addresses go in 32-bit pieces (JSON has no 128-bit numbers)."""
    packed = _packed(address)
    return [(8 * i, int.from_bytes(packed[i:i + 4], "big")) for i in range(0, len(packed), 4)]


def _match_address(offset: int, address: str, base: str = "th") -> list[Json]:
    return [_eq(_raw(offset + at, 32, base), value) for at, value in _chunks(address)]


def _write_address(offset: int, address: str, base: str = "th") -> list[Json]:
    return [_set(_raw(offset + at, 32, base), value) for at, value in _chunks(address)]


def _with_sum(address: str, delta: int) -> str:
    """`address` with `delta` added (ones' complement) to its last 16-bit word: a stand-in of a chosen checksum sum."""
    packed = bytearray(_packed(address))
    last = int.from_bytes(packed[-2:], "big")
    packed[-2:] = _ones_add(last, delta).to_bytes(2, "big")
    return str(ipaddress.ip_address(bytes(packed)))


def hash_fields(svc: VirtualService) -> tuple[str, ...]:
    """The packet fields a request's server is hashed from (the order `nft_rules.selector` uses)."""
    if svc.scheduler == "dh" or svc.scheduler == "lblc" or svc.scheduler == "lblcr":
        return ("daddr",)
    if {"sh-port", "mh-port", "flag-2"} & set(svc.sched_flags):
        return ("saddr", "sport")
    return ("saddr",)


def _inner_of_reply(layout: IcmpLayout, fld: str) -> Json:
    """Where a request field is in an ICMP error about the reply (VIP:vport -> client:cport): swapped."""
    if fld == "saddr":
        return _raw(layout.daddr, layout.addr_bits)
    if fld == "sport":
        return _raw(layout.dport, 16)
    return _raw(layout.saddr, layout.addr_bits)


def _jhash(fields: list[Json], modulus: int) -> Json:
    expr: Any = {"concat": fields} if len(fields) > 1 else fields[0]
    return {"jhash": {"mod": modulus, "seed": rules.HASH_SEED, "expr": expr}}


def _layout(rs: rules.Ruleset) -> IcmpLayout:
    return ICMP4 if rs.family is IPV4 else ICMP6


def _ensure_layout(rs: rules.Ruleset) -> None:
    """The shared chains and maps, made with the first stateless service of the table."""
    if PREROUTING_CHAIN in rs.chains:
        return
    layout = _layout(rs)
    key_type = [rs.family.addr_type, "inet_proto", "inet_service"]
    rs.sets[PORTS_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    rs.sets[REPLIES_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    rs.sets[SOURCES_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    ip, l4, th = rs.family.payload, {"meta": {"key": "l4proto"}}, "th"
    icmp_error = [_eq(l4, layout.protocol), _eq(_field(layout.protocol, "type"), {"set": list(layout.types)}),
                  *(_eq(_raw(offset, bits), value) for offset, bits, value in layout.checks)]
    rs.chain(PREROUTING_CHAIN, type="filter", hook="prerouting", prio=RAW_PRIORITY, policy="accept")
    rs.rule(PREROUTING_CHAIN, {"vmap": {"key": {"concat": [_field(ip, "daddr"), l4, _field(th, "dport")]},
                                        "data": f"@{PORTS_MAP}"}})
    rs.rule(PREROUTING_CHAIN, {"vmap": {"key": {"concat": [_field(ip, "saddr"), l4, _field(th, "sport")]},
                                        "data": f"@{SOURCES_MAP}"}})
    rs.chain(UNTRACK_CHAIN)
    rs.rule(UNTRACK_CHAIN, _eq({"fib": {"result": "type", "flags": ["daddr"]}}, "local", "!="), {"notrack": None})
    rs.chain(ICMP_IN_CHAIN)
    rs.rule(PREROUTING_CHAIN, *icmp_error, {"jump": {"target": ICMP_IN_CHAIN}})
    rs.chain(POSTROUTING_CHAIN, type="filter", hook="postrouting", prio=SOURCE_PRIORITY, policy="accept")
    rs.rule(POSTROUTING_CHAIN, {"vmap": {"key": {"concat": [_field(ip, "saddr"), l4, _field(th, "sport")]},
                                         "data": f"@{REPLIES_MAP}"}})
    rs.chain(ICMP_OUT_CHAIN)
    rs.rule(POSTROUTING_CHAIN, *icmp_error, {"jump": {"target": ICMP_OUT_CHAIN}})


def add_service(rs: rules.Ruleset, svc: VirtualService, ctx: rules.BuildContext) -> None:
    """Add one service's stateless chains (`choose` picked it); its conntrack chain stays for local clients."""
    _ensure_layout(rs)
    layout = _layout(rs)
    base = rules.service_chain(svc.name)
    ip = rs.family.payload
    proto = (svc.protocol or "TCP").lower()
    vip, vport = str(svc.address), int(svc.port or 0)
    chains = rs.services.setdefault(svc.name, [])
    forward, back, icmp_in = (rs.chain(f"{base}-sl"), rs.chain(f"{base}-slr"), rs.chain(f"{base}-sli"))
    chains += [forward, back, icmp_in]
    rs.element(PORTS_MAP, {"concat": [vip, proto, vport]}, {"goto": {"target": forward}})

    dests = rules.eligible(svc, ctx.overloaded)
    # a failed server's flows move, no others (stable_table.py); its base kept from apply to apply
    table = service_table(svc, dests, ctx.tables)
    fields = hash_fields(svc)
    pick = _jhash([_field(ip if f != "sport" else "th", f) for f in fields], len(table))
    rs.rule(forward, {"notrack": None})
    if dests:
        dest_ports = [_rs_port(svc, d) or vport for d in dests]
        distinct = set(dest_ports)  # mostly one port: the table (65,521 slots) need not be read for it
        used = distinct if len(distinct) == 1 and table else {dest_ports[i] for i in set(table)}
        if len(used) > 1:  # the port first: dh hashes the destination address, rewritten next
            rs.rule(forward, _set(_field(proto, "dport"), {"map": {"key": pick, "data": _anon(
                [(slot, dest_ports[i]) for slot, i in enumerate(table)])}}))
        elif used != {vport}:
            rs.rule(forward, _set(_field(proto, "dport"), used.pop()))
        if len(dests) == 1:
            rs.rule(forward, _set(_field(ip, "daddr"), dests[0].address))
        else:  # a slot map (nft_rules' module docstring): a change rewrites the slots that moved
            texts = [ctx.address_text(d.address) for d in dests]
            addresses = rs.slot_map(f"{base}-sl-addrs", f"{ip} daddr", texts, table)
            rs.rule(forward, _set(_field(ip, "daddr"), {"map": {"key": pick, "data": f"@{addresses}"}}))

    # the way back, from every server the service holds (weight 0 too: its flows' last packets)
    if any((_rs_port(svc, d) or vport) != vport for d in svc.destinations):
        rs.rule(back, _set(_field(proto, "sport"), vport))
    rs.rule(back, _set(_field(ip, "saddr"), vip))

    # errors from the client's side about a reply: back to the server the hash gives
    rs.rule(ICMP_IN_CHAIN, _eq(_field(ip, "daddr"), vip), _eq(_raw(*layout.proto), PROTO_NUMBERS[proto]),
            *_match_address(layout.saddr, vip), _eq(_raw(layout.sport, 16), vport), {"goto": {"target": icmp_in}})
    rs.rule(icmp_in, {"notrack": None})
    if not dests:
        _add_servers(rs, svc, ctx, layout, base, back, proto, with_chains=False)
        return
    per_dest = _add_servers(rs, svc, ctx, layout, base, back, proto, with_chains=True)
    if len(dests) == 1:
        rs.rule(icmp_in, {"goto": {"target": per_dest[dests[0].name]}})
        return
    inner_pick = _jhash([_inner_of_reply(layout, f) for f in fields], len(table))
    if rules.distinct_addresses(svc):  # a server's address alone names its error chain
        # the server's address from the requests' own slot map, then its chain by that address: the slots are
        # data, which the kernel does not validate at each change as it does a verdict map's (docs/dataplane.md)
        rs.rule(icmp_in, _set(_field(ip, "daddr"), {"map": {"key": inner_pick, "data": f"@{addresses}"}}))
        rs.rule(icmp_in, {"vmap": {"key": _field(ip, "daddr"), "data": f"@{base}{SERVERS_SUFFIX}"}})
        return
    rs.rule(icmp_in, rules.picks(rs, f"{base}-sl-picks", table, dests, per_dest, ctx, inner_pick))


@dataclass(frozen=True)
class _Servers:
    """What a stateless service's servers add, merged (`_add_servers`): its map elements, rules, server chains."""

    piece: rules.Ruleset
    chains: tuple[str, ...]  # the ICMP chains of its servers, in order
    per_dest: dict[str, str]  # server name -> its ICMP chain
    specs: dict[str, Json]  # each of those chains -> its (empty) spec, merged with one update
    rules: dict[str, tuple[str, ...]]  # each of those chains -> its rules
    refs: dict[str, frozenset[str]]  # each of those chains -> what its rules refer to


def _add_servers(rs: rules.Ruleset, svc: VirtualService, ctx: rules.BuildContext, layout: IcmpLayout, base: str,
                 back: str, proto: str, with_chains: bool) -> dict[str, str]:
    """Every server's part of the way back and of the errors (theirs: `with_chains`); server name -> its chain.

    None of it reads which servers are eligible, so the parts merged are
    kept by what they read (the servers' addresses, ports and numbers): a
    server going down or up merges them as one piece, not 1,000 pieces
    into a dozen maps and chains (8 ms).
    """
    vip, vport = str(svc.address), int(svc.port or 0)
    servers = tuple((d.name, d.address, _rs_port(svc, d) or vport) for d in svc.destinations)
    numbers = tuple(ctx.number(svc.name, name) for name, _, _ in servers) if with_chains else ()
    by_address = with_chains and rules.distinct_addresses(svc)
    if by_address:
        rs.sets[f"{base}{SERVERS_SUFFIX}"] = {"_kind": "map", "type": rs.family.addr_type, "map": "verdict"}
    key: tuple[Any, ...] = ("servers", rs.family.name, vip, vport, proto, back, base, servers, numbers)
    parts = ctx.stateless_parts
    merged: _Servers | None = parts.get(key)
    if merged is None:  # (by_address follows from the servers and numbers in the key)
        merged = rules.remember(parts, key, _merge_servers(rs.family, ctx, layout, vip, vport, proto, back, base,
                                                           servers, numbers, by_address))
    piece = merged.piece
    for name, elems in piece.elements.items():
        rs.elements.setdefault(name, {}).update(elems)
    for name, refs in piece.element_refs.items():
        rs.element_refs.setdefault(name, {}).update(refs)
    rs.rules[ICMP_OUT_CHAIN] = rs.rules.get(ICMP_OUT_CHAIN, ()) + piece.rules.get(ICMP_OUT_CHAIN, ())
    rs.refs[ICMP_OUT_CHAIN] = rs.refs.get(ICMP_OUT_CHAIN, frozenset()) | piece.refs.get(ICMP_OUT_CHAIN, frozenset())
    rs.chains.update(merged.specs)
    rs.rules.update(merged.rules)
    rs.refs.update(merged.refs)
    rs.services[svc.name].extend(merged.chains)
    return merged.per_dest


def _merge_servers(fam: rules.Family, ctx: rules.BuildContext, layout: IcmpLayout, vip: str, vport: int, proto: str,
                   back: str, base: str, servers: tuple[tuple[str, str, int], ...],
                   numbers: tuple[int, ...], by_address: bool) -> _Servers:
    """_add_servers' piece, from each server's own (kept while what it reads holds: 1,000 servers' 3,000 rules and
    2,000 map elements written out as JSON at every apply were most of a change to one of them, 0.1 s)."""
    parts = ctx.stateless_parts
    piece = rules.Ruleset(fam)
    icmp_out_rules: list[str] = []
    icmp_out_refs: set[str] = set()
    seen: set[tuple[str, int]] = set()
    for _, address, port in servers:  # the way back: weight 0 too, its flows' last packets
        endpoint = (address, port)
        if endpoint in seen:
            continue
        seen.add(endpoint)
        part_key: tuple[Any, ...] = ("out", fam.name, vip, vport, proto, endpoint, back)
        part = parts.get(part_key)
        if part is None:
            part = rules.remember(parts, part_key, _server_part(fam, layout, vip, vport, proto, endpoint, back))
        for name, elems in part.elements.items():
            piece.elements.setdefault(name, {}).update(elems)
        for name, refs in part.element_refs.items():
            piece.element_refs.setdefault(name, {}).update(refs)
        icmp_out_rules.extend(part.rules.get(ICMP_OUT_CHAIN, ()))
        icmp_out_refs.update(part.refs.get(ICMP_OUT_CHAIN, ()))
    piece.rules[ICMP_OUT_CHAIN] = tuple(icmp_out_rules)
    piece.refs[ICMP_OUT_CHAIN] = frozenset(icmp_out_refs)
    per_dest: dict[str, str] = {}
    chains: list[str] = []
    # every server's chain, down ones too (as the way back): a server going down then changes the slots alone, which
    # the element writer sends without a libnftables transaction (deleting its chain cost one: about 8 ms)
    for (name, address, port), number in zip(servers, numbers):
        if name in per_dest:
            continue
        chain = f"{base}-sli-{number}"
        part_key = ("in", fam.name, vip, vport, address, port, chain)
        part = parts.get(part_key)
        if part is None:
            one = rules.Ruleset(fam)
            one.chain(chain)
            one.rule(chain, *_icmp_in_rewrite(one, layout, vip, vport, address, port))
            part = rules.remember(parts, part_key, one)
        piece.rules[chain] = part.rules[chain]
        piece.refs[chain] = part.refs[chain]
        chains.append(chain)
        per_dest[name] = chain
    if by_address:  # every server, down ones too: one going down changes none of these verdicts
        for name, address, _ in servers:
            piece.element(f"{base}{SERVERS_SUFFIX}", address, {"goto": {"target": per_dest[name]}})
    return _Servers(piece, tuple(chains), per_dest, {chain: {} for chain in chains},
                    {chain: piece.rules[chain] for chain in chains}, {chain: piece.refs[chain] for chain in chains})


def _server_part(fam: rules.Family, layout: IcmpLayout, vip: str, vport: int, proto: str, endpoint: tuple[str, int],
                 back: str) -> rules.Ruleset:
    """What one real server's address and port add to a stateless service's way back: its replies' map elements
    and the rules that put the VIP into errors about a request to it (a scratch Ruleset, kept by add_service)."""
    piece = rules.Ruleset(fam)
    key = {"concat": [endpoint[0], proto, endpoint[1]]}
    piece.element(REPLIES_MAP, key, {"goto": {"target": back}})
    piece.element(SOURCES_MAP, key, {"goto": {"target": UNTRACK_CHAIN}})
    _icmp_out(piece, layout, vip, vport, proto, endpoint)
    return piece


def _icmp_in_rewrite(rs: rules.Ruleset, layout: IcmpLayout, vip: str, vport: int, server: str,
                     port: int) -> list[Json]:
    """An error for the VIP about a reply becomes one for `server` about its own reply, checksum kept right.

    IPv4: the spare word takes the difference. IPv6 (ICMPv6's checksum
    covers the outer addresses; a packet-too-big has no spare word): the
    outer destination is first set, with nftables' own checksum update, to a
    stand-in address whose words sum to the server's plus the inner change,
    then overwritten raw (no update) with the server's: the two differences
    cancel.
    """
    ip = rs.family.payload
    stmts: list[Json] = []
    inner_change = _ones_add(_ones_sum(words_of(server) + [port]), ~_ones_sum(words_of(vip) + [vport]) & 0xFFFF)
    if layout is ICMP4:
        stmts += [_set(_raw(*ICMP_SPARE), compensation(words_of(vip) + [vport], words_of(server) + [port])),
                  _set(_field(ip, "daddr"), server)]
    else:
        stmts += [_set(_field(ip, "daddr"), _with_sum(server, inner_change)),
                  *_write_address(layout.outer_daddr, server, "nh")]
    if port != vport:
        stmts.append(_set(_raw(layout.sport, 16), port))
    stmts += _write_address(layout.saddr, server)  # last: dh hashes the inner source
    return stmts


def _icmp_out(rs: rules.Ruleset, layout: IcmpLayout, vip: str, vport: int, proto: str,
              endpoint: tuple[str, int]) -> None:
    """Errors about a request to this server (from the router or the server): the VIP into their inner header.

    IPv4: a server's own error gets the VIP as source; the spare word takes
    the inner change. IPv6: the outer source becomes the VIP in every case,
    through a stand-in as in `_icmp_in_rewrite`, which carries the inner
    change.
    """
    ip = rs.family.payload
    address, port = endpoint
    about = [_eq(_raw(*layout.proto), PROTO_NUMBERS[proto]), *_match_address(layout.daddr, address),
             _eq(_raw(layout.dport, 16), port)]
    inner = [*_write_address(layout.daddr, vip)]
    if port != vport:
        inner.append(_set(_raw(layout.dport, 16), vport))
    if layout is ICMP4:
        rs.rule(ICMP_OUT_CHAIN, _eq(_field(ip, "saddr"), address), *about, _set(_field(ip, "saddr"), vip))
        spare = compensation(words_of(address) + [port], words_of(vip) + [vport])
        rs.rule(ICMP_OUT_CHAIN, *about, _set(_raw(*ICMP_SPARE), spare), *inner, {"accept": None})
        return
    change = _ones_add(_ones_sum(words_of(vip) + [vport]), ~_ones_sum(words_of(address) + [port]) & 0xFFFF)
    rs.rule(ICMP_OUT_CHAIN, *about, _set(_field(ip, "saddr"), _with_sum(vip, change)),
            *_write_address(layout.outer_saddr, vip, "nh"), *inner, {"accept": None})
