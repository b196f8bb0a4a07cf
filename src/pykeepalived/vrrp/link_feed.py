"""The link state VRRP sees: netlink events, linkbeat polling and interface_up_down_delays, merged.

keepalived 2.2.7 learns an interface's up/down state from netlink, except
for the interfaces it polls (linkbeat_interfaces, or every instance's
interface with linkbeat_use_polling at the top level or in the instance):
for those it reads the NIC once a second (net/link_polling.py), logs
"Linkbeat reports IF up|down" on a change and ignores netlink's word on
them. A netlink change of an interface named in interface_up_down_delays is
held for its delay (vrrp/link_debounce.py); polled interfaces are not
delayed, as in keepalived. An interface created or deleted is reported at
once: with dynamic_interfaces that is how an instance whose interface was
missing gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterable

from ..config.model import KeepalivedConfig
from ..net.link_polling import LinkProbe
from ..net.links import LinkEvent, LinkMonitor
from .link_debounce import Debouncer, capped_delays
from .settings import InstanceSettings

__all__ = ["LinkFeed", "POLL_INTERVAL_S", "polled_interfaces"]

log = logging.getLogger("pykeepalived.vrrp")
POLL_INTERVAL_S = 1.0  # keepalived's POLLING_DELAY


def polled_interfaces(config: KeepalivedConfig, tracked: Iterable[str]) -> dict[str, str | None]:
    """Interface -> configured linkbeat method (None: the first that works), for the interfaces VRRP tracks.

    keepalived polls only an interface some instance tracks ("Turning off
    linkbeat for IF since not used for tracking").
    """
    tracked = set(tracked)
    wanted: dict[str, str | None] = {}
    everywhere = bool(config.root_options.get("linkbeat_use_polling"))
    for inst in config.vrrp_instances.values():
        if inst.interface and (everywhere or inst.linkbeat_use_polling):
            wanted.setdefault(inst.interface, None)
    for words in config.linkbeat_interfaces:
        method = words[1] if len(words) > 1 and words[1] in ("MII", "ETHTOOL", "IOCTL") else None
        wanted[words[0]] = method
    for name in sorted(set(wanted) - tracked):
        log.info("Turning off linkbeat for %s since not used for tracking", name)
    return {name: method for name, method in wanted.items() if name in tracked}


class LinkFeed:
    """What VRRP is told about its interfaces; `state()` at start, then `events()`."""

    def __init__(self, monitor: LinkMonitor, config: KeepalivedConfig, tracked: Iterable[str],
                 instances: Iterable[InstanceSettings]) -> None:
        self.monitor = monitor
        self.probes = {name: LinkProbe(name, method) for name, method in polled_interfaces(config, tracked).items()}
        delays, notes = capped_delays(config.up_down_delays, [(s.name, s.interface, s.advert_int_cs / 100,
                                                               s.down_timer_adverts) for s in instances])
        for note in notes:
            log.info("%s", note)
        self.debounce = Debouncer(delays)
        self._index: dict[str, int] = {}
        self._gone: set[str] = set()  # deleted since: the next creation is reported at once
        self._polled_up: dict[str, bool] = {}
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def state(self, ifname: str) -> bool | None:
        """Whether the interface is up now (None: no such interface), read the way it will be followed."""
        probe = self.probes.get(ifname)
        if probe is not None:
            polled = self._poll(probe)
            self._polled_up[ifname] = polled
            return polled
        up = await self.monitor.state(ifname)
        self.debounce.start(ifname, bool(up))
        return up

    def _poll(self, probe: LinkProbe) -> bool:
        up, note = probe.poll(self._socket())
        if note:
            log.info("%s", note)
        return up

    async def events(self) -> AsyncIterator[LinkEvent]:
        """Every change VRRP must see, until cancelled (each may repeat a state already reported)."""
        queue: asyncio.Queue[LinkEvent] = asyncio.Queue()
        tasks = [asyncio.create_task(self._follow_netlink(queue))]
        if self.probes:
            log.info("Using MII-BMSR/ETHTOOL NIC polling thread(s)...")
            tasks.append(asyncio.create_task(self._follow_polls(queue)))
        try:
            while True:
                waiting = asyncio.ensure_future(queue.get())
                due = self.debounce.next_due()
                loop = asyncio.get_running_loop()
                timeout = None if due is None else max(0.0, due - loop.time())
                done, _ = await asyncio.wait([waiting, *tasks], timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task in done:
                        waiting.cancel()
                        task.result()  # a follower that ended raises its error here
                        return
                if waiting in done:
                    yield waiting.result()
                else:
                    waiting.cancel()
                for name, up in self.debounce.expire(loop.time()):
                    yield LinkEvent(name, self._index.get(name, 0), up)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _follow_netlink(self, queue: asyncio.Queue[LinkEvent]) -> None:
        async for event in self.monitor.events():
            if event.ifname in self.probes:
                if event.deleted:  # gone: its sockets must go now (the next poll logs it down)
                    queue.put_nowait(event)
                continue  # polled: netlink's word on its state is ignored, as keepalived does
            # created (new to us, back after a deletion, or with another index) or deleted: no delay
            created = not event.deleted and (event.ifname in self._gone or event.ifname not in self.debounce.known
                                             or self._index.get(event.ifname, event.ifindex) != event.ifindex)
            if event.deleted:
                self._index.pop(event.ifname, None)
                self._gone.add(event.ifname)
            else:
                self._index[event.ifname] = event.ifindex
                self._gone.discard(event.ifname)
            now = asyncio.get_running_loop().time()
            shown, note = self.debounce.report(event.ifname, event.up, now, immediate=event.deleted or created)
            if note:
                log.info("%s", note)
            known = self.debounce.known.get(event.ifname, event.up)
            queue.put_nowait(LinkEvent(event.ifname, event.ifindex, known if shown is None else shown,
                                       event.deleted))

    async def _follow_polls(self, queue: asyncio.Queue[LinkEvent]) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            for name, probe in self.probes.items():
                up = self._poll(probe)
                if up != self._polled_up.get(name):
                    self._polled_up[name] = up
                    log.info("Linkbeat reports %s %s", name, "up" if up else "down")
                    try:
                        index = socket.if_nametoindex(name)
                    except OSError:
                        index = 0
                    queue.put_nowait(LinkEvent(name, index, up))
