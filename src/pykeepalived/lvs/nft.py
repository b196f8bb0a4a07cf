"""The nftables data plane: the desired table as one table of our own, changed by atomic diffs.

This is the thin shell around nft_rules (layout) and nft_diff (changes): it
talks to libnftables (Debian's python3-nftables binding, JSON in and out)
and writes the slot maps' elements over nfnetlink itself (nft_elements),
asks the kernel which interface reaches a DR real server, keeps the IPIP
devices TUN needs, and reads connection counts for `status` and the
load-based schedulers. Every change is one libnftables call, which the
kernel applies as one transaction, preceded by one element batch where slot
maps change (`Libnftables.run` says why that order is safe): if it fails,
nothing changed and the previous rules stay in force (DataPlaneError tells
the checker to retry).

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
import fcntl
import json
import logging
import socket
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..config.vocabulary import LbKind
from . import nft_handles
from ..host.malloc_trim import malloc_trim
from .conntrack import count_connections
from .model import DataPlaneBase, DataPlaneError, DesiredTable, VirtualService
from .nft_diff import InPlace, SlotWrite, diff, drop_table, fresh_table
from .nft_elements import ElementChange, ElementWriter
from .nft_modulus import KernelRule, RuleReplace, RuleSwap, SwapUnavailable, parse_rules, patched, rules_request
from .nft_layout import build_all as build
from .nft_limits import NETDEV
from .nft_rules import (IPV4, IPV6, SLOT_KEY_TYPEOF, TABLE, BuildContext, Family, Load, Ruleset, forwarding,
                        overloaded_now, service_chain)
from .route_spans import RoutesRefused, Span
from .routes import RouteFinder
from .tunnels import PREFIX as TUNNEL_PREFIX, Tunnels

log = logging.getLogger("pykeepalived.lvs")
T = TypeVar("T")
SIOCGIFFLAGS = 0x8913
SIOCGIFMTU = 0x8921
IFF_UP = 0x1

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
        self._netlink: socket.socket | None = None
        self.elements = ElementWriter()
        self._cached = False  # libnftables may hold a cache of our tables (forget_cache)

    def run(self, commands: list[dict[str, Any]], elements: Sequence[ElementChange | RuleReplace] = (),
            undo: Sequence[ElementChange] = (), keep_cache: bool = False) -> dict[str, Any]:
        """Send `commands` as one transaction; the slot maps they add (`typeof`, see below) and `elements` go before.

        Then libnftables' cache is emptied (forget_cache), unless `keep_cache`
        (a caller that runs several commands in a row, then forgets once).

        `elements` (nft_diff's early slot writes) are one nfnetlink batch of
        their own, 4x cheaper than libnftables (nft_elements.py), sent after
        the new maps are made and before the transaction: they fill new maps
        before any rule reads them, switch a kept map's changed slots at once
        while its rules stay, and name only chains that exist before and
        after the transaction (nft_diff decides which qualify), so no reader
        ever sees a map without its data or a slot that goes nowhere. If the
        transaction then fails, `undo` puts the kept maps' slots back (best
        effort, logged) and the new maps go, as below.

        libnftables 1.0.6's JSON cannot declare a map keyed by a plain 32-bit
        integer (`typeof numgen ...`: "unqualified type integer"), which is
        what the slot maps of nft_rules need, but its text syntax can. So the
        `add map` commands that carry our `typeof` field are sent first, as
        one text command (after any table that the batch deletes and makes
        again, which would take them with it), and the rest follows as one
        JSON transaction. A new map is empty and nothing refers to it until
        that transaction, so traffic still switches atomically; if it fails,
        the maps just made are deleted again (best effort: an empty map left
        over is harmless, and the next diff adds it again without error).
        """
        try:
            return self._run(commands, elements, undo)
        finally:
            if not keep_cache:
                self.forget_cache()

    def forget_cache(self) -> None:
        """Empty libnftables' cache of our tables, which it keeps from one command to the next for nothing.

        libnftables 1.0.6 fetches what a command needs into its context's
        cache and keeps it after the command. Each table in it comes with
        four hash tables of 8,192 list heads (its chains, sets, objects and
        flowtables): 512 KiB per table, whatever the table holds (mallinfo2
        around one command, tables of 100 to 20,000 real servers alike).
        Kept, they are of no use: the next command fetches the cache again,
        because every transaction since (its own, the element batches)
        changed the ruleset's generation. No public call empties it, but a
        command whose cache is empty does: listing a chain of a table that is
        not there (in the arp family, where we make none, FORGET_CACHE). It
        fails, as it should, after one small netlink dump; 0.1-0.7 ms, once
        per change.
        """
        if self._cached:
            self._cached = False
            self._nft.cmd(FORGET_CACHE)  # "No such file or directory": the point (rc and error text ignored)

    def _run(self, commands: list[dict[str, Any]], elements: Sequence[ElementChange | RuleReplace],
             undo: Sequence[ElementChange]) -> dict[str, Any]:
        maps = [cmd for cmd in commands if _typeof_map(cmd) is not None]
        if not maps and not any(isinstance(change, RuleReplace) or change.delete or change.add for change in elements):
            return self._json(commands)
        rest = [cmd for cmd in commands if _typeof_map(cmd) is None]
        tables = [cmd for cmd in rest if _table_command(cmd)]
        if tables:
            self._json(tables)
            rest = [cmd for cmd in rest if not _table_command(cmd)]
        lines = []
        for cmd in maps:
            spec = _typeof_map(cmd)
            assert spec is not None
            lines.append(f"add map {spec['family']} {spec['table']} {spec['name']} {{ typeof {spec['typeof']} ; }}")
        if lines:
            self._cached = True
            rc, _, err = self._nft.cmd("\n".join(lines))
            if rc != 0:
                raise DataPlaneError(f"nftables refused the change: {str(err).strip() or 'no reason given'}")
        try:
            self.elements.send(elements)
        except DataPlaneError:
            self._drop_maps(maps)
            raise
        if not rest:
            return {}
        try:
            return self._json(rest)
        except DataPlaneError:
            try:
                self.elements.send(undo)
            except DataPlaneError as exc:
                log.warning("nftables: the change failed and its slot map elements could not be put back: %s", exc)
            self._drop_maps(maps)
            raise

    def _drop_maps(self, maps: list[dict[str, Any]]) -> None:
        """Delete the slot maps just made for a change that failed (best effort: an empty map left is harmless)."""
        self._cached = True
        for cmd in maps:
            spec = _typeof_map(cmd)
            assert spec is not None
            self._nft.json_cmd({"nftables": [{"delete": {"map": {k: spec[k] for k in ("family", "table", "name")}}}]})

    def table_handles(self, name: str) -> dict[str, int]:
        """Family -> handle of each table called `name`, from the kernel's table dump (nft_handles.py).

        Not libnftables' `list tables`: it fetches every rule and set element
        first (0.6-1 s with a Maglev map of 65,521 slots).
        """
        try:
            return table_handles(self._dump_socket(), name)
        except OSError as exc:
            self.close()  # a dump cut short leaves replies behind: the next one starts on a new socket
            raise DataPlaneError(f"cannot list the nftables tables: {exc}") from exc

    def replacements(self, family: str, swaps: Sequence[RuleSwap]) -> list[RuleReplace]:
        """The rule replacements that make `swaps` (nft_modulus), from the kernel's rules of their chains.

        One dump per chain, over the table dumps' socket. Raises
        SwapUnavailable if a chain's rules are not as the swaps expect, an
        OSError if a dump fails (nft_modulus.RuleDumpError if the kernel
        refused it).
        """
        out: list[RuleReplace] = []
        dumped: dict[str, list[KernelRule]] = {}
        for swap in swaps:
            rules = dumped.get(swap.chain)
            if rules is None:
                rules = dumped[swap.chain] = self._rules(family, swap.chain)
            if len(rules) != swap.rules:
                raise SwapUnavailable(f"chain {family} {TABLE} {swap.chain} has {len(rules)} rules, not {swap.rules}")
            rule = rules[swap.index]
            out.append(RuleReplace(family, TABLE, swap.chain, rule.handle, patched(rule, swap.change), rule.userdata))
        return out

    def _rules(self, family: str, chain: str) -> list[KernelRule]:
        """The kernel's rules of one chain of our table, in order."""
        try:
            sock = self._dump_socket()
            sock.send(rules_request(family, TABLE, chain, 2))
            rules: list[KernelRule] = []
            done = False
            while not done:
                more, done = parse_rules(sock.recv(1 << 16))
                rules += more
            return rules
        except OSError:
            self.close()  # a dump cut short leaves replies behind: the next one starts on a new socket
            raise

    def _dump_socket(self) -> socket.socket:
        if self._netlink is None:
            self._netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nft_handles.NETLINK_NETFILTER)
            self._netlink.settimeout(NETLINK_TIMEOUT_S)
            self._netlink.bind((0, 0))
        return self._netlink

    def close(self) -> None:
        """Close the netlink sockets of the table dumps and the elements (kept open: closing one waits ~5 ms)."""
        self.elements.close()
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

    def _json(self, commands: list[dict[str, Any]]) -> dict[str, Any]:
        # json_cmd's own steps (the context's output is JSON already), keeping the text's length
        text = json.dumps({"nftables": commands})
        self._cached = True
        rc, out, err = self._nft.cmd(text)
        if len(text) >= TRIM_AFTER_BYTES:
            malloc_trim()  # libnftables' parse and cache, freed but kept by glibc: host/malloc_trim.py
        if rc != 0:
            raise DataPlaneError(f"nftables refused the change: {str(err).strip() or 'no reason given'}")
        if isinstance(out, dict):
            return out
        return json.loads(out) if out else {}


NETLINK_TIMEOUT_S = 2.0
FORGET_CACHE = f"list chain arp {TABLE} forget"
"""A command that leaves libnftables' cache empty (Libnftables.forget_cache): a chain of an arp table we never make.

A chain, not the table: listing the missing table took 2.7 ms beside a DR
service of 1,000 servers (in ingress and table ip; 0.07 ms with no table of
ours), the missing chain 0.7 ms, and both leave the cache as empty (glibc's
heap in use after an apply the same within 1 KiB; 3.3 MiB more without
either; tests/netns/test_nft_cache.py)."""
TRIM_AFTER_BYTES = 128 * 1024
"""malloc_trim after a transaction this long or longer (a first table, a reload): the C memory it freed
goes back to the kernel. Not after every one: a trim walks the whole heap (about 10 ms here beside a
65,521-slot Maglev history), which would double a one-server change's apply for the hash schedulers."""


class Change:
    """One change to send: libnftables' commands, and the slot-map elements written before them (nft_diff)."""

    def __init__(self, direct_elements: bool = True) -> None:
        self.commands: list[dict[str, Any]] = []
        self.elements: list[ElementChange] = []
        self.undo: list[ElementChange] = []
        self.in_place: list[tuple[Family, InPlace]] = []  # pick rules' new moduli, per family (nft_modulus)
        self.direct_elements = direct_elements  # False: every element through libnftables (the old path)

    def __bool__(self) -> bool:
        return bool(self.commands or self.elements or self.in_place)

    def add(self, fam: Family, *, old: Ruleset | None = None, new: Ruleset | None = None,
            fresh: Ruleset | None = None) -> None:
        """Family `fam` from `old` to `new`, or rebuilt whole as `fresh` (None: dropped) when old/new are not given."""
        early: list[SlotWrite] | None = [] if self.direct_elements else None
        if old is not None and new is not None:
            in_place = InPlace()
            self.commands += diff(old, new, early, in_place if self.direct_elements else None)
            if in_place:
                self.in_place.append((fam, in_place))
        elif fresh is not None:
            self.commands += fresh_table(fresh, early)
        else:
            self.commands += drop_table(fam)
        for write in early or ():
            self.elements.append(ElementChange(fam.name, TABLE, write.name, SLOT_KEY_TYPEOF, write.data_type,
                                               write.delete, write.add, keep_encoded=write.maglev))
            if write.kept and write.add:  # the slots written go, those that changed get their old data again
                self.undo.append(ElementChange(fam.name, TABLE, write.name, SLOT_KEY_TYPEOF, write.data_type,
                                               [slot for slot, _ in write.add], write.restore))

    def send(self, nft: Libnftables) -> None:
        """One element batch, then one libnftables transaction; or the element batch alone, rules replaced in it.

        A change whose only rule changes are new moduli (a real server of an
        rr pool down or back) needs no libnftables: the rules are replaced
        in the element batch, after the slots they will read and before the
        slots past the new end go (nft_modulus). If the kernel's rules are
        not as expected, or the change has other commands, they go through
        libnftables with the rest, as before.
        """
        if self.in_place and not self.commands:
            try:
                rules = [replace for fam, in_place in self.in_place
                         for replace in nft.replacements(fam.name, in_place.rules)]
            except (SwapUnavailable, OSError) as exc:  # OSError: the dump failed (nft_modulus.RuleDumpError)
                log.info("nftables: a pick rule's modulus goes through libnftables: %s", exc)
            else:
                tails = [ElementChange(fam.name, TABLE, name, SLOT_KEY_TYPEOF, data_type, slots)
                         for fam, in_place in self.in_place for name, data_type, slots in in_place.tails]
                nft.run([], [*self.elements, *rules, *tails])
                return
        nft.run(self.commands + [cmd for _, in_place in self.in_place for cmd in in_place.commands],
                self.elements, self.undo)


def table_handles(sock: socket.socket, name: str) -> dict[str, int]:
    """Family -> handle of each table called `name` in this network namespace (OSError if netlink fails)."""
    found: dict[str, int] = {}
    sock.send(nft_handles.request(1))
    done = False
    while not done:
        tables, done = nft_handles.parse(sock.recv(1 << 16))
        found.update({family: handle for family, table, handle in tables if table == name})
    return found


def _typeof_map(cmd: dict[str, Any]) -> dict[str, Any] | None:
    """The map spec of an `add map` command with our `typeof` field (nft_diff.typeof_map), else None."""
    add = cmd.get("add")
    spec = add.get("map") if isinstance(add, dict) else None
    return spec if isinstance(spec, dict) and "typeof" in spec else None


def _table_command(cmd: dict[str, Any]) -> bool:
    """An `add table` or `delete table` (fresh_table and drop_table start with them)."""
    return any(isinstance(body, dict) and "table" in body for verb, body in cmd.items() if verb in ("add", "delete"))


class NftablesBackend(DataPlaneBase):
    """DataPlane over nftables; see nft_rules for the layout and why."""

    name = "nftables"
    can_repair = True
    can_rebalance = True

    def __init__(self, nft: Libnftables | None = None, *, consistent_flows: bool = False,
                 direct_elements: bool = True, checker_notrack_mark: int | None = None) -> None:
        """`direct_elements=False` sends slot-map elements through libnftables too (bench/schedulers.py's anchor).

        `checker_notrack_mark`: the checker's socket mark, whose connections the table untracks
        (nft_rules.add_checker_notrack; global_defs pykeepalived_checker_notrack).
        """
        self.nft = nft or Libnftables()
        self.direct_elements = direct_elements
        self.routes = RouteFinder()
        self.tunnels = Tunnels()
        self.ctx = BuildContext(device_for=self.routes.device_for, tunnel_for=self.tunnels.name_for,
                                consistent=consistent_flows, ingress_devices=lambda: self._ingress_seen,
                                tunnel_mtu=self.tunnels.mtu_for, checker_notrack_mark=checker_notrack_mark,
                                client_spans=self._client_spans)
        if consistent_flows:  # say once what changes for rr/wrr/lc users (docs/dataplane.md)
            log.info("nftables: consistent flows: persistent clients and DR/TUN flows are scheduled by hash, "
                     "alike on every router, so a failover moves none")
        self.applied: dict[str, Ruleset] = {}
        self._fallbacks_said: dict[str, str] = {}  # service -> the reason last logged (pykeepalived_stateless)
        self._ingress_seen: tuple[tuple[str, int], ...] = ()  # interfaces and MTUs at the last apply (DR)
        self._ingress_names: frozenset[str] = frozenset()  # their names (stateless NAT's replies leave by them)
        self._spans_said: dict[int, str] = {}  # IP version -> why its routes were last refused, as logged
        self.table = DesiredTable()
        self._started = False
        self.transactions = 0
        self._tidied = 0  # self.transactions at the last tidy(), and at the tidy() before (a pause: tidy then)
        self._tidy_seen = 0
        self.handles: dict[str, int] = {}  # nftables family -> the handle of our table there, as we made it
        self._lock = asyncio.Lock()  # one libnftables call at a time: applies, rebalances and counts share it
        # ... on one thread of our own. asyncio.to_thread's shared pool starts another thread when a call comes
        # before the last one's thread has marked itself idle (an apply right after a repair), and each thread
        # that allocates gets a glibc arena of its own: the checker at 6,000 servers had a second one after
        # the first burst of removals (bench/checks.py), megabytes for nothing
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nftables")

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def apply(self, table: DesiredTable) -> None:
        async with self._lock:
            await self._in_thread(self.apply_now, table)

    async def rebalance(self, loads: dict[str, dict[str, Load]]) -> None:
        """Re-spread the load-based schedulers' slots, and follow uthreshold/lthreshold, from fresh counts.

        Only the chains that change are rewritten.
        """
        async with self._lock:
            self.ctx.loads = loads
            self.ctx.overloaded = overloaded_now(list(self.table.services), loads, self.ctx.overloaded)
            self.ctx.expected_new = {svc: max(64, sum(a for a, _ in dests.values())) for svc, dests in loads.items()}
            if self._started:
                await self._in_thread(self.apply_now, self.table)

    def apply_now(self, table: DesiredTable) -> None:
        """Build, diff and send; on any failure the kernel keeps what it had and so do we."""
        services = list(table.services)
        self.routes.forget()
        self._ingress_seen = ingress_devices()
        self._ingress_names = frozenset(name for name, _ in self._ingress_seen)
        try:
            self.tunnels.want([d.address for s in services if _is_tun(s) for d in s.destinations])
            self.ctx.slot_tables = {svc: table for rs in self.applied.values() for svc, table in rs.slot_tables.items()}
            wanted = build(services, self.ctx)
        except OSError as exc:
            raise DataPlaneError(f"cannot prepare the data plane: {exc}") from exc
        finally:
            self.routes.release()  # the lookups' netlink connection; their answers stay (routes.py)
        change = self._commands(wanted)
        if change:
            try:
                change.send(self.nft)
            except DataPlaneError:
                drifted = self._drift(self._table_handles()) if self._started else []
                if not drifted and self._started and NETDEV.name in wanted and NETDEV.name in self.applied:
                    # kernels that delete a netdev chain with its device (6.18 keeps it, hookless) make the
                    # diff name a chain that is gone: DR's table is built whole (its flow sets start empty)
                    log.warning("nftables: the change failed; building table netdev %s whole", TABLE)
                    self._commands(wanted, fresh={NETDEV.name}).send(self.nft)
                elif not drifted:
                    raise
                else:
                    # our table went (or was replaced) under us: a diff against it cannot work, a fresh table can
                    log.warning("nftables: %s by someone else; building it again with the new change",
                                "; ".join(why for _, why in drifted))
                    self._commands(wanted, fresh={fam for fam, _ in drifted}).send(self.nft)
            self.transactions += 1
            self._learn_handles()
        self._started = True
        self.applied = wanted
        self.table = table
        self.tunnels.release_unwanted()
        self._say_fallbacks()

    def _client_spans(self, version: int) -> tuple[Span, ...]:
        """The main table as spans over the interfaces seen at this apply (nft_forward.reply_spans).

        Why it cannot be copied is logged once per reason: the stateless NAT
        replies then cross the IP stack, slower but as before.
        """
        try:
            spans = self.routes.client_spans(version, self._ingress_names)
        except RoutesRefused as exc:
            if self._spans_said.get(version) != str(exc):
                log.info("nftables: stateless NAT replies (IPv%d) go through the IP stack, not from ingress: %s",
                         version, exc)
                self._spans_said[version] = str(exc)
            raise
        self._spans_said.pop(version, None)
        return spans

    def _say_fallbacks(self) -> None:
        """Log, once per reason, a service whose pykeepalived_stateless cannot be honoured (nft_stateless)."""
        for name, why in sorted(self.ctx.fallbacks.items()):
            if self._fallbacks_said.get(name) != why:
                log.warning("nftables: virtual server %s keeps per-flow state despite pykeepalived_stateless: %s",
                            name, why)
        self._fallbacks_said = dict(self.ctx.fallbacks)

    # ------------------------------------------------------------------ repair
    def _table_handles(self) -> dict[str, int]:
        """Family -> handle of every table named like ours (one netlink dump of the tables alone)."""
        return self.nft.table_handles(TABLE)

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
            return await self._in_thread(self.repair_now)

    def repair_now(self) -> str | None:
        self.tidy()
        if not self._started or not self.applied:
            return None
        present = self._table_handles()
        drifted = self._drift(present)
        if not drifted:
            for fam in self.applied:  # a handle we could not read after the last change
                self.handles.setdefault(fam, present[fam])
            return self._follow_devices()
        what = "; ".join(why for _, why in drifted)
        change = Change(self.direct_elements)
        for fam, _ in drifted:
            change.add(self.applied[fam].family, fresh=self.applied[fam])
        try:
            change.send(self.nft)
        except DataPlaneError as exc:
            raise DataPlaneError(f"{what} by someone else and cannot be rebuilt: {exc}") from exc
        self.transactions += 1
        self._learn_handles()
        return f"{what} by someone else; rebuilt it whole ({len(change.commands)} commands)"

    def tidy(self) -> None:
        """Once applies pause after transactions: the C heap's free pages given back (malloc_trim).

        Called at every repair(), which the checker asks for every half
        second: a burst of applies is tidied once, at the first call that
        finds no transaction since the call before (0.5-1 s after its last
        apply), and no apply waits for it (0.1 ms at bench/checks.py's 6,000
        real servers). What comes back is what the applies' transients
        (build, diff, element batch, libnftables' parse) freed in the C
        heap, which the checker's Python objects mostly cannot reuse (they
        live in pymalloc's own arenas): kept, it stayed in the checker's
        resident size for good (TRIM_AFTER_BYTES trims only after long
        libnftables texts, and the first table's elements now go over
        nfnetlink). Not a fresh libnftables context, which would drop its
        cache of our table (~0.8 MiB) too: the new context's netlink
        socket then gets a descriptor above 1,023, which libnftables puts in
        an fd_set, and glibc aborts the process (the checker holds a
        thousand sockets by then).
        """
        if self._tidied == self.transactions:
            return
        if self._tidy_seen != self.transactions:  # still applying: wait for a pause
            self._tidy_seen = self.transactions
            return
        self._tidied = self.transactions
        malloc_trim()

    def _follow_devices(self) -> str | None:
        """Rebuild when interfaces or their MTUs changed since the last apply and a service from ingress may care.

        The ingress chains go on every interface, and a DR or stateless NAT
        service whose real servers' interface has the smaller MTU stays in
        the IP stack (nft_forward.takes), so they follow the interfaces.
        """
        if not any(self._may_use_ingress(s) for s in self.table.services):
            return None
        moved = self.routes.spans_moved()  # stateless NAT's replies: the routes they were sent by
        if self._ingress_seen == ingress_devices() and not moved:
            return None
        self.apply_now(self.table)
        now = ", ".join(f"{name} (mtu {mtu})" for name, mtu in self._ingress_seen) or "none"
        routes = " (and the routes they send replies by)" if moved else ""
        return f"the paths from ingress follow the interfaces{routes} now: {now}"

    @staticmethod
    def _may_use_ingress(svc: VirtualService) -> bool:
        method = forwarding_or_none(svc)
        return method == "DR" or method == "TUN" or (method == "NAT" and svc.stateless)

    def _commands(self, wanted: dict[str, Ruleset], fresh: set[str] | None = None) -> Change:
        """The change from what was applied to `wanted`; the `fresh` families are built from scratch."""
        change = Change(self.direct_elements)
        for fam in (IPV4, IPV6, NETDEV):
            old, new = self.applied.get(fam.name), wanted.get(fam.name)
            if not self._started or (fresh is not None and fam.name in fresh):
                change.add(fam, fresh=new)
            elif new is None and old is not None:
                change.add(fam, fresh=None)
            elif new is not None and old is None:
                change.add(fam, fresh=new)
            elif new is not None and old is not None:
                change.add(fam, old=old, new=new)
        return change

    async def close(self) -> None:
        async with self._lock:
            await self._in_thread(self.close_now)
        # its thread ends; a new pool starts no thread until it is used (a backend may be used again)
        self._thread.shutdown(wait=False)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nftables")

    def close_now(self) -> None:
        """Remove our tables and tunnels (keepalived clears its IPVS services on a clean stop too)."""
        try:
            self.nft.run(drop_table(IPV4) + drop_table(IPV6) + drop_table(NETDEV))
        except DataPlaneError as exc:
            log.warning("cannot remove the nftables table %s: %s", TABLE, exc)
        self.applied = {}
        self.handles = {}
        self.nft.close()
        self.routes.close()
        self.tunnels.want([])
        self.tunnels.release_unwanted()

    # ------------------------------------------------------------------ counts
    async def counts(self) -> dict[str, dict[str, Load]]:
        """Active and inactive connections per service and real server, like ipvsadm's columns."""
        async with self._lock:
            return await self._in_thread(self.counts_now)

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
                listed = self.nft.run([{"list": {"set": {"family": fam.name, "table": TABLE, "name": name}}}],
                                      keep_cache=True)
            except DataPlaneError:
                continue
            elems = [item["set"].get("elem", []) for item in listed.get("nftables", []) if "set" in item]
            counts[dest.name] = (sum(len(e) for e in elems), 0)
        self.nft.forget_cache()
        return counts


def ingress_devices() -> tuple[tuple[str, int], ...]:
    """(name, MTU) of the interfaces DR's ingress hook goes on: those up, but loopback and our own IPIP devices."""
    found: list[tuple[str, int]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name == "lo" or name.startswith(TUNNEL_PREFIX):
                continue
            try:
                flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0))
                                      [:18])[1]
                answer = fcntl.ioctl(sock, SIOCGIFMTU, struct.pack("16si", name.encode(), 0))
            except OSError:  # gone since the listing
                continue
            if flags & IFF_UP:  # a down interface carries nothing (and its MTU must not hold DR back)
                found.append((name, struct.unpack("16si", answer)[1]))
    return tuple(sorted(found))


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
