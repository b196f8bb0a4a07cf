"""After parsing: keepalived's defaults, cross-references and the checks it reports as errors.

keepalived completes each object once its block is read (vrrp_complete_instance,
check_data.c) and reports what does not hold together. We do the same in one
pass over the finished model. Checks that need the host (does this interface
exist, is this script executable) ask a `HostFacts`; without one they are
skipped, so the core stays free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .process_checks import check_cpu_affinity
from .script_rules import ScriptFiles, Status, describe, vet_config, violation_message
from .errors import Diagnostic, Location, Severity
from .checker_timing import complete_timing
from .context import ParseContext
from .model import (CHECKER_NOTRACK_MARK, DEFAULT_INTERFACE, CheckerBase, GlobalDefs, HttpCheck, KeepalivedConfig,
                    RealServer, RouteSpec, RuleSpec, VirtualServer, VirtualServerGroupEntry, VrrpInstance)
from .bgp_checks import bgp_rules
from .vrrp_checks import instance_rules, sync_group_rules, sync_weight_rules
from .vrrp_defaults import instance_defaults
RULE_DEFAULT_PREFERENCE = 16384


class HostFacts(ScriptFiles, Protocol):
    """What the checks need to know about the machine the config is for (script files included)."""

    def interface_exists(self, name: str) -> bool: ...

    def user_exists(self, name: str) -> bool: ...


@dataclass
class _Checker:
    ctx: ParseContext
    host: HostFacts | None

    @property
    def config(self) -> KeepalivedConfig:
        return self.ctx.config

    def error(self, loc: Location | None, message: str, keyword: str | None = None) -> None:
        self.ctx.error(loc, message, keyword)

    def iface_missing(self, name: str | None) -> bool:
        if self.config.global_defs.dynamic_interfaces:  # keepalived 2.2.7: waits for it (vrrp/link_feed.py)
            return False
        return bool(name) and self.host is not None and not self.host.interface_exists(str(name))


def complete(ctx: ParseContext, host: HostFacts | None) -> None:
    """Apply defaults and report inconsistencies, in keepalived's order."""
    chk = _Checker(ctx, host)
    check_cpu_affinity(ctx, host)  # process_checks.py
    _static_items(chk)
    for inst in ctx.config.vrrp_instances.values():
        _instance(chk, inst)
    _duplicate_vrids(chk)
    _sync_groups(chk)
    sync_group_rules(ctx, ctx.config)
    sync_weight_rules(ctx, ctx.config)
    _garp_groups(chk)
    _linkbeat(chk)
    _scripts(chk)
    for vs in ctx.config.virtual_servers:
        _virtual_server(chk, vs)
    bgp_rules(ctx)  # ours: pykeepalived_bgp (bgp_checks.py)


def _static_items(chk: _Checker) -> None:
    cfg = chk.config
    for addr in cfg.static_ipaddresses:
        if chk.iface_missing(addr.device):
            chk.error(addr.location, f"interface {addr.device} for static address {addr.address} doesn't exist",
                      "static_ipaddress")
        elif addr.device is None and chk.iface_missing(cfg.global_defs.default_interface or DEFAULT_INTERFACE):
            chk.error(addr.location, f"Static address {addr.address} requires either an interface or default "
                      "interface must exist", "static_ipaddress")
    for route in cfg.static_routes:
        if route.track_group is not None and route.track_group not in cfg.track_groups:
            chk.error(route.location, f"track_group {route.track_group} not found", "static_routes")
        _route_checks(chk, route, tracked=True, block="static_routes")  # keepalived tracks every static route
    for rule in cfg.static_rules:
        _rule_checks(chk, rule, "static_rules")


def _route_checks(chk: _Checker, route: RouteSpec, tracked: bool, block: str) -> None:
    if "deprecated_or" in route.attributes:
        chk.error(route.location, f"{block}: 'or' is deprecated in routes; use 'nexthop'", block)
    if "deprecated_gw" in route.attributes:
        chk.error(route.location, f"{block}: 'gw' is deprecated in routes; use 'via'", block)
    devices = [route.device] + [nh.device for nh in route.nexthops]
    for dev in devices:
        if chk.iface_missing(dev):
            chk.error(route.location, f"{block}: interface {dev} for route {route.destination} doesn't exist", block)
    if tracked and not route.no_track and route.device is None:  # nexthop devices do not count (2.2.7)
        chk.error(route.location, f"{block}: cannot track route {route.destination} with no interface "
                                  "(add 'dev IF' or 'no_track')", block)


def _rule_checks(chk: _Checker, rule: RuleSpec, block: str) -> None:
    if rule.action == "table" and rule.table is None and not {"goto", "l3mdev"} & rule.attributes.keys():
        chk.error(rule.location, f"{block}: no action specified for rule (table, goto, nop, blackhole, ...) "
                                 "- ignoring it", block)
        return
    if rule.preference is None:
        chk.error(
            rule.location,
            f"{block}: rule has no preference; keepalived would pick one "
            "(add 'preference N')",
            block,
        )


def _instance(chk: _Checker, inst: VrrpInstance) -> None:
    cfg = chk.config
    g = cfg.global_defs
    loc = inst.location
    where = inst.keyword_locations
    # priority, state, preemption, family and version, as vrrp_complete_instance derives them (vrrp_defaults.py)
    derived = instance_defaults(inst, g)
    instance_rules(chk.ctx, inst, g, derived)  # keepalived 2.2.7's completion rules (config/vrrp_checks.py)
    # keepalived 2.2.7 reports each preemption setting it clears as a configuration error (-t fails)
    if inst.nopreempt and derived.owner:
        chk.error(where.get("nopreempt", loc), f"({inst.name}) nopreempt is incompatible with priority 255",
                  "nopreempt")
    elif inst.nopreempt and derived.state == "MASTER":
        chk.error(where.get("nopreempt", loc),
                  f"({inst.name}) nopreempt has no effect with initial state MASTER - clearing it", "nopreempt")
    if inst.preempt_delay_s and (derived.owner or derived.state == "MASTER"):
        chk.error(where.get("preempt_delay", loc),
                  f"({inst.name}) preempt_delay has no effect with initial state MASTER - clearing it",
                  "preempt_delay")
    elif inst.preempt_delay_s and inst.nopreempt:
        chk.error(where.get("preempt_delay", loc),
                  f"({inst.name}) preempt_delay is incompatible with nopreempt - clearing it", "preempt_delay")
    inst.priority, inst.state = derived.priority, derived.state
    inst.nopreempt, inst.preempt_delay_s = derived.nopreempt, derived.preempt_delay_s
    if inst.interface is None:  # keepalived 2.2.7 checks this before it knows about unicast peers
        chk.error(where.get("interface", loc), f"({inst.name}) unknown interface (none usable is configured)",
                  "interface")
    elif chk.iface_missing(inst.interface):
        chk.error(
            where.get("interface", loc),
            f"interface {inst.interface} for vrrp_instance {inst.name} doesn't exist",
            "interface",
        )
    if inst.virtual_router_id is None:
        chk.error(loc, f"({inst.name}) the virtual router id must be set", "virtual_router_id")
    # VIPs of another family than the instance's (the first VIP's) are dropped
    kept = []
    for vip in inst.virtual_ipaddresses:
        if vip.address.version != derived.family:
            chk.error(vip.location, f"({inst.name}) address family must match the instance's: {vip.address.ip}"
                      " - ignoring it", "virtual_ipaddress")
        else:
            kept.append(vip)
    inst.virtual_ipaddresses = kept
    inst.family, inst.version = derived.family, derived.version
    if not inst.virtual_ipaddresses and not inst.no_virtual_ipaddress:
        chk.error(loc, f"({inst.name}) no VIP specified; at least one is needed", "virtual_ipaddress")
    if derived.ah_master_refused:
        chk.error(loc, f"({inst.name}) initial state MASTER is incompatible with AH authentication", "authentication")
    for vip in [*inst.virtual_ipaddresses, *inst.virtual_ipaddresses_excluded]:
        if chk.iface_missing(vip.device):
            chk.error(vip.location, f"interface {vip.device} for ip address {vip.address.ip} doesn't exist",
                      "virtual_ipaddress")
    for ref in inst.track_interfaces:
        if chk.iface_missing(ref.name):
            chk.error(ref.location, f"({inst.name}) tracked interface {ref.name} doesn't exist", "track_interface")
    _refs(chk, inst.name, inst.track_scripts, cfg.vrrp_scripts, "track script")
    _refs(chk, inst.name, inst.track_files, cfg.track_files, "track file")
    _refs(chk, inst.name, inst.track_processes, cfg.track_processes, "track process")
    _refs(chk, inst.name, inst.track_bfds, cfg.bfd_instances, "track bfd")
    for route in inst.virtual_routes:
        _route_checks(chk, route, tracked=True, block="virtual_routes")
    for rule in inst.virtual_rules:
        _rule_checks(chk, rule, "virtual_rules")


def _refs(chk: _Checker, owner: str, refs: list, known: dict, what: str) -> None:  # type: ignore[type-arg]
    kept = []
    for ref in refs:
        if ref.name not in known:
            chk.error(ref.location, f"({owner}) {what} {ref.name} not found, ignoring", what.replace(" ", "_"))
        else:
            kept.append(ref)
    refs[:] = kept


def _vrid_clash(a: VrrpInstance, b: VrrpInstance, g: GlobalDefs) -> bool:
    """keepalived's check_vrid_conflicts: multicast on one interface and group; unicast sharing a peer."""
    if a.family != b.family or a.virtual_router_id != b.virtual_router_id:
        return False
    if bool(a.unicast_peers) != bool(b.unicast_peers):
        return False
    if a.unicast_peers:
        if a.interface and b.interface and a.interface != b.interface:
            return False
        if a.unicast_src_ip and b.unicast_src_ip and a.unicast_src_ip != b.unicast_src_ip:
            return False
        return bool({p.address for p in a.unicast_peers} & {p.address for p in b.unicast_peers})

    def group(inst: VrrpInstance) -> object:
        return inst.mcast_dst_ip or (g.vrrp_mcast_group6 if inst.family == 6 else g.vrrp_mcast_group4)

    return a.interface == b.interface and group(a) == group(b)


def _duplicate_vrids(chk: _Checker) -> None:
    done: list[VrrpInstance] = []
    g = chk.config.global_defs
    for inst in chk.config.vrrp_instances.values():
        if inst.virtual_router_id is None or inst.interface is None:
            continue
        other = next((o for o in done if _vrid_clash(o, inst, g)), None)
        if other is not None:
            chk.error(
                inst.location,
                f"{other.name} and {inst.name} both use VRID {inst.virtual_router_id} "
                f"with IPv{inst.family} on interface {inst.interface} and the same "
                f"{'unicast peer' if inst.unicast_peers else 'multicast group'}",
                "virtual_router_id",
            )
        else:
            done.append(inst)


def _sync_groups(chk: _Checker) -> None:
    cfg = chk.config
    for name in list(cfg.sync_groups):
        group = cfg.sync_groups[name]
        kept = []
        for ref in group.members:
            inst = cfg.vrrp_instances.get(ref.name)
            if inst is None:
                chk.error(ref.location, f"virtual router {ref.name} in sync group {name} doesn't exist - ignoring",
                          "group")
            elif inst.sync_group is not None:  # keepalived: also when listed twice in one group
                chk.error(ref.location, f"virtual router {ref.name} cannot exist in more than one sync group "
                                        f"(already in {inst.sync_group}); ignoring {name}", "group")
            else:
                inst.sync_group = name
                kept.append(ref)
        group.members = kept
        if not kept:
            chk.error(group.location, f"sync group {name} has no virtual router(s) - removing it", "vrrp_sync_group")
            del cfg.sync_groups[name]
        elif len(kept) == 1:
            chk.error(group.location,
                      f"sync group {name} has only 1 virtual router - this probably isn't what you want",
                      "vrrp_sync_group")


def _linkbeat(chk: _Checker) -> None:
    for words in chk.config.linkbeat_interfaces:
        if chk.iface_missing(words[0]):  # CONFIG_FATAL in keepalived (exit status 4)
            chk.error(chk.config.linkbeat_locations.get(words[0]),
                      f"unknown interface {words[0]} specified for linkbeat interface", "linkbeat_interfaces")
    for name, location in chk.config.up_down_locations.items():
        if chk.iface_missing(name):  # CONFIG_FATAL too
            chk.error(location, f"unknown interface {name} specified for up/down delay", "interface_up_down_delays")


def _garp_groups(chk: _Checker) -> None:
    for group in chk.config.garp_groups:
        for name in group.interfaces:
            if chk.iface_missing(name):
                chk.error(group.interface_locations.get(name, group.location),
                          f"interface {name} specified for garp_group doesn't exist", "garp_group")


def _scripts(chk: _Checker) -> None:
    """keepalived's script vetting (config/script_rules.py), reported the way its `-t` reports it.

    keepalived 2.2.7 fails `-t` for a track script it disables (unsafe,
    missing, wrong file type, no default user) and for any script run without
    enable_script_security (SECURITY VIOLATION); it only logs a notify or
    MISC_CHECK script it disables, or a track script that is not executable.
    Errors stop us from starting; the rest are warnings, and the daemon's
    ScriptRunner and MISC_CHECK refuse those scripts at run time. A track
    script that is only not executable is dropped from its instances here, as
    keepalived drops it.
    """
    cfg = chk.config
    for scr in cfg.vrrp_scripts.values():
        # the vrrp_script's own `user` is the script's run-as user
        if scr.script is not None and scr.user and scr.script.user is None:
            scr.script.user, scr.script.group = scr.user, scr.group
    if chk.host is None:
        return
    g = cfg.global_defs
    bad_global_user = bool(g.script_user) and chk.host.user_ids(str(g.script_user)) is None
    if bad_global_user:  # keepalived reports it while reading global_defs
        chk.error(g.keyword_locations.get("script_user", g.location),
                  f"error setting global script uid/gid: user {g.script_user} does not exist", "script_user")
    vetting = vet_config(cfg, chk.host)
    dropped: set[str] = set()
    for use, verdict in vetting.uses:
        where = use.script.location
        if verdict.runnable and not verdict.insecure:
            continue
        if verdict.status is Status.NO_USER and use.user is None and bad_global_user:
            continue  # said once, at script_user
        if use.kind.startswith("vrrp_script "):
            name = use.kind.split(" ", 1)[1]
            if verdict.status is Status.NOT_EXECUTABLE:
                chk.ctx.warn(where, f"{use.kind}: {describe(verdict)}", "script")
                dropped.add(name)
            elif verdict.status is Status.NO_USER and use.user is not None:
                owner = cfg.vrrp_scripts.get(name)
                chk.error(owner.keyword_locations.get("user", where) if owner else where,
                          f"unable to set uid/gid for {use.kind}: {verdict.reason}", "user")
            elif verdict.status is Status.NO_USER:
                chk.error(where, f"unable to set default user keepalived_script for {use.kind}: {verdict.reason}",
                          "script_user")
            elif not verdict.runnable:
                chk.error(where, f"{use.kind}: {describe(verdict)}", "script")
            else:
                chk.ctx.warn(where, f"{use.kind}: {describe(verdict)}", "script")
        elif verdict.status is Status.NO_USER and use.user is not None and use.kind.startswith("MISC_CHECK"):
            chk.error(where, f"failed to set uid/gid for {use.kind}: {verdict.reason} - removing", "user")
        elif verdict.status is Status.NO_USER and use.user is not None:  # keepalived logs it, drops the script
            chk.ctx.warn(where, f"invalid user/group for {use.kind}: {verdict.reason} - ignoring the script",
                         use.kind.split(" ", 1)[0])
        elif verdict.status is Status.NO_USER:
            chk.error(where, f"unable to set default user keepalived_script for {use.kind}: {verdict.reason}",
                      "script_user")
        else:
            chk.ctx.warn(where, f"{use.kind}: {describe(verdict)}", "script")
    for name in dropped:
        cfg.vrrp_scripts.pop(name, None)
        for refs in [*(i.track_scripts for i in cfg.vrrp_instances.values()),
                     *(g.track_scripts for g in cfg.sync_groups.values())]:
            refs[:] = [ref for ref in refs if ref.name != name]
    for subsystem, insecure in vetting.violations():
        # keepalived's -t fails (exit 6); its daemon logs it and runs the scripts, and so does ours
        chk.ctx.diagnostics.append(Diagnostic(Severity.ERROR, violation_message(subsystem, insecure),
                                              cfg.global_defs.location, "enable_script_security", test_only=True))


def _vs_name(vs: VirtualServer) -> str:
    if vs.kind == "fwmark":
        return f"FWM {vs.fwmark}"
    if vs.kind == "group":
        return f"[{vs.group}]:{vs.port or 0}"
    proto = (vs.protocol or "none").lower()
    return f"[{vs.address}]:{proto}:{vs.port or 0}"


def _virtual_server(chk: _Checker, vs: VirtualServer) -> None:
    """keepalived 2.2.7's checks of one virtual server, in its order (check_data.c, validate_check_config)."""
    loc = vs.location
    where = vs.keyword_locations
    if vs.kind == "fwmark" and vs.fwmark == 0:
        # keepalived 2.2.7 reads mark 0 as "no mark" and the service as an address service without an address
        chk.error(loc, "virtual server fwmark 0 is not a firewall mark (keepalived 2.2.7 takes it for a service "
                  "without an address)", "virtual_server")
    if not vs.real_servers:
        chk.error(loc, f"virtual server {_vs_name(vs)} has no real servers - ignoring it", "real_server")
    group = chk.config.virtual_server_groups.get(vs.group or "") if vs.kind == "group" else None
    group_addresses = [e for e in group.entries if e.kind != "fwmark"] if group is not None else []
    group_marks = [e for e in group.entries if e.kind == "fwmark"] if group is not None else []
    if chk.config.global_defs.pykeepalived_checker_notrack and CHECKER_NOTRACK_MARK in (
            [vs.fwmark] if vs.kind == "fwmark" else [e.fwmark for e in group_marks]):
        # the checker's own packets carry this mark: the table would send them to this service
        chk.error(loc, f"virtual server {_vs_name(vs)}: fwmark {CHECKER_NOTRACK_MARK:#x} is the checker's socket mark "
                  "under pykeepalived_checker_notrack", "pykeepalived_checker_notrack")
    marks_only = vs.kind == "fwmark" or (group is not None and not group_addresses and bool(group_marks))
    if vs.ha_suspend and (vs.kind == "fwmark" or group_marks):
        chk.error(where.get("ha_suspend", loc), f"virtual server {_vs_name(vs)}: cannot use ha_suspend with fwmarks"
                  " - clearing ha_suspend", "ha_suspend")
        vs.ha_suspend = False
    if vs.kind == "address" or group_addresses:
        if vs.protocol is None:
            chk.error(loc, f"virtual server {_vs_name(vs)}: no protocol set - keepalived defaults to UDP", "protocol")
            vs.protocol = "UDP"
        if "ops" in vs.sched_flags and vs.protocol != "UDP":
            chk.error(where.get("ops", loc), f"virtual server {_vs_name(vs)}: one packet scheduling requires UDP"
                      " - resetting", "ops")
            vs.sched_flags.remove("ops")
        if vs.kind == "address" and not vs.persistence_timeout_s and not vs.port:
            chk.error(loc, f"virtual server {_vs_name(vs)}: zero port only valid for persistent services - setting",
                      "persistence_timeout")
            vs.persistence_timeout_s = 360
    if not vs.persistence_timeout_s and any(not e.port for e in group_addresses):
        chk.error(loc, f"virtual server {_vs_name(vs)}: zero port only valid for persistent services - setting",
                  "persistence_timeout")
        vs.persistence_timeout_s = 360
    if marks_only and vs.protocol is not None:
        chk.error(where.get("protocol", loc), f"virtual server {_vs_name(vs)}: protocol specified for fwmark"
                  " - protocol will be ignored", "protocol")
        vs.protocol = None
    if vs.lvs_sched is None:
        chk.error(loc, f"virtual server {_vs_name(vs)}: no scheduler set (lb_algo/lvs_sched), using wlc", "lvs_sched")
        vs.lvs_sched = "wlc"
    seen: set[tuple[str, int | None]] = set()
    for rs in list(vs.real_servers):
        key = (str(rs.address), rs.port)
        if key in seen:
            chk.error(rs.location, f"virtual server {_vs_name(vs)}: real server [{rs.address}]:{rs.port} is duplicated"
                      " - removing the second", "real_server")
            vs.real_servers.remove(rs)
            continue
        seen.add(key)
        if rs.lvs_method is None and vs.lvs_method is None:
            _no_method(chk, vs)
        if rs.weight is None:
            rs.weight = vs.weight
        for checker in rs.checkers:
            _inherit(checker, rs, vs)
            if isinstance(checker, HttpCheck):
                checker.urls = [u for u in checker.urls if u.path is not None]
    if vs.sorry_server is not None and vs.sorry_server_lvs_method is None and vs.lvs_method is None:
        _no_method(chk, vs)
    total = sum(rs.weight or 0 for rs in vs.real_servers)
    if vs.real_servers and vs.quorum > total:
        chk.error(where.get("quorum", loc), f"quorum {vs.quorum} for {_vs_name(vs)} exceeds the total weight {total}"
                  " of its real servers - reducing it", "quorum")
        vs.quorum = max(total, 1)
    if vs.real_servers and vs.hysteresis >= vs.quorum:
        chk.error(where.get("hysteresis", loc), f"virtual server {_vs_name(vs)}: hysteresis {vs.hysteresis} >= quorum"
                  f" {vs.quorum}; setting it to {vs.quorum - 1}", "hysteresis")
        vs.hysteresis = vs.quorum - 1
    _ports(chk, vs, group_addresses, bool(group_marks))
    if vs.lvs_method is None:
        vs.lvs_method = "NAT"


def _no_method(chk: _Checker, vs: VirtualServer) -> None:
    chk.error(vs.location, f"virtual server {_vs_name(vs)}: no forwarding method set (lb_kind/lvs_method), using NAT",
              "lvs_method")
    vs.lvs_method = "NAT"


def _ports(chk: _Checker, vs: VirtualServer, group_addresses: list[VirtualServerGroupEntry], group_marks: bool) -> None:
    """Real and sorry server ports: only NAT may change the port; a fwmark service takes none but for NAT."""
    name = _vs_name(vs)
    for rs in vs.real_servers:
        method = rs.lvs_method or vs.lvs_method
        if method == "NAT":
            if rs.port is None and vs.kind == "address":
                rs.port = vs.port
            continue
        if vs.kind == "group":
            if group_marks and rs.port:
                chk.error(rs.location, f"fwmark virtual server {name}, real server [{rs.address}]:{rs.port} has port"
                          " specified - port will be ignored", "real_server")
            for entry in group_addresses:
                if rs.port and entry.port != rs.port:
                    chk.error(rs.location, f"virtual server {name}:[{entry.address}]:{entry.port} and real server "
                              f"[{rs.address}]:{rs.port} ports don't match", "real_server")
        elif vs.kind == "fwmark":
            if rs.port:
                chk.error(rs.location, f"fwmark virtual server {name}, real server [{rs.address}]:{rs.port} has port"
                          " specified - clearing", "real_server")
                rs.port = None
        elif rs.port is None:
            rs.port = vs.port
        elif rs.port != vs.port:
            chk.error(rs.location, f"virtual server {name} and real server [{rs.address}]:{rs.port}: "
                      f"ports must match for {method} - using {vs.port}", "real_server")
            rs.port = vs.port
    sorry = vs.sorry_server
    if sorry is None or (vs.sorry_server_lvs_method or vs.lvs_method) == "NAT" or not sorry.port:
        return
    if vs.kind == "fwmark" or (vs.kind == "group" and group_marks):
        chk.error(sorry.location, f"fwmark virtual server {name}, sorry server has port specified - clearing",
                  "sorry_server")
        sorry.port = None
    elif vs.kind == "group":
        if any(entry.port != sorry.port for entry in group_addresses):
            chk.error(sorry.location, f"virtual server {name}, sorry server has port specified - port will be ignored",
                      "sorry_server")
    elif sorry.port != vs.port:
        chk.error(sorry.location, f"virtual server {name} and sorry server ports don't match - resetting",
                  "sorry_server")
        sorry.port = vs.port


def _inherit(checker: CheckerBase, rs: RealServer, vs: VirtualServer) -> None:
    """Checker timings (checker_timing.py's rules) and connect_port (the real server's port)."""
    complete_timing(checker, rs, vs)
    if checker.connect_port is None:
        checker.connect_port = rs.port
