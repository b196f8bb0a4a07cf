"""The IPVS data plane: the desired table as kernel IPVS services, over generic netlink (pyroute2).

The thin shell around ipvs_rules: it sends the edits `changes` orders, one
netlink command each, and keeps `applied` equal to what the kernel holds
after every command that succeeded. IPVS has no transactions, so a failed
command leaves the table part-way; DataPlaneError tells the checker, which
retries with the latest table, and the retry's diff starts from what really
got applied.

Like keepalived: services of others are never touched; a service that
already exists with one of our keys is adopted (read back and edited into
shape, where keepalived would leave it as it found it); a clean stop deletes
our services (with their destinations).

Services of ours that someone else deletes (`ipvsadm -C`, say) are noticed
by `repair()`, which the checker calls every half second: one dump of the
kernel's services, compared with what we applied (ipvs_rules.without_missing);
whatever is missing is added again with its destinations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config.model import GlobalDefs
from .ipvs_sync import RawIpvs, kernel_has_ipvs
from .ipvs_rules import (Change, DestKey, DestSpec, IpvsService, IpvsTable, ServiceKey, ServiceSpec, changes, dest_spec,
                         ipvs_table, service_keys, without_missing)
from .model import DataPlaneBase, DataPlaneError, DesiredTable, Load

log = logging.getLogger("pykeepalived.lvs")
AF = {4: socket.AF_INET, 6: socket.AF_INET6}
FLAGS_MASK = 0xFFFFFFFF
EEXIST, ENOENT, ESRCH = 17, 2, 3

T = TypeVar("T")


@dataclass(frozen=True)
class IpvsOptions:
    """global_defs' IPVS settings: lvs_flush, lvs_flush_on_stop [VS], lvs_timeouts [tcp N] [tcpfin N] [udp N]."""

    flush_at_start: bool = False
    flush_on_stop: str = "no"  # "no": delete our services; "all": flush everything; "vs": our services only
    timeouts: tuple[int | None, int | None, int | None] | None = None

    @classmethod
    def from_global_defs(cls, g: GlobalDefs) -> IpvsOptions:
        on_stop = g.lvs_flush_on_stop
        words = [w.upper() for w in on_stop] if on_stop is not None else []
        flush_on_stop = "no" if on_stop is None else ("vs" if "VS" in words else "all")
        timeouts = None
        raw = g.lvs_timeouts
        if raw:
            given = {str(raw[i]).lower(): int(raw[i + 1]) for i in range(0, len(raw) - 1, 2)
                     if str(raw[i + 1]).isdigit()}
            timeouts = (given.get("tcp"), given.get("tcpfin"), given.get("udp"))
        return cls(g.lvs_flush, flush_on_stop, timeouts)


def _netmask_text(spec: ServiceSpec) -> str:
    """IPVS reads the netmask attribute as a 32-bit value: a mask for IPv4, a prefix length for IPv6.

    pyroute2 types it as an IPv4 address, so an IPv6 prefix is written as the
    address whose bytes are the little-endian number.
    """
    if spec.key.family == 4:
        return str(ipaddress.IPv4Address(spec.netmask))
    return socket.inet_ntoa(struct.pack("=I", spec.netmask))


class IpvsBackend(DataPlaneBase):
    """DataPlane over the kernel's IPVS; see ipvs_rules for how the table maps (IPVS counts and schedules itself)."""

    name = "ipvs"
    can_repair = True

    def __init__(self, options: IpvsOptions | None = None) -> None:
        self.options = options or IpvsOptions()
        self.raw = RawIpvs()
        self._saved_timeouts: tuple[int, int, int] | None = None
        if not kernel_has_ipvs():
            raise DataPlaneError("this kernel has no IPVS (/proc/net/ip_vs is missing; is the ip_vs module loaded?)")
        self._socket: Any = None  # opened in the worker thread: pyroute2's sync API cannot run inside a loop
        self.applied: IpvsTable = {}
        self.table = DesiredTable()
        self.dest_names: dict[tuple[ServiceKey, DestKey], tuple[str, str]] = {}
        self._started = False
        self.commands = 0
        self._lock = asyncio.Lock()
        # Every netlink call on one thread of our own: pyroute2 keeps its event loop and connection per
        # thread, so calls landing on asyncio's other executor threads got "Connection reset by peer".
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipvs")

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    # ------------------------------------------------------------------ netlink
    @property
    def _ipvs(self) -> Any:
        if self._socket is None:
            try:
                from pyroute2 import IPVS  # type: ignore[import-untyped]

                self._socket = IPVS()
            except Exception as exc:  # noqa: BLE001 - pyroute2 raises several kinds when the family is missing
                raise DataPlaneError(f"cannot open IPVS over generic netlink: {exc}") from exc
        return self._socket

    @staticmethod
    def _service(spec: ServiceSpec, *, key_only: bool = False) -> Any:
        from pyroute2 import IPVSService

        fields: dict[str, Any] = {"af": AF[spec.key.family]}
        if spec.key.fwmark:
            fields["fwmark"] = spec.key.fwmark
        else:
            fields.update(protocol=spec.key.protocol, addr=spec.key.address, port=spec.key.port)
        if not key_only:
            fields.update(sched_name=spec.scheduler, flags={"flags": spec.flags, "mask": FLAGS_MASK},
                          timeout=spec.timeout, netmask=_netmask_text(spec))
            if spec.pe_name:
                fields["pe_name"] = spec.pe_name
        return IPVSService(**fields)

    @staticmethod
    def _dest(spec: DestSpec, *, key_only: bool = False) -> Any:
        from pyroute2 import IPVSDest

        if key_only:
            return IPVSDest(addr=spec.key.address, port=spec.key.port)
        return IPVSDest(addr=spec.key.address, port=spec.key.port, fwd_method=spec.fwd, weight=spec.weight,
                        u_thresh=spec.u_threshold, l_thresh=spec.l_threshold, tun_type=spec.tun_type,
                        tun_port=socket.htons(spec.tun_port), tun_flags=spec.tun_flags)

    def _send(self, change: Change) -> None:
        verb = {"add": "add", "edit": "set", "delete": "del"}[change.op]
        service = self._service(change.service, key_only=change.op == "delete" or change.dest is not None)
        if change.dest is None:
            self._ipvs.service(verb, service=service)
        else:
            self._ipvs.dest(verb, service=service, dest=self._dest(change.dest, key_only=change.op == "delete"))
        self.commands += 1

    def _send_tolerant(self, change: Change) -> None:
        """Send; what someone else already did is no failure (added meanwhile: edit it; gone: fine)."""
        try:
            self._send(change)
        except Exception as exc:  # noqa: BLE001 - NetlinkError carries the errno
            code = getattr(exc, "code", None)
            if change.op == "delete" and code in (ENOENT, ESRCH):
                return
            if change.op == "add" and code == EEXIST:
                self._send(Change("edit", change.service, change.dest))
                return
            raise

    def _dump(self) -> dict[ServiceKey, dict[str, Any]]:
        """The kernel's services, by key, with their raw attributes."""
        found: dict[ServiceKey, dict[str, Any]] = {}
        for msg in self._ipvs.service("dump"):
            attrs = dict(msg.get("attrs", []))
            svc = dict(attrs["IPVS_CMD_ATTR_SERVICE"]["attrs"])
            family = 6 if svc.get("IPVS_SVC_ATTR_AF") == socket.AF_INET6 else 4
            fwmark = int(svc.get("IPVS_SVC_ATTR_FWMARK") or 0)
            key = ServiceKey(family, fwmark, 0 if fwmark else int(svc.get("IPVS_SVC_ATTR_PROTOCOL") or 0),
                             "" if fwmark else str(svc.get("IPVS_SVC_ATTR_ADDR", "")),
                             0 if fwmark else int(svc.get("IPVS_SVC_ATTR_PORT") or 0))
            found[key] = svc
        return found

    def _dests(self, spec: ServiceSpec) -> list[dict[str, Any]]:
        return [dict(dict(m.get("attrs", []))["IPVS_CMD_ATTR_DEST"]["attrs"])
                for m in self._ipvs.dest("dump", service=self._service(spec, key_only=True))]

    def _adopt(self, wanted: IpvsTable) -> None:
        """Services with our keys already in the kernel (a crashed run's, or the admin's) are ours to edit."""
        present = self._dump()
        for key, svc in wanted.items():
            if key not in present:
                continue
            raw = present[key]
            flags = raw.get("IPVS_SVC_ATTR_FLAGS", {})
            spec = ServiceSpec(key, str(raw.get("IPVS_SVC_ATTR_SCHED_NAME", "")),
                               int(flags.get("flags", 0) if isinstance(flags, dict) else 0) & ~0x2,
                               int(raw.get("IPVS_SVC_ATTR_TIMEOUT") or 0), -1)  # -1: always edited once
            dests = {}
            for d in self._dests(svc.spec):
                dkey = DestKey(str(d.get("IPVS_DEST_ATTR_ADDR")), int(d.get("IPVS_DEST_ATTR_PORT") or 0))
                dests[dkey] = DestSpec(dkey, -1, -1)  # unknown: edited to ours, or deleted
            self.applied[key] = IpvsService(spec, dests)
            log.warning("IPVS service %s already existed: taking it over", key)

    # ------------------------------------------------------------------ DataPlane
    async def apply(self, table: DesiredTable) -> None:
        await self._run(self.apply_now, table)

    def apply_now(self, table: DesiredTable) -> None:
        wanted = ipvs_table(table.services)
        if not self._started:
            self._prepare()
            self._adopt(wanted)
            self._started = True
        for change in changes(self.applied, wanted):
            try:
                self._send_tolerant(change)
            except Exception as exc:  # noqa: BLE001 - NetlinkError and friends: report, keep what is applied
                raise DataPlaneError(f"IPVS refused to {change.op} {_describe(change)}: {exc}") from exc
            _record(self.applied, change, wanted)
        self.table = table
        names: dict[tuple[ServiceKey, DestKey], tuple[str, str]] = {}
        for svc in table.services:  # which virtual service and real server each kernel destination counts for
            for key, _ in service_keys(svc):
                for dest in svc.destinations:
                    dkey = dest_spec(dest, key).key
                    if key in wanted and dkey in wanted[key].dests:
                        names[(key, dkey)] = (svc.name, dest.name)
        self.dest_names = names

    async def repair(self) -> str | None:
        """Add again the services of ours that someone else deleted; what was repaired, or None."""
        return await self._run(self.repair_now)

    def repair_now(self) -> str | None:
        if not self._started or not self.applied:
            return None
        try:
            present = set(self._dump())
        except Exception as exc:  # noqa: BLE001 - NetlinkError and friends
            raise DataPlaneError(f"cannot list the IPVS services: {exc}") from exc
        kept, missing = without_missing(self.applied, present)
        if not missing:
            return None
        what = ", ".join(_where(key) for key in missing)
        self.applied = kept
        try:
            self.apply_now(self.table)
        except DataPlaneError as exc:
            raise DataPlaneError(f"IPVS service(s) {what} were deleted by someone else and cannot be added "
                                 f"again: {exc}") from exc
        return f"IPVS service(s) {what} were deleted by someone else; added them again with their real servers"

    async def close(self) -> None:
        await self._run(self.close_now)
        self._thread.shutdown(wait=False)

    def _prepare(self) -> None:
        """Before the first table: lvs_flush empties IPVS, lvs_timeouts sets the timeouts (the old ones kept)."""
        try:
            if self.options.flush_at_start:
                self.raw.flush()
                log.info("IPVS flushed at start (lvs_flush)")
            if self.options.timeouts is not None:
                self._saved_timeouts = now = self.raw.timeouts()
                wanted = tuple(w if w is not None else n for w, n in zip(self.options.timeouts, now, strict=True))
                self.raw.set_timeouts(*wanted)
        except Exception as exc:  # noqa: BLE001 - NetlinkError and friends
            raise DataPlaneError(f"cannot prepare IPVS (lvs_flush / lvs_timeouts): {exc}") from exc

    def close_now(self) -> None:
        """Remove what is ours as keepalived does on a clean stop (lvs_flush_on_stop: everything), old timeouts back."""
        if self.options.flush_on_stop == "all":
            try:
                self.raw.flush()
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot flush IPVS: %s", exc)
        else:
            for key in sorted(self.applied):
                try:
                    self._send(Change("delete", self.applied[key].spec))
                except Exception as exc:  # noqa: BLE001
                    log.warning("cannot remove IPVS service %s: %s", key, exc)
        if self._saved_timeouts is not None:
            try:
                self.raw.set_timeouts(*self._saved_timeouts)
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot restore the IPVS timeouts: %s", exc)
        self.raw.close()
        self.applied = {}
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def counts(self) -> dict[str, dict[str, Load]]:
        return await self._run(self.counts_now)

    def counts_now(self) -> dict[str, dict[str, Load]]:
        """Active and inactive connections per service and real server, from IPVS's own counters."""
        out: dict[str, dict[str, Load]] = {s.name: {d.name: (0, 0) for d in s.destinations}
                                           for s in self.table.services}
        for key, svc in self.applied.items():
            try:
                dests = self._dests(svc.spec)
            except Exception as exc:  # noqa: BLE001 - counts are informative
                log.warning("cannot read IPVS counters of %s: %s", key, exc)
                continue
            for d in dests:
                dkey = DestKey(str(d.get("IPVS_DEST_ATTR_ADDR")), int(d.get("IPVS_DEST_ATTR_PORT") or 0))
                names = self.dest_names.get((key, dkey))
                if names is None or names[0] not in out or names[1] not in out[names[0]]:
                    continue
                active, inactive = out[names[0]][names[1]]
                out[names[0]][names[1]] = (active + int(d.get("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0),
                                           inactive + int(d.get("IPVS_DEST_ATTR_INACT_CONNS") or 0))
        return out


def _record(applied: IpvsTable, change: Change, wanted: IpvsTable) -> None:
    """Bring `applied` up to date with one command the kernel took."""
    key = change.service.key
    if change.dest is None:
        if change.op == "delete":
            applied.pop(key, None)
        else:
            known = applied.get(key)
            applied[key] = IpvsService(change.service, known.dests if known else {}, wanted[key].owners)
        return
    svc = applied[key]
    dests = dict(svc.dests)
    if change.op == "delete":
        dests.pop(change.dest.key, None)
    else:
        dests[change.dest.key] = change.dest
    applied[key] = IpvsService(svc.spec, dests, svc.owners)


def _where(key: ServiceKey) -> str:
    return f"fwmark {key.fwmark}" if key.fwmark else f"{key.address}:{key.port}/{key.protocol}"


def _describe(change: Change) -> str:
    key = change.service.key
    where = _where(key)
    return f"the service {where}" if change.dest is None else \
        f"the real server {change.dest.key.address}:{change.dest.key.port} of {where}"
