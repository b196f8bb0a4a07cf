"""keepalived 2.2.7's completion rules for one vrrp_instance and its sync groups, as `-t` verdicts.

keepalived completes each instance after the whole file is read
(vrrp_complete_instance) and reports, without a line number, every setting it
drops or adjusts: strict mode's demands (vrrp_strict or strict_mode), the
authentication a version cannot carry, unicast keywords without peers, advert
intervals its packet cannot hold, VMAC options that need a VMAC, an instance
tracking its own interface. Each of those is a configuration error there (its
`-t` fails), so each is an error here; the message says what keepalived does
with the setting. `config/complete.py` calls `instance_rules` once per
instance, after the defaults are derived, and `sync_group_rules` after the
groups are built.

Pure: the interface's MTU is taken as Ethernet's 1500, the size keepalived
assumes for an interface it cannot see.
"""

from __future__ import annotations

import ipaddress

from .context import ParseContext
from .errors import Location
from .model import GlobalDefs, KeepalivedConfig, VrrpInstance
from .ipvlan_words import ipvlan_rules
from .vmac_addr_checks import address_vmac_rules
from .vrrp_defaults import OWNER_PRIORITY, InstanceDefaults

DEFAULT_MTU = 1500
MAX_VIPS = 255  # the advert's address count is one byte
DEFAULT_DOWN_TIMER_ADVERTS = 3
_UNICAST_KEYWORDS = ("unicast_src_ip", "unicast_peer", "unicast_fault_no_peer", "check_unicast_src",
                     "old_unicast_checksum")


def is_strict(inst: VrrpInstance, g: GlobalDefs) -> bool:
    """strict_mode on the instance, else global vrrp_strict."""
    return inst.strict_mode if inst.strict_mode is not None else g.vrrp_strict


def keepalived_version(inst: VrrpInstance, g: GlobalDefs, family: int) -> int:
    """The version keepalived runs: as configured (IPv6 with `version 2` stays 2 unless strict), else the default."""
    if family == 6 and (inst.version is None or is_strict(inst, g)):
        return 3
    return inst.version or g.vrrp_version


def max_vips(family: int, version: int, auth_type: str | None) -> int:
    """How many VIPs fit in one advert on a 1500-byte link (keepalived moves the rest to excluded VIPs)."""
    if family == 6:
        header = 14 + 40 + 8
        per = 16
    else:
        header = 14 + 20 + 8 + (8 if version == 2 else 0) + (24 if version == 2 and auth_type == "AH" else 0)
        per = 4
    return min(MAX_VIPS, (DEFAULT_MTU - header) // per)


class _Report:
    def __init__(self, ctx: ParseContext, inst: VrrpInstance) -> None:
        self.ctx = ctx
        self.inst = inst

    def error(self, keyword: str, message: str, test_only: bool = False) -> None:
        where: Location | None = self.inst.keyword_locations.get(keyword, self.inst.location)
        self.ctx.error(where, f"({self.inst.name}) {message}", keyword, test_only=test_only)

    def reset(self, keyword: str, message: str) -> None:
        """A setting strict mode changes: -t fails as keepalived's; the daemon runs with the change
        (vrrp/settings.py and config/vrrp_defaults.py apply the same ones), as keepalived's does."""
        self.error(keyword, message, test_only=True)


def instance_rules(ctx: ParseContext, inst: VrrpInstance, g: GlobalDefs, derived: InstanceDefaults) -> None:
    """Every rule of vrrp_complete_instance that -t reports, in keepalived's order."""
    say = _Report(ctx, inst)
    strict = is_strict(inst, g)
    family = derived.family
    version = keepalived_version(inst, g, family)
    unicast = bool(inst.unicast_peers)
    owner = derived.priority == OWNER_PRIORITY
    if family == 6 and inst.version == 2 and strict:
        say.error("version", "cannot use IPv6 with VRRP version 2; setting version 3")
    if strict and inst.state is not None and (inst.state == "MASTER") != owner:
        say.reset("state", "state MASTER must match being address owner (strict mode)")
    _auth_rules(say, strict, version, family)
    # (2.2.7 means to refuse unicast peers in strict mode, but tests its unicast flag before setting it)
    if not unicast and any(k in inst.keyword_locations for k in _UNICAST_KEYWORDS) and not inst.unicast_fault_no_peer:
        say.error("unicast_peer", "a unicast keyword has been specified without any unicast peers; defaulting to "
                                  "multicast (deprecated: keepalived 2.2.7 reports it as an error)")
    if family == 6 and not unicast and inst.virtual_ipaddresses and strict:
        first = inst.virtual_ipaddresses[0].address.ip
        if not (isinstance(first, ipaddress.IPv6Address) and first.is_link_local):
            say.error("virtual_ipaddress", "the first IPv6 VIP address must be link local (strict mode)")
    if inst.vrf is not None and (inst.interface is not None or not unicast):
        say.error("vrf", "vrf can only be specified with unicast and without interface - clearing")
    auth_type = inst.authentication.auth_type if inst.authentication else None
    limit = max_vips(family, version, auth_type)
    if len(inst.virtual_ipaddresses) > limit:
        say.error("virtual_ipaddress", f"number of VIPs ({len(inst.virtual_ipaddresses)}) exceeds the space in an "
                                       f"advert (max {limit} addresses) - excess moved to excluded VIPs")
    if strict and inst.preempt_delay_s and not (owner or derived.state == "MASTER"):
        say.reset("preempt_delay", "preempt_delay is incompatible with strict mode - resetting")
    if strict and inst.down_timer_adverts is not None and inst.down_timer_adverts != DEFAULT_DOWN_TIMER_ADVERTS:
        say.reset("down_timer_adverts", "down_timer_adverts is incompatible with strict mode - resetting")
    if inst.accept is True and not owner and strict and version == 2:
        say.reset("accept", "accept mode for VRRP version 2 does not comply with RFC3768 - resetting")
    if unicast and inst.mcast_dst_ip is not None:
        say.error("mcast_dst_ip", "multicast destination specified with unicast - ignoring")
    if strict:
        if inst.garp_lower_prio_repeat:
            say.reset("garp_lower_prio_repeat", "strict mode requires no repeat garps - resetting")
        if inst.garp_lower_prio_delay_s:
            say.reset("garp_lower_prio_delay", "strict mode requires no repeat garp delay - resetting")
        if inst.lower_prio_no_advert is False:
            say.reset("lower_prio_no_advert", "strict mode requires lower_prio_no_advert - setting it")
        if inst.higher_prio_send_advert is True:
            say.reset("higher_prio_send_advert", "strict mode requires higher_prio_send_advert to be clear - resetting")
    _advert_int_rules(say, version)
    vmac = inst.use_vmac is not None
    if vmac and strict and inst.vmac_xmit_base:
        say.reset("vmac_xmit_base", "vmac_xmit_base is incompatible with strict mode - resetting")
    if inst.promote_secondaries and (vmac or inst.use_ipvlan is not None):
        say.error("promote_secondaries", "promote_secondaries is automatically set for vmacs - ignoring")
    if inst.interface is not None:
        kept = []
        for ref in inst.track_interfaces:
            if ref.name == inst.interface:
                ctx.error(ref.location, f"({inst.name}) ignoring track_interface {ref.name} since it is the "
                                        "instance's own interface", "track_interface")
            else:
                kept.append(ref)
        inst.track_interfaces = kept
    if inst.vmac_xmit_base and not vmac:
        say.error("vmac_xmit_base", "vmac_xmit_base is only valid with a vmac")
    ipvlan_rules(ctx, inst, family)  # use_ipvlan (the VRRP interface helper's)
    address_vmac_rules(ctx, inst, family)  # a VIP's own use_vmac (the VRRP interface helper's)


def _auth_rules(say: _Report, strict: bool, version: int, family: int) -> None:
    auth = say.inst.authentication
    if auth is None or auth.auth_type is None:
        return
    if strict:
        say.reset("authentication", "strict mode does not support authentication - ignoring it")
    elif version == 3:
        say.error("authentication", "VRRP version 3 does not support authentication - ignoring it")
    elif not auth.auth_pass:
        say.error("authentication", "authentication specified but no password given - ignoring it")
    elif family == 6 and auth.auth_type == "AH":
        say.error("authentication", "cannot use AH authentication with IPv6 - ignoring it")


def _advert_int_rules(say: _Report, version: int) -> None:
    micro = round(say.inst.advert_int_s * 1_000_000)
    if version == 2:
        if micro >= 256 * 1_000_000:
            say.error("advert_int", f"VRRPv2 advertisement interval {say.inst.advert_int_s:g}s is out of range "
                                    "(must be less than 256 s) - using 255 s")
        elif micro % 1_000_000:
            say.error("advert_int", f"VRRPv2 advertisement interval {say.inst.advert_int_s:g}s must be an integer "
                                    "- rounding")
    elif micro >= 4096 * 10_000:
        say.error("advert_int", f"VRRPv3 advertisement interval {say.inst.advert_int_s:g}s is out of range "
                                "(must be less than 40.96 s) - using 40.95 s")
    elif micro % 10_000:
        say.error("advert_int", f"VRRPv3 advertisement interval {say.inst.advert_int_s:g}s must be in units of "
                                "10 ms - rounding")


def sync_group_rules(ctx: ParseContext, cfg: KeepalivedConfig) -> None:
    """An interface a sync group tracks must not be tracked by a member too (its own one included)."""
    for group in cfg.sync_groups.values():
        for ref in group.track_interfaces:
            for member in group.members:
                inst = cfg.vrrp_instances.get(member.name)
                if inst is None:
                    continue
                own = ref.name == inst.interface and not inst.dont_track_primary
                if own or any(t.name == ref.name for t in inst.track_interfaces):
                    ctx.error(ref.location, f"({inst.name}) track_interface {ref.name} is configured on the VRRP "
                                            "instance and the sync group; remove one", "track_interface")


def sync_weight_rules(ctx: ParseContext, cfg: KeepalivedConfig) -> None:
    """Weighted trackers where keepalived ignores weights: sync group members and address owners.

    A member of a sync group without sync_group_tracking_weight (or its old
    name global_tracking), and an instance at priority 255, cannot change
    priority: keepalived 2.2.7 reports each tracker with a non-zero weight
    (a track_file's default weight 1 included) and drops or zeroes it.
    """
    for inst in cfg.vrrp_instances.values():
        group = cfg.sync_groups.get(inst.sync_group) if inst.sync_group else None
        unweighted_group = group is not None and not (group.sync_group_tracking_weight or group.global_tracking)
        if not unweighted_group and inst.priority != OWNER_PRIORITY:
            continue
        why = "SYNC group" if unweighted_group else "address owner"
        say = _Report(ctx, inst)
        for ref in inst.track_interfaces:
            if ref.weight:
                say.error("track_interface", f"ignoring weight of tracked interface {ref.name} due to {why}")
        for ref in inst.track_scripts:
            scr = cfg.vrrp_scripts.get(ref.name)
            if (ref.weight if ref.weight is not None else (scr.weight if scr else 0)):
                say.error("track_script", f"ignoring tracked script {ref.name} with weights due to {why}")
        for ref in inst.track_files:
            tf = cfg.track_files.get(ref.name)
            if (ref.weight if ref.weight is not None else (tf.weight if tf else 0)):
                say.error("track_file", f"ignoring weight from tracked file {ref.name} due to {why}; "
                                        "specify weight 0")
        for ref in inst.track_bfds:
            bfd = cfg.bfd_instances.get(ref.name)
            if (ref.weight if ref.weight is not None else (bfd.weight if bfd else 0)):
                say.error("track_bfd", f"ignoring tracked bfd {ref.name} with weight due to {why}")
