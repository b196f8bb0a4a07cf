"""ha_suspend without I/O: which virtual servers' checkers run, from the addresses this host holds.

keepalived 2.2.7 (check_api.c update_checker_activity): a virtual server with
ha_suspend has its checkers suspended while none of its addresses is on a
local interface (the VS address; for a `group` VS, any address or range entry
of the group); a checker that is suspended is not run and its real server
keeps the state it had. They start suspended unless an address is already
there, and are activated when one appears (counted per interface: all copies
must go before they are suspended again). fwmark entries have no address:
keepalived refuses ha_suspend on a fwmark virtual server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from ..config.model import KeepalivedConfig, VirtualServer

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class _Range:
    first: IPAddress
    last: IPAddress

    def __contains__(self, addr: IPAddress) -> bool:
        return addr.version == self.first.version and self.first <= addr <= self.last  # type: ignore[operator]


def vs_ranges(vs: VirtualServer, config: KeepalivedConfig) -> list[_Range]:
    """The addresses a virtual server answers on, as ranges (one address: first == last)."""
    if vs.address is not None:
        return [_Range(vs.address, vs.address)]
    group = config.virtual_server_groups.get(vs.group or "") if vs.group else None
    ranges: list[_Range] = []
    for entry in group.entries if group is not None else []:
        if entry.address is None:
            continue  # fwmark entries
        ranges.append(_Range(entry.address, entry.last_address or entry.address))
    return ranges


@dataclass
class SuspendRules:
    """The ha_suspend virtual servers by service name, and whether their checkers run now."""

    ranges: dict[str, list[_Range]]
    enabled: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def build(cls, services: Mapping[str, VirtualServer], config: KeepalivedConfig) -> SuspendRules:
        ranges = {name: vs_ranges(vs, config) for name, vs in services.items() if vs.ha_suspend}
        return cls({name: r for name, r in ranges.items() if r})  # no address (fwmark): never suspended

    def update(self, local: Mapping[IPAddress, int]) -> list[tuple[str, bool]]:
        """Given every local address (with its count), the services whose checkers change (name, now enabled)."""
        changes: list[tuple[str, bool]] = []
        for name, ranges in self.ranges.items():
            count = sum(n for addr, n in local.items() if any(addr in r for r in ranges))
            now = count > 0
            if self.enabled.get(name) != now:
                self.enabled[name] = now
                changes.append((name, now))
        return changes

    def runs(self, name: str) -> bool:
        return self.enabled.get(name, True)
