"""The nftables data plane: the desired table as one table of our own, changed by atomic diffs.

This is the thin shell around nft_rules (layout) and nft_diff (changes): it
talks to libnftables (Debian's python3-nftables binding, JSON in and out),
asks the kernel which interface reaches a DR real server, keeps the IPIP
devices TUN needs, and reads connection counts for `status` and the
load-based schedulers. Every change is one libnftables call, which the
kernel applies as one transaction: if it fails, nothing changed and the
previous rules stay in force (DataPlaneError tells the checker to retry).

Someone else may remove our table: `nft flush ruleset` (what Debian's
nftables.conf does on every restart of the nftables service) takes every
table with it, and a diff against a table that is gone fails with "No such
file or directory" for ever. So `repair()` (called by the checker every
half second) lists the tables with their handles, which costs one small
netlink dump whatever the size of our rules: a table of ours that is missing,
or that has another handle than the one we made (deleted and re-created by
someone else), is built again whole from what was applied, in one
transaction. A failed apply runs the same check, so a diff that failed
because the table vanished is retried at once on a fresh table.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ..config.vocabulary import LbKind
from .conntrack import count_connections
from .model import DataPlaneBase, DataPlaneError, DesiredTable, VirtualService
from .nft_diff import diff, drop_table, fresh_table
from .nft_rules import (IPV4, IPV6, TABLE, BuildContext, Family, Load, Ruleset, build, forwarding, overloaded_now,
                        service_chain)
from .routes import RouteFinder
from .tunnels import Tunnels

log = logging.getLogger("pykeepalived.lvs")

# pip cannot install libnftables' binding (it is not on PyPI; it comes with libnftables): the one
# system dependency of `pip install pykeepalived`, so its absence is one line that says the fix
BINDING_MISSING = ("libnftables' Python binding (module nftables) is missing: it is not on PyPI; install "
                   "Debian's python3-nftables (apt install python3-nftables) and, in a virtualenv, create the "
                   "venv with --system-site-packages so that it is seen")


class Libnftables:
    """One libnftables context; JSON commands in, (ok, error text, parsed output) out."""

    def __init__(self) -> None:
        try:
            import nftables  # type: ignore[import-untyped]  # Debian's python3-nftables, not on PyPI
        except ImportError as exc:
            raise DataPlaneError(f"{exc}: {BINDING_MISSING}") from exc  # the cause first: fault lines are cut short
        self._nft = nftables.Nftables()
        self._nft.set_json_output(True)
        self._nft.set_handle_output(False)

    def run(self, commands: list[dict[str, Any]]) -> dict[str, Any]:
        rc, out, err = self._nft.json_cmd({"nftables": commands})
        if rc != 0:
            raise DataPlaneError(f"nftables refused the change: {str(err).strip() or 'no reason given'}")
        if isinstance(out, dict):
            return out
        return json.loads(out) if out else {}


class NftablesBackend(DataPlaneBase):
    """DataPlane over nftables; see nft_rules for the layout and why."""

    name = "nftables"
    can_repair = True
    can_rebalance = True

    def __init__(self, nft: Libnftables | None = None, *, consistent_flows: bool = False) -> None:
        self.nft = nft or Libnftables()
        self.routes = RouteFinder()
        self.tunnels = Tunnels()
        self.ctx = BuildContext(device_for=self.routes.device_for, tunnel_for=self.tunnels.name_for,
                                consistent=consistent_flows)
        if consistent_flows:  # say once what changes for rr/wrr/lc users (docs/dataplane.md)
            log.info("nftables: consistent flows: persistent clients and DR/TUN flows are scheduled by hash, "
                     "alike on every router, so a failover moves none")
        self.applied: dict[str, Ruleset] = {}
        self.table = DesiredTable()
        self._started = False
        self.transactions = 0
        self.handles: dict[str, int] = {}  # nftables family -> the handle of our table there, as we made it
        self._lock = asyncio.Lock()  # one libnftables call at a time: applies, rebalances and counts share it

    async def apply(self, table: DesiredTable) -> None:
        async with self._lock:
            await asyncio.to_thread(self.apply_now, table)

    async def rebalance(self, loads: dict[str, dict[str, Load]]) -> None:
        """Re-spread the load-based schedulers' slots, and follow uthreshold/lthreshold, from fresh counts.

        Only the chains that change are rewritten.
        """
        async with self._lock:
            self.ctx.loads = loads
            self.ctx.overloaded = overloaded_now(list(self.table.services), loads, self.ctx.overloaded)
            self.ctx.expected_new = {svc: max(64, sum(a for a, _ in dests.values())) for svc, dests in loads.items()}
            if self._started:
                await asyncio.to_thread(self.apply_now, self.table)

    def apply_now(self, table: DesiredTable) -> None:
        """Build, diff and send; on any failure the kernel keeps what it had and so do we."""
        services = list(table.services)
        self.routes.forget()
        try:
            self.tunnels.want([d.address for s in services if _is_tun(s) for d in s.destinations])
            wanted = build(services, self.ctx)
        except OSError as exc:
            raise DataPlaneError(f"cannot prepare the data plane: {exc}") from exc
        commands = self._commands(wanted)
        if commands:
            try:
                self.nft.run(commands)
            except DataPlaneError:
                drifted = self._drift(self._table_handles()) if self._started else []
                if not drifted:
                    raise
                # our table went (or was replaced) under us: a diff against it cannot work, a fresh table can
                log.warning("nftables: %s by someone else; building it again with the new change",
                            "; ".join(why for _, why in drifted))
                self.nft.run(self._commands(wanted, fresh={fam for fam, _ in drifted}))
            self.transactions += 1
            self._learn_handles()
        self._started = True
        self.applied = wanted
        self.table = table
        self.tunnels.release_unwanted()

    # ------------------------------------------------------------------ repair
    def _table_handles(self) -> dict[str, int]:
        """Family -> handle of every table named like ours (one cheap dump: tables only, no rules)."""
        listed = self.nft.run([{"list": {"tables": {}}}])
        handles: dict[str, int] = {}
        for item in listed.get("nftables", []):
            table = item.get("table") if isinstance(item, dict) else None
            if isinstance(table, dict) and table.get("name") == TABLE and isinstance(table.get("handle"), int):
                handles[str(table.get("family"))] = int(table["handle"])
        return handles

    def _learn_handles(self) -> None:
        """Remember our tables' handles after a change; unknown ones are learnt at the next repair()."""
        try:
            self.handles = self._table_handles()
        except DataPlaneError as exc:
            log.warning("nftables: cannot list the tables after a change: %s", exc)
            self.handles = {}

    def _drift(self, present: dict[str, int]) -> list[tuple[str, str]]:
        """(family, what happened) for each applied table of ours that is gone or not the one we made."""
        out: list[tuple[str, str]] = []
        for fam in sorted(self.applied):
            if fam not in present:
                out.append((fam, f"table {fam} {TABLE} was removed"))
            elif fam in self.handles and present[fam] != self.handles[fam]:
                out.append((fam, f"table {fam} {TABLE} was replaced (handle {self.handles[fam]} -> "
                                 f"{present[fam]})"))
        return out

    async def repair(self) -> str | None:
        """Put our tables back if someone removed or replaced them; what was repaired, or None.

        Raises DataPlaneError when a table is gone and cannot be rebuilt (the
        checker shows a failing data plane and asks again).
        """
        async with self._lock:
            return await asyncio.to_thread(self.repair_now)

    def repair_now(self) -> str | None:
        if not self._started or not self.applied:
            return None
        present = self._table_handles()
        drifted = self._drift(present)
        if not drifted:
            for fam in self.applied:  # a handle we could not read after the last change
                self.handles.setdefault(fam, present[fam])
            return None
        what = "; ".join(why for _, why in drifted)
        commands = [cmd for fam, _ in drifted for cmd in fresh_table(self.applied[fam])]
        try:
            self.nft.run(commands)
        except DataPlaneError as exc:
            raise DataPlaneError(f"{what} by someone else and cannot be rebuilt: {exc}") from exc
        self.transactions += 1
        self._learn_handles()
        return f"{what} by someone else; rebuilt it whole ({len(commands)} commands)"

    def _commands(self, wanted: dict[str, Ruleset], fresh: set[str] | None = None) -> list[dict[str, Any]]:
        """The batch from what was applied to `wanted`; the `fresh` families are built from scratch."""
        commands: list[dict[str, Any]] = []
        for fam in (IPV4, IPV6):
            old, new = self.applied.get(fam.name), wanted.get(fam.name)
            if not self._started or (fresh is not None and fam.name in fresh):
                commands += fresh_table(new) if new else drop_table(fam)
            elif new is None and old is not None:
                commands += drop_table(fam)
            elif new is not None and old is None:
                commands += fresh_table(new)
            elif new is not None and old is not None:
                commands += diff(old, new)
        return commands

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.close_now)

    def close_now(self) -> None:
        """Remove our tables and tunnels (keepalived clears its IPVS services on a clean stop too)."""
        try:
            self.nft.run(drop_table(IPV4) + drop_table(IPV6))
        except DataPlaneError as exc:
            log.warning("cannot remove the nftables table %s: %s", TABLE, exc)
        self.applied = {}
        self.handles = {}
        self.tunnels.want([])
        self.tunnels.release_unwanted()

    # ------------------------------------------------------------------ counts
    async def counts(self) -> dict[str, dict[str, Load]]:
        """Active and inactive connections per service and real server, like ipvsadm's columns."""
        async with self._lock:
            return await asyncio.to_thread(self.counts_now)

    def counts_now(self) -> dict[str, dict[str, Load]]:
        out: dict[str, dict[str, Load]] = {}
        nat = [s for s in self.table.services if forwarding_or_none(s) == "NAT"]
        if nat:
            out.update(count_connections(nat))
        for svc in self.table.services:
            method = forwarding_or_none(svc)
            if method == "DR" or method == "TUN":
                out[svc.name] = self._flow_counts(svc)
        return out

    def _flow_counts(self, svc: VirtualService) -> dict[str, Load]:
        fam = _family(self.applied, svc)
        counts: dict[str, Load] = {}
        if fam is None:
            return counts
        rs = self.applied[fam.name]
        for dest in svc.destinations:
            number = self.ctx.numbers.get((svc.name, dest.name))
            name = f"{service_chain(svc.name)}-{number}-flows"
            if number is None or name not in rs.sets:
                continue
            try:
                listed = self.nft.run([{"list": {"set": {"family": fam.name, "table": TABLE, "name": name}}}])
            except DataPlaneError:
                continue
            elems = [item["set"].get("elem", []) for item in listed.get("nftables", []) if "set" in item]
            counts[dest.name] = (sum(len(e) for e in elems), 0)
        return counts


def forwarding_or_none(svc: VirtualService) -> LbKind | None:
    try:
        return forwarding(svc)
    except DataPlaneError:
        return None


def _is_tun(svc: VirtualService) -> bool:
    return forwarding_or_none(svc) == "TUN"


def _family(applied: dict[str, Ruleset], svc: VirtualService) -> Family | None:
    for rs in applied.values():
        if svc.name in rs.services:
            return rs.family
    return None
