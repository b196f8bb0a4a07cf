"""A data plane that leaves out the virtual servers its backend cannot build, and runs the rest.

keepalived builds every service with IPVS. Where we forward with nftables, a
few configurations cannot be expressed (one-packet scheduling, persistence
engines, tunnels other than ipip, real servers of another family, forwarding
methods mixed in one service): `lvs/choose.py` finds them once at start and
logs each; this wrapper then hands the backend every table without them, so
that one such service does not stop the others from forwarding. The checkers
still run for the skipped services (their state shows in `status`).
"""

from __future__ import annotations

from .model import DataPlane, DataPlaneBase, DesiredTable, Loads


class SkipServices(DataPlaneBase):
    """Passes every call to `inner`, with the services named in `skipped` taken out of each table."""

    def __init__(self, inner: DataPlane, skipped: dict[str, str]) -> None:
        self.inner = inner
        self.skipped = dict(skipped)  # service name -> why the backend cannot build it
        self.name = inner.name
        self.error = inner.error
        self.can_repair = inner.can_repair
        self.can_rebalance = inner.can_rebalance

    def without_skipped(self, table: DesiredTable) -> DesiredTable:
        return DesiredTable(tuple(svc for svc in table.services if svc.name not in self.skipped))

    async def apply(self, table: DesiredTable) -> None:
        await self.inner.apply(self.without_skipped(table))

    async def close(self) -> None:
        await self.inner.close()

    async def repair(self) -> str | None:
        return await self.inner.repair()

    async def counts(self) -> Loads | None:
        return await self.inner.counts()

    async def rebalance(self, loads: Loads) -> None:
        await self.inner.rebalance({name: load for name, load in loads.items() if name not in self.skipped})
