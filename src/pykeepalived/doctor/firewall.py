"""Firewall rules that would shadow ours: drops of VRRP (IP protocol 112) or of the virtual services' traffic.

Reads `nft -j list ruleset` (iptables-nft rules are in it too). A rule is
reported only when every match in it is one this module understands and
could select a VRRP advert or a packet for a virtual service, and its
verdict is drop or reject; a rule with anything else (ct state, marks,
iptables' xt expressions, negations) is left alone, so a finding is never a
guess. Our own tables (pykeepalived's) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address, ip_network
from typing import Any

from ..config.model import KeepalivedConfig
from ..lvs.plan import service_name
from .facts import Finding, HostFacts, IPAddress
from .config_view import nat_services, vrrp_devices

WATCHED_HOOKS = ("ingress", "prerouting", "input", "forward")
VRRP_PROTO = 112
VRRP_GROUP = IPv4Address("224.0.0.18")
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "vrrp": VRRP_PROTO, "icmp": 1}
OWN_TABLE_PREFIX = "pykeepalived"
NEUTRAL = ("counter", "log", "limit", "comment")
UNKNOWN = object()


@dataclass(frozen=True)
class Packet:
    """What a packet doctor cares about looks like to a rule: protocol, destination, port and interfaces."""

    what: str
    proto: int
    daddr: IPAddress | None
    dport: int | None
    iifs: frozenset[str] | None  # None: any interface


def _packets(config: KeepalivedConfig) -> list[Packet]:
    devices = frozenset(vrrp_devices(config))
    out = []
    if config.vrrp_instances:
        out.append(Packet("VRRP adverts (IP protocol 112)", VRRP_PROTO, VRRP_GROUP, None, devices or None))
    for vs in config.virtual_servers:
        if vs.address is None or vs.port is None:
            continue
        proto = PROTOCOLS.get((vs.protocol or "TCP").lower(), 6)
        out.append(Packet(f"virtual server {service_name(vs)}", proto, vs.address, vs.port, None))
    return out


def _number(value: Any, names: Mapping[str, int]) -> Any:
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]
    return value


def _one(right: Any, value: Any) -> bool | object:
    """Does the match's right-hand side take `value`? UNKNOWN when the form is not understood."""
    if isinstance(right, dict):
        if "set" in right:
            results = [_one(item, value) for item in right["set"]]
            if any(r is True for r in results):
                return True
            return UNKNOWN if any(r is UNKNOWN for r in results) else False
        if "range" in right and isinstance(value, int):
            low, high = right["range"]
            return low <= value <= high if isinstance(low, int) and isinstance(high, int) else UNKNOWN
        if "prefix" in right and value is not None and not isinstance(value, int):
            try:
                return value in ip_network(f"{right['prefix']['addr']}/{right['prefix']['len']}", strict=False)
            except (ValueError, KeyError, TypeError):
                return UNKNOWN
        return UNKNOWN
    if isinstance(value, int):
        right = _number(right, PROTOCOLS)
        return right == value if isinstance(right, int) else UNKNOWN
    if isinstance(value, str):
        return right == value if isinstance(right, str) else UNKNOWN
    try:
        return bool(ip_address(right) == value)
    except (ValueError, TypeError):
        return UNKNOWN


def _field(left: Any) -> str | None:
    if not isinstance(left, dict):
        return None
    if "meta" in left:
        key = left["meta"].get("key")
        return {"l4proto": "proto", "iifname": "iif", "nfproto": "family"}.get(key)
    if "payload" in left:
        proto, fld = left["payload"].get("protocol"), left["payload"].get("field")
        if (proto, fld) in (("ip", "protocol"), ("ip6", "nexthdr")):
            return "proto"
        if fld == "dport" and proto in ("tcp", "udp", "th", "sctp"):
            return f"dport:{proto}"
        if fld == "daddr" and proto in ("ip", "ip6"):
            return f"daddr:{proto}"
    return None


def _match_packet(match: Mapping[str, Any], packet: Packet) -> bool | object:
    if match.get("op", "==") not in ("==", "in"):
        return UNKNOWN
    fld = _field(match.get("left"))
    right = match.get("right")
    if fld is None:
        return UNKNOWN
    if fld == "proto":
        return _one(right, packet.proto)
    if fld == "family":
        return _one(right, "ipv4" if packet.daddr is None or packet.daddr.version == 4 else "ipv6")
    if fld == "iif":
        if packet.iifs is None:
            return True  # a service's packets may come in anywhere: assume this one
        return any(_one(right, name) is True for name in packet.iifs)
    if fld.startswith("dport:"):
        proto = fld.split(":")[1]
        if packet.dport is None:
            return False
        if proto != "th" and PROTOCOLS[proto] != packet.proto:
            return False
        return _one(right, packet.dport)
    if fld.startswith("daddr:"):
        version = 4 if fld.endswith(":ip") else 6
        if packet.daddr is None or packet.daddr.version != version:
            return False
        return _one(right, packet.daddr)
    return UNKNOWN


def _verdict(exprs: list[Any]) -> str | None:
    for expr in reversed(exprs):
        if isinstance(expr, dict):
            for key in ("drop", "reject", "accept"):
                if key in expr:
                    return key
    return None


def _catches(exprs: list[Any], packet: Packet) -> bool:
    """Every expression is understood and the packet satisfies all the matches."""
    for expr in exprs:
        if not isinstance(expr, dict) or len(expr) != 1:
            return False
        (key, body), = expr.items()
        if key in ("drop", "reject", "accept") or key in NEUTRAL:
            continue
        if key != "match" or not isinstance(body, dict):
            return False
        if _match_packet(body, packet) is not True:
            return False
    return True


def _items(ruleset: Mapping[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for item in ruleset.get("nftables", []):
        if isinstance(item, dict) and isinstance(item.get(kind), dict):
            yield item[kind]


def _own(table: str, config: KeepalivedConfig) -> bool:
    return table.startswith(OWN_TABLE_PREFIX) or table == config.global_defs.nftables


def _family_fits(family: str, packet: Packet) -> bool:
    version = 4 if packet.daddr is None else packet.daddr.version
    return family in ("inet", "netdev") or family == ("ip" if version == 4 else "ip6")


def firewall_findings(config: KeepalivedConfig, facts: HostFacts) -> list[Finding]:
    if facts.ruleset is None:
        if facts.ruleset_problem:
            return [Finding("INFO", "firewall", f"the nftables ruleset could not be read: {facts.ruleset_problem}")]
        return []
    packets = _packets(config)
    chains = {(c.get("family"), c.get("table"), c.get("name")): c for c in _items(facts.ruleset, "chain")}
    out: list[Finding] = []
    accepted: dict[tuple[Any, Any, Any], set[str]] = {}
    for rule in _items(facts.ruleset, "rule"):
        key = (rule.get("family"), rule.get("table"), rule.get("chain"))
        chain = chains.get(key)
        if chain is None or chain.get("hook") not in WATCHED_HOOKS or _own(str(rule.get("table")), config):
            continue
        exprs = rule.get("expr") or []
        verdict = _verdict(exprs)
        for packet in packets:
            if not _family_fits(str(rule.get("family")), packet) or not _catches(exprs, packet):
                continue
            if verdict == "accept":
                accepted.setdefault(key, set()).add(packet.what)
            elif verdict in ("drop", "reject") and packet.what not in accepted.get(key, set()):
                out.append(Finding(
                    "WARNING", "firewall",
                    f"{rule.get('family')} {rule.get('table')} chain {rule.get('chain')} (hook {chain.get('hook')}) "
                    f"rule handle {rule.get('handle')} {verdict}s {packet.what}",
                    f"accept them before it, or delete it: nft delete rule {rule.get('family')} {rule.get('table')} "
                    f"{rule.get('chain')} handle {rule.get('handle')}"))
    for key, chain in chains.items():
        family, table, name = key
        if chain.get("policy") != "drop" or _own(str(table), config) or chain.get("hook") not in WATCHED_HOOKS:
            continue
        for packet in packets:
            if chain.get("hook") == "forward" or not _family_fits(str(family), packet):
                continue
            if packet.what not in accepted.get(key, set()):
                out.append(Finding(
                    "WARNING", "firewall",
                    f"{family} {table} chain {name} (hook {chain.get('hook')}) has policy drop and no rule that "
                    f"accepts {packet.what}", f"add an accept rule for them to {family} {table} {name}"))
        if chain.get("hook") == "forward" and nat_services(config) and \
                not any(k == key for k in accepted) and \
                not any(_verdict(r.get("expr") or []) == "accept" for r in _items(facts.ruleset, "rule")
                        if (r.get("family"), r.get("table"), r.get("chain")) == key):
            out.append(Finding(
                "WARNING", "firewall", f"{family} {table} chain {name} (hook forward) has policy drop and accepts "
                "nothing: NAT traffic to and from the real servers is dropped",
                f"accept the real servers' traffic in {family} {table} {name} (e.g. ct status dnat accept)"))
    return out
