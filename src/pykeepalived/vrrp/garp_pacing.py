"""Gratuitous ARP / unsolicited NA pacing per interface, as keepalived 2.2.7 does it (sans-IO).

vrrp_garp_interval / vrrp_gna_interval (or a garp_group's garp_interval /
gna_interval for its interfaces) is the least time between two GARPs (NAs)
on one base interface (a VMAC's GARPs count on the interface under it).
keepalived 2.2.7 (vrrp_arp.c, vrrp_scheduler.c) sends a request at once when
the interface is free, otherwise it marks the *address* pending: a burst of
N repeats for one address collapses into the one sent now plus one pending,
and the pending addresses go out one per interval, in the instance's address
order, and only while their instance is still master. Observed in the lab:
two VIPs, garp_master_repeat 5, vrrp_garp_interval 0.3 -> VIP1 at 0, VIP1 at
0.3, VIP2 at 0.6.

No interval on an interface (the default): every request goes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from ..config.model import GarpGroup, GlobalDefs

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class GarpItem:
    """One announcement: `address` on `device`, paced on `base` (the VMAC's parent, else the device)."""

    instance: str
    device: str
    base: str
    address: IPAddress
    rank: tuple[int, int] = (0, 0)  # (instance's place in the config, address's place in its (e)VIP lists)


@dataclass
class GarpPacer:
    """The pacing state of one process: next free time per (interface, family), pending items in order."""

    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # interface -> (garp, gna)
    default: tuple[float, float] = (0.0, 0.0)
    _next: dict[tuple[str, int], float] = field(default_factory=dict)
    _pending: list[GarpItem] = field(default_factory=list)

    def interval(self, base: str, version: int) -> float:
        garp, gna = self.intervals.get(base, self.default)
        return garp if version == 4 else gna

    def request(self, item: GarpItem, now: float) -> bool:
        """True: send it now (the interface is free, and now busy for one interval); False: it is pending."""
        interval = self.interval(item.base, item.address.version)
        key = (item.base, item.address.version)
        if interval > 0 and now < self._next.get(key, 0.0):
            if item not in self._pending:
                # keepalived walks its instances and their addresses in order, not in the order of the requests
                self._pending.append(item)
                self._pending.sort(key=lambda i: i.rank)
            return False
        if interval > 0:
            self._next[key] = now + interval
        return True

    def due(self, now: float, still_master: Callable[[str], bool]) -> tuple[list[GarpItem], float | None]:
        """The pending items to send now, and when to look again (None: nothing pending)."""
        send: list[GarpItem] = []
        keep: list[GarpItem] = []
        for item in self._pending:
            if not still_master(item.instance):
                continue
            key = (item.base, item.address.version)
            if now >= self._next.get(key, 0.0):
                send.append(item)
                self._next[key] = now + self.interval(item.base, item.address.version)
            else:
                keep.append(item)
        self._pending = keep
        return send, self.next_wake()

    def next_wake(self) -> float | None:
        """When the first pending item may go (None: nothing pending)."""
        return min((self._next.get((i.base, i.address.version), 0.0) for i in self._pending), default=None)

    def drop(self, instance: str) -> None:
        """The instance left MASTER: its pending announcements are void."""
        self._pending = [i for i in self._pending if i.instance != instance]


def garp_intervals(global_defs: GlobalDefs, groups: Iterable[GarpGroup]) -> GarpPacer:
    """The pacer for a configuration: garp_group intervals per interface, the global ones elsewhere.

    keepalived gives a garp_group's interfaces that group's values only (an
    interval the group does not set is none), and every other interface the
    global vrrp_garp_interval / vrrp_gna_interval.
    """
    per_interface: dict[str, tuple[float, float]] = {}
    for group in groups:
        value = (group.garp_interval_s or 0.0, group.gna_interval_s or 0.0)
        for ifname in group.interfaces:
            per_interface.setdefault(ifname, value)
    return GarpPacer(per_interface, (global_defs.vrrp_garp_interval_s, global_defs.vrrp_gna_interval_s))
