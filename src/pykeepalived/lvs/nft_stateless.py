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

Layout, in the family's table `ip pykeepalived_lvs`, only while a stateless
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
- ICMP errors (IPv4 destination-unreachable, with fragmentation-needed, and
  time-exceeded) about a stateless flow carry the flow's headers inside, and
  conntrack, which translates them for NAT, has no entry. nftables 1.0.6
  rewrites the inner header only with raw payload writes, which update no
  checksum; so each rewrite also writes the ICMP header's bytes 4-5 (zero in
  these messages: "unused" above the MTU) with the ones'-complement
  difference, which keeps the ICMP checksum right (`compensation`). The
  inner IP header's own checksum is left stale; receivers do not check it.
  Errors for the VIP from the client's side (a hop's "fragmentation needed"
  for a reply) go to the real server that sent it, chosen by the same hash
  over the inner header's client fields; errors about a request, from the
  router itself (its link to the real servers is narrower) or from a real
  server, get the VIP into the inner header and, from a server, as source.

What stays on conntrack NAT, and why (`refusal` says it per service): other
schedulers, persistence, FTP (port 21: the helper needs conntrack), fwmark,
port-0 and multi-address services (the way back must name one VIP and
port), IPv6 (an ICMPv6 packet-too-big has no zero field to compensate in:
its MTU takes all four bytes), and real servers whose address and port also
serve another NAT service (the way back could not tell them apart). The
service also keeps its conntrack chain for the router's own clients.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from . import nft_rules as rules
from .model import Destination, VirtualService
from .nft_limits import HASH_SCHEDULERS, IPV4, family_of, forwarding
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
ICMP_ERRORS = ("destination-unreachable", "time-exceeded")

# Offsets (bits) from the ICMP header: 8 bytes of it, then the quoted IP header (without options), then ports.
ICMP_SPARE = (32, 16)  # bytes 4-5: zero in the errors we rewrite; the checksum compensation goes here
INNER_VERSION_IHL = (64, 8)
INNER_PROTO = (136, 8)
INNER_SADDR = (160, 32)
INNER_DADDR = (192, 32)
INNER_SPORT = (224, 16)
INNER_DPORT = (240, 16)


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
    packed = ipaddress.ip_address(value).packed
    return [int.from_bytes(packed[i:i + 2], "big") for i in range(0, len(packed), 2)]


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
        return None  # DR is nft_forward's; TUN keeps its copy path (nft_forward's docstring)
    if svc.scheduler not in HASH_SCHEDULERS:
        return (f"scheduler {svc.scheduler} needs state per connection; stateless NAT needs a hashing one "
                f"({', '.join(HASH_SCHEDULERS)})")
    if svc.persistence_timeout_s:
        return "persistence remembers clients (conntrack NAT keeps it)"
    if family_of(svc) is not IPV4:
        return ("IPv6: an ICMPv6 packet-too-big about a flow cannot be rewritten without conntrack "
                "(no spare field for the checksum), and path MTU discovery needs it")
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
def _raw(offset_len: tuple[int, int]) -> Json:
    offset, length = offset_len
    return {"payload": {"base": "th", "offset": offset, "len": length}}


def _anon(pairs: list[tuple[Any, Any]]) -> Json:
    return {"set": [[k, v] for k, v in pairs]}


def _set(key: Any, value: Any) -> Json:
    return {"mangle": {"key": key, "value": value}}


def _eq(left: Any, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _field(protocol: str, name: str) -> Json:
    return {"payload": {"protocol": protocol, "field": name}}


def hash_fields(svc: VirtualService) -> tuple[str, ...]:
    """The packet fields a request's server is hashed from (the order `nft_rules.selector` uses)."""
    if svc.scheduler == "dh" or svc.scheduler == "lblc" or svc.scheduler == "lblcr":
        return ("daddr",)
    if {"sh-port", "mh-port", "flag-2"} & set(svc.sched_flags):
        return ("saddr", "sport")
    return ("saddr",)


# Where the fields of the request are in an ICMP error about the reply (VIP:vport -> client:cport): swapped.
_INNER_OF_REPLY = {"saddr": INNER_DADDR, "sport": INNER_DPORT, "daddr": INNER_SADDR}


def _jhash(fields: list[Json], modulus: int) -> Json:
    expr: Any = {"concat": fields} if len(fields) > 1 else fields[0]
    return {"jhash": {"mod": modulus, "seed": rules.HASH_SEED, "expr": expr}}


def _ensure_layout(rs: rules.Ruleset) -> None:
    """The shared chains and maps, made with the first stateless service of the table."""
    if PREROUTING_CHAIN in rs.chains:
        return
    addr = rs.family.addr_type
    key_type = [addr, "inet_proto", "inet_service"]
    rs.sets[PORTS_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    rs.sets[REPLIES_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    rs.sets[SOURCES_MAP] = {"_kind": "map", "type": key_type, "map": "verdict"}
    ip, l4, th = rs.family.payload, {"meta": {"key": "l4proto"}}, "th"
    icmp_error = [_eq(l4, "icmp"), _eq(_field("icmp", "type"), {"set": list(ICMP_ERRORS)}),
                  _eq(_raw(ICMP_SPARE), 0), _eq(_raw(INNER_VERSION_IHL), 0x45)]
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
    base = rules.service_chain(svc.name)
    ip = rs.family.payload
    proto = (svc.protocol or "TCP").lower()
    vip, vport = str(svc.address), int(svc.port or 0)
    chains = rs.services.setdefault(svc.name, [])
    forward, back, icmp_in = (rs.chain(f"{base}-sl"), rs.chain(f"{base}-slr"), rs.chain(f"{base}-sli"))
    chains += [forward, back, icmp_in]
    rs.element(PORTS_MAP, {"concat": [vip, proto, vport]}, {"goto": {"target": forward}})

    dests = rules.eligible(svc, ctx.overloaded)
    table = service_table(svc, dests)  # a failed server's flows move, no others (stable_table.py)
    fields = hash_fields(svc)
    pick = _jhash([_field(ip if f != "sport" else "th", f) for f in fields], len(table))
    rs.rule(forward, {"notrack": None})
    if dests:
        ports = [_rs_port(svc, dests[i]) or vport for i in table]
        if len(set(ports)) > 1:  # the port first: dh hashes the destination address, rewritten next
            rs.rule(forward, _set(_field(proto, "dport"), {"map": {"key": pick, "data": _anon(
                list(enumerate(ports)))}}))
        elif ports[0] != vport:
            rs.rule(forward, _set(_field(proto, "dport"), ports[0]))
        if len(dests) == 1:
            rs.rule(forward, _set(_field(ip, "daddr"), dests[0].address))
        else:
            rs.rule(forward, _set(_field(ip, "daddr"), {"map": {"key": pick, "data": _anon(
                [(slot, dests[i].address) for slot, i in enumerate(table)])}}))

    # the way back, from every server the service holds (weight 0 too: its flows' last packets)
    if any((_rs_port(svc, d) or vport) != vport for d in svc.destinations):
        rs.rule(back, _set(_field(proto, "sport"), vport))
    rs.rule(back, _set(_field(ip, "saddr"), vip))
    seen: set[tuple[str, int]] = set()
    for dest in svc.destinations:
        endpoint = (dest.address, _rs_port(svc, dest) or vport)
        if endpoint in seen:
            continue
        seen.add(endpoint)
        key = {"concat": [endpoint[0], proto, endpoint[1]]}
        rs.element(REPLIES_MAP, key, {"goto": {"target": back}})
        rs.element(SOURCES_MAP, key, {"goto": {"target": UNTRACK_CHAIN}})
        _icmp_out(rs, svc, proto, endpoint)

    # errors from the client's side about a reply: back to the server the hash gives
    rs.rule(ICMP_IN_CHAIN, _eq(_field(ip, "daddr"), vip), _eq(_raw(INNER_PROTO), PROTO_NUMBERS[proto]),
            _eq(_raw(INNER_SADDR), int(ipaddress.IPv4Address(vip))), _eq(_raw(INNER_SPORT), vport),
            {"goto": {"target": icmp_in}})
    rs.rule(icmp_in, {"notrack": None})
    if not dests:
        return
    per_dest: dict[str, str] = {}
    for dest in dests:
        chain = rs.chain(f"{base}-sli-{ctx.number(svc.name, dest.name)}")
        chains.append(chain)
        per_dest[dest.name] = chain
        rs_port = _rs_port(svc, dest) or vport
        spare = compensation(words_of(vip) + [vport], words_of(dest.address) + [rs_port])
        stmts = [_set(_raw(ICMP_SPARE), spare), _set(_field(ip, "daddr"), dest.address)]
        if rs_port != vport:
            stmts.append(_set(_raw(INNER_SPORT), rs_port))
        stmts.append(_set(_raw(INNER_SADDR), int(ipaddress.IPv4Address(dest.address))))  # last: dh hashes it
        rs.rule(chain, *stmts)
    if len(dests) == 1:
        rs.rule(icmp_in, {"goto": {"target": per_dest[dests[0].name]}})
        return
    inner_pick = _jhash([_raw(_INNER_OF_REPLY[f]) for f in fields], len(table))
    rs.rule(icmp_in, {"vmap": {"key": inner_pick, "data": _anon(
        [(slot, {"goto": {"target": per_dest[dests[i].name]}}) for slot, i in enumerate(table)])}})


def _icmp_out(rs: rules.Ruleset, svc: VirtualService, proto: str, endpoint: tuple[str, int]) -> None:
    """Errors about a request to this server (from the router or the server): the VIP into their inner header."""
    ip = rs.family.payload
    address, port = endpoint
    vip, vport = str(svc.address), int(svc.port or 0)
    about = [_eq(_raw(INNER_PROTO), PROTO_NUMBERS[proto]), _eq(_raw(INNER_DADDR), int(ipaddress.IPv4Address(address))),
             _eq(_raw(INNER_DPORT), port)]
    rs.rule(ICMP_OUT_CHAIN, _eq(_field(ip, "saddr"), address), *about, _set(_field(ip, "saddr"), vip))
    stmts = [_set(_raw(ICMP_SPARE), compensation(words_of(address) + [port], words_of(vip) + [vport])),
             _set(_raw(INNER_DADDR), int(ipaddress.IPv4Address(vip)))]
    if port != vport:
        stmts.append(_set(_raw(INNER_DPORT), vport))
    rs.rule(ICMP_OUT_CHAIN, *about, *stmts, {"accept": None})
