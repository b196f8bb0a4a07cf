"""track_src_ip: an instance whose configured source address leaves its interface goes to FAULT.

keepalived 2.2.7 (keepalived_netlink.c, vrrp.c): the flag only counts when the
source address comes from the configuration (unicast_src_ip or mcast_src_ip)
and the instance has an interface; it is cleared otherwise. When that address
is deleted from the instance's interface (an IPv4 instance: the configured
interface, under any VMAC; IPv6: the interface adverts use) the instance is
downed to FAULT; when it comes back there, the instance may leave FAULT.
Without track_src_ip a configured source that goes away changes nothing (the
adverts keep leaving with it).

We start with a look (an address missing at start is a FAULT from the
start) and then follow rtnetlink address events (net/addr_watch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..config.model import KeepalivedConfig
from ..errors import PyKeepalivedError
from ..net.addr_watch import AddressWatch
from .settings import IPAddress, InstanceSettings

log = logging.getLogger("pykeepalived.vrrp")

SOURCE_GONE_FAULT = "source address removed"  # track_src_ip: the configured source is not on the interface


@dataclass(frozen=True)
class TrackedSource:
    instance: str
    interface: str
    address: IPAddress


def tracked_sources(config: KeepalivedConfig, settings: Iterable[InstanceSettings]) -> list[TrackedSource]:
    """The instances whose track_src_ip keepalived 2.2.7 keeps, with the interface and address it watches."""
    out: list[TrackedSource] = []
    for s in settings:
        inst = config.vrrp_instances.get(s.name)
        source = s.unicast_src if s.unicast_src is not None else s.multicast_src
        if inst is None or not inst.track_src_ip or source is None or not s.interface:
            continue
        where = s.interface if s.family == 4 else (s.vmac_ifname or s.interface)
        out.append(TrackedSource(s.name, where, source))
    return out


class SourceTracker:
    """Watches the tracked sources; `on_change(instance, present)` hears every change (and the first look)."""

    def __init__(self, sources: list[TrackedSource], on_change: Callable[[str, bool], None]) -> None:
        self.sources = sources
        self._on_change = on_change
        self._watch = AddressWatch()
        self._present: dict[str, bool] = {}

    async def open(self) -> None:
        """Subscribe, then look: an address removed between the two is seen either way."""
        await self._watch.open()
        await self._look(self.sources)

    async def run(self) -> None:
        try:
            async for change in self._watch.changes():
                hit = [t for t in self.sources if change.address is None or change.address == t.address]
                if hit:
                    await self._look(hit)
        finally:
            await self._watch.close()

    async def close(self) -> None:
        await self._watch.close()

    async def _look(self, sources: list[TrackedSource]) -> None:
        for t in sources:
            try:
                present = await self._watch.present(t.interface, t.address)
            except PyKeepalivedError as exc:
                log.warning("(%s) track_src_ip: %s", t.instance, exc)
                continue
            if self._present.get(t.instance) == present:
                continue
            first = t.instance not in self._present
            self._present[t.instance] = present
            if not present:
                log.info("(%s) source address %s is not on %s - entering FAULT state", t.instance, t.address,
                         t.interface)
            elif not first:
                log.info("(%s) source address %s is back on %s", t.instance, t.address, t.interface)
            if not (first and present):
                self._on_change(t.instance, present)
