"""use_vmac: the macvlan interface carrying a VRRP instance's virtual MAC, made as keepalived 2.2.7 makes it.

Observed with keepalived 2.2.7 (and read in its vrrp_vmac.c / vrrp_if_config.c):
- a macvlan in *private* mode on the instance's interface, named vrrp.VRID
  unless `use_vmac NAME`, with MAC 00:00:5e:00:01:VRID (IPv6:
  00:00:5e:00:02:VRID), brought up;
- on the VMAC (IPv4 instances): arp_ignore=1, accept_local=1, rp_filter=0,
  promote_secondaries=1; on the base interface arp_ignore=1 and arp_filter=1,
  so that only the VMAC answers ARP for the VIPs, with the virtual MAC;
- IPv6 is disabled on an IPv4 instance's VMAC (no link-local address, no
  router solicitations from the virtual MAC); an IPv6 instance's VMAC gets no
  automatic link-local address (addr_gen_mode none) but the base interface's
  link-local address, which its adverts leave from (RFC 5798 7.4), unless
  vmac_xmit_base;
- an interface of that name left by an earlier run is replaced; one that is
  not a macvlan is never touched (an error);
- on stop the VMAC is deleted and the base interface's settings put back
  (keepalived 2.2.7 means to; we do).
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv6Address
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from . import NetError
from .rtnl import RtnlHandle, link_kind, netlink_reason
from .devconf import DevconfChanges, write_conf

__all__ = ["VmacManager", "format_mac"]

IFA_F_NODAD = 0x02
_VMAC_IPV4_CONF = (("arp_ignore", "1"), ("accept_local", "1"), ("rp_filter", "0"), ("promote_secondaries", "1"))
_BASE_IPV4_CONF = (("arp_ignore", "1"), ("arp_filter", "1"))


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)




class VmacManager(RtnlHandle):
    """Creates and deletes the VMAC interfaces of this process; open() inside the running loop."""

    def __init__(self, devconf: DevconfChanges) -> None:
        super().__init__()
        self._devconf = devconf
        self._ours: dict[str, str] = {}  # VMAC name -> base interface (IPv4 VMACs changed its settings)
        self._family: dict[str, int] = {}

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(self._ours)

    async def _link(self, ifname: str) -> Any | None:
        try:
            links = await self._ipr.link("get", ifname=ifname)
        except NetlinkError as exc:
            if getattr(exc, "code", 0) in (errno.ENODEV, errno.EINVAL, errno.ERANGE):
                return None
            raise NetError(f"cannot look up interface {ifname}: {netlink_reason(exc)}") from exc
        return links[0] if links else None

    async def name_usable(self, name: str, base: str, mac: bytes) -> bool:
        """Whether a VMAC `name` on `base` with `mac` may be made: no such interface, or one left by an earlier
        run (a macvlan on that base with that MAC, which create() makes afresh); never one made in this run."""
        if self._ipr is None:
            raise NetError("VmacManager is not open")
        if name in self._ours:
            return False
        link = await self._link(name)
        if link is None:
            return True
        try:
            base_index = socket.if_nametoindex(base)
        except OSError:
            return False
        address = str(link.get_attr("IFLA_ADDRESS") or "").lower()
        return link_kind(link) == "macvlan" and link.get_attr("IFLA_LINK") == base_index and address == format_mac(mac)

    async def link_local(self, ifname: str) -> IPv6Address | None:
        """The first IPv6 link-local address of `ifname` (an IPv6 VMAC's adverts and NAs leave from it)."""
        if self._ipr is None:
            raise NetError("VmacManager is not open")
        try:
            index = socket.if_nametoindex(ifname)
            messages = [msg async for msg in await self._ipr.addr("dump", family=socket.AF_INET6)]
        except (OSError, NetlinkError):
            return None
        for msg in messages:
            if msg["index"] != index:
                continue
            value = msg.get_attr("IFA_ADDRESS")
            if value and IPv6Address(value).is_link_local:
                return IPv6Address(value)
        return None

    async def create(self, name: str, base: str, mac: bytes, family: int, *,
                     ipv6: bool, link_local: IPv6Address | None) -> int:
        """Make (or remake) the VMAC `name` on `base` and bring it up; returns its index.

        ipv6: keep IPv6 on an IPv4 instance's VMAC (it carries IPv6 VIPs);
        link_local: the address an IPv6 instance's adverts leave from, added to the VMAC.
        """
        if self._ipr is None:
            raise NetError("VmacManager is not open")
        what = f"cannot create VMAC interface {name} on {base}"
        try:
            base_index = socket.if_nametoindex(base)
        except OSError:
            raise NetError(f"{what}: no interface '{base}'") from None
        old = await self._link(name)
        if old is not None:
            if link_kind(old) != "macvlan":
                raise NetError(f"{what}: {name} exists and is not a macvlan")
            try:  # an earlier run's: make it afresh (its addresses go with it)
                await self._ipr.link("del", index=old["index"])
            except (NetlinkError, OSError) as exc:
                raise NetError(f"{what}: cannot remove the old {name}: {netlink_reason(exc)}") from exc
        try:
            await self._ipr.link("add", ifname=name, kind="macvlan", link=base_index, macvlan_mode="private",
                                 address=format_mac(mac))
            link = await self._link(name)
        except (NetlinkError, OSError) as exc:
            raise NetError(f"{what}: {netlink_reason(exc)}") from exc
        if link is None:
            raise NetError(f"{what}: it vanished")
        index = int(link["index"])
        self._ours[name] = base
        self._family[name] = family
        if family == 4:
            for key, value in _VMAC_IPV4_CONF:
                write_conf(4, name, key, value)
            for key, value in _BASE_IPV4_CONF:
                self._devconf.set(4, base, key, value)
        write_conf(6, name, "addr_gen_mode", "1")  # none: no EUI-64 link-local from the virtual MAC (every VMAC)
        if family == 4 and not ipv6:
            write_conf(6, name, "disable_ipv6", "1")
        try:
            await self._ipr.link("set", index=index, state="up")
            if family == 6 and link_local is not None:
                # deprecated (preferred lifetime 0), as keepalived adds it: adverts leave from it, nothing else
                await self._ipr.addr("add", index=index, address=str(link_local), prefixlen=64,
                                     family=socket.AF_INET6, flags=IFA_F_NODAD,
                                     IFA_CACHEINFO={"ifa_preferred": 0, "ifa_valid": 0xFFFFFFFF,
                                                    "cstamp": 0, "tstamp": 0})
        except NetlinkError as exc:
            if getattr(exc, "code", 0) != errno.EEXIST:
                raise NetError(f"{what}: {netlink_reason(exc)}") from exc
        except OSError as exc:
            raise NetError(f"{what}: {netlink_reason(exc)}") from exc
        return index

    async def remove(self, name: str) -> None:
        """Delete a VMAC of ours and put the base interface's settings back; gone already is fine."""
        base = self._ours.pop(name, None)
        family = self._family.pop(name, None)
        if base is None:
            return
        self._devconf.forget(name)
        errors: list[str] = []
        if family == 4:
            for key, _ in _BASE_IPV4_CONF:
                try:
                    self._devconf.release(4, base, key)
                except NetError as exc:
                    errors.append(str(exc))
        link = await self._link(name)
        if link is not None and link_kind(link) == "macvlan":
            try:
                await self._ipr.link("del", index=link["index"])
            except NetlinkError as exc:
                if getattr(exc, "code", 0) not in (errno.ENODEV, errno.ENOENT):
                    errors.append(f"cannot remove VMAC interface {name}: {netlink_reason(exc)}")
            except OSError as exc:
                errors.append(f"cannot remove VMAC interface {name}: {netlink_reason(exc)}")
        if errors:
            raise NetError("; ".join(errors))

    async def remove_all(self) -> None:
        errors: list[str] = []
        for name in list(self._ours):
            try:
                await self.remove(name)
            except NetError as exc:
                errors.append(str(exc))
        if errors:
            raise NetError("; ".join(errors))
