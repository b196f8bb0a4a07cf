"""use_vmac_addr and a VIP's own `use_vmac`: which (e)VIPs keepalived 2.2.7 puts on a VMAC of their own.

keepalived 2.2.7 (vrrp.c, its instance completion), for each VIP then eVIP:
- on the instance's own VMAC (use_vmac) already: nothing more;
- naming no interface, or the instance's: a VMAC of its own if the address
  says `use_vmac`, or with use_vmac_addr if it is of the other family;
- naming another interface: a VMAC of its own with `use_vmac` or use_vmac_addr.
Such a VMAC is a private macvlan on the address's interface with MAC
00:00:5e:00:01:VRID (IPv6 address: 00:00:5e:00:02:VRID), set up as the
instance VMAC of that family; addresses of one family on one interface share
one. Its name is PREFIX.VRID with PREFIX global_defs' vmac_addr_prefix, else
vmac_prefix, else "vrrp"; a name in use (an instance's VMAC, an interface)
is skipped for PREFIX1.VRID, PREFIX2.VRID, ... (IPv6 tries PREFIX6 first).

Pure: the shell (interfaces.py) asks the kernel which names are free.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..config.model import GlobalDefs, IpAddressSpec, VrrpInstance

IFNAMSIZ_CHARS = 15


@dataclass(frozen=True)
class AddressVmac:
    """One VMAC an instance's addresses need: on `base`, for addresses of `family`."""

    base: str
    family: int
    mac: bytes


def _fit(prefix: str, tail: str) -> str:
    """keepalived cuts the prefix so that PREFIX+TAIL fits IFNAMSIZ."""
    return prefix[:max(0, IFNAMSIZ_CHARS - len(tail))] + tail


def name_candidates(prefix: str, vrid: int, family: int) -> Iterator[str]:
    """PREFIX.VRID, then PREFIXn.VRID with n = 1, 2, ... (IPv6: 6 first, then 1, 2, ... skipping 6)."""
    yield _fit(prefix, f".{vrid}")
    numbers = [6, 1, 2, 3, 4, 5] if family == 6 else [1, 2, 3, 4, 5, 6]
    n = 7
    while True:
        for num in numbers:
            yield _fit(prefix, f"{num}.{vrid}")
        numbers = [n]
        n += 1


def addr_prefix(g: GlobalDefs) -> str:
    return g.vmac_addr_prefix or g.vmac_prefix or "vrrp"


def wanted(spec: IpAddressSpec, *, vmac_ifname: str | None, interface: str | None, family: int, vrid: int,
           use_vmac_addr: bool) -> AddressVmac | None:
    """The VMAC address `spec` of an instance goes on, or None (it stays where it is).

    vmac_ifname: the instance's own VMAC (use_vmac), which settings already put its addresses on."""
    if vmac_ifname is not None and spec.device == vmac_ifname:
        return None
    addr_family = spec.address.ip.version
    own = spec.device in (None, interface)
    if own:
        need = spec.use_vmac or (use_vmac_addr and addr_family != family)
    else:
        need = spec.use_vmac or use_vmac_addr
    base = spec.device or interface
    if not need or not base:
        return None
    return AddressVmac(base, addr_family, bytes((0x00, 0x00, 0x5E, 0x00, 0x01 if addr_family == 4 else 0x02, vrid)))


def extra_vmac_interval(instance: VrrpInstance, g: GlobalDefs, specs: tuple[IpAddressSpec, ...],
                        vmac_ifname: str | None, family: int, vrid: int) -> float:
    """garp_extra_if's interval when an address has a VMAC of its own (keepalived 2.2.7 keeps it on then, with or
    without `all`); 0 otherwise."""
    if not any(wanted(spec, vmac_ifname=vmac_ifname, interface=instance.interface, family=family, vrid=vrid,
                      use_vmac_addr=instance.use_vmac_addr) for spec in specs):
        return 0.0
    return instance.garp_extra_if_s if instance.garp_extra_if_s is not None else g.vrrp_garp_extra_if_s
