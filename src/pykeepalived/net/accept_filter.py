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
            ip6 daddr @vips6 drop
            ip6 daddr . iif @vips6_ll drop
            ip6 daddr . iifname @vips6_ll_name drop }
    }

A link-local VIP is only the VIP on its own link, so as in keepalived 2.2.7
it is matched with the interface it arrived on: by interface index
(`vips6_ll`), or by name (`vips6_ll_name`) for an instance with
`dont_track_primary`, whose interface may be deleted and come back with
another index, unless global_defs `nftables_ifindex` asks for the index
anyway. global_defs `nftables_priority` is the chain's priority (keepalived's
default -1: just before the filter tables at 0) and `nftables_counters` puts
a counter in every rule (`nft list table inet NAME` shows what was dropped).

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
from dataclasses import dataclass
from typing import Any

from . import NetError

log = logging.getLogger("pykeepalived.accept")

DEFAULT_TABLE = "pykeepalived"
DEFAULT_PRIORITY = -1  # keepalived 2.2.7's vrrp_nf_chain_priority
Address = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Blocked:
    """One element of the drop sets: an address, and for a link-local IPv6 one the interface it lives on."""

    address: Address
    ifname: str | None = None  # only for link-local IPv6 addresses
    by_name: bool = False  # match the interface by name, not by index

    @property
    def set_name(self) -> str:
        if self.address.version == 4:
            return "vips4"
        if self.ifname is None:
            return "vips6"
        return "vips6_ll_name" if self.by_name else "vips6_ll"

    @property
    def element(self) -> Any:
        if self.ifname is None:
            return str(self.address)
        return {"concat": [str(self.address), self.ifname]}


def blocked_for(address: Address, ifname: str, *, dont_track_primary: bool, ifindex: bool) -> Blocked:
    """The drop-set element of a VIP on `ifname`, keyed as keepalived 2.2.7 keys it.

    Only link-local IPv6 VIPs carry their interface; they go by name when the
    instance has dont_track_primary and global_defs has no nftables_ifindex.
    """
    if address.version == 6 and address.is_link_local:
        return Blocked(address, ifname, by_name=dont_track_primary and not ifindex)
    return Blocked(address)


class AcceptFilter:
    """The drop set for no_accept VIPs; created on first use."""

    def __init__(self, table: str = DEFAULT_TABLE, priority: int | None = None, *, counters: bool = False) -> None:
        self.table = table
        self.priority = DEFAULT_PRIORITY if priority is None else priority  # global_defs nftables_priority
        self.counters = counters  # global_defs nftables_counters
        self._nft: Any = None
        self._created = False
        self._handle: int | None = None  # the kernel's handle of our table: a re-created table has another
        self._members: dict[Blocked, int] = {}
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
        self._run([
            {"add": {"table": {"family": "inet", "name": t}}},
            {"delete": {"table": {"family": "inet", "name": t}}},
            {"add": {"table": {"family": "inet", "name": t}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips4", "type": "ipv4_addr"}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips6", "type": "ipv6_addr"}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips6_ll", "type": ["ipv6_addr", "iface_index"]}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "vips6_ll_name", "type": ["ipv6_addr", "ifname"]}}},
            {"add": {"chain": {**chain, "type": "filter", "hook": "input", "prio": self.priority,
                               "policy": "accept"}}},
            self._rule({"payload": {"protocol": "icmpv6", "field": "type"}},
                       {"set": ["nd-neighbor-solicit", "nd-neighbor-advert"]}, "accept"),
            self._rule({"payload": {"protocol": "ip", "field": "daddr"}}, "@vips4", "drop"),
            self._rule({"payload": {"protocol": "ip6", "field": "daddr"}}, "@vips6", "drop"),
            self._rule({"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"meta": {"key": "iif"}}]},
                       "@vips6_ll", "drop"),
            self._rule({"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}},
                                   {"meta": {"key": "iifname"}}]}, "@vips6_ll_name", "drop"),
        ])
        self._created = True
        self._handle = self._table_handle()

    def _rule(self, left: dict[str, Any], right: Any, verdict: str) -> dict[str, Any]:
        """One rule of the input chain: match, a counter with nftables_counters, the verdict."""
        expr: list[dict[str, Any]] = [{"match": {"op": "==", "left": left, "right": right}}]
        if self.counters:
            expr.append({"counter": None})
        expr.append({verdict: None})
        return {"add": {"rule": {"family": "inet", "table": self.table, "chain": "input", "expr": expr}}}

    def _element(self, verb: str, b: Blocked) -> dict[str, Any]:
        return {verb: {"element": {"family": "inet", "table": self.table, "name": b.set_name, "elem": [b.element]}}}

    def block(self, addresses: list[Blocked]) -> None:
        """Drop traffic to these addresses (reference-counted: two instances may share one)."""
        self._ensure_table()
        new = [a for a in addresses if self._members.get(a, 0) == 0]
        for a in addresses:
            self._members[a] = self._members.get(a, 0) + 1
        if new:
            self._run([self._element("add", a) for a in new])

    def unblock(self, addresses: list[Blocked]) -> None:
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
