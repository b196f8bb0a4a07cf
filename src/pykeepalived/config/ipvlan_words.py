"""`use_ipvlan [NAME] [ADDRESS[/PREFIX]] [bridge|private|vepa]`: its words, and keepalived 2.2.7's verdicts on them.

keepalived 2.2.7 (vrrp_parser.c) reads the words in any order: a mode word
(the second one is an error, ignored), an address (the second one is an
error; one of the other family than the instance's is an error and skipped;
the first one fixes the family if nothing did yet), anything else a name
(a second name, or one of 16 characters or more, is an error and ignored).
A second use_ipvlan line is an error and ignored. The model keeps the words
accepted, in order; `parse_words` reads them back for the run time (pure).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .context import ParseContext
from .lexer import Segment
from .model import VrrpInstance

IFNAMSIZ = 16
MODES = {"bridge": 0, "private": 1, "vepa": 2}  # IFLA_IPVLAN_FLAGS: 0, IPVLAN_F_PRIVATE, IPVLAN_F_VEPA
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class IpvlanWords:
    name: str | None = None
    address: IPInterface | None = None
    mode: str = "bridge"


def _address(word: str) -> IPInterface | None:
    try:
        if "/" in word:
            addr, plen = word.split("/", 1)
            ip = ipaddress.ip_address(addr)
            if not plen.isdigit() or int(plen) > ip.max_prefixlen:
                return None
        return ipaddress.ip_interface(word)
    except ValueError:
        return None


def parse_words(words: list[str]) -> IpvlanWords:
    """The words the parser kept (already checked), as name, address and mode."""
    name: str | None = None
    address: IPInterface | None = None
    mode = "bridge"
    for word in words:
        if word in MODES:
            mode = word
        elif (addr := _address(word)) is not None:
            address = addr
        else:
            name = word
    return IpvlanWords(name, address, mode)


def handle_use_ipvlan(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    """The use_ipvlan line, with keepalived's errors; keeps the accepted words in inst.use_ipvlan."""
    if inst.use_ipvlan is not None:
        ctx.error(seg, f"({inst.name}) use_ipvlan already specified")
        return
    kept: list[str] = []
    mode = name = address = False
    for word in seg.words[1:]:
        if word in MODES:
            if mode:
                ctx.error(seg, f"({inst.name}) ipvlan type already specified - ignoring '{word}'")
                continue
            mode = True
        elif (addr := _address(word)) is not None:
            if address:
                ctx.error(seg, f"({inst.name}) ipvlan address already specified - ignoring '{word}'")
                continue
            if inst.family is None:
                inst.family = 4 if addr.version == 4 else 6
            elif inst.family != addr.version:
                ctx.error(seg, f"({inst.name}) ipvlan address[{word}] MUST match vrrp instance family !!! "
                               "Skipping...")
                continue
            address = True
        else:
            if name:
                ctx.error(seg, f"({inst.name}) IPVLAN interface already specified - ignoring '{word}'")
                continue
            if len(word) >= IFNAMSIZ:
                ctx.error(seg, f"({inst.name}) IPVLAN interface name '{word}' too long - ignoring")
                continue
            name = True
        kept.append(word)
    inst.use_ipvlan = kept


def ipvlan_rules(ctx: ParseContext, inst: VrrpInstance, family: int) -> None:
    """The completion's verdict: an IPv4 ipvlan needs its address (keepalived then holds the instance in FAULT)."""
    if inst.use_ipvlan is None:
        return
    if family == 4 and parse_words(inst.use_ipvlan).address is None:
        where = inst.keyword_locations.get("use_ipvlan", inst.location)
        ctx.error(where, f"({inst.name}) IPv4 ipvlan requires a source ip address to be configured. setting "
                         "instance to fault state", "use_ipvlan")
