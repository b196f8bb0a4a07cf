"""The desired table: what the data plane should forward, as the checkers decided it.

This is the one interface between the checker side and the data-plane
backends. The checker service rebuilds the table after every decision and
hands the whole table to `DataPlane.apply`; a backend diffs it against what it
last applied (and the kernel) and changes only what differs. Keeping the whole
table, not a stream of commands, means a backend that failed can be retried
with the latest truth and a restarted one can catch up at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Protocol

from ..config.vocabulary import Family, GroupEntryKind, L4Protocol, LbKind, ServerKind, TableScheduler
from ..errors import PyKeepalivedError


class _NameSlot:
    """Where a Destination keeps its name once made: a slot outside the dataclass's fields (not in its JSON)."""

    __slots__ = ("_name",)
    _name: str


@dataclass(frozen=True, slots=True)
class Destination(_NameSlot):
    """A real server (or the sorry server) in a virtual service.

    `alive` is False for a server kept at weight 0 (inhibit_on_failure, or an
    inhibited sorry server not in use): it takes no new connections but keeps
    its existing ones, as IPVS does with weight 0.
    """

    address: str
    port: int | None
    weight: int
    method: LbKind = "NAT"
    alive: bool = True
    sorry: bool = False
    uthreshold: int | None = None
    lthreshold: int | None = None
    tunnel: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """`[address]:port`, made once per object: the checker keeps its destinations (check/plan.py) and the
        table's holders (counts, slot tables, the status) key on this, so they share one string, not one each
        (18,684 strings for 6,000 real servers at bench/checks.py's scale when it was made at each call).

        Kept in a slot, not by functools.cached_property: that needs an instance dict, 64 bytes more per
        destination; with slots a destination has none at all."""
        try:
            return self._name
        except AttributeError:
            name = f"[{self.address}]:{self.port if self.port is not None else 0}"
            object.__setattr__(self, "_name", name)
            return name


@dataclass(frozen=True)
class GroupEntry:
    """One line of a virtual_server_group: an address (or range, or prefix) and port, or a fwmark."""

    kind: GroupEntryKind
    address: str | None = None
    last_address: str | None = None
    prefix_len: int | None = None
    port: int | None = None
    fwmark: int | None = None
    family: Family | None = None  # a fwmark entry's `inet`/`inet6`

    def address_count(self) -> int:
        """How many addresses the entry covers (0 for a fwmark), without listing them."""
        if self.address is None:
            return 0
        first = ipaddress.ip_address(self.address)
        if self.last_address is not None:
            return max(0, int(ipaddress.ip_address(self.last_address)) - int(first) + 1)
        if self.prefix_len is not None:
            return ipaddress.ip_network(f"{first}/{self.prefix_len}", strict=False).num_addresses
        return 1

    def addresses(self) -> Iterator[str]:
        """Every address of the entry: the one, the range (last octet or full form) or the prefix."""
        if self.address is None:
            return
        first = ipaddress.ip_address(self.address)
        if self.last_address is not None:
            for n in range(int(first), int(ipaddress.ip_address(self.last_address)) + 1):
                yield str(ipaddress.ip_address(n))
        elif self.prefix_len is not None:
            for address in ipaddress.ip_network(f"{first}/{self.prefix_len}", strict=False):
                yield str(address)
        else:
            yield str(first)


@dataclass(frozen=True)
class VirtualService:
    """A virtual_server block: how traffic for it is matched and scheduled, and its destinations now."""

    name: str
    kind: ServerKind
    address: str | None = None
    port: int | None = None
    protocol: L4Protocol | None = None
    fwmark: int | None = None
    group: str | None = None
    group_entries: tuple[GroupEntry, ...] = ()
    family: Family | None = None
    scheduler: TableScheduler = "wlc"
    sched_flags: tuple[str, ...] = ()
    method: LbKind = "NAT"
    persistence_timeout_s: int | None = None
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    quorum_up: bool = True
    destinations: tuple[Destination, ...] = ()
    stateless: bool = False  # pykeepalived_stateless: no per-flow state where the scheduler allows it
    pool: tuple[tuple[str, int], ...] = ()  # every configured real server (name, weight): stable_table.py's base

    @cached_property
    def methods(self) -> frozenset[LbKind]:
        """The forwarding methods of its real servers (its own when it has none): once per service, as the
        backends ask many times per build and a pool can hold thousands."""
        return frozenset(d.method for d in self.destinations) or frozenset((self.method,))


@dataclass(frozen=True)
class DesiredTable:
    services: tuple[VirtualService, ...] = field(default_factory=tuple)

    def service(self, name: str) -> VirtualService | None:
        for svc in self.services:
            if svc.name == name:
                return svc
        return None

    def to_json(self) -> dict[str, Any]:
        return {"services": [asdict(s) for s in self.services]}


class DataPlaneError(PyKeepalivedError):
    """A backend could not apply a table (or start); what it had applied is still in force."""


Load = tuple[int, int]
"""A destination's (active, inactive) connections."""
Loads = dict[str, dict[str, Load]]
"""Service name -> destination name -> its Load."""


class DataPlane(Protocol):
    """A data-plane backend: makes the kernel forward as `table` says, changing only what differs.

    Besides apply and close, a backend may be able to put back rules someone
    else removed (`can_repair`), count connections (`counts` returns None when
    it cannot) and re-spread load-based schedulers from those counts
    (`can_rebalance`). They are part of the protocol, with the flags saying
    which are real, so the checker service asks the flags instead of probing
    attributes; `DataPlaneBase` gives the "cannot" answers.
    """

    name: str
    error: str | None  # why it cannot forward at all from the start (None: it can, as far as it knows)
    can_repair: bool  # repair() is worth calling on a timer
    can_rebalance: bool  # rebalance() must follow the counts (nftables cannot count inside the kernel)

    async def apply(self, table: DesiredTable) -> None: ...

    async def close(self) -> None: ...

    async def repair(self) -> str | None:
        """Put back what someone else removed; returns what was done (None: nothing was missing)."""
        ...

    async def counts(self) -> Loads | None:
        """Connections per destination now (None: this backend has no counters)."""
        ...

    async def rebalance(self, loads: Loads) -> None:
        """Follow fresh counts (load-based schedulers, uthreshold/lthreshold)."""
        ...


class DataPlaneBase:
    """The optional capabilities' defaults for a backend: no start-up error, no repair, no counts, no rebalancing."""

    error: str | None = None
    can_repair: bool = False
    can_rebalance: bool = False

    async def repair(self) -> str | None:
        return None

    async def counts(self) -> Loads | None:
        return None

    async def rebalance(self, loads: Loads) -> None:
        return None
