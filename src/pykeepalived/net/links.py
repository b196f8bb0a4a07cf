"""Interface up/down state and link events, from rtnetlink.

VRRP goes to FAULT when its interface cannot carry traffic, so "up" here
means administratively up *and* with carrier: IFF_UP and IFF_RUNNING. The
kernel sets IFF_RUNNING exactly when the operational state is UP or UNKNOWN
(dummy, lo), so a veth whose peer is down, or a NIC with no cable, is down.

Events come from the RTMGRP_LINK multicast group on a socket of their own,
subscribed in `open()` so that nothing that happens after `open()` returns is
missed: call `state()` for the starting point, then follow `events()`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK, RTMGRP_LINK  # type: ignore[import-untyped]

from . import NetError
from .rtnl import RtnlWatch
from .netlink_bufs import RcvBuf, set_rcvbuf

__all__ = ["LinkEvent", "LinkMonitor"]

IFF_UP = 0x1
IFF_RUNNING = 0x40
IFNAMSIZ = 16
_EVENT_RCVBUF_BYTES = 1 << 20


@dataclass(frozen=True)
class LinkEvent:
    """One interface changed (or may have): its name, index and whether it can carry traffic now."""

    ifname: str
    ifindex: int
    up: bool
    deleted: bool = False  # the interface is gone (RTM_DELLINK): a change not to be delayed (link_feed.py)


def link_is_up(flags: int) -> bool:
    """IFF_UP and IFF_RUNNING: up and with carrier, what VRRP needs to leave FAULT."""
    return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)


def _decode(msg: Any) -> tuple[LinkEvent, bool] | None:
    """A LinkEvent and whether the link was deleted, from an rtnetlink message; None for anything else.

    Only AF_UNSPEC RTM_NEWLINK/RTM_DELLINK describe a device; the AF_BRIDGE
    copies a bridge port also sends, messages that failed to decode and
    other message types are skipped.
    """
    header = msg.get("header") or {}
    kind = header.get("type")
    if kind not in (RTM_NEWLINK, RTM_DELLINK) or header.get("error") is not None:
        return None
    if msg.get("family") != socket.AF_UNSPEC:
        return None
    name = msg.get_attr("IFLA_IFNAME")
    index = msg.get("index")
    if not isinstance(name, str) or not isinstance(index, int):
        return None
    deleted = kind == RTM_DELLINK
    up = not deleted and link_is_up(int(msg.get("flags") or 0))
    return LinkEvent(ifname=name, ifindex=index, up=up, deleted=deleted), deleted


class LinkMonitor(RtnlWatch):
    """Link state queries and the stream of link changes of the current network namespace.

    Two rtnetlink sockets: one for queries, one subscribed to RTMGRP_LINK.
    pyroute2 queues every event the kernel multicasts as it arrives, so a
    monitor that is open must have its `events()` consumed.

    If the kernel drops events (the subscriber fell behind and its receive
    buffer overflowed, ENOBUFS) the stream does not end: the monitor
    subscribes afresh and reports the current state of every link, plus a
    down event for every link it had seen that is now gone.
    """

    what = "link events"

    def __init__(self, *, rcvbuf_bytes: int = _EVENT_RCVBUF_BYTES, rcvbuf: RcvBuf | None = None) -> None:
        self._rcvbuf_bytes = rcvbuf_bytes if rcvbuf is None else rcvbuf.size
        self._rcvbuf = rcvbuf  # global_defs vrrp_netlink_monitor_rcv_bufs[_force] (netlink_bufs.py)
        super().__init__()
        self._known: dict[int, str] = {}
        self.resyncs = 0  # times events were lost and the state re-read; for counters and tests

    async def _subscribe(self) -> Any:
        sock = AsyncIPRoute(rcvbuf=self._rcvbuf_bytes)
        try:
            await sock.bind(groups=RTMGRP_LINK)
            set_rcvbuf(sock, self._rcvbuf)
        except BaseException:
            sock.close()
            raise
        return sock

    async def __aenter__(self) -> LinkMonitor:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def state(self, ifname: str) -> bool | None:
        """Whether the interface is up with carrier; None if there is no such interface."""
        if self._query is None:
            raise NetError("LinkMonitor is not open")
        if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname:
            return None
        try:
            links = await self._query.link("get", ifname=ifname)
        except NetlinkError as exc:
            if getattr(exc, "code", None) in (errno.ENODEV, errno.EINVAL, errno.ERANGE):
                return None
            raise NetError(f"cannot read the state of {ifname}: {exc}") from exc
        except OSError as exc:
            raise NetError(f"cannot read the state of {ifname}: {exc}") from exc
        for link in links:
            return link_is_up(int(link["flags"]))
        return None

    async def events(self) -> AsyncIterator[LinkEvent]:
        """Every link change in this namespace, as it happens, until `close()`.

        The same state may be reported more than once (the kernel announces
        MTU, address and other changes too): compare with what you knew.
        """
        while True:
            sock = self._subscription
            if sock is None:
                return
            try:
                async for msg in sock.get():
                    decoded = _decode(msg)
                    if decoded is not None:
                        yield self._remember(*decoded)
            except (NetlinkError, OSError):
                if self._subscription is not sock:
                    return  # closed under us: the error is the socket going away
                async for event in self._resync():
                    yield event

    def _remember(self, event: LinkEvent, deleted: bool) -> LinkEvent:
        if deleted:
            self._known.pop(event.ifindex, None)
        else:
            self._known[event.ifindex] = event.ifname
        return event

    async def _resync(self) -> AsyncIterator[LinkEvent]:
        """Subscribe afresh after lost events, then report every link as it is now."""
        self.resyncs += 1
        old, self._subscription = self._subscription, None
        if old is not None:
            old.close()
        query = self._query
        if query is None:
            return
        try:
            self._subscription = await self._subscribe()
            links = [msg async for msg in await query.link("dump")]
        except (NetlinkError, OSError) as exc:
            raise NetError(f"cannot re-read link state after lost link events: {exc}") from exc
        vanished = dict(self._known)
        for msg in links:
            decoded = _decode(msg)
            if decoded is not None:
                vanished.pop(decoded[0].ifindex, None)
                yield self._remember(*decoded)
        for index, name in vanished.items():
            yield self._remember(LinkEvent(ifname=name, ifindex=index, up=False, deleted=True), True)
