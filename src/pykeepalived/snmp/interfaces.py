"""The interface facts VRRPv3-MIB needs (ifIndex, MAC, primary addresses), read from the kernel with rtnetlink.

The state document names interfaces; RFC 6527 indexes its rows by ifIndex
and shows the interface's primary address and MAC. One netlink dump of links
and addresses answers all of them; the subagent caches the answer briefly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]

from .rows import InterfaceFacts

IFA_F_SECONDARY = 0x01


def _attr(msg: Any, name: str) -> Any:
    try:
        return msg.get_attr(name)
    except (AttributeError, KeyError):
        return None


def interface_facts(names: Iterable[str]) -> dict[str, InterfaceFacts]:
    """Facts of the named interfaces that exist (a missing one is simply absent)."""
    wanted = set(names)
    if not wanted:
        return {}
    found: dict[str, InterfaceFacts] = {}
    with IPRoute() as ipr:
        links = {}
        for link in ipr.get_links():
            name = _attr(link, "IFLA_IFNAME")
            if name in wanted:
                mac = _attr(link, "IFLA_ADDRESS")
                links[link["index"]] = (name, bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else b"")
        primary: dict[tuple[int, int], bytes] = {}
        for addr in ipr.get_addr():
            index, family = addr["index"], addr["family"]
            if index not in links or (index, family) in primary or addr.get("flags", 0) & IFA_F_SECONDARY:
                continue
            text = _attr(addr, "IFA_LOCAL") or _attr(addr, "IFA_ADDRESS")
            if isinstance(text, str):
                if family == socket.AF_INET6 and text.lower().startswith("fe80"):
                    # keepalived's ifp->sin6_addr is the link-local address: prefer it
                    primary[(index, family)] = socket.inet_pton(family, text)
                elif family == socket.AF_INET:
                    primary[(index, family)] = socket.inet_pton(family, text)
        for index, (name, mac) in links.items():
            found[name] = InterfaceFacts(index, mac, primary.get((index, socket.AF_INET)),
                                         primary.get((index, socket.AF_INET6)))
    return found
