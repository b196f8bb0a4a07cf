"""What the rtnetlink users of net/ share: a handle opened on demand, a query + event-subscription pair, error wording.

Each manager opens its own pyroute2 `AsyncIPRoute` inside the running loop
(pyroute2's async sockets belong to the loop that set them up) and closes it
once; a netlink error becomes the kernel's own words for its errno.
"""

from __future__ import annotations

import os
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from . import NetError


def netlink_reason(exc: BaseException) -> str:
    """The kernel's words for a netlink or socket error (strerror of its code), else the exception's text."""
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    return os.strerror(code) if isinstance(code, int) and code > 0 else (str(exc) or type(exc).__name__)


def link_kind(link: Any) -> str | None:
    """IFLA_INFO_KIND of a link message: macvlan, ipvlan, veth, ... (None for a plain device)."""
    info = link.get_attr("IFLA_LINKINFO")
    return str(info.get_attr("IFLA_INFO_KIND")) if info is not None else None


class RtnlHandle:
    """An rtnetlink socket opened on demand (`open()` inside the running loop) and closed once."""

    def __init__(self) -> None:
        self._ipr: Any = None

    async def open(self) -> None:
        if self._ipr is not None:
            return
        ipr = AsyncIPRoute()
        try:
            await ipr.setup_endpoint()
        except OSError as exc:
            ipr.close()
            raise NetError(f"cannot open an rtnetlink socket: {netlink_reason(exc)}") from exc
        self._ipr = ipr

    async def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            ipr.close()


class RtnlWatch:
    """A query socket plus a socket subscribed to event groups (net/links.py, net/addr_watch.py).

    Subclasses say what they subscribe to in `_subscribe()`; `what` names the
    events in the error when the sockets cannot be opened.
    """

    what = "events"

    def __init__(self) -> None:
        self._query: Any = None
        self._subscription: Any = None

    async def _subscribe(self) -> Any:
        raise NotImplementedError

    async def open(self) -> None:
        if self._query is not None:
            return
        query = AsyncIPRoute()
        try:
            await query.setup_endpoint()
            self._subscription = await self._subscribe()
        except (NetlinkError, OSError) as exc:
            query.close()
            raise NetError(f"cannot open an rtnetlink socket for {self.what}: {exc}") from exc
        self._query = query

    async def close(self) -> None:
        query, self._query = self._query, None
        subscription, self._subscription = self._subscription, None
        for sock in (subscription, query):
            if sock is not None:
                sock.close()
