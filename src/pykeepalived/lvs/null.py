"""The data plane used until a kernel backend is chosen: it only keeps the table.

With it the checker side runs alone (decisions logged, table in the status
file), which is what `pykeepalived -C` does on a machine with neither IPVS nor
a backend configured yet, and what tests of the checkers use.

With `error` it stands in for a data plane that was wanted but cannot be
had (auto found neither IPVS nor libnftables' binding): the checker then
reports the error as its `dataplane_error`, so that the VRRP instances in
front of these virtual servers go to FAULT instead of holding a VIP that
nothing forwards.
"""

from __future__ import annotations

from .model import DataPlaneBase, DesiredTable


class TableOnly(DataPlaneBase):
    """Accepts every table and forwards nothing."""

    name = "none"

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.table = DesiredTable()
        self.applies = 0

    async def apply(self, table: DesiredTable) -> None:
        self.table = table
        self.applies += 1

    async def close(self) -> None:
        return None
