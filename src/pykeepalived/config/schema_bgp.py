"""pykeepalived_bgp: our block for the active-active tier (docs/ecmp.md).

keepalived has no BGP; the block is ours, so its rules are ours too: what
FRR's bgpd would refuse later (a hold time under 3 s, a community it cannot
parse, a neighbour without an AS) is an error here, at the line that says it,
so that `-t` catches it before a balancer starts and silently announces
nothing.
"""

from __future__ import annotations

import re

from . import handlers as h
from .context import ParseContext
from .errors import ValueProblem
from .lexer import Segment
from .model import BgpNeighbor, BgpSpeaker, KeepalivedConfig
from .registry import Block, FieldHandler, Status
from .values import to_ip

BGP_BLOCK = Block("pykeepalived_bgp", BgpSpeaker)
BGP_NEIGHBOR = Block("neighbor", BgpNeighbor)
AS_MAX = 2**32 - 1
HOLD_MIN_S = 3  # RFC 4271: 0 (never expire: we refuse it) or at least 3 s
# the well-known communities FRR's `set community` takes by name
WELL_KNOWN_COMMUNITIES = frozenset({"no-export", "no-advertise", "local-AS", "no-peer", "blackhole",
                                    "graceful-shutdown", "accept-own", "internet"})
_COMMUNITY = re.compile(r"(\d{1,5}):(\d{1,5})")
ACTED = Status.ACTED


def _open_bgp(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> BgpSpeaker | None:
    if config.bgp is not None:
        ctx.error(seg, "only one pykeepalived_bgp block is allowed - ignoring this one")
        return None
    config.bgp = BgpSpeaker(location=seg.location)
    return config.bgp


def _close_bgp(ctx: ParseContext, bgp: BgpSpeaker) -> None:
    """What the block itself must say; references to other blocks are checked after parsing (bgp_checks.py)."""
    where = ctx.close_location or bgp.location
    unusable = False
    if bgp.local_as is None:
        ctx.error(where, "pykeepalived_bgp has no local_as - no BGP speaker will run", "pykeepalived_bgp")
        unusable = True
    if not bgp.neighbors:
        ctx.error(where, "pykeepalived_bgp has no neighbor - no BGP speaker will run", "pykeepalived_bgp")
        unusable = True
    if bgp.keepalive_s is not None and bgp.keepalive_s >= bgp.hold_time_s:
        ctx.error(where, f"pykeepalived_bgp keepalive {bgp.keepalive_s} must be shorter than hold_time "
                         f"{bgp.hold_time_s}", "keepalive")
        unusable = True
    if not bgp.announce:
        ctx.warn(where, "pykeepalived_bgp announces nothing (no announce line)", "pykeepalived_bgp")
    if unusable and ctx.config.bgp is bgp:
        ctx.config.bgp = None  # an unusable block runs nothing; the error says so


def _open_neighbor(ctx: ParseContext, bgp: BgpSpeaker, seg: Segment) -> BgpNeighbor | None:
    word = ctx.arg(seg)
    if word is None:
        return None
    try:
        address = to_ip(word)
    except ValueProblem as exc:
        ctx.error(seg, f"neighbor: {exc}")
        return None
    if any(n.address == address for n in bgp.neighbors):
        ctx.error(seg, f"neighbor {address} is given twice - ignoring the second")
        return None
    neighbor = BgpNeighbor(address=address, location=seg.location)
    bgp.neighbors.append(neighbor)
    return neighbor


def _close_neighbor(ctx: ParseContext, neighbor: BgpNeighbor) -> None:
    where = ctx.close_location or neighbor.location
    bgp = ctx.config.bgp
    problem = None
    if neighbor.remote_as is None:
        problem = f"neighbor {neighbor.address} has no remote_as - ignoring it"
    elif neighbor.source_ip is not None and neighbor.source_ip.version != neighbor.address.version:
        problem = f"neighbor {neighbor.address}: source_ip {neighbor.source_ip} is not of the same family - ignoring it"
    if problem is not None:
        ctx.error(where, problem, "neighbor")
        if bgp is not None and neighbor in bgp.neighbors:
            bgp.neighbors.remove(neighbor)


def _announce(ctx: ParseContext, bgp: BgpSpeaker, seg: Segment) -> None:
    if ctx.arg(seg) is None:
        return
    for word in seg.words[1:]:
        address = to_ip(word)
        if address in bgp.announce:
            ctx.warn(seg, f"announce: {address} is already announced")
            continue
        bgp.announce.append(address)


def _community(ctx: ParseContext, bgp: BgpSpeaker, seg: Segment) -> None:
    if ctx.arg(seg) is None:
        return
    for word in seg.words[1:]:
        match = _COMMUNITY.fullmatch(word)
        if word not in WELL_KNOWN_COMMUNITIES and (
                match is None or int(match.group(1)) > 65535 or int(match.group(2)) > 65535):
            raise ValueProblem(f"invalid community '{word}' (AS:VALUE with both 0-65535, or one of "
                               f"{', '.join(sorted(WELL_KNOWN_COMMUNITIES))})")
        if word not in bgp.communities:
            bgp.communities.append(word)


_b = BGP_BLOCK
_b.line("local_as", h.integer("local_as", 1, AS_MAX), "this balancer's AS number", status=ACTED,
        since="pykeepalived")
_b.line("router_id", h.ipv4("router_id", " (a BGP identifier)"),
        "BGP identifier (IPv4; default: the first IPv4 source_ip, else global_defs router_id)", status=ACTED,
        since="pykeepalived")
_b.line("hold_time", h.integer("hold_time_s", HOLD_MIN_S, 65535), "hold time (s, default 3)", status=ACTED,
        since="pykeepalived")
_b.line("keepalive", h.integer("keepalive_s", 1, 65535), "keepalive interval (s, default hold_time / 3)",
        status=ACTED, since="pykeepalived")
_b.line("connect_retry", h.integer("connect_retry_s", 1, 65535), "seconds between connection attempts (default 1)",
        status=ACTED, since="pykeepalived")
_b.line("bgpd_path", h.text("bgpd_path"), "FRR's bgpd (default /usr/lib/frr/bgpd)", status=ACTED,
        since="pykeepalived")
_b.line("announce", FieldHandler("announce", _announce),
        "addresses announced as /32 or /128 while every virtual server on them has its quorum", status=ACTED,
        since="pykeepalived")
_b.line("community", FieldHandler("communities", _community), "communities added to the announcements",
        status=ACTED, since="pykeepalived")
_b.line("med", h.integer("med", 0, AS_MAX), "MULTI_EXIT_DISC of the announcements", status=ACTED,
        since="pykeepalived")
_b.nested("neighbor", BGP_NEIGHBOR, _open_neighbor, "an upstream router (IP)", on_close=_close_neighbor,
          status=ACTED, since="pykeepalived")
_n = BGP_NEIGHBOR
_n.line("remote_as", h.integer("remote_as", 1, AS_MAX), "the upstream's AS number", status=ACTED,
        since="pykeepalived")
_n.line("source_ip", h.ip("source_ip"), "local address of the session", status=ACTED, since="pykeepalived")
_n.line("bfd", h.text("bfd"), "a bfd_instance to the upstream (the upstream's bfdd drops the path fast)",
        status=ACTED, since="pykeepalived")
_n.line("password", h.text("password"), "TCP MD5 password", status=ACTED, since="pykeepalived")


def register(root: Block) -> None:
    root.nested("pykeepalived_bgp", BGP_BLOCK, _open_bgp,
                "pykeepalived only: announce VIPs over BGP (FRR's bgpd) while their virtual servers are healthy",
                on_close=_close_bgp, status=ACTED, since="pykeepalived")
