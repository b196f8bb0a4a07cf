"""use_ipvlan at run time: the ipvlan's name, mode and address, as keepalived 2.2.7 settles them (pure).

keepalived 2.2.7 makes the ipvlan only for an instance with an interface
(unicast without one clears use_ipvlan); its name is the configured one,
else vmac_prefix.VRID ("vrrp.VRID"); the instance's adverts leave from the
ipvlan, and its address, when given, is the instance's source address unless
unicast_src_ip or mcast_src_ip names one. The VIPs stay where they would be
without it (keepalived moves VIPs only onto a use_vmac macvlan).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..config.ipvlan_words import MODES, IPInterface, parse_words
from ..config.model import GlobalDefs, VrrpInstance

IFNAMSIZ_CHARS = 15


@dataclass(frozen=True)
class IpvlanSettings:
    ifname: str
    flags: int  # IFLA_IPVLAN_FLAGS: bridge 0, private 1, vepa 2
    address: IPInterface | None


def default_name(prefix: str | None, vrid: int) -> str:
    tail = f".{vrid}"
    return (prefix or "vrrp")[:IFNAMSIZ_CHARS - len(tail)] + tail


def ipvlan_settings(instance: VrrpInstance, g: GlobalDefs, vrid: int) -> IpvlanSettings | None:
    if instance.use_ipvlan is None or not instance.interface:
        return None
    words = parse_words(instance.use_ipvlan)
    return IpvlanSettings(words.name or default_name(g.vmac_prefix, vrid), MODES[words.mode], words.address)


def ipvlan_source(instance: VrrpInstance, ipvlan: IpvlanSettings | None) -> IPv4Address | IPv6Address | None:
    """mcast_src_ip as the instance runs: the configured one, else the ipvlan's address if nothing else names one."""
    if instance.mcast_src_ip is not None or instance.unicast_src_ip is not None:
        return instance.mcast_src_ip
    return ipvlan.address.ip if ipvlan is not None and ipvlan.address is not None else None
