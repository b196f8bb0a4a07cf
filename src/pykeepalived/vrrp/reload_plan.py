"""What a VRRP reload changes, worked out before anything is touched (sans-IO).

`plan_reload(old, new, old_settings, new_settings)` compares the running
configuration with the new one and answers with a `ReloadPlan`: the
instances kept as they are, those changed in place (and what changed), those
removed and those added, the sync groups to re-form, the global_defs
keywords that need a restart, and the problems that refuse the reload. The
service (vrrp/service.py) carries the plan out only when it has no problem,
so a refused reload leaves everything as it was.

Matching, as keepalived 2.2.7's `vrrp_exist` does it: an old and a new
instance are the same router when their VRID, address family, interface,
unicast-ness and source (unicast_src_ip, or the multicast group and source)
and VMAC settings (use_vmac's interface, vmac_xmit_base, use_ipvlan) agree;
the name is not part of the match. Where we go further than keepalived:
our machines are known by name, so a matched pair whose name changed, and a
change that cannot be applied to a running machine (VRRP version, becoming
or ceasing to be the address owner, accept / no_accept, dont_track_primary,
promote_secondaries, unicast_fault_no_peer, old_unicast_checksum), are
carried out as a remove (priority 0, VIPs released) and an add (started as
at boot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.model import IpAddressSpec, KeepalivedConfig, RouteSpec, RuleSpec, VrrpInstance
from .settings import PRIORITY_OWNER, InstanceSettings
from .track import TrackKind, Tracked, instance_trackers

__all__ = ["InstanceChange", "ReloadPlan", "identity", "plan_reload", "RESTART_GLOBALS", "RESTART_TOP_LEVEL"]

# global_defs fields the VRRP process reads once, at start (so a change needs a restart): the netlink and
# socket buffers, the no_accept table, the notify FIFOs and their scripts, the mail alerts, the script
# runner's user and security, process tuning, the GARP pacing, VMAC naming for use_vmac_addr, interfaces
# that may come and go. Every other VRRP keyword of global_defs reaches the instances through
# InstanceSettings (compared per instance) or is read when it is used (log_unknown_vrids, the dump files).
RESTART_GLOBALS: tuple[str, ...] = (
    "notify_fifo", "vrrp_notify_fifo", "notify_fifo_script", "vrrp_notify_fifo_script",
    "notification_email", "notification_email_from", "smtp_server", "smtp_server_port", "smtp_connect_timeout_s",
    "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "no_email_faults",
    "script_user", "script_group", "enable_script_security",
    "lvs_sync_daemon", "dynamic_interfaces", "allow_if_changes", "disable_local_igmp",
    "nftables", "nftables_priority", "nftables_ifindex", "nftables_counters",
    "process_name", "vrrp_process_name", "vrrp_priority", "vrrp_rt_priority", "vrrp_rlimit_rttime",
    "vrrp_no_swap", "vrrp_cpu_affinity", "max_auto_priority", "min_auto_priority_delay",
    "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy", "vrrp_rx_bufs_size", "vrrp_rx_bufs_multiplier",
    "vrrp_garp_interval_s", "vrrp_gna_interval_s", "vmac_addr_prefix", "vrrp_startup_delay_s",
    "umask", "config_save_dir", "tmp_config_directory", "net_namespace", "instance", "use_pid_dir",
)
# top-level blocks the VRRP process sets up once (statics, link polling and delays, GARP groups, processes)
RESTART_TOP_LEVEL: tuple[str, ...] = (
    "static_ipaddresses", "static_routes", "static_rules", "track_groups", "linkbeat_interfaces",
    "up_down_delays", "garp_groups", "track_processes",
)
_KEYWORD = {"smtp_server_port": "smtp_server", "script_group": "script_user", "allow_if_changes": "dynamic_interfaces",
            "static_ipaddresses": "static_ipaddress", "track_groups": "track_group",
            "up_down_delays": "interface_up_down_delays", "garp_groups": "garp_group",
            "track_processes": "vrrp_track_process"}

# settings a running machine cannot take over: a change makes the instance a new one (remove + add)
_REPLACE_FIELDS = ("version", "accept", "dont_track_primary", "promote_secondaries", "fault_no_peer",
                   "old_unicast_checksum")


@dataclass(frozen=True)
class InstanceChange:
    """One instance kept running with new settings; every field says what the service must do."""

    name: str
    settings: bool = False  # the machine gets the new InstanceSettings (priority, advert_int, garp...)
    priority: tuple[int, int] | None = None  # (old, new) base priority
    advert_int_cs: tuple[int, int] | None = None
    vips_added: tuple[IpAddressSpec, ...] = ()
    vips_removed: tuple[IpAddressSpec, ...] = ()
    routes_added: tuple[RouteSpec, ...] = ()
    routes_removed: tuple[RouteSpec, ...] = ()
    rules_added: tuple[RuleSpec, ...] = ()
    rules_removed: tuple[RuleSpec, ...] = ()
    trackers: bool = False  # the tracker list (or a weight) changed
    config: bool = False  # anything of the vrrp_instance block (notify scripts...), read when used

    @property
    def addresses(self) -> bool:
        return bool(self.vips_added or self.vips_removed or self.routes_added or self.routes_removed
                    or self.rules_added or self.rules_removed)

    def describe(self) -> str:
        parts: list[str] = []
        if self.priority:
            parts.append(f"priority {self.priority[0]} -> {self.priority[1]}")
        if self.advert_int_cs:
            parts.append(f"advert_int {self.advert_int_cs[0] / 100:g} -> {self.advert_int_cs[1] / 100:g}s")
        for what, added, removed in (("VIP", self.vips_added, self.vips_removed),
                                     ("route", self.routes_added, self.routes_removed),
                                     ("rule", self.rules_added, self.rules_removed)):
            if added:
                parts.append(f"{len(added)} {what}(s) added")
            if removed:
                parts.append(f"{len(removed)} {what}(s) removed")
        if self.trackers:
            parts.append("trackers")
        if self.settings and not (self.priority or self.advert_int_cs):
            parts.append("settings")
        return ", ".join(parts) or "configuration"


@dataclass(frozen=True)
class ReloadPlan:
    """Everything a reload will do, in the order the service does it: remove, change, add, regroup."""

    keep: tuple[str, ...] = ()
    change: tuple[InstanceChange, ...] = ()
    remove: tuple[str, ...] = ()  # old names
    add: tuple[str, ...] = ()  # new names
    replaced: tuple[tuple[str, str, str], ...] = ()  # (old name, new name, why): in remove and add both
    groups_changed: bool = False
    scripts_changed: tuple[str, ...] = ()  # vrrp_script definitions that changed (their runs restart)
    restart_needed: tuple[str, ...] = ()  # keywords whose change waits for a restart
    problems: tuple[str, ...] = ()  # a non-empty list refuses the reload

    @property
    def unchanged(self) -> bool:
        return not (self.change or self.remove or self.add or self.groups_changed or self.scripts_changed)


def _norm(value: Any) -> Hashable:
    """A value for comparison, without the source locations (a line added above moves them all)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,) + tuple(
            (f.name, _norm(getattr(value, f.name))) for f in dataclasses.fields(value)
            if f.compare and f.name not in ("location", "keyword_locations"))
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted((_norm(v) for v in value), key=repr))
    if isinstance(value, dict):
        return tuple(sorted(((k, _norm(v)) for k, v in value.items()), key=repr))
    return value  # type: ignore[no-any-return]


def identity(s: InstanceSettings) -> Hashable:
    """keepalived's vrrp_exist: what makes two configurations the same virtual router on this host."""
    source = s.unicast_src if s.unicast else (s.multicast_group, s.multicast_src)
    return (s.vrid, s.family, s.interface, s.unicast, source, s.vmac_ifname, s.vmac_xmit_base, _norm(s.ipvlan))


def _diff(old: Iterable[Any], new: Iterable[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(added, removed), each in its list's order, comparing without locations."""
    old_l, new_l = list(old), list(new)
    old_k, new_k = [_norm(x) for x in old_l], [_norm(x) for x in new_l]
    added = tuple(x for x, k in zip(new_l, new_k) if k not in old_k)
    removed = tuple(x for x, k in zip(old_l, old_k) if k not in new_k)
    return added, removed


def _replace_reason(old: InstanceSettings, new: InstanceSettings) -> str | None:
    if old.name != new.name:
        return f"renamed to {new.name}"
    if (old.base_priority == PRIORITY_OWNER) != (new.base_priority == PRIORITY_OWNER):
        return "address owner (priority 255) changed"
    for name in _REPLACE_FIELDS:
        if getattr(old, name) != getattr(new, name):
            return f"{name} changed"
    return None


def _trackers(inst: VrrpInstance, config: KeepalivedConfig) -> list[Tracked]:
    return instance_trackers(inst, config)


def _tracked_names(config: KeepalivedConfig, kind: TrackKind) -> set[str]:
    return {t.name for inst in config.vrrp_instances.values() for t in _trackers(inst, config) if t.kind is kind}


def _instance_change(name: str, old_s: InstanceSettings, new_s: InstanceSettings, old_i: VrrpInstance,
                     new_i: VrrpInstance, old_c: KeepalivedConfig, new_c: KeepalivedConfig) -> InstanceChange | None:
    vips_added, vips_removed = _diff(old_s.vips + old_s.excluded_vips, new_s.vips + new_s.excluded_vips)
    routes_added, routes_removed = _diff(old_i.virtual_routes, new_i.virtual_routes)
    rules_added, rules_removed = _diff(old_i.virtual_rules, new_i.virtual_rules)
    settings = _norm(old_s) != _norm(new_s)
    trackers = _norm(_trackers(old_i, old_c)) != _norm(_trackers(new_i, new_c))
    config = _norm(old_i) != _norm(new_i)
    if not (settings or trackers or config):
        return None
    return InstanceChange(
        name=name, settings=settings,
        priority=(old_s.base_priority, new_s.base_priority) if old_s.base_priority != new_s.base_priority else None,
        advert_int_cs=(old_s.advert_int_cs, new_s.advert_int_cs) if old_s.advert_int_cs != new_s.advert_int_cs
        else None,
        vips_added=vips_added, vips_removed=vips_removed, routes_added=routes_added, routes_removed=routes_removed,
        rules_added=rules_added, rules_removed=rules_removed, trackers=trackers, config=config)


def _restart_needed(old: KeepalivedConfig, new: KeepalivedConfig) -> tuple[str, ...]:
    out: list[str] = []
    for name in RESTART_GLOBALS:
        if _norm(getattr(old.global_defs, name)) != _norm(getattr(new.global_defs, name)):
            keyword = _KEYWORD.get(name, name.removesuffix("_s"))
            if keyword not in out:
                out.append(keyword)
    for name in RESTART_TOP_LEVEL:
        if _norm(getattr(old, name)) != _norm(getattr(new, name)):
            out.append(_KEYWORD.get(name, name))
    for key in sorted(set(old.root_options) | set(new.root_options)):
        if _norm(old.root_options.get(key)) != _norm(new.root_options.get(key)):
            out.append(key)
    return tuple(out)


def plan_reload(old: KeepalivedConfig, new: KeepalivedConfig, old_settings: Mapping[str, InstanceSettings],
                new_settings: Mapping[str, InstanceSettings], placed: frozenset[str] = frozenset()) -> ReloadPlan:
    """Compare the running configuration (and the settings its instances run on) with the new one.

    `old_settings` are the settings as configured (before use_vmac_addr moved
    addresses onto VMACs of their own); `placed` names the instances whose
    addresses were so moved: a change to one of them is a remove + add (its
    address VMACs are made at start).
    """
    by_identity: dict[Hashable, str] = {}
    for name, s in old_settings.items():
        by_identity.setdefault(identity(s), name)
    keep: list[str] = []
    change: list[InstanceChange] = []
    remove: list[str] = []
    add: list[str] = []
    replaced: list[tuple[str, str, str]] = []
    matched_old: set[str] = set()
    for name, new_s in new_settings.items():
        old_name = by_identity.get(identity(new_s))
        if old_name is None or old_name in matched_old:
            add.append(name)
            continue
        matched_old.add(old_name)
        old_s = old_settings[old_name]
        why = _replace_reason(old_s, new_s)
        delta = None
        if why is None:
            delta = _instance_change(name, old_s, new_s, old.vrrp_instances[old_name], new.vrrp_instances[name],
                                     old, new)
            if delta is not None and old_name in placed:
                why = "use_vmac_addr's addresses changed"
        if why is not None:
            remove.append(old_name)
            add.append(name)
            replaced.append((old_name, name, why))
            continue
        if delta is None:
            keep.append(name)
        else:
            change.append(delta)
    for name in old_settings:
        if name not in matched_old:
            remove.append(name)
    # an old name is either matched to the new instance of that name (kept or changed) or removed, so a new
    # instance never takes the name of a machine still running
    problems: list[str] = []
    for kind, word in ((TrackKind.PROCESS, "track_process"), (TrackKind.BFD, "track_bfd")):
        gained = _tracked_names(new, kind) - _tracked_names(old, kind)
        for tracker in sorted(gained):
            problems.append(f"{word} {tracker}: a newly tracked {word.removeprefix('track_')} needs a restart "
                            "of the VRRP process (its watcher starts with the process)")
    old_groups = {g: [m.name for m in grp.members] for g, grp in old.sync_groups.items()}
    new_groups = {g: [m.name for m in grp.members] for g, grp in new.sync_groups.items()}
    scripts_changed = tuple(sorted(n for n in set(old.vrrp_scripts) & set(new.vrrp_scripts)
                                   if _norm(old.vrrp_scripts[n]) != _norm(new.vrrp_scripts[n])))
    return ReloadPlan(
        keep=tuple(keep), change=tuple(change), remove=tuple(remove), add=tuple(add), replaced=tuple(replaced),
        groups_changed=old_groups != new_groups or bool(remove or add),
        scripts_changed=scripts_changed,
        restart_needed=_restart_needed(old, new), problems=tuple(problems))
