"""Every address configured on this namespace's interfaces (what ha_suspend watches), from one rtnetlink dump."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from . import NetError
from .addresses import IPAddress, _local_address
from .netlink_bufs import RcvBuf, set_rcvbuf


class LocalAddresses:
    """An rtnetlink socket kept open for repeated dumps; open and close inside the event loop."""

    def __init__(self, rcvbuf: RcvBuf | None = None) -> None:
        self._ipr: Any = None
        self._rcvbuf = rcvbuf  # global_defs lvs_netlink_*_rcv_bufs (netlink_bufs.py)

    async def open(self) -> None:
        ipr = AsyncIPRoute()
        try:
            await ipr.setup_endpoint()
        except OSError as exc:
            ipr.close()
            raise NetError(f"cannot open an rtnetlink socket: {exc}") from exc
        set_rcvbuf(ipr, self._rcvbuf)
        self._ipr = ipr

    def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            ipr.close()

    async def dump(self) -> Counter[IPAddress]:
        """Each address with how many interfaces hold it (a link-local one may be on several)."""
        if self._ipr is None:
            raise NetError("LocalAddresses is not open")
        try:
            found = [_local_address(msg) async for msg in await self._ipr.addr("dump")]
        except (NetlinkError, OSError) as exc:
            raise NetError(f"cannot list addresses: {exc}") from exc
        return Counter(a for a in found if a is not None)
