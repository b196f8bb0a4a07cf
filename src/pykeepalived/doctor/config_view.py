"""What doctor reads from a parsed config: the floating addresses and their devices, the NAT services."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.errors import Location
from ..config.model import KeepalivedConfig, VirtualServer
from .facts import IPInterface


def where(location: Location | None) -> str:
    return str(location) if location is not None else "config"


@dataclass(frozen=True)
class Vip:
    """A virtual_ipaddress of an instance, with the device it goes on."""

    address: IPInterface
    device: str
    instance: str
    location: Location | None


def config_vips(config: KeepalivedConfig) -> list[Vip]:
    """Every floating address of the config and where it goes (the address's `dev`, else the instance's interface)."""
    out: list[Vip] = []
    for inst in config.vrrp_instances.values():
        for spec in [*inst.virtual_ipaddresses, *inst.virtual_ipaddresses_excluded]:
            device = spec.device or inst.interface
            if device:
                out.append(Vip(spec.address, device, inst.name, spec.location or inst.location))
    return out


def vrrp_devices(config: KeepalivedConfig) -> dict[str, Location | None]:
    """Interfaces VRRP adverts come in on or VIPs go on, with the first place that names each."""
    out: dict[str, Location | None] = {}
    for inst in config.vrrp_instances.values():
        if inst.interface:
            out.setdefault(inst.interface, inst.keyword_locations.get("interface", inst.location))
    for vip in config_vips(config):
        out.setdefault(vip.device, vip.location)
    return out


def method(vs: VirtualServer, rs_method: str | None) -> str:
    return rs_method or vs.lvs_method or "NAT"


def nat_services(config: KeepalivedConfig) -> list[VirtualServer]:
    return [vs for vs in config.virtual_servers
            if any(method(vs, rs.lvs_method) == "NAT" for rs in vs.real_servers) or
            (not vs.real_servers and (vs.lvs_method or "NAT") == "NAT")]


def family(vs: VirtualServer) -> int:
    if vs.address is not None:
        return vs.address.version
    if vs.ip_family is not None:
        return int(vs.ip_family)
    versions = {rs.address.version for rs in vs.real_servers}
    return 6 if versions == {6} else 4
