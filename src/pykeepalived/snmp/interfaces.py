"""The interface facts VRRPv3-MIB needs (ifIndex, MAC, primary addresses), read from the kernel.

The state document names interfaces; RFC 6527 indexes its rows by ifIndex
and shows the interface's primary address and MAC. Plain system calls and
files answer it (if_nametoindex, SIOCGIFADDR as keepalived's ifp->sin_addr,
/sys/class/net, /proc/net/if_inet6): no netlink socket, nothing that needs
an event loop of its own, so the subagent may call it from inside the
parent's loop, and each answer takes microseconds.
"""

from __future__ import annotations

import fcntl
import socket
import struct
from collections.abc import Iterable
from pathlib import Path

from .rows import InterfaceFacts

SIOCGIFADDR = 0x8915


def _mac(name: str) -> bytes:
    try:
        text = Path(f"/sys/class/net/{name}/address").read_text().strip()
        return bytes.fromhex(text.replace(":", ""))
    except (OSError, ValueError):
        return b""


def _ipv4(name: str) -> bytes | None:
    """The interface's primary IPv4 address (the first one, as SIOCGIFADDR answers), None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return reply[20:24]


def _ipv6_link_locals() -> dict[str, bytes]:
    """Each interface's first link-local IPv6 address (keepalived's ifp->sin6_addr)."""
    found: dict[str, bytes] = {}
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        words = line.split()
        if len(words) == 6 and words[0].startswith("fe80") and words[5] not in found:
            found[words[5]] = bytes.fromhex(words[0])
    return found


def interface_facts(names: Iterable[str]) -> dict[str, InterfaceFacts]:
    """Facts of the named interfaces that exist (a missing one is simply absent)."""
    found: dict[str, InterfaceFacts] = {}
    link_locals: dict[str, bytes] | None = None
    for name in set(names):
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue
        if link_locals is None:
            link_locals = _ipv6_link_locals()
        found[name] = InterfaceFacts(index, _mac(name), _ipv4(name), link_locals.get(name))
    return found
