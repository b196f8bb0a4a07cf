"""Carry out a VRRP reload plan on the running service (SIGHUP; the plan is vrrp/reload_plan.py's).

Order, as the plan has no problem (else ReloadError and nothing is touched):
1. the instances that go stop as on SIGTERM (a master sends priority 0 and
   keeps its VIPs until the new master is heard, vrrp/machine.py's handover),
   notify DELETED (notify_deleted) or FAULT as keepalived 2.2.7 does, and are
   forgotten; the old configuration is still in place while they stop;
2. the new configuration replaces the old one;
3. the changed instances get their settings in place (VrrpCore.update: state
   and timers kept), their trackers with the statuses already known, and, on
   a master, only the VIP / route / rule difference, announced for the new
   VIPs alone;
4. the new instances are set up and started as at boot, the sync groups
   re-formed; tracked scripts start, restart (changed) or stop as needed.
An unchanged instance is not touched at all: no advert, no GARP, its timer
left armed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Protocol

from ..config.model import IpAddressSpec, KeepalivedConfig
from ..errors import PyKeepalivedError, ReloadError
from ..host.track_files import read_track_file
from ..net.accept_filter import Blocked, blocked_for
from .machine import State
from .reload_plan import InstanceChange, ReloadPlan, plan_reload
from .settings import InstanceSettings, instance_settings
from .track import InstanceTracking, ScriptHealth, Tracked, TrackKind, TrackStatus, instance_trackers

if TYPE_CHECKING:
    from ..net.accept_filter import AcceptFilter
    from ..net.addresses import AddressManager
    from ..scripts.notify import FifoGroup
    from ..scripts.runner import ScriptRunner
    from .core import CoreAction, VrrpCore
    from .interfaces import InstanceInterfaces
    from .link_feed import LinkFeed
    from .machine import Action, MachineView
    from .track_process import ProcessTable

IPAddress = IPv4Address | IPv6Address
log = logging.getLogger("pykeepalived.vrrp")

STOP_WAIT_MARGIN_S = 2.0  # beyond the handover deadline, before a removed instance is forgotten anyway


class VrrpService(Protocol):
    """What a reload reaches of the running service (vrrp/service.py; this module cannot import it)."""

    config: KeepalivedConfig
    settings: dict[str, InstanceSettings]
    _configured: dict[str, InstanceSettings]
    tracking: dict[str, InstanceTracking]
    script_health: dict[str, ScriptHealth]
    core: VrrpCore
    addresses: AddressManager
    accept_filter: AcceptFilter
    link_feed: LinkFeed
    processes: ProcessTable
    interfaces: InstanceInterfaces
    fifo: FifoGroup | None
    runner: ScriptRunner
    _queue: asyncio.Queue[Action]
    _tasks: list[asyncio.Task[None]]
    _script_tasks: dict[str, asyncio.Task[None]]
    _file_poller: asyncio.Task[None] | None
    _deleting: dict[str, asyncio.Event]
    _stopping: bool

    @property
    def machines(self) -> Mapping[str, MachineView]: ...
    def _now(self) -> float: ...
    def _apply(self, actions: list[CoreAction]) -> None: ...
    def _sync_tracking(self, name: str) -> None: ...
    def _forget(self, name: str) -> None: ...
    async def _place(self, name: str, s: InstanceSettings) -> tuple[InstanceSettings, str | None]: ...
    async def _guard(self, name: str, what: str, coro: object) -> None: ...
    async def _prepare_announcements(self, s: InstanceSettings) -> None: ...
    async def _set_up_instance(self, name: str, s: InstanceSettings, *, late: bool = False,
                               vmac_fault: str | None = None) -> None: ...
    async def _announce(self, name: str, repeat: int, extra: bool = False,
                        only: frozenset[IPAddress] | None = None) -> None: ...
    async def _run_track_script(self, name: str) -> None: ...
    async def _poll_track_files(self) -> None: ...


def new_settings_for(config: KeepalivedConfig) -> dict[str, InstanceSettings]:
    """Every instance of the new configuration completed, as VrrpService.__init__ does."""
    g = config.global_defs
    return {
        name: instance_settings(inst, g, group_notify_priority_changes=config.sync_groups[inst.sync_group]
                                .notify_priority_changes if inst.sync_group in config.sync_groups else None)
        for name, inst in config.vrrp_instances.items()
    }


def make_plan(svc: VrrpService, config: KeepalivedConfig) -> tuple[ReloadPlan, dict[str, InstanceSettings]]:
    """The plan and the new settings; ReloadError when the new configuration cannot be taken live."""
    try:
        settings = new_settings_for(config)
    except (PyKeepalivedError, ValueError) as exc:
        raise ReloadError(f"the new VRRP configuration cannot be completed: {exc}", [str(exc)]) from exc
    placed = frozenset(n for n, s in svc.settings.items() if s != svc._configured.get(n))
    plan = plan_reload(svc.config, config, svc._configured, settings, placed)
    if plan.problems:
        raise ReloadError(f"VRRP reload refused ({len(plan.problems)} problem(s)); the running configuration "
                          "is kept", list(plan.problems))
    return plan, settings


async def apply_reload(svc: VrrpService, config: KeepalivedConfig) -> None:
    plan, settings = make_plan(svc, config)
    for keyword in plan.restart_needed:
        log.warning("%s changed: needs a restart to take effect (the running value is kept)", keyword)
    for old, new, why in plan.replaced:
        log.info("(%s) %s: restarted as %s (remove + add)", old, why, new)
    log.info("VRRP reload: %d unchanged, %d changed, %d removed, %d added", len(plan.keep), len(plan.change),
             len(plan.remove), len(plan.add))
    for name in plan.remove:
        await _remove(svc, name)
    if svc._stopping:  # SIGTERM while the removed instances stopped: the process is going, nothing more to do
        log.info("VRRP reload cut short: the process is stopping")
        return
    svc.config = config
    await _sync_scripts(svc, config, plan)
    for change in plan.change:
        log.info("(%s) reload: %s", change.name, change.describe())
        await _change(svc, change, settings[change.name])
    for name in plan.add:
        s = settings[name]
        svc._configured[name] = s
        svc.settings[name] = s
        svc.core.add(s)
    if plan.groups_changed:
        svc.core.regroup({g: [m.name for m in grp.members] for g, grp in config.sync_groups.items()})
    for name in plan.add:
        await _add(svc, name)
    if any(t.kind is TrackKind.FILE for tr in svc.tracking.values() for t in tr.items) and svc._file_poller is None:
        svc._file_poller = asyncio.create_task(svc._poll_track_files())
        svc._tasks.append(svc._file_poller)
    if config.global_defs.fifo_write_vrrp_states_on_reload:
        _write_states(svc, config)


async def _remove(svc: VrrpService, name: str) -> None:
    """Stop as on SIGTERM, wait for the machine to say it stopped, then forget the instance."""
    done = svc._deleting[name] = asyncio.Event()
    machine = svc.machines[name]
    wait_s = machine.master_adver_int_cs / 100 * 2 + 1.0 + STOP_WAIT_MARGIN_S
    log.info("(%s) removed from the configuration: stopping", name)
    svc._apply(svc.core.stop(name, svc._now()))
    try:
        await asyncio.wait_for(done.wait(), wait_s)
    except TimeoutError:
        log.warning("(%s) did not finish stopping within %.1fs; forgotten anyway", name, wait_s)
    await svc._queue.join()  # its RemoveVips and notifies are carried out with the old configuration
    svc._forget(name)
    del svc._deleting[name]


async def _change(svc: VrrpService, change: InstanceChange, new_s: InstanceSettings) -> None:
    name = change.name
    old_s = svc.settings[name]
    svc._configured[name] = new_s
    svc.settings[name] = new_s  # first: a master leaving now removes the new list, one taking over adds it
    if change.settings:
        svc._apply(svc.core.update(name, new_s, svc._now()))
    if change.trackers or change.priority:
        await _retrack(svc, name, new_s)
    if change.addresses and svc.machines[name].state is State.MASTER:
        await svc._queue.join()  # what the machine asked before is done first
        if svc.machines[name].state is State.MASTER:
            await _address_diff(svc, name, change, old_s, new_s)


async def _retrack(svc: VrrpService, name: str, s: InstanceSettings) -> None:
    """The instance's trackers from the new configuration, keeping every status already known."""
    old = svc.tracking[name]
    items = instance_trackers(svc.config.vrrp_instances[name], svc.config)
    tracking = InstanceTracking(s.base_priority, items)
    for item in items:
        key = (item.kind, item.name)
        if key in old.statuses:
            tracking.statuses[key] = old.statuses[key]
        elif (status := await _fresh_status(svc, item)) is not None:
            tracking.set_status(item.kind, item.name, status)
        if item.kind is TrackKind.FILE:
            if item.name in old.file_values:
                tracking.file_values[item.name] = old.file_values[item.name]
            elif (tf := svc.config.track_files.get(item.name)) is not None:
                tracking.file_values[item.name] = read_track_file(tf.file)
    svc.tracking[name] = tracking
    svc._sync_tracking(name)


async def _fresh_status(svc: VrrpService, item: Tracked) -> TrackStatus | None:
    """A tracker's status as at boot (a link's carrier, a script's last verdict, a process's quorum; BFD down)."""
    if item.kind is TrackKind.INTERFACE:
        return TrackStatus.UP if await svc.link_feed.state(item.name) else TrackStatus.DOWN
    if item.kind is TrackKind.SCRIPT and item.name in svc.script_health:
        return svc.script_health[item.name].status
    if item.kind is TrackKind.PROCESS and item.name in svc.processes.names():
        return TrackStatus.UP if svc.processes.has_quorum(item.name) else TrackStatus.DOWN
    if item.kind is TrackKind.BFD:
        return TrackStatus.DOWN
    return None


async def _address_diff(svc: VrrpService, name: str, change: InstanceChange, old_s: InstanceSettings,
                        new_s: InstanceSettings) -> None:
    """A master's VIPs, routes and rules: add the new, remove the gone, leave the rest (and announce the new)."""
    g = svc.config.global_defs
    new_if, old_if = new_s.interface or "", old_s.interface or ""

    def blocked(s: InstanceSettings, specs: tuple[IpAddressSpec, ...], ifname: str) -> list[Blocked]:
        return [blocked_for(spec.address.ip, spec.device or ifname, ifindex=g.nftables_ifindex,
                            dont_track_primary=s.dont_track_primary) for spec in specs]

    if change.vips_added and not new_s.accept:
        try:
            svc.accept_filter.block(blocked(new_s, change.vips_added, new_if))
        except PyKeepalivedError as exc:
            log.error("(%s) cannot set up no_accept: %s", name, exc)
    for spec in change.vips_added:
        await svc._guard(name, "add address", svc.addresses.add_address(spec, new_if))
        log.info("(%s) reload: added %s", name, spec.address)
    for route in change.routes_added:
        await svc._guard(name, "add route", svc.addresses.add_route(route))
    for rule in change.rules_added:
        await svc._guard(name, "add rule", svc.addresses.add_rule(rule))
    for rule in change.rules_removed:
        await svc._guard(name, "remove rule", svc.addresses.remove_rule(rule))
    for route in change.routes_removed:
        await svc._guard(name, "remove route", svc.addresses.remove_route(route))
    for spec in change.vips_removed:
        await svc._guard(name, "remove address", svc.addresses.remove_address(spec, old_if))
        log.info("(%s) reload: removed %s", name, spec.address)
    if change.vips_removed and not old_s.accept:
        try:
            svc.accept_filter.unblock(blocked(old_s, change.vips_removed, old_if))
        except PyKeepalivedError as exc:
            log.error("(%s) cannot undo no_accept: %s", name, exc)
    if change.vips_added:
        await svc._prepare_announcements(new_s)
        await svc._announce(name, max(1, new_s.garp_master_repeat),
                            only=frozenset(spec.address.ip for spec in change.vips_added))


async def _sync_scripts(svc: VrrpService, config: KeepalivedConfig, plan: ReloadPlan) -> None:
    """Tracked vrrp_scripts: start the newly tracked, restart the changed (status kept), stop the untracked."""
    tracked = {t.name for inst in config.vrrp_instances.values() for t in instance_trackers(inst, config)
               if t.kind is TrackKind.SCRIPT and t.name in config.vrrp_scripts}
    for name in sorted(set(svc.script_health) - tracked):
        task = svc._script_tasks.pop(name, None)
        if task is not None:
            task.cancel()
        del svc.script_health[name]
    new = sorted(tracked - set(svc.script_health))
    for name in new:
        vs = config.vrrp_scripts[name]
        svc.script_health[name] = ScriptHealth(vs.rise, vs.fall, init_fail=False)
    # a newly tracked script runs once before any instance answers to it: a weight-0 script in its INIT
    # state would put a master in FAULT (and move its VIPs) for the time of its first run
    await asyncio.gather(*(_first_run(svc, config, name) for name in new))
    for name in sorted(tracked):
        vs = config.vrrp_scripts[name]
        health = svc.script_health[name]
        if name not in new and name not in plan.scripts_changed:
            continue
        health.rise, health.fall = max(1, vs.rise), max(1, vs.fall)
        task = svc._script_tasks.pop(name, None)
        if task is not None:
            task.cancel()
        svc._script_tasks[name] = asyncio.create_task(svc._run_track_script(name))
        svc._tasks.append(svc._script_tasks[name])


async def _first_run(svc: VrrpService, config: KeepalivedConfig, name: str) -> None:
    vs = config.vrrp_scripts[name]
    if vs.script is None:
        return
    outcome = await svc.runner.run(vs.script, (), vs.timeout_s or vs.interval_s)
    health = svc.script_health[name]
    health.record(outcome.success)
    log.info("VRRP_Script(%s) %s (first run, before the reload applies it)", name,
             "succeeded" if health.status is TrackStatus.UP else "failed")


async def _add(svc: VrrpService, name: str) -> None:
    """A new instance, set up and started as _start_instances and run() do at boot."""
    s = svc.settings[name]
    inst = svc.config.vrrp_instances[name]
    tracking = InstanceTracking(s.base_priority, instance_trackers(inst, svc.config))
    svc.tracking[name] = tracking
    for item in tracking.items:
        if (status := await _fresh_status(svc, item)) is not None:
            tracking.set_status(item.kind, item.name, status)
        elif item.kind is TrackKind.FILE and (tf := svc.config.track_files.get(item.name)) is not None:
            tracking.file_values[item.name] = read_track_file(tf.file)
    log.info("(%s) added by the reload: starting", name)
    placed, vmac_fault = await svc._place(name, s)
    await svc._set_up_instance(name, placed, vmac_fault=vmac_fault)
    await svc._prepare_announcements(placed)
    svc._sync_tracking(name)
    svc._apply(svc.core.start(name, svc._now()))


def _write_states(svc: VrrpService, config: KeepalivedConfig) -> None:
    """fifo_write_vrrp_states_on_reload: every instance's and group's state on the notify FIFO (no script)."""
    if svc.fifo is None:
        return
    words = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT", State.STOP: "STOP"}
    for gname in sorted(svc.core.group_names):
        if (word := words.get(svc.core.group_state(gname))) is not None:
            svc.fifo.write(f'GROUP "{gname}" {word} 0')
    for name, machine in svc.machines.items():
        if (word := words.get(machine.state)) is not None:
            svc.fifo.write(f'INSTANCE "{name}" {word} {machine.effective_priority}')
