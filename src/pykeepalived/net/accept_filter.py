"""Accept mode off (`no_accept`): drop traffic addressed to the VIPs of a non-owner master.

RFC 5798's Accept_Mode false says a master that is not the address owner must
not accept packets for the virtual addresses. keepalived does this with an
nftables table (`keepalived`, or the name given by `nftables`); so do we,
through libnftables' JSON API, in one transaction per change:

    table inet pykeepalived {
        set vips4 { type ipv4_addr; }      set vips6 { type ipv6_addr; }
        chain input { type filter hook input priority filter - 1;
            icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
            ip daddr @vips4 drop
            ip6 daddr @vips6 drop }
    }

Neighbour discovery for the VIPs stays allowed (else the VIP would not even
resolve); ARP is not IP and is never touched. The table is ours alone and is
deleted when the daemon stops. Someone else may delete it meanwhile (`nft flush
ruleset`, which Debian's nftables service runs on every restart): `repair()`
notices a missing or re-created table by its handle and builds it again with
the addresses blocked now, so that no_accept does not silently stop.
"""

from __future__ import annotations

import json
import logging
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from . import NetError

log = logging.getLogger("pykeepalived.accept")

DEFAULT_TABLE = "pykeepalived"


class AcceptFilter:
    """The drop set for no_accept VIPs; created on first use."""

    def __init__(self, table: str = DEFAULT_TABLE, priority: int = -1) -> None:
        self.table = table
        self.priority = priority
        self._nft: Any = None
        self._created = False
        self._handle: int | None = None  # the kernel's handle of our table: a re-created table has another
        self._members: dict[IPv4Address | IPv6Address, int] = {}
        self.repairs = 0

    def _run(self, commands: list[dict[str, Any]]) -> dict[str, Any]:
        if self._nft is None:
            try:
                import nftables  # type: ignore[import-untyped]  # Debian's python3-nftables
            except ImportError as exc:
                raise NetError("no_accept needs libnftables' Python binding (Debian: python3-nftables)") from exc
            self._nft = nftables.Nftables()
            self._nft.set_json_output(True)
        rc, out, err = self._nft.json_cmd({"nftables": commands})
        if rc != 0:
            raise NetError(f"nftables: {str(err).strip() or 'command failed'}: {json.dumps(commands)[:300]}")
        if isinstance(out, dict):
            return out
        return json.loads(out) if out else {}

    def _table_handle(self) -> int | None:
        """Our table's handle in the kernel, None when there is no such table (listing tables is cheap)."""
        listed = self._run([{"list": {"tables": {"family": "inet"}}}])
        for item in listed.get("nftables", []):
            table = item.get("table") if isinstance(item, dict) else None
            if isinstance(table, dict) and table.get("family") == "inet" and table.get("name") == self.table:
                handle = table.get("handle")
                return handle if isinstance(handle, int) else None
        return None

    def _ensure_table(self) -> None:
        if self._created:
            return
        t = self.table
        chain = {"family": "inet", "table": t, "name": "input"}
        rule = {"family": "inet", "table": t, "chain": "input"}
        self._run([
            {"add": {"table": {"family": "inet", "name": t}}},
            {"delete": {"table": {"family": "inet", "name": t}}},
            {"add": {"table": {"family": "inet", "name": t}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips4", "type": "ipv4_addr"}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips6", "type": "ipv6_addr"}}},
            {"add": {"chain": {**chain, "type": "filter", "hook": "input", "prio": self.priority,
                               "policy": "accept"}}},
            {"add": {"rule": {**rule, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}},
                           "right": {"set": ["nd-neighbor-solicit", "nd-neighbor-advert"]}}},
                {"accept": None}]}}},
            {"add": {"rule": {**rule, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                           "right": "@vips4"}},
                {"drop": None}]}}},
            {"add": {"rule": {**rule, "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}},
                           "right": "@vips6"}},
                {"drop": None}]}}},
        ])
        self._created = True
        self._handle = self._table_handle()

    def _element(self, verb: str, address: IPv4Address | IPv6Address) -> dict[str, Any]:
        name = "vips4" if address.version == 4 else "vips6"
        return {verb: {"element": {"family": "inet", "table": self.table, "name": name, "elem": [str(address)]}}}

    def block(self, addresses: list[IPv4Address | IPv6Address]) -> None:
        """Drop traffic to these addresses (reference-counted: two instances may share one)."""
        self._ensure_table()
        new = [a for a in addresses if self._members.get(a, 0) == 0]
        for a in addresses:
            self._members[a] = self._members.get(a, 0) + 1
        if new:
            self._run([self._element("add", a) for a in new])

    def unblock(self, addresses: list[IPv4Address | IPv6Address]) -> None:
        gone = []
        for a in addresses:
            count = self._members.get(a, 0)
            if count <= 1:
                self._members.pop(a, None)
                if count == 1:
                    gone.append(a)
            else:
                self._members[a] = count - 1
        if gone and self._created:
            self._run([self._element("delete", a) for a in gone])

    def repair(self) -> bool:
        """Put the table back if someone deleted or replaced it; True when it had to.

        Only a table we created is watched: before the first block there is
        nothing to lose.
        """
        if not self._created or self._table_handle() == self._handle:
            return False
        log.warning("nftables table inet %s (no_accept) was removed or replaced by someone else; putting it back",
                    self.table)
        self._created = False
        self._ensure_table()
        if self._members:
            self._run([self._element("add", a) for a in self._members])
        self.repairs += 1
        return True

    def close(self) -> None:
        if self._created:
            try:
                self._run([{"delete": {"table": {"family": "inet", "name": self.table}}}])
            except NetError as exc:
                log.warning("%s", exc)
            self._created = False
        self._members.clear()
