"""The VRRP dumps on signals: fill the read-only view from the running service, format, write 0600.

keepalived 2.2.7 writes its dumps into $TMPDIR when that is an absolute path,
else /tmp (lib/utils.c set_tmp_dir), under fixed names: keepalived.data
(SIGUSR1), keepalived.stats (SIGUSR2), keepalived.json (SIGRTMIN+2).
global_defs `stats_dump_file`/`json_dump_file` (keepalived
2.4's keywords) override the paths. Every file is written through
host/private_files.py: a fresh root-owned 0600 file renamed into place, never
a planted link or someone else's file.

The pieces of the service this needs come in as a `DumpSource` (its
attributes, read only): this module cannot import vrrp/service.py, which
calls it.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import pwd
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..config.instance_names import Naming, data_dump_path
from ..config.model import KeepalivedConfig, Script, TrackRef
from ..host.private_files import UnsafeFileError, daemon_umask, write_private
from ..scripts.runner import default_script_user
from .data_dump import format_address, format_data
from .dump_view import (DumpView, GlobalView, GroupView, InstanceView, NotifyLine, ScriptView, SocketView,
                        TrackFileView, TrackLine, cmd_str)
from .json_dump import format_json
from .machine import MachineView, State, skew_s
from .packet import VRRP_MCAST_V4, VRRP_MCAST_V6
from .settings import InstanceSettings
from .stats_dump import format_stats
from .track import InstanceTracking, ScriptHealth, TrackKind, TrackStatus

log = logging.getLogger("pykeepalived.vrrp")

DATA_FILE = "keepalived.data"
STATS_FILE = "keepalived.stats"
JSON_FILE = "keepalived.json"
EXTENDED_JSON_FILE = "pykeepalived_vrrp.json"  # ours, beside keepalived.json: what keepalived's layout has no room for

_NOTIFY_KINDS = (  # (model field, keepalived's word in the data dump, JSON key)
    ("notify_backup", "Backup", "script_backup"),
    ("notify_master", "Master", "script_master"),
    ("notify_fault", "Fault", "script_fault"),
    ("notify_stop", "Stop", "script_stop"),
    ("notify_deleted", "Deleted", "script_deleted"),
    ("notify", "Generic", "script"),
    ("notify_master_rx_lower_pri", "Master rx lower pri", "script_master_rx_lower_pri"),
)


class DumpSource(Protocol):
    """What the writer reads of the running VRRP service."""

    config: KeepalivedConfig
    settings: dict[str, InstanceSettings]
    tracking: dict[str, InstanceTracking]
    script_health: dict[str, ScriptHealth]

    @property
    def machines(self) -> Mapping[str, MachineView]: ...


@dataclass
class Runtime:
    """The shell's own facts about each instance: wall-clock times, socket, group states."""

    last_transition: dict[str, float] = field(default_factory=dict)  # wall clock
    next_timer: dict[str, float | None] = field(default_factory=dict)  # wall clock
    fds: dict[str, int] = field(default_factory=dict)
    group_state: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    running_scripts: frozenset[str] = frozenset()
    sockets: tuple[SocketView, ...] = ()


def collect(source: DumpSource, runtime: Runtime) -> DumpView:
    """The view of everything at this moment."""
    config = source.config
    instances = tuple(_instance(source, name, runtime) for name in source.machines)
    groups = tuple(_group(source, gname, runtime) for gname in config.sync_groups)
    return DumpView(instances=instances, groups=groups, scripts=_scripts(source, runtime),
                    track_files=_track_files(source), global_defs=_globals(config), sockets=runtime.sockets)


def data_path(config: KeepalivedConfig, directory: str, naming: Naming) -> str:
    """keepalived.data in `directory`; with data_use_instance, keepalived.NAMESPACE_INSTANCE.data (open_dump_file)."""
    return data_dump_path(DATA_FILE, directory, naming, config.global_defs.data_use_instance)


def write_data(source: DumpSource, runtime: Runtime, path: str) -> str | None:
    """SIGUSR1: keepalived.data."""
    return _write(path, format_data(collect(source, runtime), time.ctime), "data dump")


def write_stats(source: DumpSource, runtime: Runtime, path: str) -> str | None:
    """SIGUSR2: keepalived.stats."""
    return _write(path, format_stats(collect(source, runtime)), "stats dump")


def write_json(source: DumpSource, runtime: Runtime, path: str) -> str | None:
    """SIGRTMIN+2: keepalived.json (keepalived writes nothing when there is no instance)."""
    view = collect(source, runtime)
    if not view.instances:
        return None
    return _write(path, format_json(view), "JSON dump")


def write_extended(path: str, doc: object) -> str | None:
    """Our own JSON (keepalived's keys plus master_ip, faults, every counter, the sockets' drop counts)."""
    return _write(path, json.dumps(doc, indent=1) + "\n", "extended JSON dump")


def _write(target: str, text: str, what: str) -> str | None:
    try:
        write_private(target, text)
    except UnsafeFileError as exc:
        log.error("%s not written: %s", what, exc)
        return None
    return target


# ---------------------------------------------------------------------------------------------- the view
def _command(argv: list[str]) -> str:
    """A script's command as keepalived shows it: the program resolved to its real path (it follows links)."""
    if not argv:
        return ""
    program = argv[0]
    found = program if "/" in program else shutil.which(program)
    if found and os.path.exists(found):
        program = os.path.realpath(found)
    return cmd_str([program, *argv[1:]])


def _ids(user: str | None, group: str | None) -> tuple[int, int]:
    """uid:gid of a run-as user (root, 0:0, when none is set or it cannot be found)."""
    uid = gid = 0
    if user:
        try:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        except KeyError:
            pass
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            pass
    return uid, gid


def _notify(owner: object, config: KeepalivedConfig) -> tuple[NotifyLine, ...]:
    out: list[NotifyLine] = []
    default_user, default_group = default_script_user(config.global_defs)
    for attr, kind, key in _NOTIFY_KINDS:
        script = getattr(owner, attr, None)
        if isinstance(script, Script) and script.argv:
            uid, gid = _ids(script.user or default_user, script.group or (None if script.user else default_group))
            out.append(NotifyLine(kind, key, _command(script.argv), uid, gid))
    return tuple(out)


def _refs(refs: list[TrackRef], weights: dict[tuple[TrackKind, str], tuple[int, bool]],
          kind: TrackKind) -> tuple[TrackLine, ...]:
    out = []
    for ref in refs:
        weight, reverse = weights.get((kind, ref.name), (ref.weight or 0, ref.reverse))
        out.append(TrackLine(ref.name, weight, reverse))
    return tuple(out)


def _instance(source: DumpSource, name: str, runtime: Runtime) -> InstanceView:
    config = source.config
    inst = config.vrrp_instances[name]
    s = source.settings[name]
    m = source.machines[name]
    tracking = source.tracking[name]
    weights = {(t.kind, t.name): (t.weight, t.reverse) for t in tracking.items}
    vipset = m.state is State.MASTER
    ifname = s.interface
    scripts_init = sum(1 for t in tracking.items if t.kind is TrackKind.SCRIPT
                       and tracking.statuses.get((t.kind, t.name), TrackStatus.INIT) is TrackStatus.INIT)
    priority = 255 if s.owner else m.effective_priority
    down_us = int(s.down_timer_adverts * m.master_adver_int_cs * 10_000
                  + skew_s(s.version, priority, m.master_adver_int_cs) * 1_000_000)
    group = s.sync_group or inst.sync_group
    fd = runtime.fds.get(name)
    auth = inst.authentication
    auth_type = int(s.auth_type) if s.version == 2 else 0
    return InstanceView(
        name=name, vrid=s.vrid, version=s.version, family=s.family, state=int(m.state),
        wantstate=int(State.MASTER if m.wants_master or m.state is State.MASTER else
                      (m.state if m.state is not State.INIT else State.BACKUP)),
        interface=ifname, base_priority=s.base_priority, effective_priority=m.effective_priority,
        advert_int_cs=s.advert_int_cs, master_adver_int_cs=m.master_adver_int_cs,
        last_transition=runtime.last_transition.get(name, runtime.started),
        stats={k: int(v) for k, v in m.counters.items()},
        sync_group=group,
        master_router=str(m.master_address) if m.master_address is not None else None,
        master_priority=0 if m.state is State.MASTER else _master_priority(m),
        unicast=s.unicast, unicast_configured=bool(inst.unicast_src_ip) and not s.unicast,
        unicast_fault_no_peer=inst.unicast_fault_no_peer,
        num_faults=len(m.faults), num_scripts_init=scripts_init,
        read_timeout=runtime.next_timer.get(name), master_down_us=down_us,
        src_ip=str(m.source) if m.source is not None else None,
        src_from_config=s.unicast_src is not None or s.multicast_src is not None,
        multicast_group=None if s.unicast else str(s.destination_group),
        garp_delay_s=s.garp_master_delay_s, garp_rep=s.garp_master_repeat,
        garp_refresh_s=s.garp_master_refresh_s, garp_refresh_rep=s.garp_master_refresh_repeat,
        garp_lower_prio_delay_s=s.garp_lower_prio_delay_s, garp_lower_prio_rep=s.garp_lower_prio_repeat,
        down_timer_adverts=s.down_timer_adverts, lower_prio_no_advert=s.lower_prio_no_advert,
        higher_prio_send_advert=s.higher_prio_send_advert, dont_track_primary=s.dont_track_primary,
        skip_check_adv_addr=s.skip_check_adv_addr, strict_mode=bool(inst.strict_mode), accept=s.accept,
        nopreempt=s.nopreempt, preempt_delay_s=s.preempt_delay_s, promote_secondaries=inst.promote_secondaries,
        auth_type=auth_type,
        auth_data=(auth.auth_pass or "")[:8] if auth is not None and auth_type else "",
        vips=tuple(format_address(v, ifname, vipset) for v in s.vips),
        evips=tuple(format_address(v, ifname, vipset) for v in s.excluded_vips),
        vroutes=tuple(_describe(r, "route") for r in inst.virtual_routes),
        vrules=tuple(_describe(r, "rule") for r in inst.virtual_rules),
        unicast_ttl=inst.unicast_ttl,
        check_unicast_src=s.check_unicast_src,
        unicast_peers=tuple(f"{p.address} min_ttl {p.min_ttl} max_ttl {p.max_ttl}" for p in s.unicast_peers),
        fds=(fd, fd) if fd is not None else None,
        track_interfaces=_refs(inst.track_interfaces, weights, TrackKind.INTERFACE),
        track_scripts=_refs(inst.track_scripts, weights, TrackKind.SCRIPT),
        track_script_commands=tuple(
            _command(config.vrrp_scripts[r.name].script.argv)  # type: ignore[union-attr]
            for r in inst.track_scripts
            if r.name in config.vrrp_scripts and config.vrrp_scripts[r.name].script is not None),
        track_files=_refs(inst.track_files, weights, TrackKind.FILE),
        smtp_alert=bool(inst.smtp_alert), notify_deleted=inst.notify_deleted_flag,
        notify_scripts=_notify(inst, config),
        notify_priority_changes=bool(inst.notify_priority_changes),
    )


def _master_priority(m: MachineView) -> int:
    value = getattr(m, "master_priority", 0)
    return value if isinstance(value, int) else 0


def _describe(spec: object, kind: str) -> str:
    from ..net.addresses import describe_route, describe_rule

    return describe_route(spec) if kind == "route" else describe_rule(spec)  # type: ignore[arg-type]


def _group(source: DumpSource, gname: str, runtime: Runtime) -> GroupView:
    config = source.config
    group = config.sync_groups[gname]
    members = tuple(r.name for r in group.members if r.name in source.machines)
    states = [source.machines[n].state for n in members]
    return GroupView(
        name=gname, state=runtime.group_state.get(gname, int(State.INIT)), members=members,
        num_member_fault=sum(1 for st in states if st is State.FAULT),
        num_member_init=sum(1 for st in states if st is State.INIT),
        smtp_alert=bool(group.smtp_alert),
        track_interfaces=_refs(group.track_interfaces, {}, TrackKind.INTERFACE),
        track_scripts=_refs(group.track_scripts, {}, TrackKind.SCRIPT),
        track_files=_refs(group.track_files, {}, TrackKind.FILE),
        notify_scripts=_notify(group, config),
    )


def _users_of(source: DumpSource, kind: TrackKind, name: str) -> tuple[TrackLine, ...]:
    out = []
    for iname, tracking in source.tracking.items():
        for t in tracking.items:
            if t.kind is kind and t.name == name:
                out.append(TrackLine(iname, t.weight, t.reverse))
    return tuple(out)


def _scripts(source: DumpSource, runtime: Runtime) -> tuple[ScriptView, ...]:
    config = source.config
    default_user, default_group = default_script_user(config.global_defs)
    out = []
    for name, vs in config.vrrp_scripts.items():
        health = source.script_health.get(name)
        if health is None:
            continue  # keepalived drops a script no instance tracks ("script ... is not used")
        user = vs.user or (vs.script.user if vs.script else None) or default_user
        group = vs.group or (vs.script.group if vs.script else None) or (None if vs.user else default_group)
        uid, gid = _ids(user, group)
        init = {TrackStatus.INIT: "INIT"}.get(health.status, "unknown")
        if health.status is TrackStatus.DOWN and vs.init_fail and health.result == 0:
            init = "INIT/FAILED"
        out.append(ScriptView(
            name=name, command=_command(vs.script.argv) if vs.script else "",
            interval_s=vs.interval_s, timeout_s=vs.timeout_s or 0.0,
            weight=vs.weight, weight_reverse=vs.weight_reverse, rise=health.rise, fall=health.fall,
            result=health.result, init_state=init, uid=uid, gid=gid,
            instances=_users_of(source, TrackKind.SCRIPT, name), running=name in runtime.running_scripts))
    return tuple(out)


def _track_files(source: DumpSource) -> tuple[TrackFileView, ...]:
    out = []
    for name, tf in source.config.track_files.items():
        users = _users_of(source, TrackKind.FILE, name)
        if not users:
            continue
        value = next((t.file_values.get(name, 0) for t in source.tracking.values() if name in t.file_values), 0)
        out.append(TrackFileView(name, tf.file or "", tf.weight, tf.weight_reverse, value, users))
    return tuple(out)


def _globals(config: KeepalivedConfig) -> GlobalView:
    g = config.global_defs
    user, group = default_script_user(g)
    uid, gid = _ids(user, group)
    umask, _ = daemon_umask(g.umask)
    return GlobalView(
        router_id=g.router_id or socket.gethostname(),
        script_security=g.enable_script_security, script_uid=uid, script_gid=gid,
        default_interface=g.default_interface,
        mcast_group4=str(g.vrrp_mcast_group4 or VRRP_MCAST_V4), mcast_group6=str(g.vrrp_mcast_group6 or VRRP_MCAST_V6),
        garp_delay_s=g.vrrp_garp_master_delay_s, garp_rep=g.vrrp_garp_master_repeat,
        garp_refresh_s=g.vrrp_garp_master_refresh_s, garp_refresh_rep=g.vrrp_garp_master_refresh_repeat,
        garp_lower_prio_delay_s=g.vrrp_garp_lower_prio_delay_s, garp_lower_prio_rep=g.vrrp_garp_lower_prio_repeat,
        down_timer_adverts=g.vrrp_down_timer_adverts, garp_interval_s=g.vrrp_garp_interval_s,
        gna_interval_s=g.vrrp_gna_interval_s,
        vrrp_version=g.vrrp_version, strict=g.vrrp_strict, umask=umask,
    )
