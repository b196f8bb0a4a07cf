"""Thin I/O adapters between the VRRP daemon's asyncio shell and the kernel.

Each module does one job and hides one untyped or byte-level interface behind
a small typed one:

- `addresses.py`: VIPs, routes and rules over rtnetlink (pyroute2's AsyncIPRoute).
- `links.py`: interface up/down state and link events (rtnetlink multicast).
- `announce.py`: gratuitous ARP / unsolicited NA frames and the AF_PACKET sender.
- `vrrp_socket.py`: the raw IP protocol 112 socket adverts travel on.

Every kernel write is safe to repeat: adding what exists or removing what is
gone succeeds, so the shell can re-apply desired state after any surprise
without first asking what is there.

`NetError` lives here, not in `addresses.py`, so that the modules that do not
speak netlink (announce, vrrp_socket) can raise it without importing pyroute2;
`addresses.NetError` is the same class.
"""

from __future__ import annotations

from ..errors import PyKeepalivedError

__all__ = ["NetError"]


class NetError(PyKeepalivedError):
    """A network operation on the kernel failed; the message names the object and why."""
