"""Address events from rtnetlink, for VRRP's track_src_ip: is this address still on that interface?

One socket subscribed to RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR (from
`open()`, so nothing after it is missed) and one for queries. The stream
only says "addresses changed" (with the message's interface index and
address, when it could be read); the watcher asks `present()` for the truth,
so that a lost event (ENOBUFS: the subscriber fell behind) costs nothing but
a fresh subscription and one more look.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import (  # type: ignore[import-untyped]
    RTM_DELADDR,
    RTM_NEWADDR,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
)

from . import NetError
from .rtnl import RtnlWatch
from .addresses import IPAddress, _local_address

__all__ = ["AddressChange", "AddressWatch"]

_RCVBUF_BYTES = 1 << 20


@dataclass(frozen=True)
class AddressChange:
    """An address was added or removed (ifindex 0 and address None: events were lost, look at everything)."""

    ifindex: int
    address: IPAddress | None
    added: bool


class AddressWatch(RtnlWatch):
    """Address queries and the stream of address changes of the current network namespace."""

    what = "address events"

    def __init__(self) -> None:
        super().__init__()

    async def _subscribe(self) -> Any:
        sock = AsyncIPRoute(rcvbuf=_RCVBUF_BYTES)
        try:
            await sock.bind(groups=RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        except BaseException:
            sock.close()
            raise
        return sock

    async def present(self, ifname: str, address: IPAddress) -> bool:
        """Whether `address` is configured on interface `ifname` (False if there is no such interface)."""
        if self._query is None:
            raise NetError("AddressWatch is not open")
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            return False
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        try:
            messages = [msg async for msg in await self._query.addr("dump", family=family)]
        except NetlinkError as exc:
            if getattr(exc, "code", None) in (errno.ENODEV, errno.EINVAL):
                return False
            raise NetError(f"cannot list the addresses of {ifname}: {exc}") from exc
        except OSError as exc:
            raise NetError(f"cannot list the addresses of {ifname}: {exc}") from exc
        return any(msg["index"] == index and _local_address(msg) == address for msg in messages)

    async def changes(self) -> AsyncIterator[AddressChange]:
        """Every address change in this namespace, until `close()`; after lost events one catch-all change."""
        while True:
            sock = self._subscription
            if sock is None:
                return
            try:
                async for msg in sock.get():
                    header = msg.get("header") or {}
                    kind = header.get("type")
                    if kind not in (RTM_NEWADDR, RTM_DELADDR) or header.get("error") is not None:
                        continue
                    yield AddressChange(int(msg.get("index") or 0), _local_address(msg), kind == RTM_NEWADDR)
            except (NetlinkError, OSError):
                if self._subscription is not sock:
                    return  # closed under us
                sock.close()
                try:
                    self._subscription = await self._subscribe()
                except (NetlinkError, OSError) as exc:
                    raise NetError(f"cannot subscribe again to address events: {exc}") from exc
                yield AddressChange(0, None, False)
