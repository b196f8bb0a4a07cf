"""Keywords of the VRRP side: vrrp_instance, vrrp_sync_group, vrrp_script, static addresses...

Ranges and spellings follow keepalived 2.2.7's vrrp_parser.c; keywords that
keepalived 2.4 added are accepted and marked `since="2.4"`.
"""

from __future__ import annotations

from typing import Any

from . import handlers as h
from .addresses import parse_ip_address, parse_route, parse_rule
from .errors import ValueProblem
from .ipvlan_words import handle_use_ipvlan
from .lexer import Segment
from .model import (
    Authentication,
    AuthHmac,
    GarpGroup,
    IpAddressSpec,
    KeepalivedConfig,
    RouteSpec,
    RuleSpec,
    SyncGroup,
    TrackGroup,
    TrackProcess,
    TrackRef,
    UnicastPeer,
    VrrpInstance,
    VrrpScript,
)
from .context import ParseContext
from .registry import Block, FieldHandler, LineHandler, ListHandler, Status
from .values import to_decimal, to_int, to_ip, to_timer
from .vocabulary import VRRP_STATES

NOT_YET = Status.NOT_YET


def _name(ctx: ParseContext, seg: Segment) -> str | None:
    if len(seg.words) < 2:
        ctx.error(seg, f"{seg.words[0]} needs a name")
        return None
    return seg.words[1]


# --------------------------------------------------------------------------- address lists
def _known_track_group(ctx: ParseContext, spec: IpAddressSpec | RouteSpec | RuleSpec, line: Segment,
                       keyword: str) -> None:
    """keepalived: a static entry's track_group must be defined above it; else an error and no group."""
    if spec.track_group is not None and spec.track_group not in ctx.config.track_groups:
        ctx.error(line, f"track_group {spec.track_group} not found", keyword)
        spec.track_group = None


def _address_list(attr: str, what: str, claims_family: bool = False) -> ListHandler:
    """An address block; for an instance's VIPs the first address fixes its family and others are refused."""
    def handler(ctx: ParseContext, obj: Any, seg: Segment, lines: list[Segment]) -> None:
        out: list[IpAddressSpec] = h.field_value(obj, attr)
        for line in lines:
            try:
                spec = parse_ip_address(line)
            except ValueProblem as problem:
                ctx.error(line, f"{what}: {problem} - skipping this address", seg.words[0])
                continue
            if claims_family and isinstance(obj, VrrpInstance) and not claim_family(obj, spec.address.version):
                ctx.error(line, f"({obj.name}) address family must match the instance's: {spec.address.ip}"
                                " - ignoring it", seg.words[0])
                continue
            out.append(spec)
            if attr.startswith("static_"):
                _known_track_group(ctx, spec, line, seg.words[0])

    return FieldHandler(attr, handler)


def _route_list(attr: str) -> ListHandler:
    def handler(ctx: ParseContext, obj: Any, seg: Segment, lines: list[Segment]) -> None:
        out: list[RouteSpec] = h.field_value(obj, attr)
        for line in lines:
            try:
                out.append(parse_route(line))
            except ValueProblem as problem:
                ctx.error(line, f"{seg.words[0]}: {problem} - skipping this route", seg.words[0])
                continue
            if attr.startswith("static_"):
                _known_track_group(ctx, out[-1], line, seg.words[0])

    return FieldHandler(attr, handler)


def _rule_list(attr: str) -> ListHandler:
    def handler(ctx: ParseContext, obj: Any, seg: Segment, lines: list[Segment]) -> None:
        out: list[RuleSpec] = h.field_value(obj, attr)
        for line in lines:
            try:
                out.append(parse_rule(line))
            except ValueProblem as problem:
                ctx.error(line, f"{seg.words[0]}: {problem} - skipping this rule", seg.words[0])
                continue
            if attr.startswith("static_"):
                _known_track_group(ctx, out[-1], line, seg.words[0])

    return FieldHandler(attr, handler)


# --------------------------------------------------------------------------- vrrp_instance
VRRP_INSTANCE = Block("vrrp_instance", VrrpInstance)
AUTHENTICATION = Block("authentication", Authentication)
AUTH_HMAC = Block("auth_hmac", AuthHmac)


def _open_instance(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> VrrpInstance | None:
    name = _name(ctx, seg)
    if name is None:
        return None
    if name in config.vrrp_instances:
        ctx.error(seg, f"vrrp_instance {name} is defined twice (first at {config.vrrp_instances[name].location})")
        return None
    inst = VrrpInstance(name=name, location=seg.location)
    config.vrrp_instances[name] = inst
    return inst


def _instance_close(ctx: ParseContext, inst: VrrpInstance) -> None:
    """keepalived's end-of-block checks, reported at the closing brace."""
    if inst.unicast_ttl is not None and not inst.unicast_peers:
        ctx.error(ctx.close_location or inst.location,
                  f"({inst.name}) cannot use unicast_ttl without unicast peers - resetting", "unicast_ttl")
        inst.unicast_ttl = None


def _state(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    """MASTER or BACKUP, in capitals as keepalived 2.2.7 compares them; BACKUP cannot undo MASTER."""
    word = ctx.arg(seg)
    if word is None:
        return
    state = VRRP_STATES.get(word.lower())
    if state is None or state != word:
        hint = f" (keepalived wants '{state}' in capitals)" if state else ""
        inst.state = "BACKUP"
        raise ValueProblem(f"({inst.name}) unknown state '{word}', defaulting to BACKUP{hint}")
    if state == "BACKUP" and inst.state == "MASTER":
        raise ValueProblem(f"({inst.name}) state previously set as MASTER - ignoring BACKUP")
    inst.state = state


IFNAMSIZ = 16
LOOPBACK = "lo"  # Linux names its loopback lo; keepalived refuses it (ARPHRD_LOOPBACK)


def _interface(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if len(word) >= IFNAMSIZ:
        raise ValueProblem(f"interface name '{word}' too long - ignoring")
    if word == LOOPBACK:
        inst.interface = None
        raise ValueProblem(f"({inst.name}) cannot use a loopback interface ({word}) for vrrp - ignoring")
    inst.interface = word


def _vrf(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if inst.interface is not None:
        raise ValueProblem(f"({inst.name}) cannot specify VRF interface and interface - ignoring")
    inst.vrf = word


def _linkbeat(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    inst.linkbeat_use_polling = True
    raise ValueProblem(f"({inst.name}) 'linkbeat_use_polling' in vrrp instance deprecated - "
                       "use linkbeat_interfaces block")


def claim_family(inst: VrrpInstance, family: int) -> bool:
    """keepalived's rule: the first address given (VIP, peer, source, group) fixes the instance's family."""
    if inst.family is None:
        inst.family = 4 if family == 4 else 6
        return True
    return inst.family == family


def _source_ip(attr: str) -> LineHandler:
    def handler(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        addr = to_ip(word)
        if not claim_family(inst, addr.version):
            raise ValueProblem(f"({inst.name}) src address {word} must be of the instance's family - skipping")
        h.store(inst, attr, addr)

    return FieldHandler(attr, handler)


def _mcast_dst_ip(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    addr = to_ip(word)
    if not claim_family(inst, addr.version):
        raise ValueProblem(f"({inst.name}) mcast dest address {word} must match the instance's family - skipping")
    link_local_mc = addr.version == 6 and addr.is_multicast and addr.packed[1] & 0x0F == 2
    if (addr.version == 4 and not addr.is_multicast) or (addr.version == 6 and not link_local_mc):
        raise ValueProblem(f"({inst.name}) mcast_dst_ip {word} not{' link-local' if addr.version == 6 else ''}"
                           " multicast - skipping")
    inst.mcast_dst_ip = addr


def _native_ipv6(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    if inst.family == 4:
        raise ValueProblem(f"({inst.name}) cannot specify native_ipv6 with IPv4 addresses")
    inst.native_ipv6 = True
    inst.family = 6
    inst.version = 3


def _vrid(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        inst.virtual_router_id = to_int(word, 1, 255)


def _priority(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        inst.priority = to_int(word, 1, 255)


def _advert_int(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    value = to_decimal(word, 0.01, 255.0, 6)
    inst.advert_int_s = value


def _version(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    """2 or 3; keepalived refuses one that contradicts an earlier version, or 2 once the family is IPv6."""
    word = ctx.arg(seg)
    if word is None:
        return
    version = to_int(word, 2, 3)
    if (inst.version and inst.version != version) or (version == 2 and inst.family == 6):
        raise ValueProblem(f"({inst.name}) vrrp_version {version} conflicts with the configured or deduced "
                           f"version {inst.version or 0}; ignoring")
    inst.version = version


def _unicast_peers(ctx: ParseContext, inst: VrrpInstance, seg: Segment, lines: list[Segment]) -> None:
    for line in lines:
        try:
            peer = UnicastPeer(to_ip(line.words[0]), location=line.location)
            if not claim_family(inst, peer.address.version):
                raise ValueProblem(f"peer address {line.words[0]} must be of the instance's family")
            rest = line.words[1:]
            while rest:
                if rest[0] == "min_ttl" and len(rest) > 1:
                    peer.min_ttl = to_int(rest[1], 0, 255)
                    rest = rest[2:]
                elif rest[0] == "max_ttl" and len(rest) > 1:
                    peer.max_ttl = to_int(rest[1], 0, 255)
                    rest = rest[2:]
                else:
                    raise ValueProblem(f"unexpected '{rest[0]}'")
        except ValueProblem as problem:
            ctx.error(line, f"unicast_peer: {problem} - skipping this peer", "unicast_peer")
            continue
        if peer.min_ttl is not None and peer.max_ttl is not None and peer.min_ttl > peer.max_ttl:
            ctx.error(line, f"({inst.name}) min_ttl {peer.min_ttl} > max_ttl {peer.max_ttl} - all packets will be "
                            "discarded", "unicast_peer")
        inst.unicast_peers.append(peer)


def _use_vmac(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    # keepalived: up to two words, an interface name and/or a MAC (the word with a ':'); "" = vrrp.VRID,
    # named once the whole instance is read (virtual_router_id may come later)
    names = [w for w in seg.words[1:3] if ":" not in w]
    inst.use_vmac = names[0] if names else ""
    inst.use_vmac_options = [w for w in seg.words[1:] if w != inst.use_vmac]


def _garp_extra_if(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    rest = list(seg.words[1:])
    if rest and rest[0] == "all":
        inst.garp_extra_if_all = True
        rest = rest[1:]
    if not rest:
        raise ValueProblem("needs an interval in seconds")
    inst.garp_extra_if_s = to_timer(rest[0], 0, 86400)


def _lvs_syncd_interface(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    inst.lvs_sync_daemon_interface = ctx.arg(seg)
    ctx.error(
        seg,
        f"({inst.name}) lvs_sync_daemon_interface in a vrrp_instance is deprecated; "
        "use lvs_sync_daemon in global_defs",
    )


def _notify_deleted(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    inst.notify_deleted_flag = True
    if len(seg.words) > 1:
        inst.notify_deleted = h.parse_script(ctx, seg)


def _timer_expired_backup(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    inst.timer_expired_backup = to_int(seg.words[1], 1, 254) if len(seg.words) > 1 else 0


def _old_unicast_checksum(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    inst.old_unicast_checksum = seg.words[1] if len(seg.words) > 1 else "always"


def _auth_open(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> Authentication:
    inst.authentication = inst.authentication or Authentication(location=seg.location)
    return inst.authentication


def _auth_type(ctx: ParseContext, auth: Authentication, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if word not in ("PASS", "AH"):
        raise ValueProblem(f"unknown authentication type '{word}' (expected PASS or AH, in capitals)")
    auth.auth_type = word


def _auth_pass(ctx: ParseContext, auth: Authentication, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    auth.auth_pass = word[:8]
    if len(word) > 8:  # keepalived 2.2.7 truncates and reports a configuration error
        raise ValueProblem("truncating auth_pass to 8 characters")


def _hmac_open(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> AuthHmac:
    inst.auth_hmac = inst.auth_hmac or AuthHmac(location=seg.location)
    return inst.auth_hmac


def _hmac_key(ctx: ParseContext, auth: AuthHmac, seg: Segment) -> None:
    if len(seg.words) < 3:
        raise ValueProblem("needs a key id and a key")
    auth.keys[to_int(seg.words[1], 0, 255)] = seg.words[2]


AUTHENTICATION.line("auth_type", _auth_type, "PASS or AH")
AUTHENTICATION.line("auth_pass", _auth_pass, "password (first 8 characters)")
AUTH_HMAC.line("key", _hmac_key, "key id and key", since="2.4")
AUTH_HMAC.line("active_key", h.integer("active_key", 0, 255), "key id used to send", since="2.4")
AUTH_HMAC.line("anti_replay", h.text("anti_replay"), "time or monotonic", since="2.4")
AUTH_HMAC.line("time_window", h.integer("time_window", 1, 300), "freshness window (s)", since="2.4")
AUTH_HMAC.line("mode", h.text("mode"), "enforce, permissive or receive-only", since="2.4")

_vi = VRRP_INSTANCE
_vi.line("state", _state, "initial state wanted: MASTER or BACKUP")
_vi.line("interface", FieldHandler("interface", _interface), "interface the instance runs on")
_vi.line("virtual_router_id", _vrid, "VRID, 1-255")
_vi.line("priority", _priority, "priority, 1-255 (255 = address owner)")
_vi.line("advert_int", _advert_int, "advertisement interval (s)")
_vi.line("version", _version, "VRRP version 2 or 3")
_vi.list("virtual_ipaddress", _address_list("virtual_ipaddresses", "virtual_ipaddress", True), "the VIPs")
_vi.list(
    "virtual_ipaddress_excluded",
    _address_list("virtual_ipaddresses_excluded", "virtual_ipaddress_excluded"),
    "VIPs not carried in adverts",
)
_vi.line("no_virtual_ipaddress", h.flag("no_virtual_ipaddress"), "instance without VIPs", since="2.4")
_vi.list("virtual_routes", _route_list("virtual_routes"), "routes added with the VIPs")
_vi.list("virtual_rules", _rule_list("virtual_rules"), "rules added with the VIPs")
_vi.nested("authentication", AUTHENTICATION, _auth_open, "VRRPv2 authentication")
_vi.nested("auth_hmac", AUTH_HMAC, _hmac_open, "HMAC authentication trailer", since="2.4")
_vi.line("unicast_src_ip", _source_ip("unicast_src_ip"), "source address for unicast adverts")
_vi.list("unicast_peer", _unicast_peers, "unicast peers instead of multicast")
_vi.line("unicast_fault_no_peer", h.flag("unicast_fault_no_peer"), "FAULT when no unicast peer")
_vi.line("unicast_ttl", h.integer("unicast_ttl", 1, 255), "TTL of unicast adverts")
_vi.line("check_unicast_src", h.flag("check_unicast_src"), "accept adverts from peers only")
_vi.line("old_unicast_checksum", _old_unicast_checksum, "pre-1.3.6 unicast v3 checksum")
_vi.line("mcast_src_ip", _source_ip("mcast_src_ip"), "source address for multicast adverts")
_vi.line("mcast_dst_ip", FieldHandler("mcast_dst_ip", _mcast_dst_ip), "multicast group other than the default")
_vi.line("track_src_ip", h.flag("track_src_ip"), "FAULT if the source address goes")
_vi.line("use_vmac", _use_vmac, "send from a VRRP virtual MAC interface")
_vi.line("use_vmac_addr", h.flag("use_vmac_addr"), "use the VMAC address")
_vi.line("vmac_xmit_base", h.flag("vmac_xmit_base"), "send adverts on the base interface")
_vi.line("use_ipvlan", FieldHandler("use_ipvlan", handle_use_ipvlan), "ipvlan interface")
_vi.line("native_ipv6", FieldHandler("native_ipv6", _native_ipv6), "force IPv6 (deprecated)", deprecated="an IPv6 VIP")
_vi.line("vrf", FieldHandler("vrf", _vrf), "VRF of the interface")
_vi.line("dont_track_primary", h.flag("dont_track_primary"), "ignore the interface's faults")
_vi.list("track_interface", h.track_list("track_interfaces", -253, 253), "interfaces tracked")
_vi.list("track_script", h.track_list("track_scripts", -253, 253), "vrrp_scripts tracked")
_vi.list("track_file", h.track_list("track_files", -254, 254), "track_files tracked")
_vi.list("track_process", h.track_list("track_processes", -254, 254), "processes tracked")
_vi.list("track_bfd", h.track_list("track_bfds", -253, 253), "BFD sessions tracked")
_vi.line("promote_secondaries", h.flag("promote_secondaries"), "set promote_secondaries")
_vi.line("linkbeat_use_polling", FieldHandler("linkbeat_use_polling", _linkbeat), "poll link state (deprecated)",
         deprecated="linkbeat_interfaces")
_vi.line("accept", h.flag("accept"), "accept packets to the VIPs (accept mode)")
_vi.line("no_accept", h.flag("accept", False), "drop packets to the VIPs when not owner")
_vi.line("skip_check_adv_addr", h.flag("skip_check_adv_addr"), "do not check advert addresses")
_vi.line("strict_mode", h.flag("strict_mode"), "RFC strict mode")
_vi.line("preempt", h.flag("nopreempt", False), "the default (kept for compatibility)")
_vi.line("nopreempt", h.flag("nopreempt"), "do not take over from a lower priority master")
_vi.line("preempt_delay", h.timer("preempt_delay_s", 0, 1000), "delay before preempting (s)")
_vi.line("debug", h.integer("debug", 0, 4), "debug level", status=NOT_YET)
_vi.line("notify_master", h.script("notify_master", once=True), "script run on MASTER")
_vi.line("notify_backup", h.script("notify_backup", once=True), "script run on BACKUP")
_vi.line("notify_fault", h.script("notify_fault", once=True), "script run on FAULT")
_vi.line("notify_stop", h.script("notify_stop", once=True), "script run on STOP")
_vi.line("notify_deleted", _notify_deleted, "script (or flag) for DELETED")
_vi.line("notify", h.script("notify", once=True), "script run on every state change")
_vi.line(
    "notify_master_rx_lower_pri",
    h.script("notify_master_rx_lower_pri", once=True),
    "script run when a master hears a lower priority",
)
_vi.line("smtp_alert", h.flag("smtp_alert"), "send mail on state changes")
_vi.line("notify_priority_changes", h.flag("notify_priority_changes"), "notify priority changes")
_vi.line("lvs_sync_daemon_interface", _lvs_syncd_interface, "deprecated", deprecated="global lvs_sync_daemon")
_vi.line("garp_master_delay", h.timer("garp_master_delay_s", 0, 86400), "second GARP burst delay (s)")
_vi.line("garp_master_refresh", h.timer("garp_master_refresh_s", 0, 86400), "GARP refresh interval (s)")
_vi.line("garp_master_repeat", h.integer("garp_master_repeat", 1, 1000000), "GARPs per burst")
_vi.line(
    "garp_master_refresh_repeat",
    h.integer("garp_master_refresh_repeat", 1, 1000000),
    "GARPs per refresh",
)
_vi.line(
    "garp_lower_prio_delay",
    h.timer("garp_lower_prio_delay_s", 0, 86400),
    "GARP delay after a lower priority advert (s)",
)
_vi.line(
    "garp_lower_prio_repeat",
    h.integer("garp_lower_prio_repeat", 0, 1000000),
    "GARPs after a lower priority advert",
)
_vi.line("down_timer_adverts", h.integer("down_timer_adverts", 1, 100), "adverts before master down")
_vi.line("garp_extra_if", _garp_extra_if, "periodic GARP on other interfaces")
def _vmac_garp_intvl(ctx: ParseContext, inst: VrrpInstance, seg: Segment) -> None:
    ctx.error(seg, 'keyword "vmac_garp_intvl" is deprecated - please use "garp_extra_if"')
    _garp_extra_if(ctx, inst, seg)


_vi.line("vmac_garp_intvl", _vmac_garp_intvl, "old name of garp_extra_if", deprecated="garp_extra_if")
_vi.line("lower_prio_no_advert", h.flag("lower_prio_no_advert"), "no advert on lower priority")
_vi.line("higher_prio_send_advert", h.flag("higher_prio_send_advert"), "advert before yielding")
_vi.line("owner_ignore_adverts", h.flag("owner_ignore_adverts"), "owner ignores adverts", since="2.4")
_vi.line("timer_expired_backup", _timer_expired_backup, "back off after a stall", since="2.4")
_vi.line("thread_timer_expired", _timer_expired_backup, "alias", since="2.4", deprecated="timer_expired_backup")
_vi.line("kernel_rx_buf_size", h.integer("kernel_rx_buf_size", 0, 2**31 - 1), "socket receive buffer")
_vi.line("v3_checksum_as_v2", h.flag("v3_checksum_as_v2"), "v3 IPv4 checksum without pseudo-header", since="2.4")


# --------------------------------------------------------------------------- vrrp_sync_group
VRRP_SYNC_GROUP = Block("vrrp_sync_group", SyncGroup)


def _open_sync_group(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> SyncGroup | None:
    name = _name(ctx, seg)
    if name is None:
        return None
    if name in config.sync_groups:
        ctx.error(seg, f"vrrp_sync_group {name} is defined twice")
        return None
    group = SyncGroup(name=name, location=seg.location)
    config.sync_groups[name] = group
    return group


def _sync_members(ctx: ParseContext, group: SyncGroup, seg: Segment, lines: list[Segment]) -> None:
    if group.members:
        ctx.error(seg, f"group list already specified for sync group {group.name}")
        return
    for line in lines:
        for word in line.words:
            group.members.append(TrackRef(word, location=line.location))


def _global_tracking(ctx: ParseContext, group: SyncGroup, seg: Segment) -> None:
    group.global_tracking = True
    raise ValueProblem(f"({group.name}) global_tracking is deprecated; use track_interface/script/file "
                       "on the sync group")


_sg = VRRP_SYNC_GROUP
_sg.list("group", _sync_members, "the member vrrp_instances")
_sg.list("track_interface", h.track_list("track_interfaces", -253, 253), "interfaces tracked")
_sg.list("track_script", h.track_list("track_scripts", -253, 253), "scripts tracked")
_sg.list("track_file", h.track_list("track_files", -254, 254), "files tracked")
_sg.list("track_process", h.track_list("track_processes", -254, 254), "processes tracked")
_sg.list("track_bfd", h.track_list("track_bfds", -253, 253), "BFD sessions tracked")
_sg.line("notify_master", h.script("notify_master", once=True), "script run on MASTER")
_sg.line("notify_backup", h.script("notify_backup", once=True), "script run on BACKUP")
_sg.line("notify_fault", h.script("notify_fault", once=True), "script run on FAULT")
_sg.line("notify_stop", h.script("notify_stop", once=True), "script run on STOP")
_sg.line("notify", h.script("notify", once=True), "script run on every change")
_sg.line("smtp_alert", h.flag("smtp_alert"), "send mail on state changes")
_sg.line("global_tracking", FieldHandler("global_tracking", _global_tracking), "deprecated",
         deprecated="sync_group_tracking_weight")
_sg.line(
    "sync_group_tracking_weight",
    h.flag("sync_group_tracking_weight"),
    "members' tracker weights count",
)
_sg.line("notify_priority_changes", h.flag("notify_priority_changes"), "notify priority changes")


# --------------------------------------------------------------------------- vrrp_script
VRRP_SCRIPT = Block("vrrp_script", VrrpScript)


def _open_script(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> VrrpScript | None:
    name = _name(ctx, seg)
    if name is None:
        return None
    scr = VrrpScript(name=name, location=seg.location)
    if name in config.vrrp_scripts:  # keepalived keeps both and finds the first by name
        ctx.warn(seg, f"vrrp_script {name} is defined twice; the first one is used")
        return scr
    config.vrrp_scripts[name] = scr
    return scr


def _script_weight(ctx: ParseContext, scr: VrrpScript, seg: Segment) -> None:
    """`weight N [reverse]`: keepalived 2.2.7 knows no `noreverse` here."""
    if len(seg.words) > 2 and seg.words[2] != "reverse":
        raise ValueProblem(f"vrrp_script {scr.name} unknown weight option {seg.words[2]}")
    weight, reverse = h.weight_words(ctx, seg, 0, -253, 253)
    if weight is not None:
        scr.weight, scr.weight_reverse = weight, reverse


def _script_seconds(attr: str) -> LineHandler:
    """interval / timeout: whole seconds up to 4294 (2^32 microseconds); 0 is refused and taken as 1."""
    def handler(ctx: ParseContext, scr: VrrpScript, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        value = to_int(word, 0, (2**32 - 1) // 1_000_000)
        h.store(scr, attr, float(max(value, 1)))
        if value == 0:
            raise ValueProblem(f"({scr.name}) vrrp script {seg.words[0]} must be greater than 0, setting to 1")

    return FieldHandler(attr, handler)


def _script_user(ctx: ParseContext, scr: VrrpScript, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        scr.user = word
        scr.group = seg.words[2] if len(seg.words) > 2 else None


def _script_close(ctx: ParseContext, scr: VrrpScript) -> None:
    if scr.script is None:
        ctx.error(ctx.close_location or scr.location, f"vrrp_script {scr.name} has no script - removing it",
                  "vrrp_script")
        ctx.config.vrrp_scripts.pop(scr.name, None)


_vs = VRRP_SCRIPT
_vs.line("script", h.script("script"), "the command to run")
_vs.line("interval", _script_seconds("interval_s"), "seconds between runs")
_vs.line("timeout", _script_seconds("timeout_s"), "seconds before the run fails")
_vs.line("weight", _script_weight, "priority change, -253..253 [reverse]")
_vs.line("rise", h.integer("rise", 1, 2**31 - 1), "successes before OK")
_vs.line("fall", h.integer("fall", 1, 2**31 - 1), "failures before KO")
_vs.line("user", _script_user, "user [group] to run as")
_vs.line("init_fail", h.flag("init_fail"), "start in the failed state")


# --------------------------------------------------------------------------- vrrp_track_process
VRRP_TRACK_PROCESS = Block("vrrp_track_process", TrackProcess)


def _open_tprocess(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> TrackProcess | None:
    name = _name(ctx, seg)
    if name is None:
        return None
    tp = TrackProcess(name=name, location=seg.location)
    config.track_processes[name] = tp
    return tp


def _tp_weight(ctx: ParseContext, tp: TrackProcess, seg: Segment) -> None:
    if tp.weight:
        raise ValueProblem(f"weight already set for track process {tp.name} - ignoring")
    weight, reverse = h.weight_words(ctx, seg, 0, -254, 254)
    if weight is not None:
        tp.weight, tp.weight_reverse = weight, reverse


def _tp_param_match(ctx: ParseContext, tp: TrackProcess, seg: Segment) -> None:
    """keepalived: no word means exact; `initial` or `partial`; anything else is an error and ignored."""
    word = seg.words[1] if len(seg.words) > 1 else "exact"
    if word not in ("exact", "initial", "partial") or (word == "exact" and len(seg.words) > 1):
        ctx.error(seg.location, f"Invalid param_match type {word} - ignoring", "param_match")
        return
    tp.param_match = word


def _tp_quorum_max(ctx: ParseContext, tp: TrackProcess, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    value = to_int(word, 0, 65535)
    if (value or tp.quorum > 1) and value < tp.quorum:  # keepalived 2.2.7: 0 is allowed while quorum is the default
        raise ValueProblem("quorum_max is less than quorum - ignoring")
    tp.quorum_max = value
    if value and not tp.quorum:
        tp.quorum = 1


def _tp_quorum(ctx: ParseContext, tp: TrackProcess, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    value = to_int(word, 1, 65535)
    if tp.quorum_max is not None and value > tp.quorum_max:
        raise ValueProblem("quorum is greater than quorum_max - ignoring")
    tp.quorum = value


def _tp_close(ctx: ParseContext, tp: TrackProcess) -> None:
    if not tp.process:
        ctx.error(ctx.close_location or tp.location, f"vrrp_track_process {tp.name} has no process - removing it",
                  "vrrp_track_process")
        ctx.config.track_processes.pop(tp.name, None)


def _tp_process(ctx: ParseContext, tp: TrackProcess, seg: Segment) -> None:
    if ctx.arg(seg) is None:
        return
    if tp.process:
        raise ValueProblem(f"process already set for track process {tp.name} - ignoring {seg.words[1]}")
    tp.process = list(seg.words[1:])


_tp = VRRP_TRACK_PROCESS
_tp.line("process", FieldHandler("process", _tp_process), "process name [arguments]")
_tp.line("param_match", FieldHandler("param_match", _tp_param_match), "initial or partial (none: exact)")
_tp.line("weight", _tp_weight, "priority change, -254..254 [reverse]")
_tp.line("quorum", FieldHandler("quorum", _tp_quorum), "processes needed")
_tp.line("quorum_max", FieldHandler("quorum_max", _tp_quorum_max), "most processes allowed")
_tp.line("delay", h.timer("delay_s", 0, 2147), "delay before acting (s)")
_tp.line("terminate_delay", h.timer("terminate_delay_s", 0, 2147), "delay after termination (s)")
_tp.line("fork_delay", h.timer("fork_delay_s", 0, 2147), "delay after fork (s)")
_tp.line("full_command", h.flag("full_command"), "match the full command line")


# --------------------------------------------------------------------------- other roots
GARP_GROUP = Block("garp_group", GarpGroup)
TRACK_GROUP = Block("track_group", TrackGroup)


def _open_garp_group(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> GarpGroup:
    group = GarpGroup(location=seg.location)
    config.garp_groups.append(group)
    return group


def _garp_claim(ctx: ParseContext, group: GarpGroup, name: str, seg: Segment) -> None:
    """An interface belongs to one garp_group; a second claim is an error (keepalived ignores it)."""
    if any(name in other.interfaces for other in ctx.config.garp_groups):
        ctx.error(seg, f"garp_group already specified for {name} - ignoring", "garp_group")
        return
    group.interfaces.append(name)
    group.interface_locations.setdefault(name, seg.location)


def _garp_interface(ctx: ParseContext, group: GarpGroup, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        _garp_claim(ctx, group, word, seg)


def _garp_interfaces(ctx: ParseContext, group: GarpGroup, seg: Segment, lines: list[Segment]) -> None:
    for line in lines:
        for word in line.words:
            _garp_claim(ctx, group, word, line)


GARP_GROUP.line("garp_interval", h.timer("garp_interval_s", 0, (2**31 - 1) / 1e6), "pause between GARPs (s)")
GARP_GROUP.line("gna_interval", h.timer("gna_interval_s", 0, (2**31 - 1) / 1e6), "pause between NAs (s)")
GARP_GROUP.line("interface", _garp_interface, "an interface of the group")
GARP_GROUP.list("interfaces", _garp_interfaces, "interfaces of the group")


def _open_track_group(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> TrackGroup | None:
    name = _name(ctx, seg)
    if name is None:
        return None
    group = TrackGroup(name=name, location=seg.location)
    config.track_groups[name] = group
    return group


def _track_group_members(ctx: ParseContext, group: TrackGroup, seg: Segment, lines: list[Segment]) -> None:
    for line in lines:
        group.instances.extend(line.words)


TRACK_GROUP.list("group", _track_group_members, "vrrp_instances the static items follow")


def _linkbeat_interfaces(ctx: ParseContext, config: KeepalivedConfig, seg: Segment, lines: list[Segment]) -> None:
    """`NAME [MII|ETHTOOL|IOCTL]` per line (keepalived's words, in capitals)."""
    for line in lines:
        if len(line.words) > 1 and (line.words[1] not in ("MII", "ETHTOOL", "IOCTL") or len(line.words) > 2):
            ctx.error(line, f"extra characters {line.words[1]} in linkbeat interface", "linkbeat_interfaces")
        config.linkbeat_interfaces.append(list(line.words))
        config.linkbeat_locations.setdefault(line.words[0], line.location)


def _up_down_delays(ctx: ParseContext, config: KeepalivedConfig, seg: Segment, lines: list[Segment]) -> None:
    """`IFNAME DOWN_DELAY [UP_DELAY]` per line, seconds 0..255 (keepalived 2.2.7: a bad value is an error that
    drops the line, missing or extra values are only logged)."""
    for line in lines:
        config.interface_up_down_delays.append(list(line.words))
        name = line.words[0]
        config.up_down_locations.setdefault(name, line.location)
        if len(line.words) < 2:
            ctx.warn(line, f"No timeouts specified for {name} up/down delays", "interface_up_down_delays")
            continue
        if len(line.words) > 3:
            ctx.warn(line, f"Too many parameters for {name} up/down delays", "interface_up_down_delays")
        delays: list[float] = []
        for word, which in zip(line.words[1:3], ("down", "up")):
            try:
                delays.append(to_timer(word, 0, 255))
            except ValueProblem as exc:  # read_timer's error, then the line is dropped
                ctx.error(line, f"Invalid {which} delay {word} for {name}: {exc}", "interface_up_down_delays")
                break
        else:
            config.up_down_delays[name] = (delays[0], delays[1] if len(delays) > 1 else 0.0)


def _garp_group_close(ctx: ParseContext, group: GarpGroup) -> None:
    if group.garp_interval_s is None and group.gna_interval_s is None:
        ctx.error(ctx.close_location or group.location, "garp group does not have any delay set - removing",
                  "garp_group")


def register(root: Block) -> None:
    """Add the VRRP side's root keywords to `root`."""
    root.list("static_ipaddress", _address_list("static_ipaddresses", "static_ipaddress"), "addresses set at start")
    root.list("static_routes", _route_list("static_routes"), "routes set at start")
    root.list("static_rules", _rule_list("static_rules"), "rules set at start")
    root.nested("track_group", TRACK_GROUP, _open_track_group, "static items following instances")
    root.list("linkbeat_interfaces", FieldHandler("linkbeat_interfaces", _linkbeat_interfaces),
              "interfaces polled for link")
    root.list("interface_up_down_delays", FieldHandler("interface_up_down_delays", _up_down_delays),
              "debounce interface changes")
    root.nested("garp_group", GARP_GROUP, _open_garp_group, "GARP pacing per interface group",
                on_close=_garp_group_close)
    root.nested("vrrp_sync_group", VRRP_SYNC_GROUP, _open_sync_group, "instances that change state together")
    root.nested("vrrp_instance", VRRP_INSTANCE, _open_instance, "a VRRP instance", on_close=_instance_close)
    root.nested("vrrp_script", VRRP_SCRIPT, _open_script, "a script tracked by instances", on_close=_script_close)
    root.nested(
        "vrrp_track_process",
        VRRP_TRACK_PROCESS,
        _open_tprocess,
        "a process tracked by instances",
        on_close=_tp_close,
    )

