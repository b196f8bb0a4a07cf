"""What one VRRP instance needs to run, distilled from the configuration model.

The config model keeps keepalived's spelling and optional values; the state
machine wants plain, complete numbers. This module does that translation once,
so that the machine never looks at global_defs or applies a default itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address

from ..config.model import GlobalDefs, IpAddressSpec, VrrpInstance
from ..config.vrrp_defaults import OWNER_PRIORITY, instance_defaults
from .ipvlan_settings import IpvlanSettings, ipvlan_settings, ipvlan_source
from .packet import VRRP_MCAST_V4, VRRP_MCAST_V6, AuthType
from .vmac_addr import extra_vmac_interval

IPAddress = IPv4Address | IPv6Address

PRIORITY_OWNER = OWNER_PRIORITY
PRIORITY_STOP = 0
DEFAULT_GARP_DELAY_S = 5.0  # keepalived's vrrp_garp_master_delay and vrrp_garp_master_repeat
DEFAULT_GARP_REPEAT = 5


@dataclass(frozen=True)
class PeerSettings:
    address: IPAddress
    min_ttl: int = 0
    max_ttl: int = 255


@dataclass(frozen=True)
class InstanceSettings:
    """One vrrp_instance, complete: every default applied, every unit explicit."""

    name: str
    vrid: int
    version: int
    family: int
    interface: str | None
    base_priority: int
    wanted_master: bool
    advert_int_cs: int
    vips: tuple[IpAddressSpec, ...] = ()
    excluded_vips: tuple[IpAddressSpec, ...] = ()
    nopreempt: bool = False
    preempt_delay_s: float = 0.0
    auth_type: AuthType = AuthType.NONE
    auth_data: bytes = b""
    unicast_peers: tuple[PeerSettings, ...] = ()
    unicast_src: IPAddress | None = None
    check_unicast_src: bool = False
    multicast_group: IPAddress | None = None
    multicast_src: IPAddress | None = None
    v3_pseudo_header: bool = True
    down_timer_adverts: int = 3
    garp_master_delay_s: float = 5.0
    garp_master_repeat: int = 5
    garp_master_refresh_s: float = 0.0
    garp_master_refresh_repeat: int = 1
    garp_lower_prio_delay_s: float = 5.0
    garp_lower_prio_repeat: int = 5
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    skip_check_adv_addr: bool = False
    dont_track_primary: bool = False
    accept: bool = True
    sync_group: str | None = None
    # use_vmac: the macvlan the VIPs live on (None: no VMAC); adverts leave from it unless vmac_xmit_base
    vmac_ifname: str | None = None
    vmac_xmit_base: bool = False
    ipvlan: IpvlanSettings | None = None  # use_ipvlan: adverts leave from this ipvlan (ipvlan_settings.py)
    # unicast_ttl: TTL / hop limit of unicast adverts; None: 255 on IPv4, the kernel's default hop limit on IPv6
    unicast_ttl: int | None = None
    promote_secondaries: bool = False
    # unicast_fault_no_peer without any unicast_peer: keepalived keeps the instance in FAULT (else multicast)
    fault_no_peer: bool = False
    notify_priority_changes: bool = False
    # garp_extra_if [all] SECONDS: a periodic GARP/NA on VMACs other than the advert interface (all: every interface)
    garp_extra_if_s: float = 0.0
    garp_extra_if_all: bool = False
    # old_unicast_checksum: "auto" (none: switch to the old checksum when a peer uses it), "never", "old"
    old_unicast_checksum: str = "auto"
    old_checksum_group: IPAddress = VRRP_MCAST_V4  # the pseudo-header destination of the old checksum
    # pacing of gratuitous ARPs / unsolicited NAs on one interface (vrrp_garp_interval, garp_group, ...)
    garp_interval_s: float = 0.0
    gna_interval_s: float = 0.0
    # beyond keepalived: on a clean stop, keep the VIPs until a new master speaks
    handover: bool = True
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def owner(self) -> bool:
        return self.base_priority == PRIORITY_OWNER

    @property
    def unicast(self) -> bool:
        return bool(self.unicast_peers)

    @property
    def advert_addresses(self) -> tuple[IPAddress, ...]:
        """The addresses an advert lists: the VIPs of the instance's own family."""
        wanted = 4 if self.family == 4 else 6
        out: list[IPAddress] = []
        for spec in self.vips:
            addr = spec.address.ip
            if addr.version == wanted and addr not in out:
                out.append(addr)
        return tuple(out)

    @property
    def vmac_mac(self) -> bytes | None:
        """RFC 5798's virtual MAC, 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID), if use_vmac."""
        if self.vmac_ifname is None:
            return None
        return bytes((0x00, 0x00, 0x5E, 0x00, 0x01 if self.family == 4 else 0x02, self.vrid))

    @property
    def advert_interface(self) -> str | None:
        """Where adverts are sent and received: the VMAC, or the configured interface (vmac_xmit_base)."""
        if self.ipvlan is not None:
            return self.ipvlan.ifname
        if self.vmac_ifname is not None and not self.vmac_xmit_base:
            return self.vmac_ifname
        return self.interface

    @property
    def advert_ttl(self) -> int:
        """The TTL / hop limit adverts leave with: 255, or unicast_ttl for unicast ones.

        keepalived 2.2.7 leaves IPv6 unicast adverts without unicast_ttl to the
        kernel's default hop limit (-1 here: the socket layer's "default").
        """
        if self.unicast and self.unicast_ttl is not None:
            return self.unicast_ttl
        if self.unicast and self.family == 6:
            return -1
        return 255

    @property
    def destination_group(self) -> IPAddress:
        if self.multicast_group is not None:
            return self.multicast_group
        return VRRP_MCAST_V4 if self.family == 4 else VRRP_MCAST_V6


def vmac_name(prefix: str | None, vrid: int) -> str:
    """keepalived 2.2.7's default VMAC name: PREFIX.VRID, the prefix cut so that the name fits IFNAMSIZ (15)."""
    prefix = prefix or "vrrp"
    suffix = f".{vrid}"
    return prefix[:15 - len(suffix)] + suffix


def _vmac(instance: VrrpInstance, vrid: int, unicast: bool, strict: bool,
          prefix: str | None = None) -> tuple[str | None, bool]:
    """(VMAC interface name, vmac_xmit_base) as keepalived 2.2.7 settles them.

    The name defaults to vrrp.VRID; unicast forces vmac_xmit_base (keepalived:
    "unicast with use_vmac requires vmac_xmit_base"), strict mode clears it.
    """
    if instance.use_vmac is None:
        return None, False
    name = instance.use_vmac or vmac_name(prefix, vrid)
    xmit_base = instance.vmac_xmit_base or unicast
    if strict:
        xmit_base = False
    return name, xmit_base


def _on_vmac(specs: list[IpAddressSpec], vmac: str | None, interface: str | None,
             family: int) -> tuple[IpAddressSpec, ...]:
    """keepalived puts the instance's own-family (e)VIPs that name no other interface on the VMAC."""
    if vmac is None:
        return tuple(specs)
    return tuple(replace(spec, device=vmac) if spec.device in (None, interface)
                 and spec.address.ip.version == family else spec for spec in specs)


def _extra_if_all(instance: VrrpInstance, g: GlobalDefs) -> bool:
    """The instance's `all`, or global_defs' when the instance has no garp_extra_if of its own."""
    return instance.garp_extra_if_all if instance.garp_extra_if_s is not None else g.vrrp_garp_extra_if_all


def _extra_if_interval(instance: VrrpInstance, g: GlobalDefs, specs: tuple[IpAddressSpec, ...],
                       own: str | None) -> float:
    """garp_extra_if's interval, or 0 where keepalived 2.2.7 turns it off: with no (e)VIP on another interface
    than the one the instance's VIPs live on (its VMAC, if any), or without `all` (then only use_vmac_addr's
    VMACs count: vmac_addr.extra_vmac_interval)."""
    others = any((spec.device or instance.interface) != own for spec in specs)
    if not _extra_if_all(instance, g) or not others:
        return 0.0
    return instance.garp_extra_if_s if instance.garp_extra_if_s is not None else g.vrrp_garp_extra_if_s


def _cs(seconds: float) -> int:
    return max(1, round(seconds * 100))


def _accept_mode(instance: VrrpInstance, g: GlobalDefs, priority: int) -> bool:
    """keepalived: accept unless `no_accept`, or strict mode without `accept`; the owner always accepts."""
    if priority == PRIORITY_OWNER:
        return True
    if instance.accept is not None:
        return instance.accept
    return not (instance.strict_mode or g.vrrp_strict)


def instance_settings(instance: VrrpInstance, global_defs: GlobalDefs, *,
                      group_notify_priority_changes: bool | None = None) -> InstanceSettings:
    """Complete one instance the way keepalived does before it starts.

    The derived values (family, version, priority, state, preemption) come from
    config/vrrp_defaults.py, as config/complete.py's do: a model completed by
    the parser or not gives the same settings.
    """
    derived = instance_defaults(instance, global_defs)
    family, version, priority = derived.family, derived.version, derived.priority
    wanted_master = derived.wanted_master
    advert_s = instance.advert_int_s
    if version == 2:
        advert_cs = max(1, round(advert_s)) * 100
    else:
        advert_cs = min(4095, _cs(advert_s))
    auth_type = AuthType.NONE
    auth_data = b""
    if version == 2 and instance.authentication is not None:
        if instance.authentication.auth_type == "PASS":
            auth_type = AuthType.PASS
            auth_data = (instance.authentication.auth_pass or "").encode()[:8]
        elif instance.authentication.auth_type == "AH":
            auth_type = AuthType.AH
    g = global_defs
    g_delay, g_repeat = g.vrrp_garp_master_delay_s, g.vrrp_garp_master_repeat
    if g.vrrp_min_garp:
        # keepalived: vrrp_min_garp replaces the global defaults that are still keepalived's own
        g_delay = 0.0 if g_delay == DEFAULT_GARP_DELAY_S else g_delay
        g_repeat = 1 if g_repeat == DEFAULT_GARP_REPEAT else g_repeat
    master_delay = instance.garp_master_delay_s if instance.garp_master_delay_s is not None else g_delay
    master_repeat = instance.garp_master_repeat if instance.garp_master_repeat is not None else g_repeat
    lower_delay = instance.garp_lower_prio_delay_s
    if lower_delay is None:
        lower_delay = g.vrrp_garp_lower_prio_delay_s if g.vrrp_garp_lower_prio_delay_s is not None else master_delay
    lower_repeat = instance.garp_lower_prio_repeat
    if lower_repeat is None:
        lower_repeat = g.vrrp_garp_lower_prio_repeat if g.vrrp_garp_lower_prio_repeat is not None else master_repeat
    group = instance.mcast_dst_ip
    if group is None:
        group = g.vrrp_mcast_group4 if family == 4 else g.vrrp_mcast_group6
    v3_as_v2 = bool(instance.v3_checksum_as_v2) or g.v3_checksum_as_v2
    nopreempt, preempt_delay = derived.nopreempt, derived.preempt_delay_s
    vrid = instance.virtual_router_id or 0
    strict = bool(instance.strict_mode if instance.strict_mode is not None else g.vrrp_strict)
    vmac_ifname, xmit_base = _vmac(instance, vrid, bool(instance.unicast_peers), strict, g.vmac_prefix)
    vips = _on_vmac(instance.virtual_ipaddresses, vmac_ifname, instance.interface, family)
    excluded = _on_vmac(instance.virtual_ipaddresses_excluded, vmac_ifname, instance.interface, family)
    ipvlan = ipvlan_settings(instance, g, vrid)
    settings = InstanceSettings(
        name=instance.name,
        vrid=instance.virtual_router_id or 0,
        version=version,
        family=family,
        interface=instance.interface,
        base_priority=priority,
        wanted_master=wanted_master,
        advert_int_cs=advert_cs,
        vips=vips,
        excluded_vips=excluded,
        nopreempt=nopreempt,
        preempt_delay_s=preempt_delay,
        auth_type=auth_type,
        auth_data=auth_data,
        unicast_peers=tuple(
            PeerSettings(p.address, p.min_ttl if p.min_ttl is not None else 0,
                         p.max_ttl if p.max_ttl is not None else 255)
            for p in instance.unicast_peers
        ),
        unicast_src=instance.unicast_src_ip,
        check_unicast_src=instance.check_unicast_src or g.vrrp_check_unicast_src,
        multicast_group=group,
        multicast_src=ipvlan_source(instance, ipvlan),
        v3_pseudo_header=not v3_as_v2,
        down_timer_adverts=instance.down_timer_adverts or g.vrrp_down_timer_adverts,
        garp_master_delay_s=master_delay,
        garp_master_repeat=master_repeat,
        garp_master_refresh_s=instance.garp_master_refresh_s if instance.garp_master_refresh_s is not None
        else g.vrrp_garp_master_refresh_s,
        garp_master_refresh_repeat=instance.garp_master_refresh_repeat
        if instance.garp_master_refresh_repeat is not None else g.vrrp_garp_master_refresh_repeat,
        garp_lower_prio_delay_s=lower_delay,
        garp_lower_prio_repeat=lower_repeat,
        lower_prio_no_advert=bool(instance.lower_prio_no_advert if instance.lower_prio_no_advert is not None
                                  else g.vrrp_lower_prio_no_advert),
        higher_prio_send_advert=bool(instance.higher_prio_send_advert
                                     if instance.higher_prio_send_advert is not None
                                     else g.vrrp_higher_prio_send_advert),
        skip_check_adv_addr=bool(instance.skip_check_adv_addr if instance.skip_check_adv_addr is not None
                                 else g.vrrp_skip_check_adv_addr),
        dont_track_primary=instance.dont_track_primary,
        accept=_accept_mode(instance, g, priority),
        sync_group=instance.sync_group,
        vmac_ifname=vmac_ifname,
        vmac_xmit_base=xmit_base,
        ipvlan=ipvlan,
        unicast_ttl=instance.unicast_ttl if instance.unicast_peers else None,
        promote_secondaries=instance.promote_secondaries,
        fault_no_peer=instance.unicast_fault_no_peer and not instance.unicast_peers,
        garp_extra_if_s=extra_vmac_interval(instance, g, (*vips, *excluded), vmac_ifname, family, vrid)
        or _extra_if_interval(instance, g, (*vips, *excluded), vmac_ifname or instance.interface),
        garp_extra_if_all=_extra_if_all(instance, g),
        old_unicast_checksum={None: "auto", "never": "never"}.get(instance.old_unicast_checksum, "old"),
        old_checksum_group=g.vrrp_mcast_group4 or VRRP_MCAST_V4,
        # the instance's, else its sync group's, else global_defs' (keepalived 2.2.7)
        notify_priority_changes=next(v for v in (instance.notify_priority_changes, group_notify_priority_changes,
                                                 g.vrrp_notify_priority_changes) if v is not None),
        garp_interval_s=g.vrrp_garp_interval_s,
        gna_interval_s=g.vrrp_gna_interval_s,
    )
    return _strict(settings) if strict else settings


def _strict(s: InstanceSettings) -> InstanceSettings:
    """What strict_mode / vrrp_strict changes at run time in keepalived 2.2.7 (its instance completion).

    No authentication; down_timer_adverts 3; no GARPs after a
    lower priority advert, no advert in answer to one and none to a higher
    priority master (lower_prio_no_advert on, higher_prio_send_advert off);
    accept off unless owner or set on a VRRPv3 instance (the no_accept nftables
    drop, net/accept_filter.py). keepalived logs each reset as a configuration
    error; `-t` reports them (config layer). The starting state (MASTER only
    for the address owner) and preempt_delay 0 are derived for both in
    config/vrrp_defaults.py.
    """
    return replace(s, auth_type=AuthType.NONE, auth_data=b"", down_timer_adverts=3, garp_lower_prio_repeat=0,
                   garp_lower_prio_delay_s=0.0,
                   lower_prio_no_advert=True, higher_prio_send_advert=False,
                   accept=s.accept and (s.owner or s.version == 3))

