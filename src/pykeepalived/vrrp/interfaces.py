"""What VRRP instances change on interfaces besides addresses: VMACs (use_vmac) and promote_secondaries.

The VRRP shell calls `prepare()` for each instance before opening its socket
and `close()` once every instance has stopped: VMACs made here are deleted
and every interface setting changed here is put back, as keepalived does
when it stops.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from itertools import islice
from ipaddress import IPv4Address, IPv6Address

from ..config.model import GlobalDefs, IpAddressSpec, VrrpInstance
from ..errors import PyKeepalivedError
from ..net.devconf import DevconfChanges
from ..net.ipvlan import IpvlanManager
from ..net.rtnl import link_kind
from ..net.vmac import VmacManager
from .ipvlan_settings import default_name
from .settings import InstanceSettings
from .source_tracking import SOURCE_GONE_FAULT
from .vmac_addr import AddressVmac, addr_prefix, name_candidates, wanted

log = logging.getLogger("pykeepalived.vrrp")

IPAddress = IPv4Address | IPv6Address
VMAC_FAULT = "VMAC interface"  # an instance whose VMAC cannot be made stays in FAULT
NO_PEER_FAULT = "no unicast peer"  # unicast_fault_no_peer without peers
NAME_TRIES = 64  # names tried for a use_vmac_addr VMAC before giving up
# faults of the set-up (and track_src_ip's): trackers never clear them
SETUP_FAULTS = frozenset({VMAC_FAULT, NO_PEER_FAULT, SOURCE_GONE_FAULT})


class InstanceInterfaces:
    """The VMACs and interface settings of one VRRP process."""

    def __init__(self) -> None:
        self.devconf = DevconfChanges()
        self.vmacs = VmacManager(self.devconf)
        self._promoted: list[str] = []
        self.ipvlans = IpvlanManager()
        self._addr_vmacs: dict[AddressVmac, str] = {}  # use_vmac_addr's VMACs made so far -> their names

    async def open(self) -> None:
        await self.vmacs.open()
        await self.ipvlans.open()

    async def prepare(self, s: InstanceSettings, source: IPAddress | None) -> str | None:
        """Set up what instance `s` needs; None if all is well, else why it cannot run (a fault reason)."""
        if s.fault_no_peer:
            log.info("(%s) Cannot use unicast without any peers - going to fault state", s.name)
            return NO_PEER_FAULT
        if s.promote_secondaries and s.interface and s.vmac_ifname is None:
            try:
                self.devconf.set(4, s.interface, "promote_secondaries", "1")
                self._promoted.append(s.interface)
            except PyKeepalivedError as exc:
                log.error("(%s) cannot set promote_secondaries: %s", s.name, exc)
        if s.ipvlan is not None and s.interface:
            other_family = any(spec.address.ip.version != s.family for spec in s.excluded_vips)
            try:
                await self.ipvlans.create(s.ipvlan.ifname, s.interface, s.ipvlan.flags, s.ipvlan.address,
                                          ipv6=s.family == 6 or other_family)
            except PyKeepalivedError as exc:
                log.error("(%s): Unable to create ipvlan interface %s: %s", s.name, s.ipvlan.ifname, exc)
                return VMAC_FAULT
            log.info("(%s): Success creating ipvlan interface %s", s.name, s.ipvlan.ifname)
        mac = s.vmac_mac
        if s.vmac_ifname is None or mac is None or not s.interface:
            return None
        other_family = any(spec.address.ip.version != s.family for spec in (*s.vips, *s.excluded_vips))
        link_local = source if isinstance(source, IPv6Address) and not s.vmac_xmit_base else None
        try:
            await self.vmacs.create(s.vmac_ifname, s.interface, mac, s.family, ipv6=other_family,
                                    link_local=link_local)
        except PyKeepalivedError as exc:
            log.error("(%s) Unable to create VMAC interface %s: %s", s.name, s.vmac_ifname, exc)
            return VMAC_FAULT
        log.info("(%s) Success creating VMAC interface %s", s.name, s.vmac_ifname)
        return None

    async def place_addresses(self, s: InstanceSettings, inst: VrrpInstance, g: GlobalDefs,
                              reserved: set[str]) -> tuple[InstanceSettings, str | None]:
        """use_vmac_addr and per-address use_vmac (vmac_addr.py): make the VMACs the (e)VIPs need and return
        the settings with those addresses moved onto them, and a fault reason if one could not be made.

        reserved: every instance's own VMAC name (never taken for an address VMAC)."""
        fault: str | None = None
        s = await self._ipvlan_name(s, g)

        async def place(spec: IpAddressSpec) -> IpAddressSpec:
            nonlocal fault
            need = wanted(spec, vmac_ifname=s.vmac_ifname, interface=s.interface, family=s.family, vrid=s.vrid,
                          use_vmac_addr=inst.use_vmac_addr)
            if need is None:
                return spec
            name = self._addr_vmacs.get(need)
            if name is None:
                name = await self._make_address_vmac(s, need, addr_prefix(g), reserved)
                if name is None:
                    fault = VMAC_FAULT
                    return spec
            return replace(spec, device=name)

        vips = tuple([await place(spec) for spec in s.vips])
        excluded = tuple([await place(spec) for spec in s.excluded_vips])
        return replace(s, vips=vips, excluded_vips=excluded), fault

    async def _ipvlan_name(self, s: InstanceSettings, g: GlobalDefs) -> InstanceSettings:
        """keepalived 2.2.7: a configured ipvlan name that an interface other than an ipvlan has is dropped."""
        if s.ipvlan is None:
            return s
        default = default_name(g.vmac_prefix, s.vrid)
        try:
            link = await self.ipvlans.link(s.ipvlan.ifname) if s.ipvlan.ifname != default else None
        except PyKeepalivedError as exc:
            log.error("(%s) %s", s.name, exc)
            return s
        if link is None or link_kind(link) == "ipvlan":
            return s
        log.error("(%s) interface %s already exists and is not an l2 ipvlan; ignoring ipvlan if_name", s.name,
                  s.ipvlan.ifname)
        return replace(s, ipvlan=replace(s.ipvlan, ifname=default))

    async def _make_address_vmac(self, s: InstanceSettings, need: AddressVmac, prefix: str,
                                 reserved: set[str]) -> str | None:
        name = ""
        try:
            for candidate in islice(name_candidates(prefix, s.vrid, need.family), NAME_TRIES):
                if candidate not in reserved and await self.vmacs.name_usable(candidate, need.base, need.mac):
                    name = candidate
                    break
            else:
                log.error("(%s) Unable to create a VMAC interface on %s: no free name %s.%d ... %s%d.%d", s.name,
                          need.base, prefix, s.vrid, prefix, NAME_TRIES - 1, s.vrid)
                return None
            link_local = await self.vmacs.link_local(need.base) if need.family == 6 else None
            await self.vmacs.create(name, need.base, need.mac, need.family, ipv6=False, link_local=link_local)
        except PyKeepalivedError as exc:
            log.error("(%s) Unable to create VMAC interface %s: %s", s.name, name, exc)
            return None
        log.info("(%s) Success creating VMAC interface %s", s.name, name)
        self._addr_vmacs[need] = name
        return name

    async def close(self, release: bool = True) -> None:
        """Delete our VMACs and put every changed setting back (errors logged, never raised).

        Without `release` (-V, keepalived's --dont-release-vrrp) the VMACs,
        ipvlans and settings stay, as the VIPs on them do: keepalived undoes
        them only where it releases the instances.
        """
        if not release:
            await self.vmacs.close()
            await self.ipvlans.close()
            return
        for name in self.vmacs.created:
            try:
                await self.vmacs.remove(name)
                log.info("Success removing VMAC interface %s", name)
            except PyKeepalivedError as exc:
                log.error("%s", exc)
        for name in self.ipvlans.created:
            try:
                await self.ipvlans.remove(name)
                log.info("Success removing ipvlan interface %s", name)
            except PyKeepalivedError as exc:
                log.error("%s", exc)
        for ifname in self._promoted:
            try:
                self.devconf.release(4, ifname, "promote_secondaries")
            except PyKeepalivedError as exc:
                log.error("cannot reset promote_secondaries on %s: %s", ifname, exc)
        self._promoted.clear()
        try:
            self.devconf.restore_all()
        except PyKeepalivedError as exc:
            log.error("%s", exc)
        await self.vmacs.close()
        await self.ipvlans.close()
