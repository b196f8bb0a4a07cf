"""The nftables ruleset for a desired table: pure, so the layout is unit-tested without a kernel.

Layout (one table per address family, `ip|ip6 pykeepalived_lvs`, ours alone):

- NAT services are dispatched in a `nat` chain at prerouting/output (dstnat
  priority) through verdict maps keyed by `daddr . l4proto . dport` (or by
  `daddr . l4proto` for port-0 services, or by `meta mark` for fwmark
  services) into one chain per virtual service. That chain picks a real
  server with `numgen` (rr, wrr, the load-based ones) or `jhash` (sh, dh, mh,
  over a Maglev table) in an anonymous map and DNATs; conntrack pins the
  choice for the life of the connection, so a table change never moves an
  established connection, as with IPVS. Nat chains only see a connection's
  first packet, so nothing else pays for the lookup.
- Persistence follows kube-proxy: one dynamic set of client addresses
  (masked by persistence_granularity) per real server, `update`d when that
  server is chosen; the service chain first sends a known client to the
  server whose set holds it. A server that leaves takes its set with it, so
  no stale stickiness survives a removal (IPVS drops the template too).
- DR and TUN must not change the packet, and the kernel would deliver a
  packet for a local VIP to itself; so a filter chain at prerouting
  (priority mangle + 1, after any fwmark rules) picks a real server, `dup`s the
  packet to it (DR: out of the interface towards it, keeping the VIP as
  destination; TUN: through an IPIP device whose remote end is the server)
  and drops the original. Without conntrack (a director in DR sees one
  direction only, which conntrack calls invalid), each real server keeps a
  dynamic set of its flows (`saddr . sport . dport`), refreshed by every
  packet; the service chain sends a known flow to the server whose set holds
  it. (A single flow map `flow -> server` would be one lookup instead of one
  per server, but libnftables 1.0.6's JSON cannot write the statement that
  fills a map from the packet path.)
- Consistent flows (`BuildContext.consistent`, decided by nft_limits.consistent_flows from
  global_defs `pykeepalived_consistent_flows`, on by default with
  `lvs_sync_daemon`): conntrackd carries NAT connections to the backup, but
  nothing carries the dynamic sets above, so a new master would schedule a
  known client or a mid-stream DR/TUN packet afresh. In this mode the
  choices that those sets remember are made by a hash both routers compute
  alike: a persistent service picks a new client's server by `jhash` of the
  masked client address, and a DR/TUN service with a non-hash scheduler
  picks a new flow's by `jhash` of `saddr . sport . dport`, each over the
  weighted Maglev table of the eligible servers (HASH_SEED and the table
  are the same on every router). The sets stay: on the router that made
  them they keep a client or flow where it is when servers come and go.
  NAT services without persistence are left to their scheduler (conntrack
  pins them, conntrackd syncs that), and so are sh/dh/mh, which already
  hash, and fo, whose one server follows from the weights.

- Slot maps: the hash schedulers' Maglev tables (up to 65,521 slots), the
  load-based schedulers' tables (256 slots and more) and every table that
  consistent flows hash over live in a named map of the service (`<chain>-slots`
  for address . port, `-addrs` for an address, `-picks` for verdicts), not in
  a literal map inside the rule: a change then rewrites the slots that
  changed (`delete element` / `add element`), where a literal map would be
  sent and parsed whole again. Services whose maps would hold the same
  targets slot for slot share one map (the first one built; a pool behind
  many VIPs or ports is loaded once). The load-based tables are read by
  `numgen random`, so only their counts matter: each is rebuilt from the one
  in force (`BuildContext.slot_tables`, `sched.sticky_spread`), keeping
  every slot whose server keeps its share. rr and wrr cycles of 64 slots
  or more also live in a slot map, rebuilt the same way: `numgen inc` walks
  the cycle, so its order does not change any server's share, and a server
  that leaves a cycle of 1,000 moves two slots instead of shifting every
  later one (the first table is IPVS's order; after changes the order is
  the sticky one). Shorter cycles and random keep literal maps.
  libnftables 1.0.6's JSON cannot declare the 32-bit integer key these maps
  need (`typeof numgen ...`), so the backend creates them with one text
  command before the JSON batch (nft.py).

Objects are compared by their JSON, so the diff (nft_diff.py) rewrites only
the chains and map elements of services that changed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, TypeVar

from ..config.vocabulary import LOAD_SCHEDULERS
from . import maglev, sched
from .model import Destination, VirtualService
from .route_spans import RoutesRefused, Span
# re-exported: the checks -t needs live in nft_limits.py, light to import
from .nft_limits import (HASH_SCHEDULERS as HASH_SCHEDULERS, IPV4 as IPV4, IPV6 as IPV6,
                         MAX_GROUP_ADDRESSES as MAX_GROUP_ADDRESSES, ROUND_SCHEDULERS as ROUND_SCHEDULERS,
                         SCHEDULERS as SCHEDULERS, CannotExpress as CannotExpress, Family as Family,
                         check_service as check_service, family_of as family_of,
                         family_of_address as family_of_address, forwarding as forwarding)

TABLE = "pykeepalived_lvs"
HASH_SEED = 0x706B6100  # fixed, so that every router (and every rebuild) hashes a flow alike
NAT_PRIORITY = -100  # dstnat
DUP_PRIORITY = -149  # after mangle (-150), where fwmarks are set
LOAD_SLOTS = 256
FLOW_TIMEOUT_S = {"tcp": 900, "sctp": 900, "udp": 300}  # IPVS's established/udp timeouts
PERSIST_SET_SIZE = 65536
FLOW_SET_SIZE = 1 << 20
PORT_PROTOCOLS = ("tcp", "udp", "sctp")

Json = dict[str, Any]
K = TypeVar("K")
V = TypeVar("V")
Load = tuple[int, int]  # active, inactive connections


def _no_client_spans(version: int) -> tuple[Span, ...]:
    raise RoutesRefused("no routing table known")


@dataclass
class BuildContext:
    """What the builder needs from outside the table: kernel facts and live counts.

    `device_for(address)` names the interface a DR real server is reached
    through; `tunnel_for(address)` names our IPIP device towards a TUN real
    server; `numbers` keeps each real server's number within its service
    stable across rebuilds (DR flow maps store it); `loads` holds the
    connection counts the load-based schedulers balance on.
    """

    device_for: Callable[[str], str] = lambda address: "eth0"
    tunnel_for: Callable[[str], str] = lambda address: "tunl0"
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    loads: Mapping[str, Mapping[str, Load]] = field(default_factory=dict)
    expected_new: Mapping[str, int] = field(default_factory=dict)
    overloaded: frozenset[tuple[str, str]] = frozenset()  # (service, destination) past its uthreshold
    consistent: bool = False  # consistent flows (module docstring; nft_limits.consistent_flows decides)
    # service -> the real server of each slot of its load-based table in force (sticky_spread keeps them)
    slot_tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    tables: maglev.RecentTables = field(default_factory=maglev.RecentTables)  # Maglev tables, built once each
    fragments: dict[str, Fragment] = field(default_factory=dict)  # service -> its last build (see build)
    forward_fragments: dict[str, Fragment] = field(default_factory=dict)  # the same for nft_forward.add_service
    forward_parts: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # nft_forward.DestPart, by what it reads
    # nft_stateless's per-server parts and their merged pieces (_add_servers), by what they read
    stateless_parts: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    spreads: dict[tuple[int, ...], tuple[int, ...]] = field(default_factory=dict)  # counts -> sched.spread

    def spread(self, counts: Sequence[int]) -> tuple[int, ...]:
        """sched.spread(counts), each once: a thousand services on alike pools ask for the same few."""
        key = tuple(counts)
        table = self.spreads.get(key)
        if table is None:
            if len(self.spreads) >= 4096:
                self.spreads.clear()
            table = self.spreads[key] = tuple(sched.spread(key))
        return table
    ingress_devices: Callable[[], tuple[tuple[str, int], ...]] = lambda: ()  # (name, MTU): nft_forward; none: dup
    tunnel_mtu: Callable[[str], int] = lambda address: 0  # our IPIP device's MTU towards a TUN server (nft_forward)
    checker_notrack_mark: int | None = None  # pykeepalived_checker_notrack: its socket mark (add_checker_notrack)
    # IP version (4, 6) -> the main table as spans for stateless NAT's replies from ingress (route_spans.flatten;
    # RoutesRefused when it cannot be copied, as by default: no routing table known)
    client_spans: Callable[[int], tuple[Span, ...]] = field(default=_no_client_spans)
    reply_devices: set[str] = field(default_factory=set)  # where those replies come in, this build (nft_forward)
    # the server's name -> a NAT slot map target's JSON text (nat_target); chain -> a verdict map's goto (goto_text)
    nat_targets: dict[str, str] = field(default_factory=dict)
    goto_texts: dict[str, str] = field(default_factory=dict)
    address_texts: dict[str, str] = field(default_factory=dict)  # address -> its JSON text (address_text)
    # verdict slot map -> (its chains, goto_targets' answer for them)
    goto_kept: dict[str, tuple[tuple[str, ...], list[str], dict[str, frozenset[str]]]] = field(default_factory=dict)

    def nat_target(self, dest: Destination) -> str:
        """`_nat_target_text` of `dest`, made once per server: a slot map of 1,000 servers asks 1,000 times.

        The same object at every build, so a slot map's old and new data share their texts and compare
        slot by slot at the speed of `is` (Ruleset.slot_map). Not sys.intern: 6,000 more strings in the
        interpreter's own table of interned strings made it grow by 1.2 MiB at bench/checks.py's scale.
        Keyed by `dest.name`, a string the checker's destinations already hold (`[address]:port`: port None
        and 0 give the same text), not by a new (address, port) pair per server.
        """
        text = self.nat_targets.get(dest.name)
        return text if text is not None else remember(self.nat_targets, dest.name, _nat_target_text(dest))

    def address_text(self, address: str) -> str:
        """An address slot map's datum as JSON text, one object per address at every build (as nat_target)."""
        text = self.address_texts.get(address)
        return text if text is not None else remember(self.address_texts, address, json.dumps(address))

    def goto_targets(self, name: str, chains: tuple[str, ...]) -> tuple[list[str], dict[str, frozenset[str]]]:
        """(goto_text of each chain, each text -> the chain it names) for verdict slot map `name`, kept for its next
        build while the chains are the same (`picks`): a change to one server of 1,000 asked for the 999 others'
        again (0.5 ms). The caller must not change what it gets."""
        kept = self.goto_kept.get(name)
        if kept is not None and kept[0] == chains:
            return kept[1], kept[2]
        texts = [self.goto_text(chain) for chain in chains]
        refs = {text: frozenset({chain}) for text, chain in zip(texts, chains)}
        remember(self.goto_kept, name, (chains, texts, refs))
        return texts, refs

    def goto_text(self, chain: str) -> str:
        """A verdict slot map's `goto chain` as JSON text, one object per chain at every build (as nat_target)."""
        text = self.goto_texts.get(chain)
        return text if text is not None else remember(self.goto_texts, chain, json.dumps(_goto(chain), sort_keys=True))
    fallbacks: dict[str, str] = field(default_factory=dict)  # service -> why pykeepalived_stateless is not honoured

    def number(self, service: str, dest: str) -> int:
        key = (service, dest)
        if key not in self.numbers:
            used = {n for (svc, _), n in self.numbers.items() if svc == service}
            self.numbers[key] = next(n for n in range(1, len(used) + 2) if n not in used)
        return self.numbers[key]


# Statements that name a stateful object (not a set) by a plain string: {"ct helper": "ftp"}, {"counter": "c"}...
OBJECT_STATEMENTS = frozenset({"counter", "quota", "limit", "ct helper", "ct timeout", "ct expectation",
                               "synproxy", "secmark"})


def references(expr: Any) -> frozenset[str]:
    """The named objects a rule or a map element's data refers to, read from its libnftables JSON tree.

    libnftables reads an expression string that starts with `@` as a set or
    map reference (`"right": "@clients"`, `"data": "@nat_ports"`, `"set":
    "@flows"`); `jump`/`goto` name a chain as their `target`; the statements
    of OBJECT_STATEMENTS name a stateful object by a plain string. Walking
    the tree rather than searching the JSON text, a name never matches part
    of another name or of a literal, whatever characters it holds.
    """
    found: set[str] = set()
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node.startswith("@"):
                found.add(node[1:])
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("jump", "goto") and isinstance(value, dict):
                    found.add(value["target"])
                elif key in OBJECT_STATEMENTS and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
    return frozenset(found)


_MAY_REFER = re.compile('"@|"(?:' + "|".join(re.escape(k) for k in sorted({"jump", "goto", *OBJECT_STATEMENTS})) + ')"')


def _may_refer(text: str) -> bool:
    """False only when the JSON text cannot hold a reference: no `"@` string, no jump, goto or object key.

    A cheap filter before `references` walks the tree; it never decides that
    something is referenced (that is the walk's job), so a name that JSON
    escapes cannot fool it.
    """
    return _MAY_REFER.search(text) is not None


SLOT_KEY_TYPEOF = "numgen inc mod 1"  # any 32-bit integer: what numgen and jhash give


TEXT_CACHE_MAX = 65536
"""Entries each of BuildContext's caches keeps at most (texts, kept parts: one that outgrows it starts afresh)."""


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """Keep `value` under `key` in one of BuildContext's caches, bounded by TEXT_CACHE_MAX; `value` back."""
    if len(cache) >= TEXT_CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


class SlotKey:
    """A slot map's data type and data as a dict key (Ruleset's twins), hashed once.

    A Maglev map's data is a tuple of 65,521 texts: hashing it costs 0.2 ms,
    and a build looks each map up twice (its fragment, then the table).
    """

    __slots__ = ("data_type", "data", "_hash")

    def __init__(self, data_type: str, data: tuple[str, ...]) -> None:
        self.data_type = data_type
        self.data = data
        self._hash = hash((data_type, data))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlotKey) and (self is other or (
            self._hash == other._hash and self.data_type == other.data_type and self.data == other.data))


@dataclass(frozen=True)
class SlotMap:
    """A named map slot number -> where a new connection goes (module docstring: slot maps).

    `data_type` is the map's data in nft's `typeof` words ("ip daddr . tcp
    dport", "ip6 daddr", "verdict"); `data` holds each slot's data as JSON
    text, one string object per distinct target, so that comparing two
    tables slot by slot is cheap.
    """

    data_type: str
    data: tuple[str, ...]
    # the Maglev run's full table this map's data is (maglev.MaglevTable.texts), and the slots that differ from it:
    # two maps on the same base differ at most in the slots either patched (nft_diff._slot_changes)
    base: tuple[str, ...] | None = field(default=None, compare=False)
    patched: tuple[int, ...] = field(default=(), compare=False)
    key: SlotKey | None = field(default=None, compare=False, repr=False)  # made by Ruleset.slot_map


@dataclass
class Ruleset:
    """One family's table: chains (with their rules) and named sets/maps (with static elements).

    Rules and elements are kept as JSON text (compared as such by the diff);
    what each refers to is recorded from their structure as they are added.
    """

    family: Family
    chains: dict[str, Json] = field(default_factory=dict)  # name -> chain spec (base chains have hook...)
    rules: dict[str, tuple[str, ...]] = field(default_factory=dict)  # chain name -> rule exprs as JSON text
    sets: dict[str, Json] = field(default_factory=dict)  # name -> set/map spec (kind under "_kind")
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # static map -> key JSON -> data JSON
    services: dict[str, list[str]] = field(default_factory=dict)  # service name -> its chain names
    refs: dict[str, frozenset[str]] = field(default_factory=dict)  # chain -> what its rules refer to
    # map -> key JSON -> refs, for the elements that refer to something
    element_refs: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    slot_maps: dict[str, SlotMap] = field(default_factory=dict)  # name -> slot map (module docstring)
    slot_refs: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)  # map -> data JSON -> refs
    slot_tables: dict[str, tuple[str, ...]] = field(default_factory=dict)  # service -> server of each slot
    _shared: dict[SlotKey, str] = field(default_factory=dict, repr=False, compare=False)  # data -> its map

    def chain(self, name: str, **spec: Any) -> str:
        self.chains[name] = spec
        self.rules.setdefault(name, ())
        self.refs.setdefault(name, frozenset())
        return name

    def rule(self, chain: str, *exprs: Json) -> None:
        text = json.dumps(list(exprs), sort_keys=True)
        self.rules[chain] = self.rules.get(chain, ()) + (text,)
        if _may_refer(text):  # walking a rule with a 65,521-slot literal map costs more than building it
            self.refs[chain] = self.refs.get(chain, frozenset()) | references(list(exprs))

    def slot_map(self, name: str, data_type: str, texts: list[str], table: Sequence[int],
                 refs: Mapping[str, frozenset[str]] | None = None) -> str:
        """Record slot map `name` (slot i -> the target written texts[table[i]]); the name to refer to.

        A twin's name if the table already has the same map. `refs` gives
        what each text refers to (verdict maps: their chains). The texts are
        BuildContext's (nat_target, goto_text): one object per target at every
        build, so comparing old and new data slot by slot stays cheap.
        """
        base: tuple[str, ...] | None = None
        patched: tuple[int, ...] = ()
        if isinstance(table, maglev.MaglevTable):
            data, base, patched = table.texts(texts)
        else:
            data = tuple(itemgetter(*table)(texts)) if len(table) > 1 else tuple(texts[i] for i in table)
        key = SlotKey(data_type, data)
        twin = self._shared.get(key)
        if twin is not None:
            return twin
        self._shared[key] = name
        # texts only, not their parsed targets: held for the table's life those were 1.6 MiB at 6,000 rr servers,
        # for the rare slot map whose elements go through libnftables (nft_diff parses those texts when it needs them)
        self.slot_maps[name] = SlotMap(data_type, data, base, patched, key)
        if refs:
            self.slot_refs[name] = dict(refs)
        return name

    def slot_pairs(self, data: Any) -> list[list[Any]]:
        """A rule's map data as [slot, target] pairs, whether a literal map or "@name" of a slot map."""
        if isinstance(data, str) and data.startswith("@"):
            return [[slot, json.loads(text)] for slot, text in enumerate(self.slot_maps[data[1:]].data)]
        return [list(pair) for pair in data["set"]]

    def element(self, map_name: str, key: Any, data: Any) -> None:
        key_text = json.dumps(key, sort_keys=True)
        data_text = json.dumps(data, sort_keys=True)
        self.elements.setdefault(map_name, {})[key_text] = data_text
        if _may_refer(data_text) and (refs := references(data)):
            self.element_refs.setdefault(map_name, {})[key_text] = refs


# --------------------------------------------------------------------------- expression helpers
def _payload(protocol: str, fld: str) -> Json:
    return {"payload": {"protocol": protocol, "field": fld}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _match(left: Any, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _concat(*parts: Any) -> Any:
    return {"concat": list(parts)} if len(parts) > 1 else parts[0]


def _goto(chain: str) -> Json:
    return {"goto": {"target": chain}}


def _anon(pairs: list[tuple[Any, Any]]) -> Json:
    return {"set": [[k, v] for k, v in pairs]}


def safe_name(text: str) -> str:
    """A chain/set name nft's text syntax reads back unquoted (IPv6 colons and brackets replaced)."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def service_chain(service: str) -> str:
    """The chain a service's traffic is dispatched to; its servers' chains and sets are named after it."""
    return safe_name(f"vs-{service}")


DispatchKind = Literal["port", "allports", "fwmark"]


@dataclass(frozen=True)
class Dispatch:
    """One way traffic reaches a service: address . protocol . port, address . protocol, or a mark."""

    kind: DispatchKind
    key: Any


def dispatches(svc: VirtualService) -> list[Dispatch]:
    proto = (svc.protocol or "TCP").lower()
    found: list[Dispatch] = []

    def by_address(address: str, port: int | None) -> None:
        if port:
            found.append(Dispatch("port", _concat(address, proto, port)))
        else:
            found.append(Dispatch("allports", _concat(address, proto)))

    if svc.kind == "fwmark" and svc.fwmark is not None:
        found.append(Dispatch("fwmark", svc.fwmark))
    elif svc.kind == "address" and svc.address is not None:
        by_address(svc.address, svc.port)
    for entry in svc.group_entries:
        if entry.fwmark is not None:
            found.append(Dispatch("fwmark", entry.fwmark))
        for address in entry.addresses():
            by_address(address, entry.port)
    return found


def eligible(svc: VirtualService, overloaded: frozenset[tuple[str, str]] = frozenset()) -> list[Destination]:
    """Servers that may take new connections (weight 0, dead and overloaded ones keep only what they have).

    Quorum is already in the table: with a sorry server the checker swapped
    it in; without one keepalived leaves IPVS alone when quorum is lost (only
    the notify scripts run), so the alive servers keep taking connections.
    """
    if not overloaded:
        return [d for d in svc.destinations if d.alive and d.weight > 0]
    return [d for d in svc.destinations if d.alive and d.weight > 0 and (svc.name, d.name) not in overloaded]


def overloaded_now(services: list[VirtualService], loads: Mapping[str, Mapping[str, Load]],
                   before: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """Real servers past their uthreshold, with IPVS's hysteresis.

    IPVS marks a destination overloaded once its connections (active plus
    inactive) reach uthreshold, and takes the mark off when they fall below
    lthreshold, or below three quarters of uthreshold when lthreshold is 0.
    A destination without uthreshold is never overloaded.
    """
    out: set[tuple[str, str]] = set()
    for svc in services:
        for dest in svc.destinations:
            if not dest.uthreshold:
                continue
            key = (svc.name, dest.name)
            total = sum(loads.get(svc.name, {}).get(dest.name, (0, 0)))
            if total >= dest.uthreshold:
                out.add(key)
            elif key in before:
                low = total < dest.lthreshold if dest.lthreshold else total * 4 < dest.uthreshold * 3
                if not low:
                    out.add(key)
    return frozenset(out)


def _proto_match(svc: VirtualService) -> Json:
    if svc.kind == "address" and svc.protocol:
        return _match(_meta("l4proto"), svc.protocol.lower())
    return _match(_meta("l4proto"), {"set": list(PORT_PROTOCOLS)})


def _saddr(fam: Family, svc: VirtualService) -> Any:
    """The client address, masked by persistence_granularity."""
    saddr = _payload(fam.payload, "saddr")
    gran = svc.persistence_granularity
    if not gran:
        return saddr
    if fam is IPV4:
        mask = gran if not gran.isdigit() else str(ipaddress.IPv4Network(f"0.0.0.0/{gran}").netmask)
    else:
        bits = int(gran) if gran.isdigit() else ipaddress.IPv4Network(f"0.0.0.0/{gran}").prefixlen
        mask = str(ipaddress.IPv6Network(f"::/{bits}").netmask)
    return {"&": [saddr, mask]}


def selector(fam: Family, svc: VirtualService, modulus: int) -> Json:
    """The expression that numbers a new connection's slot, 0 <= slot < modulus."""
    flags = set(svc.sched_flags)
    if svc.scheduler == "rr" or svc.scheduler == "wrr":
        return {"numgen": {"mode": "inc", "mod": modulus, "offset": 0}}
    if svc.scheduler in ROUND_SCHEDULERS or svc.scheduler in LOAD_SCHEDULERS:
        return {"numgen": {"mode": "random", "mod": modulus, "offset": 0}}
    if svc.scheduler == "dh" or svc.scheduler == "lblc" or svc.scheduler == "lblcr":
        fields: list[Json] = [_payload(fam.payload, "daddr")]
    else:
        fields = [_payload(fam.payload, "saddr")]
        if {"sh-port", "mh-port", "flag-2"} & flags:
            fields.append(_payload("th", "sport"))
    return {"jhash": {"mod": modulus, "seed": HASH_SEED, "expr": _concat(*fields)}}


def flow_key(fam: Family) -> Any:
    """A DR/TUN flow as the director sees it (one direction): client address and port, service port."""
    return _concat(_payload(fam.payload, "saddr"), _payload("th", "sport"), _payload("th", "dport"))


def consistent_key(fam: Family, svc: VirtualService, ctx: BuildContext) -> Any | None:
    """What a new connection's server is hashed from in consistent mode; None: the scheduler decides.

    Only where a dynamic set that no router shares would decide after a
    failover: persistence (the client, masked by persistence_granularity,
    whatever the scheduler: its next connection may come from another port
    or VIP and must land alike on either router) and DR/TUN flows of the
    schedulers that do not already hash (rr, wrr, random and the load-based
    ones). fo is left alone: its one server follows from the weights, which
    both routers share.
    """
    if not ctx.consistent or svc.scheduler == "fo":
        return None
    if svc.persistence_timeout_s:
        return _saddr(fam, svc)
    if forwarding(svc) == "NAT" or svc.scheduler in HASH_SCHEDULERS:
        return None
    return flow_key(fam)


def slot_table(svc: VirtualService, dests: list[Destination], ctx: BuildContext) -> Sequence[int]:
    """Slot number -> index into `dests`, as the service's scheduler spreads new connections."""
    weights = [d.weight for d in dests]
    if svc.scheduler == "rr":
        # rr's cycle is each server with a weight once: its counts need no list of the cycle (at 5,000 servers the
        # cycle's 5,000 ints were a fifth of a server's removal's transient memory, bench/checks.py)
        counts = [1 if w > 0 else 0 for w in weights]
        before = ctx.slot_tables.get(svc.name, ())
        if sum(counts) < CYCLE_SLOT_MAP_MIN or not before:
            return sched.rr_sequence(weights)
        return sched.sticky_spread(before, [d.name for d in dests], counts)
    if svc.scheduler == "wrr":
        cycle = sched.wrr_sequence(weights)
        before = ctx.slot_tables.get(svc.name, ())
        if len(cycle) < CYCLE_SLOT_MAP_MIN or not before:
            return cycle
        return sched.sticky_spread(before, [d.name for d in dests], _cycle_counts(cycle, len(dests)))
    if svc.scheduler == "random":
        cycle = sched.wrr_sequence(weights)  # weights reduced by their gcd and capped, as wrr's table is
        return sched.spread(_cycle_counts(cycle, len(dests)))
    if svc.scheduler in HASH_SCHEDULERS:
        if stateless_nat(svc, ctx):
            # its conntrack chain (the router's own clients) on the stateless chains' table: the same server for a
            # flow from the router as from a client, and one server down rewrites its ~65 slots, not the ~450 a
            # new Maglev table moves (its replay, 3 ms, and their elements); imported here: plain NAT never asks
            from .stable_table import service_table
            return service_table(svc, dests, ctx.tables)
        return ctx.tables.maglev([d.name for d in dests], weights, sched.maglev_size_for(len(dests)))
    loads = ctx.loads.get(svc.name, {})
    active = [loads.get(d.name, (0, 0))[0] for d in dests]
    inactive = [loads.get(d.name, (0, 0))[1] for d in dests]
    # every server must be able to get a slot; counted over the configured servers, not the eligible ones, so that
    # one going down or up keeps the modulus (the pick's rule) and moves its own slots alone
    slots = min(max(LOAD_SLOTS, 4 * len(svc.destinations)), 65536)
    counts = sched.load_slots(svc.scheduler, weights, active, inactive,
                              ctx.expected_new.get(svc.name, slots), slots)
    # numgen random reads this table: only the counts matter, so keep the slots in force where the counts allow
    before = ctx.slot_tables.get(svc.name, ())
    if not before:
        return ctx.spread(counts)
    return sched.sticky_spread(before, [d.name for d in dests], counts)


def stateless_nat(svc: VirtualService, ctx: BuildContext) -> bool:
    """Whether nft_stateless runs this NAT service (nft_layout asked nft_stateless.choose, which refused the rest
    into ctx.fallbacks)."""
    return svc.stateless and forwarding(svc) == "NAT" and svc.name not in ctx.fallbacks


def _cycle_counts(cycle: Sequence[int], n: int) -> list[int]:
    """How many slots of `cycle` each of `n` servers has (one pass: 1,000 servers' cycle.count was 1,000 passes)."""
    counts = [0] * n
    for i in cycle:
        counts[i] += 1
    return counts


CYCLE_SLOT_MAP_MIN = 64
"""rr and wrr cycles this long or longer live in a slot map; shorter ones in the rule, where one change costs
little (module docstring: slot maps)."""


def in_slot_map(svc: VirtualService, table: Sequence[int]) -> bool:
    """Whether the service's table lives in a named slot map (module docstring: slot maps)."""
    if svc.scheduler == "rr" or svc.scheduler == "wrr":
        return len(table) >= CYCLE_SLOT_MAP_MIN
    return svc.scheduler in HASH_SCHEDULERS or svc.scheduler in LOAD_SCHEDULERS


def single_protocol(svc: VirtualService) -> str | None:
    """The one transport protocol every packet of the service carries, or None (fwmarks: any).

    Dispatch keys hold the service's protocol for addresses and group
    address entries; a fwmark (the service's or a group entry's) lets any
    protocol through.
    """
    if svc.kind == "fwmark" or any(entry.fwmark is not None for entry in svc.group_entries):
        return None
    if svc.kind == "address" and not svc.protocol:
        return None
    return (svc.protocol or "TCP").lower()


def nat_data_type(fam: Family, svc: VirtualService, dests: list[Destination]) -> str | None:
    """A NAT slot map's data in `typeof` words, None where a slot map cannot say it (a literal map then).

    With ports the data names the transport protocol (`tcp dport`), and
    libnftables refuses a map whose protocol differs from, or is one of a
    set in, the rule's `meta l4proto` match ("conflicting protocols"), so
    only services of one protocol qualify; neither do servers that mix
    ports and none.
    """
    ports = {bool(d.port) for d in dests}
    if len(ports) != 1:
        return None
    if True not in ports:
        return f"{fam.payload} daddr"
    protocol = single_protocol(svc)
    return f"{fam.payload} daddr . {protocol} dport" if protocol else None


def _slot_map_suffix(data_type: str) -> str:
    """`slots` (tcp), `udp-slots`, `sctp-slots` or `addrs`: a map's name says its type, so no map is re-made
    under the same name with another type (which the text command before the batch could not do)."""
    if "." not in data_type:
        return "addrs"
    protocol = data_type.split(" . ")[1].split()[0]
    return "slots" if protocol == "tcp" else f"{protocol}-slots"


# --------------------------------------------------------------------------- building
HOOK_CHAINS = {  # dispatch prefix -> its base chains: (name, hook, priority, chain type)
    "nat": (("nat_prerouting", "prerouting", NAT_PRIORITY, "nat"), ("nat_output", "output", NAT_PRIORITY, "nat")),
    "dup": (("dup_prerouting", "prerouting", DUP_PRIORITY, "filter"),),
}


def empty_ruleset(fam: Family) -> Ruleset:
    """The fixed part: dispatch maps and base chains (`prune_hooks` removes the unused chains)."""
    rs = Ruleset(fam)
    addr = fam.addr_type
    for prefix in ("nat", "dup"):
        rs.sets[f"{prefix}_ports"] = {"_kind": "map", "type": [addr, "inet_proto", "inet_service"], "map": "verdict"}
        rs.sets[f"{prefix}_allports"] = {"_kind": "map", "type": [addr, "inet_proto"], "map": "verdict"}
        rs.sets[f"{prefix}_fwmarks"] = {"_kind": "map", "type": "mark", "map": "verdict"}
    daddr = _payload(fam.payload, "daddr")
    l4 = _meta("l4proto")
    for prefix, chains in HOOK_CHAINS.items():
        for chain, hook, prio, kind in chains:
            rs.chain(chain, type=kind, hook=hook, prio=prio, policy="accept")
            rs.rule(chain, {"vmap": {"key": _concat(daddr, l4, _payload("th", "dport")),
                                     "data": f"@{prefix}_ports"}})
            rs.rule(chain, {"vmap": {"key": _concat(daddr, l4), "data": f"@{prefix}_allports"}})
            rs.rule(chain, {"vmap": {"key": _meta("mark"), "data": f"@{prefix}_fwmarks"}})
    return rs


def prune_hooks(rs: Ruleset) -> None:
    """Unhook the base chains no service dispatches through.

    A base chain costs every packet that crosses its hook, so a NAT-only
    router should not pay for the DR chain's lookups, and a DR-only router
    registers no nat chain, which also keeps conntrack off its packet path
    (the kernel only tracks connections in a namespace once a nat or ct
    rule asks for it). The dispatch maps stay: they cost nothing per packet.
    """
    for prefix, chains in HOOK_CHAINS.items():
        if not any(rs.elements.get(f"{prefix}_{kind}") for kind in ("ports", "allports", "fwmarks")):
            for chain, *_ in chains:
                rs.chains.pop(chain, None)
                rs.rules.pop(chain, None)
                rs.refs.pop(chain, None)


def build(services: list[VirtualService], ctx: BuildContext, checked: bool = False) -> dict[str, Ruleset]:
    """The rulesets (by family name) that make the kernel forward as `services` say.

    `checked`: the caller ran check_service on every service already (build_all does, before building any).

    Each service is built on its own into a fragment that `ctx.fragments`
    keeps with what the build read (the service, its servers' numbers,
    devices and loads, its table in force...); while all that is unchanged
    the fragment is merged again as it is, so a change to one service of a
    thousand rebuilds that one.
    """
    out: dict[str, Ruleset] = {}
    for svc in services:
        fam = family_of(svc)
        rs = out.get(fam.name) or out.setdefault(fam.name, empty_ruleset(fam))
        cached = ctx.fragments.get(svc.name)
        if cached is None or not cached.still_fits(svc, ctx):
            cached = ctx.fragments[svc.name] = _build_fragment(svc, fam, ctx, checked)
        _merge(rs, cached.piece)
    for name in set(ctx.fragments) - {svc.name for svc in services}:
        del ctx.fragments[name]
    for fam_name, rs in out.items():
        _add_ftp_helper(rs, [svc for svc in services if family_of(svc).name == fam_name and forwarding(svc) == "NAT"])
        prune_hooks(rs)
        if ctx.checker_notrack_mark is not None:
            add_checker_notrack(rs, [svc for svc in services if family_of(svc).name == fam_name],
                                ctx.checker_notrack_mark)
    return out


CHECKER_OUT_CHAIN = "checker_notrack_out"
CHECKER_IN_CHAIN = "checker_notrack_in"
RAW_PRIORITY = -300  # before conntrack (-200): an untracked packet never makes an entry


def add_checker_notrack(rs: Ruleset, services: list[VirtualService], mark: int) -> None:
    """Keep the checker's own connections out of conntrack (global_defs pykeepalived_checker_notrack).

    Why: with a nat chain in the namespace every packet is tracked, the
    checker's too, and at thousands of checks a second that is most of what
    the table costs the checker (conntrack and a NAT null binding per check,
    tens of thousands of CLOSE entries; docs/checkers.md). The engine marks
    its sockets (SO_MARK `mark`); what leaves them is untracked in output,
    and a reply is untracked in prerouting when it comes from a real server's
    address and the socket it is for carries the mark (the `socket` lookup
    only for packets from real servers). Anything else, such as this host's
    own connections through a VIP, keeps conntrack and its NAT.
    """
    addresses = _checked_addresses(tuple(d.address for svc in services for d in svc.destinations))
    rs.chain(CHECKER_OUT_CHAIN, type="filter", hook="output", prio=RAW_PRIORITY, policy="accept")
    rs.rule(CHECKER_OUT_CHAIN, _match(_meta("mark"), mark), {"notrack": None})
    if not addresses:
        return
    saddr = _payload(rs.family.payload, "saddr")
    rs.chain(CHECKER_IN_CHAIN, type="filter", hook="prerouting", prio=RAW_PRIORITY, policy="accept")
    rs.rule(CHECKER_IN_CHAIN, _match(_meta("l4proto"), "tcp"),
            _match(saddr, addresses[0] if len(addresses) == 1 else {"set": list(addresses)}),
            _match({"socket": {"key": "mark"}}, mark), {"notrack": None})


@lru_cache(maxsize=8)
def _checked_addresses(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """The real servers' addresses, written as nftables lists them, once each, sorted; remembered by the
    addresses as configured, which a server going down leaves as they are (6,000 parsed at every apply: 18 ms)."""
    return tuple(sorted({str(ipaddress.ip_address(address)) for address in addresses}))


@dataclass
class Fragment:
    """What one service adds to its family's table, and what its build read (`_fragment_key`)."""

    svc: VirtualService
    key: tuple[Any, ...]
    piece: Ruleset
    built_from: tuple[str, ...] | None  # the load-based table in force it started from (sticky_spread)

    def still_fits(self, svc: VirtualService, ctx: BuildContext) -> bool:
        """Whether building `svc` now would give this fragment again."""
        if not (self.svc is svc or self.svc == svc):
            return False
        in_force = ctx.slot_tables.get(svc.name)
        mine = self.piece.slot_tables.get(svc.name)
        if not (in_force is mine or in_force == mine or in_force == self.built_from):
            return False  # a table that keeps its counts comes out of sticky_spread as it went in
        return self.key == _fragment_key(svc, ctx)


def _fragment_key(svc: VirtualService, ctx: BuildContext) -> tuple[Any, ...]:
    """Everything a service's build reads besides the service itself: equal keys, equal fragments."""
    method = forwarding(svc)
    numbered = method != "NAT" or bool(svc.persistence_timeout_s)
    numbers = tuple(ctx.number(svc.name, d.name) for d in svc.destinations) if numbered else ()
    devices: tuple[str, ...] = ()
    if method == "DR":
        devices = tuple(ctx.device_for(d.address) for d in svc.destinations)
    elif method == "TUN":
        devices = tuple(ctx.tunnel_for(d.address) for d in svc.destinations)
    overloaded = frozenset(key for key in ctx.overloaded if key[0] == svc.name)
    return numbers, devices, dict(ctx.loads.get(svc.name, {})), ctx.expected_new.get(svc.name), overloaded, \
        ctx.consistent, svc.stateless and svc.name in ctx.fallbacks


def _build_fragment(svc: VirtualService, fam: Family, ctx: BuildContext, checked: bool) -> Fragment:
    if not checked:
        check_service(svc)
    key = _fragment_key(svc, ctx)
    piece = Ruleset(fam)
    method = forwarding(svc)
    base = service_chain(svc.name)
    chains = piece.services.setdefault(svc.name, [])
    chains.append(piece.chain(base))
    prefix = "nat" if method == "NAT" else "dup"
    for dispatch in dispatches(svc):
        map_name = {"port": "ports", "allports": "allports", "fwmark": "fwmarks"}[dispatch.kind]
        piece.element(f"{prefix}_{map_name}", dispatch.key, _goto(base))
    if method == "NAT":
        _build_nat(piece, svc, base, ctx)
    else:
        _build_dup(piece, svc, base, method, ctx)
    return Fragment(svc, key, piece, ctx.slot_tables.get(svc.name))


def _merge(rs: Ruleset, piece: Ruleset) -> None:
    """Add a service's fragment to its family's table (the fragment itself is left as it is, to be kept).

    A slot map with a twin already in the table is not added: the
    fragment's rules are pointed at the twin instead.
    """
    rs.chains.update(piece.chains)
    rs.rules.update(piece.rules)
    rs.refs.update(piece.refs)
    rs.sets.update(piece.sets)
    for name, elems in piece.elements.items():
        rs.elements.setdefault(name, {}).update(elems)
    for name, refs in piece.element_refs.items():
        rs.element_refs.setdefault(name, {}).update(refs)
    rs.services.update(piece.services)
    rs.slot_tables.update(piece.slot_tables)
    for name, slot_map in piece.slot_maps.items():
        key = slot_map.key or SlotKey(slot_map.data_type, slot_map.data)
        twin = rs._shared.get(key)
        if twin is None:
            rs._shared[key] = name
            rs.slot_maps[name] = slot_map
            if name in piece.slot_refs:
                rs.slot_refs[name] = piece.slot_refs[name]
            continue
        for chain in piece.chains:
            if name in piece.refs.get(chain, frozenset()):
                rs.rules[chain] = tuple(r.replace(f'"@{name}"', f'"@{twin}"') for r in piece.rules[chain])
                rs.refs[chain] = (piece.refs[chain] - {name}) | {twin}


FTP_PORT = 21
FTP_HELPER = "ftp"
HELPER_CHAIN = "helpers"


def _add_ftp_helper(rs: Ruleset, nat_services: list[VirtualService]) -> None:
    """Attach the kernel's FTP helper to NAT services that carry FTP control connections.

    IPVS has ip_vs_ftp for this: behind NAT the server's PASV reply names its
    private address, and its data connections are on ports no service lists.
    Conntrack's FTP helper (with nf_nat_ftp) rewrites the reply to the VIP
    and expects the data connection, which then follows the control
    connection's NAT, passive (PASV, EPSV) or active. It applies to services
    on TCP port 21 (also port 0 services) and, for fwmark services (the
    guide's FTP set-up), to marked packets for port 21. The helper must be
    set on a connection's first packet, before the nat chain, so its chain
    sits with the DR dispatch at mangle + 1.
    """
    fam = rs.family
    addr_ports: list[Any] = []
    marks: list[int] = []
    for svc in nat_services:
        for dispatch in dispatches(svc):
            if dispatch.kind == "fwmark":
                marks.append(dispatch.key)
                continue
            address, proto, *port = dispatch.key["concat"]
            if proto == "tcp" and (not port or port[0] == FTP_PORT):
                addr_ports.append(_concat(address, FTP_PORT))
    if not addr_ports and not marks:
        return
    rs.sets[FTP_HELPER] = {"_kind": "ct helper", "type": "ftp", "protocol": "tcp", "l3proto": fam.name}
    rs.chain(HELPER_CHAIN, type="filter", hook="prerouting", prio=DUP_PRIORITY, policy="accept")
    new = _match({"ct": {"key": "state"}}, "new", "in")
    helper = {"ct helper": FTP_HELPER}
    dport = _payload("tcp", "dport")
    if addr_ports:
        unique = sorted({json.dumps(k, sort_keys=True) for k in addr_ports})
        rs.rule(HELPER_CHAIN, new, _match(_concat(_payload(fam.payload, "daddr"), dport),
                                          {"set": [json.loads(k) for k in unique]}), helper)
    if marks:
        rs.rule(HELPER_CHAIN, new, _match(_meta("mark"), {"set": sorted(set(marks))}), _match(dport, FTP_PORT),
                helper)


def _dnat_to(fam: Family, dest: Destination) -> Json:
    """DNAT to one server: address and port as fields (libnftables' JSON refuses a concatenation here)."""
    target: Json = {"family": fam.name, "addr": dest.address}
    if dest.port:
        target["port"] = dest.port
    return {"dnat": target}


def _nat_target(dest: Destination) -> Any:
    return _concat(dest.address, dest.port) if dest.port else dest.address


def _nat_target_text(dest: Destination) -> str:
    """`_nat_target` as JSON text, written out: a slot map of 1,000 servers makes 1,000 of them per build.

    The address is an IP literal (check_service parsed it), so it needs no escaping.
    """
    address = f'"{dest.address}"'
    return f'{{"concat": [{address}, {int(dest.port)}]}}' if dest.port else address


def _build_nat(rs: Ruleset, svc: VirtualService, base: str, ctx: BuildContext) -> None:
    fam = rs.family
    dests = eligible(svc, ctx.overloaded)
    with_port = any(d.port for d in svc.destinations)
    proto = [_proto_match(svc)] if with_port else []
    if not svc.persistence_timeout_s:
        if len(dests) == 1:
            rs.rule(base, *proto, _dnat_to(fam, dests[0]))
        elif dests:
            table = slot_table(svc, dests, ctx)
            data_type = nat_data_type(fam, svc, dests) if in_slot_map(svc, table) else None
            if table and data_type is not None:
                _record_table(rs, svc, dests, table)
                name = rs.slot_map(f"{base}-{_slot_map_suffix(data_type)}", data_type,
                                   [ctx.nat_target(d) for d in dests], table)
                one = single_protocol(svc) if with_port else None  # the map's protocol, also where a set was
                match = [_match(_meta("l4proto"), one)] if one else proto
                rs.rule(base, *match, {"dnat": {"family": fam.name, "addr": {"map": {
                    "key": selector(fam, svc, len(table)), "data": f"@{name}"}}}})
            elif table:
                pairs = [(slot, _nat_target(dests[i])) for slot, i in enumerate(table)]
                rs.rule(base, *proto, {"dnat": {"family": fam.name, "addr": {"map": {
                    "key": selector(fam, svc, len(table)), "data": _anon(pairs)}}}})
        return
    # Persistence: one chain and one client set per real server (kube-proxy's affinity layout).
    client = _saddr(fam, svc)
    per_dest: dict[str, str] = {}
    for dest in svc.destinations:
        number = ctx.number(svc.name, dest.name)
        chain = rs.chain(f"{base}-{number}")
        rs.services[svc.name].append(chain)
        per_dest[dest.name] = chain
        clients = f"{base}-{number}-clients"
        rs.sets[clients] = {"_kind": "set", "type": fam.addr_type, "flags": ["timeout"],
                            "timeout": svc.persistence_timeout_s, "size": PERSIST_SET_SIZE}
        rs.services[svc.name].append(clients)
        rs.rule(base, _match(client, f"@{clients}"), _goto(chain))
        rs.rule(chain, {"set": {"op": "update", "elem": client, "set": f"@{clients}"}})
        rs.rule(chain, *proto, _dnat_to(fam, dest))
    _schedule_to_chains(rs, svc, base, dests, per_dest, ctx)


def pick_chain(rs: Ruleset, svc: VirtualService, base: str) -> str:
    """A chain of its own for a new connection's pick, which the service's chain ends by going to.

    The service's chain holds a rule per real server (its flow or client
    set), and the pick's rule changes with the pool (a table's modulus, the
    one server left): the diff writes a chain whose rules differ out again
    whole, 1,001 rules for 1,000 servers (50-90 ms at every change), and
    this chain has the one rule.
    """
    chain = rs.chain(f"{base}-pick")
    rs.services.setdefault(svc.name, []).append(chain)
    rs.rule(base, _goto(chain))
    return chain


def _schedule_to_chains(rs: Ruleset, svc: VirtualService, base: str, dests: list[Destination],
                        per_dest: dict[str, str], ctx: BuildContext) -> None:
    into = pick_chain(rs, svc, base)
    if len(dests) == 1:
        rs.rule(into, _goto(per_dest[dests[0].name]))
        return
    key = consistent_key(rs.family, svc, ctx) if dests else None
    table: Sequence[int]
    if key is not None:  # both routers agree on every choice without sharing a set
        table = ctx.tables.maglev([d.name for d in dests], [d.weight for d in dests],
                                  sched.maglev_size_for(len(dests)))
        pick: Json = {"jhash": {"mod": len(table), "seed": HASH_SEED, "expr": key}}
    elif svc.scheduler in HASH_SCHEDULERS and forwarding(svc) != "NAT" and dests:
        # the stable table, as DR from ingress picks (nft_forward): a server going down rewrites its own slots alone,
        # and a service that moves between the two paths (an MTU changed) keeps its new flows where they went
        from .stable_table import service_table
        table = service_table(svc, dests, ctx.tables)
        pick = selector(rs.family, svc, len(table))
    else:
        table = slot_table(svc, dests, ctx) if dests else []
        pick = selector(rs.family, svc, len(table))
    if table and (key is not None or in_slot_map(svc, table)):
        if key is None:
            _record_table(rs, svc, dests, table)
        by_address = pick_by_address(rs, rs.family, svc, base, dests, per_dest, ctx, table, pick) \
            if forwarding(svc) != "NAT" else None
        rs.rule(into, *(by_address or [picks(rs, f"{base}-picks", table, dests, per_dest, ctx, pick)]))
    elif table:
        pairs = [(slot, _goto(per_dest[dests[i].name])) for slot, i in enumerate(table)]
        rs.rule(into, {"vmap": {"key": pick, "data": _anon(pairs)}})


def picks(rs: Ruleset, name: str, table: Sequence[int], dests: Sequence[Destination], per_dest: Mapping[str, str],
          ctx: BuildContext, pick: Json) -> Json:
    """`vmap` from `pick` over slot map `name` of verdicts (slot i -> goto the chain of dests[table[i]]).

    The per-server chains of DR/TUN and persistence, DR/TUN from ingress and
    stateless NAT's errors about a reply all pick a chain this way; a change
    rewrites the slots that moved (module docstring: slot maps).
    """
    chains = tuple([per_dest[d.name] for d in dests])
    texts, refs = ctx.goto_targets(name, chains)
    slots = rs.slot_map(name, "verdict", texts, table, refs)
    return {"vmap": {"key": pick, "data": f"@{slots}"}}


def pick_by_address(rs: Ruleset, fam: Family, svc: VirtualService, base: str, dests: Sequence[Destination],
                    per_dest: dict[str, str], ctx: BuildContext, table: Sequence[int], pick: Json) -> list[Json] | None:
    """A DR/TUN pick whose slots are data: the server's address from a slot map of addresses into the
    destination, then its chain by that address (`entries_map`); None where that map cannot be made.

    `fam` is the service's address family (the netdev table's Ruleset is of neither).
    """
    entries = entries_map(rs, fam, svc, base, per_dest, ctx)
    if entries is None:
        return None
    texts = [ctx.address_text(d.address) for d in dests]
    addresses = rs.slot_map(f"{base}-addrs", f"{fam.payload} daddr", texts, table)
    daddr = _payload(fam.payload, "daddr")
    return [{"mangle": {"key": daddr, "value": {"map": {"key": pick, "data": f"@{addresses}"}}}},
            {"vmap": {"key": daddr, "data": f"@{entries}"}}]


@dataclass(frozen=True)
class Entries:
    """A DR/TUN service's way from a real server's address to its chain (`entries_map`), as Ruleset holds it."""

    map_name: str
    chains: dict[str, Json]
    rules: dict[str, tuple[str, ...]]
    refs: dict[str, frozenset[str]]
    elements: dict[str, str]  # the map's elements: address -> goto its entry chain (JSON texts)
    element_refs: dict[str, frozenset[str]]


def entries_map(rs: Ruleset, fam: Family, svc: VirtualService, base: str, per_dest: dict[str, str],
             ctx: BuildContext) -> str | None:
    """A map from each real server's address to an entry chain that puts the VIP back and goes to its chain.

    Why: a pick that is a slot map of verdicts has the kernel validate the
    whole table at every commit that changes one of its slots (4-5 ms for
    65,521 slots, per base chain that reaches it: nft_forward.Direct), and a server going down
    rewrote ~65. nftables 1.0.6 takes neither a map lookup as a `vmap` key
    nor one as a dynamic set's datum, so the address is carried in the
    destination address itself for the length of the lookup: the pick
    writes the server's address there from a slot map of addresses (data),
    a `vmap` by that address reaches the server's entry chain, which
    writes the VIP back (the checksums updated both times, so they end as
    they were) and goes to the server's chain (flow set, persistence,
    `fwd`). This map holds every configured server, up or down, so a
    change of who is eligible changes data slots alone. Only for a service
    of one VIP (the entry chain must know which address to put back) whose
    servers' addresses are distinct; None otherwise (the verdict slots).
    """
    if svc.kind != "address" or svc.address is None or not distinct_addresses(svc):
        return None
    servers = tuple([(d.name, d.address) for d in svc.destinations])
    vip = str(svc.address)
    targets = tuple([per_dest[name] for name, _ in servers])
    key = ("entries", fam.name, base, vip, servers, targets)
    made: Entries | None = ctx.forward_parts.get(key)
    if made is None:
        made = remember(ctx.forward_parts, key, _entries_of(fam, base, vip, servers, targets))
    rs.sets[made.map_name] = {"_kind": "map", "type": fam.addr_type, "map": "verdict"}
    rs.chains.update(made.chains)
    rs.rules.update(made.rules)
    rs.refs.update(made.refs)
    rs.elements[made.map_name] = dict(made.elements)
    rs.element_refs[made.map_name] = dict(made.element_refs)
    rs.services[svc.name].extend([*made.chains, made.map_name])
    return made.map_name


def distinct_addresses(svc: VirtualService) -> bool:
    """Whether no two of the service's real servers share an address (so that an address names one server)."""
    addresses = [d.address for d in svc.destinations]
    return len(set(addresses)) == len(addresses)


def _entries_of(fam: Family, base: str, vip: str, servers: tuple[tuple[str, str], ...],
                targets: tuple[str, ...]) -> Entries:
    piece = Ruleset(fam)
    map_name = f"{base}-entries"
    daddr = {"payload": {"protocol": fam.payload, "field": "daddr"}}
    for (_, address), target in zip(servers, targets):
        entry = piece.chain(f"{target}-in")
        piece.rule(entry, {"mangle": {"key": daddr, "value": vip}}, {"goto": {"target": target}})
        piece.element(map_name, address, {"goto": {"target": entry}})
    chains: dict[str, Json] = {name: {} for name in piece.chains}
    return Entries(map_name, chains, {name: piece.rules[name] for name in chains},
                   {name: piece.refs[name] for name in chains}, piece.elements.get(map_name, {}),
                   piece.element_refs.get(map_name, {}))


def _record_table(rs: Ruleset, svc: VirtualService, dests: list[Destination], table: Sequence[int]) -> None:
    """Keep a slot map's servers slot by slot where the next build starts from it (sticky_spread).

    The load-based tables, and rr and wrr cycles in a slot map: `numgen inc`
    hands out each slot once per cycle, so their order does not change the
    shares, and a server that leaves a cycle of a thousand then moves two
    slots (its own, and the last one into it) rather than every later one.
    """
    if svc.scheduler in LOAD_SCHEDULERS or svc.scheduler == "rr" or svc.scheduler == "wrr":
        names = [d.name for d in dests]
        rs.slot_tables[svc.name] = tuple([names[i] for i in table])


@dataclass(frozen=True)
class MergedServers:
    """A service's real servers' chains, sets and rules in its chain, merged once and kept (the copy path's
    `_dup_servers`; nft_forward.Servers adds what its ingress path needs)."""

    chains: dict[str, Json]
    rules: dict[str, tuple[str, ...]]
    refs: dict[str, frozenset[str]]
    sets: dict[str, Json]
    names: tuple[str, ...]  # its chains and sets, for Ruleset.services
    per_dest: dict[str, str]  # server name -> its chain
    base_rules: tuple[str, ...]  # what the servers add to the service's chain (flow sets, then client sets)
    base_refs: frozenset[str]


def _build_dup(rs: Ruleset, svc: VirtualService, base: str, method: str, ctx: BuildContext) -> None:
    merged = _dup_servers(rs.family, svc, base, method, ctx)
    rs.chains.update(merged.chains)
    rs.rules.update(merged.rules)
    rs.refs.update(merged.refs)
    rs.sets.update(merged.sets)
    rs.services[svc.name] += merged.names
    rs.rules[base] = rs.rules.get(base, ()) + merged.base_rules
    rs.refs[base] = rs.refs.get(base, frozenset()) | merged.base_refs
    _schedule_to_chains(rs, svc, base, eligible(svc, ctx.overloaded), merged.per_dest, ctx)


def _dup_servers(fam: Family, svc: VirtualService, base: str, method: str, ctx: BuildContext) -> MergedServers:
    """Every server's part of the copy path, kept by what it reads (not whether the server is eligible).

    A server going down or up then merges nothing again: 1,000 servers' 4,000
    rules written out as JSON at every apply were most of such a change
    (60-90 ms; nft_forward keeps its servers' parts the same way).
    """
    proto = (svc.protocol or "TCP").lower() if svc.kind == "address" else "tcp"
    servers = tuple([(d.name, d.address, ctx.number(svc.name, d.name),
                      ctx.device_for(d.address) if method == "DR" else ctx.tunnel_for(d.address))
                     for d in svc.destinations])
    key: tuple[Any, ...] = ("dup", fam.name, base, proto, svc.persistence_timeout_s, svc.persistence_granularity,
                            servers)
    merged: MergedServers | None = ctx.forward_parts.get(key)
    if merged is None:
        merged = remember(ctx.forward_parts, key, _merge_dup(fam, svc, base, proto, servers))
    return merged


def _merge_dup(fam: Family, svc: VirtualService, base: str, proto: str,
               servers: tuple[tuple[str, str, int, str], ...]) -> MergedServers:
    piece = Ruleset(fam)
    flows_of = flow_key(fam)
    timeout = svc.persistence_timeout_s
    client = _saddr(fam, svc)
    names: list[str] = []
    per_dest: dict[str, str] = {}
    for name, address, number, device in servers:
        chain = piece.chain(f"{base}-{number}")
        flows = f"{base}-{number}-flows"
        piece.sets[flows] = {"_kind": "set", "type": [fam.addr_type, "inet_service", "inet_service"],
                             "flags": ["timeout"], "timeout": FLOW_TIMEOUT_S.get(proto, 900),
                             "size": FLOW_SET_SIZE}
        names += [chain, flows]
        per_dest[name] = chain
        piece.rule(base, _match(flows_of, f"@{flows}"), _goto(chain))
        piece.rule(chain, {"set": {"op": "update", "elem": flows_of, "set": f"@{flows}"}})
        if timeout:
            clients = f"{base}-{number}-clients"
            piece.sets[clients] = {"_kind": "set", "type": fam.addr_type, "flags": ["timeout"],
                                   "timeout": timeout, "size": PERSIST_SET_SIZE}
            names.append(clients)
            piece.rule(chain, {"set": {"op": "update", "elem": client, "set": f"@{clients}"}})
        piece.rule(chain, {"dup": {"addr": address, "dev": device}})
        piece.rule(chain, {"drop": None})
    if timeout:
        for name, _, number, _ in servers:
            piece.rule(base, _match(client, f"@{base}-{number}-clients"), _goto(per_dest[name]))
    chains: dict[str, Json] = {chain: {} for chain in piece.chains}
    return MergedServers(chains, {c: piece.rules[c] for c in chains}, {c: piece.refs[c] for c in chains},
                         dict(piece.sets), tuple(names), per_dest, piece.rules.get(base, ()),
                         piece.refs.get(base, frozenset()))
