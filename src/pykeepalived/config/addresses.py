"""Lines in `ip addr`, `ip route` and `ip rule` syntax, as keepalived reads them.

virtual_ipaddress, static_ipaddress, virtual_routes, static_routes,
virtual_rules and static_rules each hold one such line per entry.
"""

from __future__ import annotations

import ipaddress

from .errors import ValueProblem
from .lexer import Segment
from .model import IpAddressSpec, NextHop, RouteSpec, RuleSpec
from .values import to_int, to_ip, to_ip_interface, to_network
from .vocabulary import Family

_ADDR_FLAGS = {"home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin"}
_SCOPES = {"global", "site", "link", "host", "nowhere", "universe"}
_ROUTE_TYPES = {
    "unicast", "blackhole", "unreachable", "prohibit", "throw", "local",
    "broadcast", "anycast", "multicast", "nat",
}
_ROUTE_VALUE_OPTS = {
    "metric", "preference", "priority", "mtu", "advmss", "rtt", "rttvar", "reordering",
    "window", "cwnd", "initcwnd", "initrwnd", "ssthresh", "realms", "rto_min",
    "features", "quickack", "congctl", "pref", "fastopen_no_cookie", "ttl-propagate",
    "hoplimit", "expires", "tos", "dsfield", "encap", "as", "nhid",
}
_ROUTE_FLAG_OPTS = {"onlink", "pervasive"}
_RULE_VALUE_OPTS = {
    "tos", "dsfield", "realms", "goto", "suppress_prefixlength", "suppress_ifgroup",
    "uidrange", "l3mdev", "ipproto", "sport", "dport", "protocol", "tun_id", "nat", "map-to",
}
_RULE_ACTIONS = {"blackhole", "unreachable", "prohibit", "nop"}


def _need(words: tuple[str, ...], i: int, what: str) -> str:
    if i >= len(words):
        raise ValueProblem(f"'{what}' needs a value")
    return words[i]


def parse_ip_address(seg: Segment) -> IpAddressSpec:
    """`IP[/MASK] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP] ...`."""
    w = seg.words
    spec = IpAddressSpec(address=to_ip_interface(w[0]), location=seg.location)
    if "/" not in w[0]:
        spec.address = ipaddress.ip_interface(f"{spec.address.ip}/{spec.address.max_prefixlen}")
    i = 1
    while i < len(w):
        word = w[i]
        if word in ("brd", "broadcast"):
            spec.broadcast = _need(w, i + 1, word)
            if spec.broadcast not in ("+", "-"):
                to_ip(spec.broadcast)
            i += 2
        elif word == "dev":
            spec.device = _need(w, i + 1, word)
            i += 2
        elif word == "scope":
            scope = _need(w, i + 1, word)
            if scope not in _SCOPES and not scope.isdigit():
                raise ValueProblem(f"invalid scope '{scope}'")
            spec.scope = scope
            i += 2
        elif word == "label":
            spec.label = _need(w, i + 1, word)
            i += 2
        elif word == "peer":
            spec.peer = to_ip_interface(_need(w, i + 1, word))
            if spec.address.network.prefixlen != spec.address.max_prefixlen:  # keepalived 2.2.7 refuses both
                raise ValueProblem("cannot specify an address prefix with a peer address")
            i += 2
        elif word == "preferred_lft":
            spec.preferred_lft = _need(w, i + 1, word)
            if spec.preferred_lft != "forever":
                to_int(spec.preferred_lft, 0, 2**32 - 1)
            i += 2
        elif word == "track_group":
            spec.track_group = _need(w, i + 1, word)
            i += 2
        elif word == "use_vmac":
            spec.use_vmac = True
            i += 1
        elif word == "no_track":
            spec.no_track = True
            i += 1
        elif word in _ADDR_FLAGS:
            spec.flags.append(word)
            i += 1
        else:
            raise ValueProblem(f"unknown address option '{word}'")
    return spec


def _route_dest(word: str) -> tuple[str, Family | None]:
    """The destination and its family; None for `default`, whose family comes from `via` (else IPv4)."""
    if word in ("default", "any", "all"):
        return "default", None
    if word == "default6":  # keepalived's old spelling of `inet6 default`, still taken by 2.2.7
        return "default", 6
    net = to_network(word)
    return str(net), net.version


def parse_route(seg: Segment) -> RouteSpec:
    """`[TYPE] DEST [src IP] [via IP] [dev IF] [table T] [metric N] [nexthop ...] ...`."""
    w = seg.words
    spec = RouteSpec(destination="", location=seg.location)
    i = 0
    current_nh: NextHop | None = None
    have_dest = False
    dest_family: Family | None = None
    while i < len(w):
        word = w[i]
        if not have_dest and word in _ROUTE_TYPES:
            spec.route_type = word
            i += 1
        elif word == "src":
            spec.source = to_ip(_need(w, i + 1, word))
            i += 2
        elif word in ("via", "gw"):
            target = _need(w, i + 1, word)
            if target in ("inet", "inet6"):
                i += 1
                target = _need(w, i + 1, word)
            if word == "gw":
                spec.attributes["deprecated_gw"] = "gw"
            addr = to_ip(target)
            if current_nh is not None:
                current_nh.via = addr
            else:
                spec.via = addr
            i += 2
        elif word == "or":
            spec.attributes["deprecated_or"] = "or"
            spec.nexthops.append(NextHop(via=to_ip(_need(w, i + 1, word))))
            i += 2
        elif word == "dev" or word == "oif":
            dev = _need(w, i + 1, word)
            if current_nh is not None:
                current_nh.device = dev
            else:
                spec.device = dev
            i += 2
        elif word == "nexthop":
            current_nh = NextHop()
            spec.nexthops.append(current_nh)
            i += 1
        elif word == "weight" and current_nh is not None:
            current_nh.weight = to_int(_need(w, i + 1, word), 1, 256)
            i += 2
        elif word == "table":
            spec.table = _need(w, i + 1, word)
            i += 2
        elif word == "metric" or word == "preference" or word == "priority":
            spec.metric = to_int(_need(w, i + 1, word), 0, 2**32 - 1)
            i += 2
        elif word == "scope":
            spec.scope = _need(w, i + 1, word)
            i += 2
        elif word in ("proto", "protocol"):
            spec.protocol = _need(w, i + 1, word)
            i += 2
        elif word == "from":
            spec.attributes["from"] = str(to_network(_need(w, i + 1, word)))
            i += 2
        elif word in _ROUTE_VALUE_OPTS:
            spec.attributes[word] = _need(w, i + 1, word)
            i += 2
        elif word in _ROUTE_FLAG_OPTS:
            if current_nh is not None and word == "onlink":
                current_nh.onlink = True
            else:
                spec.attributes[word] = "on"
            i += 1
        elif word == "no_track":
            spec.no_track = True
            i += 1
        elif word == "track_group":
            spec.track_group = _need(w, i + 1, word)
            i += 2
        elif word == "to":
            spec.destination, dest_family = _route_dest(_need(w, i + 1, word))
            have_dest = True
            i += 2
        elif not have_dest:
            spec.destination, dest_family = _route_dest(word)
            have_dest = True
            i += 1
        else:
            raise ValueProblem(f"unknown route option '{word}'")
    if not have_dest:
        raise ValueProblem("route has no destination")
    if dest_family is not None:
        spec.family = dest_family
    else:
        spec.family = spec.via.version if spec.via is not None else 4
    return spec


def parse_rule(seg: Segment) -> RuleSpec:
    """`[not] [from P] [to P] [preference N] [table T | goto N | ACTION] [fwmark M] ...`."""
    w = seg.words
    spec = RuleSpec(location=seg.location)
    i = 0
    while i < len(w):
        word = w[i]
        if word == "not":
            spec.invert = True
            i += 1
        elif word == "from":
            target = _need(w, i + 1, word)
            spec.from_prefix = target if target == "all" else _rule_prefix(target, spec)
            i += 2
        elif word == "to":
            target = _need(w, i + 1, word)
            spec.to_prefix = target if target == "all" else _rule_prefix(target, spec)
            i += 2
        elif word in ("preference", "priority", "pref", "order"):
            spec.preference = to_int(_need(w, i + 1, word), 0, 2**32 - 1)
            i += 2
        elif word in ("table", "lookup"):
            spec.table = _need(w, i + 1, word)
            i += 2
        elif word == "fwmark":
            spec.fwmark = _need(w, i + 1, word)
            i += 2
        elif word in ("iif", "dev"):
            spec.iif = _need(w, i + 1, word)
            i += 2
        elif word == "oif":
            spec.oif = _need(w, i + 1, word)
            i += 2
        elif word in ("inet", "inet6"):
            spec.family = 4 if word == "inet" else 6
            i += 1
        elif word in _RULE_ACTIONS:
            spec.action = word
            i += 1
        elif word in _RULE_VALUE_OPTS:
            spec.attributes[word] = _need(w, i + 1, word)
            i += 2
        elif word == "no_track":
            spec.no_track = True
            i += 1
        elif word == "track_group":
            spec.track_group = _need(w, i + 1, word)
            i += 2
        else:
            raise ValueProblem(f"unknown rule option '{word}'")
    return spec


def _rule_prefix(word: str, spec: RuleSpec) -> str:
    net = to_network(word)
    spec.family = net.version
    return str(net)
