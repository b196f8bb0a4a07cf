"""The data plane used until a kernel backend is chosen: it only keeps the table.

With it the checker side runs alone (decisions logged, table in the status
file), which is what `pykeepalived -C` does on a machine with neither IPVS nor
a backend configured yet, and what tests of the checkers use.
"""

from __future__ import annotations

from .model import DesiredTable


class TableOnly:
    """Accepts every table and forwards nothing."""

    name = "none"

    def __init__(self) -> None:
        self.table = DesiredTable()
        self.applies = 0

    async def apply(self, table: DesiredTable) -> None:
        self.table = table
        self.applies += 1

    async def close(self) -> None:
        return None
