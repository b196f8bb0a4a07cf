"""The asyncio shell around the VRRP machines: sockets, timers, netlink, scripts.

Everything that decides lives in core.py (machines and sync groups) and
track.py; this module only feeds them (packets, link events, script results,
the time) and carries out what they answer, in order, through one action
queue: an advert is on the wire before the VIPs are added, and the VIPs are
in place before they are announced. Timers are armed exactly as the core's
TimerChanged actions say.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import stat
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any

from ..errors import PyKeepalivedError, ReloadError
from ..config.model import KeepalivedConfig
from ..state.runtime import RuntimeOverrides
from . import runtime_apply
from .state_view import TransitionLog
from ..config.vocabulary import StateWord
from ..scripts.notify import FifoGroup, Notifier, NotifyFifo
from ..alerts.hooks import VrrpMail
from ..scripts.fifo_script import FifoScripts, fifo_script_for, vrrp_fifos
from ..scripts.runner import ScriptRunner
from ..host.private_files import dump_path, keepalived_tmp_dir
from ..host.proc import started_at
from ..host.track_files import read_track_file
from ..config.instance_names import naming_from_config
from ..host.auto_priority import auto_priority_for, watch_stalls
from ..host.config_dirs import prepare_config_dirs
from ..net.accept_filter import DEFAULT_TABLE, AcceptFilter, blocked_for
from ..net.addresses import AddressManager, describe_route, describe_rule
from ..net.announce import AnnounceSender, gratuitous_arp_frame, unsolicited_na_frame
from ..net.igmp_reports import LocalIgmpReports
from ..net.links import LinkEvent, LinkMonitor
from ..net.netlink_bufs import process_monitor_rcvbuf, vrrp_cmd_rcvbuf, vrrp_monitor_rcvbuf
from ..net.rx_buffer import interface_mtu, set_socket_rcvbuf
from ..net.vrrp_socket import ReceivedPacket, VrrpSocket
from . import dump_writer
from .dump_view import SocketView
from .json_dump import instance_data
from .dataplane_fault import (FAULT_PREFIX, HEAD_BYTES, checker_error_in_head, fault_reason, is_dataplane_fault,
                              served_instances)
from .core import CoreAction, TimerChanged, VrrpCore
from .garp_pacing import GarpItem, garp_intervals
from .interfaces import SETUP_FAULTS, VMAC_FAULT, InstanceInterfaces
from .link_feed import LinkFeed
from .machine import (
    Action,
    AddVips,
    Announce,
    GroupStateChanged,
    Log,
    MachineView,
    MasterRxLowerPriority,
    PacketDropped,
    PriorityChanged,
    RemoveVips,
    SendAdvert,
    State,
    StateChanged,
    Stopped,
)
from .packet import Advert, VrrpPacketError, decode_advert, decode_unicast_advert, encode_advert, parse_ipv4
from .settings import InstanceSettings, instance_settings
from .startup_delay import StartupDelay
from .rx_bufs import instance_share
from .reload_apply import apply_reload
from .source_tracking import SOURCE_GONE_FAULT, SourceTracker, tracked_sources
from .track import InstanceTracking, ScriptHealth, TrackKind, TrackStatus, instance_trackers
from .process_watch import first_scan, watch_processes
from .statics import install_statics, reinstate_statics, remove_statics
from .track_process import ProcessTable

IPAddress = IPv4Address | IPv6Address

if TYPE_CHECKING:
    from ..ctsync.client import CtSyncClient

log = logging.getLogger("pykeepalived.vrrp")

NO_SOURCE_FAULT = "no source address"
TRACK_FILE_POLL_S = 1.0
ACCEPT_FILTER_CHECK_S = 0.5  # how often no_accept's nftables table is checked (someone may flush the ruleset)
TIMER_EARLY_S = 0.002
TIMER_PRECISION_S = 0.0002
DATAPLANE_POLL_S = 1.0  # how often the checker's status file is read for a failing data plane


@dataclass
class _SocketEntry:
    sock: VrrpSocket
    by_vrid: dict[int, str] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


class VrrpService:
    """All VRRP instances of one configuration, in the current network namespace."""

    def __init__(self, config: KeepalivedConfig, *, state_dir: str | None = None,
                 status_file: str | None = None) -> None:
        self.config = config
        self.ready_event = asyncio.Event()  # set once the instances run (daemon/child_reload.py reports it)
        self.state_dir = state_dir or keepalived_tmp_dir()  # keepalived's: $TMPDIR, else /tmp
        self.naming = naming_from_config(config.global_defs.net_namespace, config.global_defs.instance)  # run.py: -s
        self._dump_runtime = dump_writer.Runtime()
        self.status_file = status_file  # the checker's; its dataplane_error puts our instances in FAULT
        self.runtime = RuntimeOverrides()  # what the runtime API changed (state/runtime.py)
        self.transitions = TransitionLog()  # the last transitions and their reasons (vrrp/state_view.py)
        # the process's start, not the service's: a checker started with us that fails at once may write its status
        # file before this process has imported its modules; anything older is an earlier run's
        self._created_at = started_at()
        self._dataplane_fault: str | None = None  # the fault reason set on the served instances, if any
        g = config.global_defs
        self.settings: dict[str, InstanceSettings] = {
            name: instance_settings(inst, g, group_notify_priority_changes=config.sync_groups[inst.sync_group]
                                    .notify_priority_changes if inst.sync_group in config.sync_groups else None)
            for name, inst in config.vrrp_instances.items()
        }
        self.core = VrrpCore(self.settings.values(),
                             {gname: [r.name for r in group.members] for gname, group in config.sync_groups.items()})
        self.tracking: dict[str, InstanceTracking] = {
            name: InstanceTracking(s.base_priority, instance_trackers(config.vrrp_instances[name], config))
            for name, s in self.settings.items()
        }
        self.script_health: dict[str, ScriptHealth] = {}
        for tracking in self.tracking.values():
            for item in tracking.items:
                if item.kind is TrackKind.SCRIPT and item.name in config.vrrp_scripts \
                        and item.name not in self.script_health:
                    vs = config.vrrp_scripts[item.name]
                    # keepalived 2.2.7 resets a script's initial state when an instance tracks it
                    # (vrrp_track.c alloc_track_script), so init_fail never applies: one success is enough
                    self.script_health[item.name] = ScriptHealth(vs.rise, vs.fall, init_fail=False)
                    if vs.init_fail:
                        log.info("VRRP_Script(%s) init_fail has no effect on a tracked script (as in keepalived "
                                 "2.2.7): it starts as not yet run", item.name)
        tracked = {i.name for t in self.tracking.values() for i in t.items if i.kind is TrackKind.PROCESS}
        self.processes = ProcessTable({n: tp for n, tp in config.track_processes.items() if n in tracked})
        self.addresses = AddressManager(vrrp_cmd_rcvbuf(g))  # global_defs vrrp_netlink_*_rcv_bufs
        self.links = LinkMonitor(rcvbuf=vrrp_monitor_rcvbuf(g))
        # linkbeat polling and interface_up_down_delays between netlink and the trackers (link_feed.py)
        self.link_feed = LinkFeed(self.links, config, {i.name for t in self.tracking.values() for i in t.items
                                                       if i.kind is TrackKind.INTERFACE}, self.settings.values())
        self.local_igmp = LocalIgmpReports() if g.disable_local_igmp else None  # net/igmp_reports.py
        self.announcer = AnnounceSender()
        self.interfaces = InstanceInterfaces()  # use_vmac's macvlans, promote_secondaries
        self.sources = SourceTracker(tracked_sources(config, self.settings.values()), self._source_changed)
        self.garp_pacer = garp_intervals(g, config.garp_groups)  # vrrp_garp_interval, garp_group
        self._garp_frames: dict[GarpItem, bytes] = {}
        self._garp_timer: asyncio.TimerHandle | None = None
        # instances sending unicast VRRPv3 adverts with the pre-1.3.6 checksum (old_unicast_checksum)
        self._old_checksum = {name for name, s in self.settings.items() if s.old_unicast_checksum == "old"}
        self.accept_filter = AcceptFilter(g.nftables or DEFAULT_TABLE, g.nftables_priority,
                                          counters=g.nftables_counters)  # nftables_priority, nftables_counters
        self.runner = ScriptRunner.for_config(config, "vrrp")
        self._fifo_specs = vrrp_fifos(g)  # notify_fifo and vrrp_notify_fifo both get every line, as in keepalived
        self.fifo = FifoGroup([NotifyFifo(f.argv[0], f.user, f.group) for f in self._fifo_specs]) \
            if self._fifo_specs else None
        self.notifier = Notifier(self.runner, self.fifo)
        self.mail = VrrpMail(config)  # alert mails (alerts/), nothing without smtp_server and recipients
        self.fifo_scripts = FifoScripts(self.runner)
        from ..lvs.ipvs_sync import SyncDaemons

        self.sync_daemons = SyncDaemons.for_vrrp(config)
        self.ctsync: CtSyncClient | None = None  # conntrackd's commands (nftables data plane; set by daemon/run.py)
        self._sockets: dict[tuple[int, str, str], _SocketEntry] = {}
        self._socket_of: dict[str, _SocketEntry] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._queue: asyncio.Queue[Action] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped: set[str] = set()
        self._done = asyncio.Event()
        self._stopping = False
        self.release_on_stop = True  # -V (keepalived's --dont-release-vrrp) leaves the VIPs and routes on stop
        self._macs: dict[str, bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup: StartupDelay | None = None  # global_defs vrrp_startup_delay (startup_delay.py)
        self._rx_buf: dict[tuple[int, str, str], int] = {}  # per socket: the instances' shares (rx_bufs.py)
        self.bfd_key = os.getppid()  # whose BFD process reports to us (bfd/events.py): the parent's child
        self._placement_faults: set[str] = set()  # instances whose address VMACs could not be made at start
        self._late_setup = asyncio.Lock()  # instances set up after start (_set_up_waiting)
        # reload (vrrp/reload_apply.py): the settings as configured (before use_vmac_addr placed addresses),
        # the tasks a reload may start or stop, and the instances a reload is removing (set once stopped)
        self._configured: dict[str, InstanceSettings] = dict(self.settings)
        self._script_tasks: dict[str, asyncio.Task[None]] = {}
        self._file_poller: asyncio.Task[None] | None = None
        self._deleting: dict[str, asyncio.Event] = {}

    # ------------------------------------------------------------------ life cycle
    async def run(self) -> None:
        """Start every instance and serve until stop() has been carried out."""
        self._loop = asyncio.get_running_loop()
        await self.addresses.open()
        await self.links.open()
        if self.local_igmp is not None:
            self.local_igmp.disable()
        await self.interfaces.open()
        if self.fifo is not None:
            self.fifo.open()
            for spec in self._fifo_specs:
                if script := fifo_script_for(self.config.global_defs, spec, "vrrp"):
                    await self.fifo_scripts.launch(script, spec.argv[0])
        try:
            await self._remove_leftovers()
            await install_statics(self.addresses, self.config)
            await self._start_instances()
            if self.sources.sources:  # track_src_ip (source_tracking.py)
                await self.sources.open()
                self._tasks.append(asyncio.create_task(self.sources.run()))
            self._startup = StartupDelay(self.config.global_defs.vrrp_startup_delay_s, self._now())
            if self._startup.until is not None:
                log.info("Delaying startup for %g seconds", self.config.global_defs.vrrp_startup_delay_s)
            self._tasks.append(asyncio.create_task(self._action_worker()))
            self._tasks.append(asyncio.create_task(self._watch_links()))
            # an interface may come later (dynamic_interfaces) or come back, its address after it
            self._tasks.append(asyncio.create_task(self._retry_missing_interfaces()))
            if self.status_file and self.config.virtual_servers:
                self._tasks.append(asyncio.create_task(self._watch_dataplane(self.status_file)))
            for name in self.script_health:
                self._script_tasks[name] = asyncio.create_task(self._run_track_script(name))
                self._tasks.append(self._script_tasks[name])
            if any(t.kind is TrackKind.FILE for tr in self.tracking.values() for t in tr.items):
                self._file_poller = asyncio.create_task(self._poll_track_files())
                self._tasks.append(self._file_poller)
            if self.processes.names():
                self._tasks.append(asyncio.create_task(watch_processes(self.processes, self._process_changed,
                                                                       self._now,
                                                                       process_monitor_rcvbuf(self.config.global_defs))))
            if bfd_names := {t.name for tr in self.tracking.values() for t in tr.items if t.kind is TrackKind.BFD}:
                self._tasks.append(asyncio.create_task(self._watch_bfd(bfd_names)))
            if any(not s.accept for s in self.settings.values()):
                self._tasks.append(asyncio.create_task(self._watch_accept_filter()))
            prepare_config_dirs(self.config.global_defs)  # config_save_dir, tmp_config_directory
            if (auto := auto_priority_for(self.config.global_defs, "vrrp")) is not None:  # max_auto_priority
                self._tasks.append(asyncio.create_task(watch_stalls(auto)))
            if self.sync_daemons is not None:
                self.sync_daemons.start()
            for name in self.machines:
                self._apply(self.core.start(name, self._now()))
            if not self.machines:
                log.warning("no vrrp_instance configured; nothing to do")
            self.ready_event.set()  # the instances run: the parent may tell systemd READY=1
            await self._done.wait()
            await self._queue.join()
            await self.runner.wait_all(1.5)
        finally:
            await self._shutdown()

    async def reload(self, config: KeepalivedConfig) -> None:
        """Move to `config` keeping what did not change (SIGHUP: daemon/child_reload.py); ReloadError keeps the old.

        The plan is worked out first (vrrp/reload_plan.py, nothing touched), then
        carried out (vrrp/reload_apply.py): removed instances stop as on SIGTERM,
        changed ones take their new settings in place, new ones start as at boot.
        """
        if self._stopping or self._loop is None or not self.ready_event.is_set():
            raise ReloadError("the VRRP process is starting or stopping; the running configuration is kept")
        await apply_reload(self, config)
        runtime_apply.after_reload(self)  # maintenance is kept on instances still configured (docs/runtime-api.md)

    def _forget(self, name: str) -> None:
        """A reload removed the instance and it has stopped: drop its timer, socket share and tables."""
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()
        entry = self._socket_of.pop(name, None)
        if entry is not None:
            for vrid in [v for v, n in entry.by_vrid.items() if n == name]:
                del entry.by_vrid[vrid]
            if not entry.by_vrid:
                for key in [k for k, e in self._sockets.items() if e is entry]:
                    del self._sockets[key]
                    self._rx_buf.pop(key, None)
                if self._loop is not None:
                    self._loop.remove_reader(entry.sock.fileno())
                entry.sock.close()
        self.core.remove(name)
        for table in (self.settings, self._configured, self.tracking):
            table.pop(name, None)
        self._old_checksum.discard(name)
        self._placement_faults.discard(name)
        self._dump_runtime.last_transition.pop(name, None)

    async def _place(self, name: str, s: InstanceSettings) -> tuple[InstanceSettings, str | None]:
        """use_vmac_addr's address VMACs for an instance a reload added (as _start_instances does at boot)."""
        if s.old_unicast_checksum == "old":
            self._old_checksum.add(name)
        reserved = {t.vmac_ifname for t in self.settings.values() if t.vmac_ifname}
        placed, vmac_fault = await self.interfaces.place_addresses(s, self.config.vrrp_instances[name],
                                                                   self.config.global_defs, reserved)
        self.settings[name] = placed
        if vmac_fault is not None:
            self._placement_faults.add(name)
        return placed, vmac_fault

    def stop(self) -> None:
        """Clean stop: every instance releases (or hands over) its VIPs, then run() returns."""
        if self._stopping:
            return
        self._stopping = True
        log.info("Stopping")
        for name in self.machines:
            self._apply(self.core.stop(name, self._now()))
        if not self.machines:
            self._done.set()

    async def _shutdown(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        if self._garp_timer is not None:
            self._garp_timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        loop = asyncio.get_running_loop()
        for entry in self._sockets.values():
            with contextlib.suppress(Exception):
                loop.remove_reader(entry.sock.fileno())
            entry.sock.close()
        self.announcer.close()
        if self.release_on_stop:  # -V: VIPs kept in place keep their no_accept drop too
            self.accept_filter.close()
        if self.sync_daemons is not None:
            self.sync_daemons.stop()
        if self.ctsync is not None:
            await self.ctsync.close()
        self.runner.terminate_all()
        await self.mail.close()
        if self.fifo is not None:
            self.fifo.close()
        self.fifo_scripts.end_all()
        await self.interfaces.close(release=self.release_on_stop)
        await self.links.close()
        self.link_feed.close()
        if self.local_igmp is not None:
            self.local_igmp.restore()
        await remove_statics(self.addresses, self.config)
        await self.addresses.close()

    @property
    def machines(self) -> Mapping[str, MachineView]:
        """The instances' machines, read-only: every input goes through self.core."""
        return self.core.machines

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # ------------------------------------------------------------------ start-up
    async def _remove_leftovers(self) -> None:
        """Remove what an earlier VRRP process of ours may have left: its VIPs, virtual routes and rules.

        A VRRP child killed (or crashed) leaves the VIPs on the interfaces; the
        one started in its place must not hold them as a backup (both routers
        would answer ARP for them), nor leave them after a clean stop. As
        keepalived does at start, every instance's VIPs and excluded VIPs go,
        and its virtual routes and rules (only those tagged proto keepalived);
        whoever becomes master adds them back.
        """
        for name, s in self.settings.items():
            inst = self.config.vrrp_instances[name]
            ifname = s.interface or ""
            for rule in inst.virtual_rules:
                if await self._leftover(name, self.addresses.remove_rule(rule)):
                    log.info("(%s) removed leftover virtual rule %s", name, describe_rule(rule))
            for route in inst.virtual_routes:
                if await self._leftover(name, self.addresses.remove_route(route)):
                    log.info("(%s) removed leftover virtual route %s", name, describe_route(route))
            for spec in [*s.vips, *s.excluded_vips]:
                if await self._leftover(name, self.addresses.remove_address(spec, ifname)):
                    log.info("(%s) removed leftover address %s from %s", name, spec.address,
                             spec.device or ifname)

    async def _leftover(self, name: str, removal: Coroutine[Any, Any, bool]) -> bool:
        try:
            return await removal
        except Exception as exc:  # a leftover we cannot remove must not stop VRRP
            log.error("(%s) cannot remove a leftover: %s", name, exc)
            return False

    async def _start_instances(self) -> None:
        interfaces = {i.name for t in self.tracking.values() for i in t.items if i.kind is TrackKind.INTERFACE}
        for ifname in interfaces:
            up = await self.link_feed.state(ifname)
            status = TrackStatus.UP if up else TrackStatus.DOWN
            for tracking in self.tracking.values():
                tracking.set_status(TrackKind.INTERFACE, ifname, status)
        if self.processes.names():  # keepalived's start-up scan: the instances start with the counts it found
            first_scan(self.processes, self._now())
            for pname in self.processes.names():
                status = TrackStatus.UP if self.processes.has_quorum(pname) else TrackStatus.DOWN
                for tracking in self.tracking.values():
                    tracking.set_status(TrackKind.PROCESS, pname, status)
        for tracking in self.tracking.values():  # keepalived: a tracked BFD session is down until it says Up
            for item in tracking.items:
                if item.kind is TrackKind.BFD:
                    tracking.set_status(TrackKind.BFD, item.name, TrackStatus.DOWN)
        reserved = {t.vmac_ifname for t in self.settings.values() if t.vmac_ifname}
        for name, s in list(self.settings.items()):
            s, vmac_fault = await self.interfaces.place_addresses(s, self.config.vrrp_instances[name],
                                                                  self.config.global_defs, reserved)
            self.settings[name] = s  # use_vmac_addr: some (e)VIPs now live on VMACs of their own
            if vmac_fault is not None:  # made once, at start: a late set-up does not retry address VMACs
                self._placement_faults.add(name)
            await self._set_up_instance(name, s, vmac_fault=vmac_fault)
            await self._prepare_announcements(s)
            self._sync_tracking(name)

    async def _set_up_instance(self, name: str, s: InstanceSettings, *, late: bool = False,
                               vmac_fault: str | None = None) -> None:
        """Source address, interface set-up, socket; else a fault (late: a missing interface has come)."""
        source = await self._source_address(s)
        if source is None:
            if not late:
                log.warning("(%s) no %s source address on %s; the instance stays in FAULT", name,
                            "IPv4" if s.family == 4 else "IPv6 link-local", s.interface)
                self._apply(self.core.set_fault(name, NO_SOURCE_FAULT, True, self._now()))
                if vmac_fault is not None:
                    self._apply(self.core.set_fault(name, vmac_fault, True, self._now()))
            return
        if (fault := vmac_fault or await self.interfaces.prepare(s, source)) is not None:
            self._apply(self.core.set_fault(name, fault, True, self._now()))
            return
        try:
            self._open_socket(name, s, source)
        except PyKeepalivedError as exc:  # the interface went (or is not there yet, with dynamic_interfaces)
            log.warning("(%s) %s; the instance stays in FAULT", name, exc)
            self._apply(self.core.set_fault(name, NO_SOURCE_FAULT, True, self._now()))
            return
        self.core.set_source(name, source)
        if late:
            log.info("(%s) interface %s is usable: source %s", name, s.interface, source)
            # a set-up fault of an earlier late attempt (a VMAC the kernel refused then) is over too; an address
            # VMAC that could not be made at start is not retried, so its fault stays
            over = (SETUP_FAULTS & self.machines[name].faults) - {SOURCE_GONE_FAULT}
            if name in self._placement_faults:
                over -= {VMAC_FAULT}
            for reason in (NO_SOURCE_FAULT, *sorted(over)):
                self._apply(self.core.set_fault(name, reason, False, self._now()))

    async def _prepare_announcements(self, s: InstanceSettings) -> None:
        """Learn the MACs and open the packet sockets now: a takeover then costs one netlink add and the sends."""
        for dev in {spec.device or s.interface for spec in (*s.vips, *s.excluded_vips)}:
            if not dev or dev in self._macs:
                continue
            try:
                self._macs[dev] = await self.addresses.mac_address(dev)
                self.announcer.prepare(dev)
            except PyKeepalivedError as exc:
                log.warning("(%s) %s (will retry on takeover)", s.name, exc)

    async def _source_address(self, s: InstanceSettings) -> IPAddress | None:
        if s.unicast_src is not None:
            return s.unicast_src
        if s.multicast_src is not None:
            return s.multicast_src
        if s.interface is None:
            return None
        return await self.addresses.primary_address(s.interface, s.family)

    def _open_socket(self, name: str, s: InstanceSettings, source: IPAddress) -> None:
        assert s.interface is not None or s.unicast
        ifname = s.advert_interface or ""
        key = (s.family, ifname, str(source) if s.unicast else str(s.destination_group))
        entry = self._sockets.get(key)
        if entry is None:
            sock = VrrpSocket.open(s.family, ifname, source=source,
                                   group=None if s.unicast else s.destination_group)
            entry = _SocketEntry(sock)
            self._sockets[key] = entry
            assert self._loop is not None
            self._loop.add_reader(sock.fileno(), self._on_readable, entry)
        entry.by_vrid[s.vrid] = name
        self._socket_of[name] = entry
        g = self.config.global_defs  # vrrp_rx_bufs_policy / kernel_rx_buf_size: each instance adds its share
        share = instance_share(s, self.config.vrrp_instances[name].kernel_rx_buf_size, g,
                               interface_mtu(ifname) if g.vrrp_rx_bufs_policy == "MTU" else None)
        if share:
            self._rx_buf[key] = self._rx_buf.get(key, 0) + share
            set_socket_rcvbuf(entry.sock.fileno(), self._rx_buf[key])

    # ------------------------------------------------------------------ receiving
    def _on_readable(self, entry: _SocketEntry) -> None:
        for _ in range(64):
            try:
                packet = entry.sock.receive()
            except OSError as exc:
                log.warning("receive error: %s", exc)
                return
            if packet is None:
                return
            self._handle_packet(entry, packet)

    def _handle_packet(self, entry: _SocketEntry, packet: ReceivedPacket) -> None:
        src: IPAddress
        dst: IPAddress
        ttl: int | None
        try:
            if packet.family == 4:
                datagram = parse_ipv4(packet.data)
                src, dst, ttl, payload = datagram.src, datagram.dst, datagram.ttl, datagram.payload
            else:
                src, dst, ttl, payload = packet.src, packet.dst, packet.hop_limit, packet.data
        except VrrpPacketError as exc:
            self._count_socket_error(entry, exc.reason.value, str(exc))
            return
        vrid = payload[1] if len(payload) > 1 else None
        name = entry.by_vrid.get(vrid) if vrid is not None else None
        if name is None and vrid is not None and self.config.global_defs.log_unknown_vrids:  # every one, as 2.2.7
            log.info("Unknown VRID(%d) received on interface(%s). ignoring...", vrid, entry.sock.ifname)
        machine = self.machines.get(name) if name else None
        if machine is not None and machine.source is not None and src == machine.source:
            return  # our own advert, looped back
        try:
            settings = self.settings.get(name) if name is not None else None
            if settings is None:
                advert, old = decode_advert(payload, src, dst), False
            else:
                advert, old = decode_unicast_advert(payload, src, dst, old_checksum=settings.old_unicast_checksum,
                                                    old_group=settings.old_checksum_group)
            if old and name is not None and name not in self._old_checksum:
                self._old_checksum.add(name)
                log.info("(%s) Setting unicast VRRPv3 checksum to old version", name)
        except VrrpPacketError as exc:
            if machine is not None and name is not None:
                self.core.count_undecodable(name, exc.reason.value)
                log.info("(%s) dropped packet from %s: %s", name, src, exc)
            else:
                self._count_socket_error(entry, exc.reason.value, f"from {src}: {exc}")
            return
        if machine is None or name is None:
            # another VRID on this link: normal on a shared segment, so counted but logged only in detail
            entry.errors["vrid_err"] = entry.errors.get("vrid_err", 0) + 1
            log.debug("advert for VRID %s from %s: no instance of ours", advert.vrid, src)
            return
        self._apply(self.core.receive(name, advert, src, ttl, self._now()))

    def _count_socket_error(self, entry: _SocketEntry, counter: str, detail: str) -> None:
        entry.errors[counter] = entry.errors.get(counter, 0) + 1
        log.info("dropped VRRP packet: %s", detail)

    # ------------------------------------------------------------------ timers and actions
    def _apply(self, actions: list[CoreAction]) -> None:
        """Arm the timers the core moved (now) and queue the rest (carried out in order by the worker)."""
        for action in actions:
            if isinstance(action, TimerChanged):
                self._arm(action.instance, action.at)
            else:
                if isinstance(action, StateChanged):  # the dumps' last_transition, on the wall clock
                    self._dump_runtime.last_transition[action.instance] = time.time()
                    self.transitions.record(action, time.time())
                self._queue.put_nowait(action)
        if self._stopping and len(self._stopped) == len(self.machines):
            self._done.set()

    def _arm(self, name: str, when: float | None) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        when = self._startup.hold(when, self.machines[name].state, self._now()) if self._startup else when
        if when is not None:
            assert self._loop is not None
            # epoll rounds its timeout up to whole milliseconds and the kernel adds
            # slack in proportion to the wait (about 0.1%: 3.6 ms on a 3.6 s down
            # timer): wake a little early, then wait out the short remainder.
            early = when - max(TIMER_EARLY_S, (when - self._now()) * 0.002)
            self._timers[name] = self._loop.call_at(early, self._on_timer, name, when)

    def _on_timer(self, name: str, when: float) -> None:
        self._timers.pop(name, None)
        assert self._loop is not None
        if self._now() < when - TIMER_PRECISION_S:
            self._timers[name] = self._loop.call_at(when, self._on_timer, name, when)
            return
        self._apply(self.core.timer(name, max(self._now(), when)))

    async def _action_worker(self) -> None:
        while True:
            action = await self._queue.get()
            try:
                await self._perform(action)
            except Exception as exc:  # a failed kernel write must not stop VRRP
                log.error("%s failed: %s", type(action).__name__, exc)
            finally:
                self._queue.task_done()

    async def _perform(self, action: Action) -> None:
        if isinstance(action, SendAdvert):
            self._send_advert(action.instance, action.priority)
        elif isinstance(action, AddVips):
            if self.ctsync is not None:  # the peer's connections into the kernel before the first packet
                await self.ctsync.before_vips(action.instance)
            await self._set_vips(action.instance, add=True)
        elif isinstance(action, RemoveVips):
            if self.release_on_stop or not self._stopping:
                await self._set_vips(action.instance, add=False)
        elif isinstance(action, Announce):
            await self._announce(action.instance, action.repeat, action.extra)
        elif isinstance(action, StateChanged):
            self._state_changed(action)
        elif isinstance(action, GroupStateChanged):
            log.info("VRRP_Group(%s) Entering %s STATE", action.group, action.new.name)
            self.notifier.group_state(self.config.sync_groups[action.group], action.new.name)
            self.mail.group(action.group, action.new.name)
        elif isinstance(action, PriorityChanged):  # notify_priority_changes: a FIFO line, no script
            self.notifier.event(self.config.vrrp_instances[action.instance],
                                "MASTER_PRIORITY" if action.state is State.MASTER else "BACKUP_PRIORITY",
                                action.priority)
        elif isinstance(action, MasterRxLowerPriority):
            self.notifier.event(self.config.vrrp_instances[action.instance], "MASTER_RX_LOWER_PRI",
                                self.machines[action.instance].effective_priority)
        elif isinstance(action, (Log, PacketDropped)):
            log.info("%s", action.message if isinstance(action, Log) else action.detail)
        elif isinstance(action, Stopped):
            if (deleted := self._deleting.get(action.instance)) is not None:  # removed by a reload
                deleted.set()
                if not self._stopping:  # a SIGTERM during the reload counts it among the stopped too
                    return
            self._stopped.add(action.instance)
            if self._stopping and len(self._stopped) == len(self.machines):
                self._done.set()

    def _state_changed(self, change: StateChanged) -> None:
        inst = self.config.vrrp_instances[change.instance]
        label: dict[State, StateWord] = {State.BACKUP: "BACKUP", State.MASTER: "MASTER", State.FAULT: "FAULT",
                                         State.STOP: "STOP"}
        word = label.get(change.new)
        if word is None:
            return
        if change.new is State.STOP and change.instance in self._deleting:
            # keepalived 2.2.7 on a reload without the instance: DELETED with notify_deleted, else FAULT
            gone = "DELETED" if inst.notify_deleted_flag else "FAULT"
            log.info("(%s) removed by the reload: notifying %s", change.instance, gone)
            self.notifier.instance_state(inst, gone, change.priority)
            return
        suffix = " (init)" if change.old is State.INIT and change.new is State.BACKUP else ""
        log.info("(%s) Entering %s STATE%s", change.instance, word, suffix)
        self.notifier.instance_state(inst, word, change.priority)
        self.mail.instance(change.instance, word)
        if self.sync_daemons is not None:
            self.sync_daemons.state(change.instance, word)
        if self.ctsync is not None:
            self.ctsync.state(change.instance, word)

    # ------------------------------------------------------------------ side effects
    def _send_advert(self, name: str, priority: int) -> None:
        s = self.settings[name]
        machine = self.machines[name]
        entry = self._socket_of.get(name)
        if entry is None or machine.source is None:
            return
        advert = Advert(
            version=s.version, vrid=s.vrid, priority=priority, advert_int_cs=s.advert_int_cs,
            addresses=s.advert_addresses,  # type: ignore[arg-type]
            auth_type=int(s.auth_type) if s.version == 2 else 0,
            auth_data=s.auth_data if s.version == 2 else b"",
        )
        targets: list[IPAddress] = [p.address for p in s.unicast_peers] if s.unicast else [s.destination_group]
        for dst in targets:
            old = name in self._old_checksum and dst.version == 4 and not dst.is_multicast
            pdu = encode_advert(advert, machine.source, s.old_checksum_group if old else dst,
                                v3_pseudo_header=s.v3_pseudo_header)
            try:
                entry.sock.send(pdu, dst, ttl=s.advert_ttl)
            except (OSError, PyKeepalivedError) as exc:
                log.warning("(%s) cannot send advert to %s: %s", name, dst, exc)

    async def _set_vips(self, name: str, *, add: bool) -> None:
        s = self.settings[name]
        inst = self.config.vrrp_instances[name]
        ifname = s.interface or ""
        specs = [*s.vips, *s.excluded_vips]
        blocked = [blocked_for(spec.address.ip, spec.device or ifname, ifindex=self.config.global_defs.nftables_ifindex,
                               dont_track_primary=s.dont_track_primary) for spec in specs]
        if add:
            if not s.accept:
                try:
                    self.accept_filter.block(blocked)
                except PyKeepalivedError as exc:
                    log.error("(%s) cannot set up no_accept: %s", name, exc)
            for spec in specs:
                await self._guard(name, "add address", self.addresses.add_address(spec, ifname))
            for route in inst.virtual_routes:
                await self._guard(name, "add route", self.addresses.add_route(route))
            for rule in inst.virtual_rules:
                await self._guard(name, "add rule", self.addresses.add_rule(rule))
        else:
            for rule in inst.virtual_rules:
                await self._guard(name, "remove rule", self.addresses.remove_rule(rule))
            for route in inst.virtual_routes:
                await self._guard(name, "remove route", self.addresses.remove_route(route))
            for spec in specs:
                await self._guard(name, "remove address", self.addresses.remove_address(spec, ifname))
            if not s.accept:
                try:
                    self.accept_filter.unblock(blocked)
                except PyKeepalivedError as exc:
                    log.error("(%s) cannot undo no_accept: %s", name, exc)

    async def _guard(self, name: str, what: str, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except Exception as exc:
            log.error("(%s) cannot %s: %s", name, what, exc)

    async def _announce(self, name: str, repeat: int, extra: bool = False,
                        only: frozenset[IPAddress] | None = None) -> None:
        """GARP/NA for every (e)VIP (`only`: these, a reload's new VIPs), `repeat` rounds in keepalived's order,
        paced per interface (garp_pacing.py)."""
        s = self.settings[name]
        machine = self.machines[name]
        if machine.state is not State.MASTER:
            return
        items: list[GarpItem] = []
        place = list(self.settings).index(name)
        extra_done: set[str] = set()
        for index, spec in enumerate([*s.vips, *s.excluded_vips]):
            dev = spec.device or s.interface
            if only is not None and spec.address.ip not in only:
                continue
            if not dev or (extra and not _extra_announcement(s, dev, extra_done, self.interfaces.vmacs.created)):
                continue
            mac = self._macs.get(dev)
            if mac is None:
                mac = await self.addresses.mac_address(dev)
                self._macs[dev] = mac
            addr = spec.address.ip
            if isinstance(addr, IPv4Address):
                frame = gratuitous_arp_frame(mac, addr)
            else:
                frame = unsolicited_na_frame(mac, addr, addr)  # keepalived sends the NA from the VIP
            base = s.interface if dev == s.vmac_ifname and s.interface else dev
            item = GarpItem(name, dev, base, addr, (place, index))
            self._garp_frames[item] = frame
            items.append(item)
        now = self._now()
        failed: set[GarpItem] = set()
        for _ in range(max(1, repeat)):
            for item in items:
                if item not in failed and self.garp_pacer.request(item, now) and not self._send_frame(item):
                    failed.add(item)
        self._arm_garp_timer()

    def _send_frame(self, item: GarpItem) -> bool:
        try:
            self.announcer.send(item.device, self._garp_frames[item])
        except OSError as exc:
            log.warning("(%s) cannot announce %s on %s: %s", item.instance, item.address, item.device, exc)
            return False
        return True

    def _arm_garp_timer(self) -> None:
        """Wake when the next pending (paced) announcement may go."""
        wake = self.garp_pacer.next_wake()
        if self._garp_timer is not None:
            self._garp_timer.cancel()
            self._garp_timer = None
        if wake is not None and self._loop is not None:
            self._garp_timer = self._loop.call_at(wake, self._on_garp_timer)

    def _on_garp_timer(self) -> None:
        self._garp_timer = None
        due, _ = self.garp_pacer.due(self._now(), lambda name: self.machines[name].state is State.MASTER)
        for item in due:
            self._send_frame(item)
        self._arm_garp_timer()

    # ------------------------------------------------------------------ tracking
    def _sync_tracking(self, name: str) -> None:
        """Push the tracking verdict (priority, faults) into the machine."""
        machine = self.machines[name]
        priority, faults = self.tracking[name].verdict()
        now = self._now()
        actions: list[CoreAction] = []
        actions += self.core.set_priority(name, priority, now)
        for reason in machine.faults - faults - {NO_SOURCE_FAULT, *SETUP_FAULTS}:
            if not is_dataplane_fault(reason):  # _watch_dataplane's, not a tracker's
                actions += self.core.set_fault(name, reason, False, now)
        for reason in faults - machine.faults:
            actions += self.core.set_fault(name, reason, True, now)
        self._apply(actions)

    def _tracker_changed(self, kind: TrackKind, tracker: str, update: Callable[[InstanceTracking], None]) -> None:
        for name, tracking in self.tracking.items():
            if any(i.kind is kind and i.name == tracker for i in tracking.items):
                update(tracking)
                self._sync_tracking(name)

    async def _watch_links(self) -> None:
        async for event in self.link_feed.events():
            status = TrackStatus.UP if event.up else TrackStatus.DOWN
            self._macs.pop(event.ifname, None)
            if event.deleted:
                self._interface_deleted(event)
            if event.up:
                await reinstate_statics(self.addresses, self.config, event.ifname)
                await self._set_up_waiting(event.ifname)
            self._tracker_changed(TrackKind.INTERFACE, event.ifname, _status_setter(TrackKind.INTERFACE,
                                                                                     event.ifname, status))

    def _source_changed(self, name: str, present: bool) -> None:
        self._apply(self.core.set_fault(name, SOURCE_GONE_FAULT, not present, self._now()))

    def _interface_deleted(self, event: LinkEvent) -> None:
        """Its sockets are bound to an index that is gone: close them; their instances wait for it to come back."""
        # only the sockets on that very interface: a leftover VMAC deleted at start has the name of the new one
        for key in [k for k, e in self._sockets.items() if k[1] == event.ifname and e.sock.ifindex == event.ifindex]:
            entry = self._sockets.pop(key)
            self._rx_buf.pop(key, None)
            assert self._loop is not None
            self._loop.remove_reader(entry.sock.fileno())
            entry.sock.close()
            for name in entry.by_vrid.values():
                self._socket_of.pop(name, None)
                log.info("(%s) interface %s deleted: FAULT until it is back", name, event.ifname)
                self._apply(self.core.set_fault(name, NO_SOURCE_FAULT, True, self._now()))

    async def _set_up_waiting(self, ifname: str | None = None) -> None:
        """Instances still without a socket for want of their interface or its address: try again."""
        async with self._late_setup:  # the link watcher and the once-a-second retry must not both set one up
            for name, s in self.settings.items():
                if (ifname is None or s.interface == ifname) and name not in self._socket_of \
                        and NO_SOURCE_FAULT in self.machines[name].faults and not self._stopping:
                    await self._set_up_instance(name, s, late=True)

    async def _retry_missing_interfaces(self) -> None:
        while True:
            await asyncio.sleep(TRACK_FILE_POLL_S)
            await self._set_up_waiting()

    def _process_changed(self, name: str, have_quorum: bool) -> None:
        status = TrackStatus.UP if have_quorum else TrackStatus.DOWN
        self._tracker_changed(TrackKind.PROCESS, name, _status_setter(TrackKind.PROCESS, name, status))

    async def _watch_bfd(self, names: set[str]) -> None:
        """track_bfd: the BFD process's Up/Down events (bfd/events.py), as keepalived's vrrp_handle_bfd_event."""
        from ..bfd.events import session_events

        up_now: dict[str, bool] = {}
        async for bname, up in session_events(self.bfd_key, "vrrp"):
            if bname not in names or up_now.get(bname, False) == up:
                continue
            up_now[bname] = up
            for name, tracking in self.tracking.items():
                if any(i.kind is TrackKind.BFD and i.name == bname for i in tracking.items):
                    log.info("VRRP_Instance(%s) Tracked BFD instance %s is %s", name, bname, "UP" if up else "DOWN")
            status = TrackStatus.UP if up else TrackStatus.DOWN
            self._tracker_changed(TrackKind.BFD, bname, _status_setter(TrackKind.BFD, bname, status))

    async def _run_track_script(self, name: str) -> None:
        vs = self.config.vrrp_scripts[name]
        health = self.script_health[name]
        if vs.script is None:
            return
        timeout = vs.timeout_s if vs.timeout_s else vs.interval_s
        while True:
            outcome = await self.runner.run(vs.script, (), timeout)
            if health.record(outcome.success):
                word = "succeeded" if health.status is TrackStatus.UP else \
                    ("timed_out" if outcome.timed_out else "failed")
                log.info("VRRP_Script(%s) %s", name, word)
                self._tracker_changed(TrackKind.SCRIPT, name, _status_setter(TrackKind.SCRIPT, name, health.status))
            await asyncio.sleep(vs.interval_s)

    async def _poll_track_files(self) -> None:
        last: dict[str, int] = {}
        while True:
            for name, tf in self.config.track_files.items():
                value = read_track_file(tf.file, last.get(name))
                if last.get(name) != value:
                    last[name] = value
                    log.info("Track file %s: value %d", name, value)
                    self._tracker_changed(TrackKind.FILE, name, _file_setter(name, value))
            await asyncio.sleep(TRACK_FILE_POLL_S)

    async def _watch_accept_filter(self) -> None:
        """no_accept must outlive someone else's `nft flush ruleset`: put our table back when it goes."""
        while True:
            await asyncio.sleep(ACCEPT_FILTER_CHECK_S)
            try:
                self.accept_filter.repair()
            except PyKeepalivedError as exc:
                log.error("cannot check or restore the no_accept table: %s", exc)

    # ------------------------------------------------------------------ the checker's data plane
    async def _watch_dataplane(self, path: str) -> None:
        """Read the checker's status file every DATAPLANE_POLL_S; its dataplane_error faults our instances."""
        served = served_instances(self.config)
        seen: tuple[int, int] | None = None  # (inode, mtime) of the file last read: unchanged, nothing to do
        while True:
            try:
                seen = self._read_dataplane_status(path, served, seen)
            except FileNotFoundError:
                seen = None
                self._set_dataplane_fault(served, None)  # no checker yet, or it stopped cleanly
            except (OSError, ValueError) as exc:
                log.debug("cannot read the checker's status file %s: %s", path, exc)  # no news: keep what we had
            await asyncio.sleep(DATAPLANE_POLL_S)

    def _read_dataplane_status(self, path: str, served: frozenset[str],
                               seen: tuple[int, int] | None) -> tuple[int, int] | None:
        """One look at the status file: only a regular file of our own user counts, never through a link."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                # anyone else's file could fault our instances at will: it says nothing about our checker
                if seen != (st.st_ino, -1):
                    log.warning("ignoring the checker's status file %s: not a regular file of uid %d", path,
                                os.geteuid())
                return (st.st_ino, -1)
            if (st.st_ino, st.st_mtime_ns) == seen:
                return seen
            head = f.read(HEAD_BYTES).decode("utf-8", errors="replace")
        self._set_dataplane_fault(served, checker_error_in_head(head, self._created_at))
        return (st.st_ino, st.st_mtime_ns)

    def _set_dataplane_fault(self, served: frozenset[str], error: str | None) -> None:
        reason = fault_reason(error) if error else None
        old = self._dataplane_fault
        if reason == old or self._stopping:
            return
        self._dataplane_fault = reason
        now = self._now()
        for name in sorted(served & self.machines.keys()):
            actions: list[CoreAction] = []
            if reason is not None:
                log.error("(%s) the checker cannot program the data plane (%s): FAULT until it can", name,
                          reason.removeprefix(FAULT_PREFIX))
                actions += self.core.set_fault(name, reason, True, now)
            else:
                log.info("(%s) the checker's data plane works again: fault cleared", name)
            if old is not None:
                actions += self.core.set_fault(name, old, False, now)
            self._apply(actions)

    # ------------------------------------------------------------------ introspection (vrrp/dump_writer.py)
    def snapshot(self) -> list[dict[str, object]]:
        """keepalived's JSON dump entries plus our own: master_ip, faults and every counter (ours too)."""
        view = dump_writer.collect(self, self._dump_runtime_now())
        out: list[dict[str, object]] = []
        for inst in view.instances:
            m = self.machines[inst.name]
            data = instance_data(inst)
            data["master_ip"] = str(m.master_address) if m.master_address else None
            data["faults"] = sorted(m.faults)
            out.append({"data": data, "stats": m.counters})
        return out

    def _dump_runtime_now(self) -> dump_writer.Runtime:
        """The shell's facts for a dump: timers and last transitions on the wall clock, sockets, group states."""
        offset = time.time() - (self._loop.time() if self._loop is not None else time.monotonic())
        return dataclasses.replace(
            self._dump_runtime,
            next_timer={name: handle.when() + offset for name, handle in self._timers.items()},
            fds={name: entry.sock.fileno() for name, entry in self._socket_of.items()},
            group_state={g: int(self.core.group_state(g)) for g in self.core.group_names},
            sockets=tuple(
                SocketView(entry.sock.fileno(), ifname, family,
                           key if any(self.settings[n].unicast for n in entry.by_vrid.values()) else None,
                           tuple((name, vrid) for vrid, name in entry.by_vrid.items()))
                for (family, ifname, key), entry in self._sockets.items()),
        )

    def write_data(self, path: str | None = None) -> str | None:
        """SIGUSR1: keepalived's data dump (keepalived.data), root-owned 0600; None if refused."""
        target = path or dump_writer.data_path(self.config, self.state_dir, self.naming)  # data_use_instance
        return dump_writer.write_data(self, self._dump_runtime_now(), target)

    def write_json(self, path: str | None = None) -> str | None:
        """SIGRTMIN+2: keepalived's JSON dump, and ours beside it (pykeepalived_vrrp.json); None if refused."""
        target = path or dump_path(dump_writer.JSON_FILE, directory=self.state_dir)
        runtime = self._dump_runtime_now()
        extended = {"vrrp": self.snapshot(),
                    "sockets": {"/".join(map(str, key)): dict(entry.errors) for key, entry in self._sockets.items()}}
        dump_writer.write_extended(os.path.join(os.path.dirname(target), dump_writer.EXTENDED_JSON_FILE), extended)
        return dump_writer.write_json(self, runtime, target)

    def write_stats(self, path: str | None = None) -> str | None:
        """SIGUSR2: keepalived's stats dump (keepalived.stats), root-owned 0600; None if refused."""
        target = path or dump_path(dump_writer.STATS_FILE, directory=self.state_dir)
        return dump_writer.write_stats(self, self._dump_runtime_now(), target)


def _extra_announcement(s: InstanceSettings, dev: str, done: set[str], vmacs: tuple[str, ...] = ()) -> bool:
    """garp_extra_if (keepalived 2.2.7): one address per interface, on our VMACs (use_vmac's and use_vmac_addr's;
    any interface with `all`), and on the instance's own interface only with vmac_xmit_base."""
    if dev in done or (dev != s.vmac_ifname and dev not in vmacs and not s.garp_extra_if_all):
        return False
    if dev == (s.vmac_ifname or s.interface) and not s.vmac_xmit_base:
        return False
    done.add(dev)
    return True


def _status_setter(kind: TrackKind, name: str, status: TrackStatus) -> Callable[[InstanceTracking], None]:
    def update(tracking: InstanceTracking) -> None:
        tracking.set_status(kind, name, status)

    return update


def _file_setter(name: str, value: int) -> Callable[[InstanceTracking], None]:
    def update(tracking: InstanceTracking) -> None:
        tracking.set_file_value(name, value)

    return update


def install_signal_handlers(service: VrrpService, loop: asyncio.AbstractEventLoop,
                            json_path: str | None = None, stats_path: str | None = None,
                            data_path: str | None = None) -> None:
    """TERM/INT stop; USR1 the data dump, USR2 the stats, SIGRTMIN+2 (keepalived's JSON signal) the JSON dump."""
    loop.add_signal_handler(signal.SIGTERM, service.stop)
    loop.add_signal_handler(signal.SIGINT, service.stop)
    loop.add_signal_handler(signal.SIGUSR2, lambda: service.write_stats(stats_path))
    loop.add_signal_handler(signal.SIGRTMIN + 2, lambda: service.write_json(json_path))
    # keepalived's USR1: its text data dump (the parent forwards the signal to every child)
    loop.add_signal_handler(signal.SIGUSR1, lambda: service.write_data(data_path))

