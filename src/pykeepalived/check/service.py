"""The checker service: runs every checker on asyncio, keeps the pools, publishes the desired table.

One task per checker sleeps until its core says the next attempt is due, runs
the probe (bounded by its own timeouts) and records the result; a change of
verdict goes through the real server's and the service's pool, whose events
become log lines, notify scripts and notify_fifo lines in keepalived's forms.
Table changes are coalesced: however many checkers decide in one loop
iteration, the data plane gets one `apply` with the latest table, and a failed
apply is retried with whatever is latest then. The status file (JSON) is
rewritten after each publish, so `pykeepalived status` can read it at any time.

The data plane can fail under us: an apply is refused, or someone removes our
table or services (`nft flush ruleset`, `ipvsadm -C`). The backend's
`repair()` is asked every REPAIR_CHECK_S and puts back what went; a failure
that lasts is published as `dataplane_error` in the status file, which the
VRRP process reads to put the instances in front of these virtual servers
in FAULT (a MASTER must not attract traffic that nothing forwards).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dump_writer import check_data_path, write_check_data
from ..config.model import KeepalivedConfig, Script
from ..config.errors import Location
from ..state.runtime import RuntimeOverrides
from ..state.runtime_names import virtual_server_name
from . import runtime_apply
from .state_view import HealthLog, TableJson, health_reason
from ..scripts.notify import NotifyFifo
from ..alerts.hooks import CheckMail
from ..host.private_files import UnsafeFileError, make_dirs, write_private_parts
from ..errors import PyKeepalivedError, ReloadError
from ..scripts.fifo_script import FifoScripts, checker_fifos, fifo_script_for
from .ha_watch import HaSuspendWatch, watch_for
from ..scripts.runner import ScriptRunner
from ..host.proc import own_identity
from ..config.instance_names import naming_from_config
from ..host.auto_priority import auto_priority_for, watch_stalls
from ..host.config_dirs import prepare_config_dirs
from ..lvs.model import DataPlane, DataPlaneError, DesiredTable, VirtualService
from ..config.vocabulary import LOAD_SCHEDULERS
from .logic import Change, CheckerCore, HttpCheckerCore, Verdict
from ..lvs.plan import group_entries
from .plan import CheckerPlan, RealServerPlan, ServicePlan, build_plan
from .probe import ProbeResult
from .pool import Pool, PoolEvent, QuorumDown, QuorumUp, ServerDown, ServerUp, WeightChanged
from .reload_plan import ReloadPlan, ServerStep, ServiceStep, keep_start_only, keyed, needs_restart, plan_reload
from .running import CheckerState, attempt
from .engine import Job, ProbeEngine, notrack_mark, runs_here, syn_probes
from .workers import change_of, init_line, parse_line, worker_count

if TYPE_CHECKING:
    from ..bgp.speaker import BgpSpeakerService

log = logging.getLogger("pykeepalived.check")

APPLY_RETRY_S = 1.0
APPLY_WAIT_S = 10.0  # a reload's answer waits this long at most for the data plane's apply
STATUS_INTERVAL_S = 1.0  # the status file is rewritten at most this often (and at once on SIGUSR1)
REBALANCE_S = 1.0  # how often the load-based schedulers' slots follow the connection counts
STATUS_REFRESH_S = 5.0  # ... and at least this often, so that its counters stay fresh without changes
STATUS_REFRESH_COST = 100  # ... but no more often than 100 times what the last write took (6,000 servers: ~0.1 s)
# real servers (and table destinations) encoded together in the status file: each write's transient is about
# one batch's dicts and texts. 256 made it 666 KiB at bench/checks.py's 6,000 servers and raised the checker's
# peak in the kill phase; 64 makes it 247 KiB (tracemalloc, one write) at the same CPU per write (25 ms)
STATUS_BATCH = 64
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # the status file's encoder, made once
STOP_SCRIPT_TIMEOUT_S = 1.0
BGP_FOLLOW_S = 0.5  # pykeepalived_bgp: how often the announcements are compared with health and the data plane
REPAIR_CHECK_S = 0.5  # how often the data plane is asked whether someone removed our rules (a cheap listing)


@dataclass(slots=True)
class ServerState:
    plan: RealServerPlan
    checkers: list[CheckerState] = field(default_factory=list)

    def all_up(self) -> bool:
        return all(c.core.verdict is Verdict.UP for c in self.checkers)

    def offset(self) -> int:
        return sum(c.offset for c in self.checkers)


@dataclass
class ServiceState:
    plan: ServicePlan
    pool: Pool
    servers: dict[str, ServerState]
    entry: VirtualService | None = None  # the table entry, rebuilt only after this service changed
    checked: bool = False  # every checker has decided once (latched; pykeepalived_bgp announces only then)


def forget_keyword_positions(config: KeepalivedConfig) -> None:
    """Drop where each real server's keywords were written: 2 MiB at 6,000 real servers (bench/checks.py).

    Only the load-time checks (config/complete.py) and `doctor` read a real
    server's `keyword_locations`; the checker never does, and a reload
    compares configurations without positions (reload_plan.shape). The
    server's own `location` stays: log lines and errors name it. Every
    server of the configuration gets the same empty dict (an empty dict each
    held another 0.37 MiB at 6,000): nothing writes to it after the parse.
    """
    forgotten: dict[str, Location] = {}
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            rs.keyword_locations = forgotten


class CheckService:
    """Health checking for every virtual_server of one config."""

    def __init__(self, config: KeepalivedConfig, dataplane: DataPlane, *, status_path: str | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 workers: int | None = None, worker_argv: list[str] | None = None) -> None:
        forget_keyword_positions(config)
        self.config = config
        self.dataplane = dataplane
        self.status_path = status_path
        self.runtime = RuntimeOverrides()  # what the runtime API changed (state/runtime.py)
        self._table_json = TableJson()  # the table's part of the status, rebuilt only for services that changed
        self.health_log = HealthLog()  # each real server's last health changes and why (check/state_view.py)
        self.clock = clock
        self.rng = rng or random.Random()
        g = config.global_defs
        self.runner = ScriptRunner.for_config(config, "check")
        self.naming = naming_from_config(g.net_namespace, g.instance)  # data_use_instance; run.py passes -s's
        self._fifo_specs = checker_fifos(g)
        self.fifos = [NotifyFifo(s.argv[0], s.user, s.group) for s in self._fifo_specs]
        self.fifo_scripts = FifoScripts(self.runner)  # notify_fifo_script, lvs_notify_fifo_script
        self._ha: HaSuspendWatch | None = None  # ha_suspend: set in run()
        self.services: list[ServiceState] = []
        self._groups = group_entries(config)
        self._stop = asyncio.Event()
        self.ready_event = asyncio.Event()  # set once the first table is in place (daemon/child_reload.py)
        self.release_on_stop = True  # -I (keepalived's --dont-release-ipvs) leaves the data plane's table in place
        self._dirty = asyncio.Event()
        self._apply_waiters: list[asyncio.Future[None]] = []  # reloads waiting for their table's apply
        self._tasks: list[asyncio.Task[None]] = []
        self.table = DesiredTable()
        self.applied: DesiredTable | None = None
        self.started_at = 0.0
        self._status_written = -STATUS_INTERVAL_S
        self._status_cost_s = 0.0  # what the last status file took to write (CPU, on the loop)
        self._status_timer: asyncio.TimerHandle | None = None
        self.requested_workers = workers
        self.worker_argv = worker_argv
        self.failed = False
        # every checker in a fixed order (workers index it), made only when asked: at 6,000 checkers the
        # list and its tuples are 0.4 MiB (tracemalloc), which a checker without workers never needs
        self._flat: list[tuple[ServiceState, ServerState, CheckerState]] | None = None
        self.counts: dict[str, dict[str, tuple[int, int]]] = {}  # from the data plane, for status
        self.counts_at: float | None = None  # when `counts` were read (wall clock); None: never
        self._oneoff: set[asyncio.Task[None]] = set()
        # why the data plane cannot do its job: from the start (no backend), the last apply, the last repair
        self._start_error: str | None = dataplane.error
        self._apply_error: str | None = None
        self._repair_error: str | None = None
        self.repairs = 0  # times the backend put back rules someone else removed
        self.mail: CheckMail | None = None  # alert mails (alerts/), made by run(): workers and probes send none
        self.repaired_at: float | None = None  # wall clock of the last one
        self.bfd_key = os.getppid()  # whose BFD process reports to us (bfd/events.py): the parent's child
        self.last_repair: str | None = None
        self._loops: dict[int, asyncio.Task[None]] = {}  # id(CheckerState) -> its checker loop (reload stops some)
        self._engine: ProbeEngine | None = None  # TCP_CHECK and HTTP_GET: one epoll, no task each (engine.py)
        self._workers: list[asyncio.Task[None]] = []
        self._worker_count = 1
        self._running = False  # run() has started the checkers: a reload can work on them
        # (config fd, child, config file, config id): where worker processes read the configuration (run.py sets it)
        self.config_source: tuple[int, bool, str, str | None] | None = None
        self.reloads = 0
        self.bgp: BgpSpeakerService | None = None  # pykeepalived_bgp's speaker (check/bgp_link.py)
        self._bgp_follower: asyncio.Task[None] | None = None

    @property
    def dataplane_error(self) -> str | None:
        """Why the data plane does not forward as the table says (None: it does, as far as we know)."""
        return self._start_error or self._apply_error or self._repair_error

    # ------------------------------------------------------------------ life cycle
    def build(self) -> None:
        """The services, real servers and checkers of the config, in a fixed order (workers rely on it)."""
        now = self.clock()
        self.started_at = now
        for plan in build_plan(self.config):
            self.services.append(self._start_service(plan, now))
        self._flat = None

    def flat_checkers(self) -> list[tuple[ServiceState, ServerState, CheckerState]]:
        """Every checker as (service, server, checker), in the order workers share (kept once made)."""
        if self._flat is None:
            self._flat = list(self._each_checker())
        return self._flat

    def _each_checker(self) -> Iterator[tuple[ServiceState, ServerState, CheckerState]]:
        return ((svc, srv, chk) for svc in self.services for srv in svc.servers.values() for chk in srv.checkers)

    async def run(self) -> None:
        """Check until stop(); the data plane gets the start-up table before the first check."""
        self.build()
        self.mail = CheckMail(self.config)
        for fifo in self.fifos:
            fifo.open()
        for spec in self._fifo_specs:
            if script := fifo_script_for(self.config.global_defs, spec, "check"):
                await self.fifo_scripts.launch(script, spec.argv[0])
        from ..lvs.ipvs_sync import SyncDaemons

        sync_daemons = SyncDaemons.for_checker(self.config) if self.dataplane.name == "ipvs" else None
        if sync_daemons is not None:
            sync_daemons.start()
        await self._settle_immediate_checkers()
        for svc in self.services:
            alive = {name for name, srv in svc.servers.items() if srv.all_up()}
            if self.config.global_defs.rs_init_notifies:  # notify_up and "RS .. UP" for those up at start
                for srv in (srv for name, srv in svc.servers.items() if name in alive):
                    self._rs_notify(svc, srv, alive=True)
            self._handle(svc, svc.pool.start(alive))
        self._dirty.set()
        loop = asyncio.get_running_loop()
        publisher = loop.create_task(self._publisher())
        self._tasks.append(loop.create_task(self._refresh_status()))
        prepare_config_dirs(self.config.global_defs)  # config_save_dir, tmp_config_directory
        if (auto := auto_priority_for(self.config.global_defs, "checker")) is not None:  # max_auto_priority
            self._tasks.append(loop.create_task(watch_stalls(auto)))
        if self.dataplane.can_repair:
            self._tasks.append(loop.create_task(self._repairer()))
        if self.dataplane.can_rebalance and any(
                s.plan.config.lvs_sched in LOAD_SCHEDULERS or any(rs.uthreshold for rs in s.plan.config.real_servers)
                for s in self.services):
            self._tasks.append(loop.create_task(self._rebalancer()))
        await self._start_bgp()
        self._ha = watch_for(self.services, self.config)
        if self._ha.active:
            await self._ha.start()
            self._tasks.append(loop.create_task(self._ha.run()))
        self._worker_count = self._count_workers()
        self._engine = ProbeEngine(loop, self.clock, self._engine_outcome,
                                   self._ha.runs if self._ha.active else None, mark=notrack_mark(self.config),
                                   syn_probe=syn_probes(self.config))
        self._tasks.append(loop.create_task(self._watch_bfd()))  # BFD_CHECK (idle without one)
        for task in [*self._tasks, publisher]:
            task.add_done_callback(self._task_ended)
        for svc, srv, chk in self._each_checker():
            self._start_loop(svc, srv, chk)
        self._start_workers()
        self._running = True
        log.info("Checking %d real servers of %d virtual servers with %d checkers in %d worker process(es)",
                 sum(len(s.servers) for s in self.services), len(self.services),
                 sum(len(srv.checkers) for svc in self.services for srv in svc.servers.values()),
                 self._worker_count if self._worker_count > 1 else 0)
        try:
            await self._stop.wait()
        finally:
            self._running = False
            if self.bgp is not None:
                await self.bgp.stop()  # withdraw first: the upstream stops sending before the table goes
            everything = [*self._tasks, *self._loops.values(), *self._workers]
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
            if self._engine is not None:
                self._engine.close()
            await self._shutdown_notifies()
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            if self._status_timer is not None:
                self._status_timer.cancel()
            self.write_status()
            if self.release_on_stop:
                await self.dataplane.close()
            if sync_daemons is not None:
                sync_daemons.stop()
            for fifo in self.fifos:
                fifo.close()
            self.fifo_scripts.end_all()
            self.runner.terminate_all()
            await self.mail.close()

    async def reload(self, config: KeepalivedConfig) -> None:
        """Move to `config` keeping each unchanged real server's health (SIGHUP: daemon/child_reload.py).

        The whole new plan is built (every probe made) before anything
        changes: a ReloadError leaves the running configuration, its checkers,
        workers and table exactly as they were. Then check/reload_plan.py says
        what differs and only that is touched: an unchanged checker's loop goes
        on with its timing, verdict and history; a changed one keeps its
        verdict and runs its new settings from its next check; new real
        servers and services start as at boot (alpha rules); removed ones leave
        the table. The publisher then hands the data plane the new table,
        which it applies as a diff (nftables: one transaction; IPVS: edits).
        """
        if not self._running:
            raise ReloadError("the checker is still starting; the running configuration is kept")
        try:
            plans = await asyncio.to_thread(build_plan, config)  # thousands of probes: off the loop, checks go on
        except PyKeepalivedError as exc:
            raise ReloadError(f"the new configuration cannot run: {exc}; keeping the running configuration",
                              [str(exc)]) from None
        if self._stop.is_set():  # stopped while the plan was built
            raise ReloadError("the checker is stopping; the reload is not applied")
        restart = needs_restart(self.config.global_defs, config.global_defs)
        config = dataclasses.replace(config, global_defs=keep_start_only(self.config.global_defs,
                                                                          config.global_defs, restart))
        steps = plan_reload(
            [(s.plan.name, s.plan.config, [(r.name, r.config) for r in s.plan.real_servers]) for s in self.services],
            [(p.name, p.config, [(r.name, r.config) for r in p.real_servers]) for p in plans])
        groups = group_entries(config)
        if not steps.unchanged and self._worker_count > 1:
            self._publish_worker_config()  # may refuse (ReloadError): nothing has changed yet
        # ---- from here on nothing can refuse: the new state is built in memory, then published
        for name in restart:
            log.warning("global_defs %s changed: the checker needs a restart for it to take effect; "
                        "keeping the running value", name)
        forget_keyword_positions(config)
        old_config, self.config = self.config, config
        await self._reload_bgp(old_config)
        if groups != self._groups:
            self._groups = groups
            for svc in self.services:
                svc.entry = None  # a virtual_server_group's entries changed: rebuild each entry
            self._dirty.set()
        self.reloads += 1
        if steps.unchanged:
            self._update_plans(plans)
            log.info("Reload: no virtual server, real server or checker changed")
            self._dirty.set()  # the publisher runs once more: an announce line may have changed
            return
        await self._apply_reload(steps, plans)
        runtime_apply.after_reload(self)  # the runtime API's overrides of servers still configured are kept
        counts = steps.counts()
        log.info("Reload: %s", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
        await self._table_applied()

    async def _table_applied(self) -> None:
        """Wait for the publisher's apply of a table built from now on, so that a reload's answer means in the kernel.

        A failed apply ends the wait too (it is logged and retried, and the
        status says it); past APPLY_WAIT_S the reload answers anyway, saying so.
        """
        applied: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._apply_waiters.append(applied)
        self._dirty.set()
        try:
            await asyncio.wait_for(asyncio.shield(applied), APPLY_WAIT_S)
        except TimeoutError:
            log.warning("Reload: the data plane has not applied the new table after %.0f s; it goes on trying",
                        APPLY_WAIT_S)

    def _update_plans(self, plans: list[ServicePlan]) -> None:
        """Nothing differs but the file positions: the new plans (for their config references), same states."""
        for svc, plan in zip(self.services, plans, strict=True):
            svc.plan = plan
            for srv, rs in zip(svc.servers.values(), plan.real_servers, strict=True):
                srv.plan = rs

    async def _apply_reload(self, steps: ReloadPlan, plans: list[ServicePlan]) -> None:
        now = self.clock()
        old = dict(zip(keyed(s.plan.name for s in self.services), self.services, strict=True))
        started: list[ServiceState] = []
        services: list[ServiceState] = []
        for step, plan in zip(steps.services, plans, strict=True):
            if step.action == "add":
                log.info("Adding Virtual Server %s", plan.name)
                svc = self._start_service(plan, now)
                started.append(svc)
            else:
                svc = old[step.key]
                if step.action == "change":
                    await self._change_service(svc, step, plan, now)
                else:
                    svc.plan = plan
                    for srv, rs in zip(svc.servers.values(), plan.real_servers, strict=True):
                        srv.plan = rs
            services.append(svc)
        for key in steps.removed_services:
            svc = old[key]
            log.info("Removing Virtual Server %s", key)
            for name, srv in svc.servers.items():
                if name in svc.pool.alive or srv.plan.inhibit_on_failure:
                    log.info("Removing service %s from VS %s", name, key)
                self._stop_loops(srv.checkers)
        self.services = services
        self._flat = None
        for svc in started:
            await self._settle_service(svc)
            self._handle(svc, svc.pool.start({name for name, srv in svc.servers.items() if srv.all_up()}))
        restart_workers = bool(self._workers) or self._count_workers() > 1
        if restart_workers:
            await self._stop_workers()
            self._worker_count = self._count_workers()
        for svc, srv, chk in self._each_checker():
            if not self._is_running(chk):
                self._start_loop(svc, srv, chk)
        if restart_workers:
            self._start_workers()
        svc_dirty = any(s.entry is None for s in self.services)
        if svc_dirty or steps.removed_services:
            self._dirty.set()

    async def _change_service(self, svc: ServiceState, step: ServiceStep, plan: ServicePlan, now: float) -> None:
        """A service that stays: its servers kept, changed, added or removed; its pool rebuilt with their state."""
        old = dict(zip(keyed(svc.servers), svc.servers.values(), strict=True))
        servers: dict[str, ServerState] = {}
        added: list[ServerState] = []
        for srv_step, rs in zip(step.servers, plan.real_servers, strict=True):
            if srv_step.action == "add":
                srv = self._start_server(rs, now)
                await self._settle_server(srv)
                added.append(srv)
            else:
                srv = old[srv_step.key]
                self._change_server(srv, srv_step, rs, now)
            servers[rs.name] = srv
        for key in step.removed_servers:
            srv = old[key]
            log.info("service %s no longer exist", key)
            if key in svc.pool.alive and not svc.pool.sorry_active or srv.plan.inhibit_on_failure:
                log.info("Removing service %s from VS %s", key, svc.plan.name)
            self._stop_loops(srv.checkers)
        old_pool = svc.pool
        if old_pool.sorry_active and old_pool.sorry_server is not None and old_pool.sorry_server != plan.sorry_name:
            log.info("Removing sorry server %s from VS %s", old_pool.sorry_server, svc.plan.name)
        svc.plan, svc.servers = plan, servers
        svc.pool = plan.make_pool()
        added_ids = {id(srv) for srv in added}
        kept = {name for name, srv in servers.items() if id(srv) not in added_ids}
        for name in kept:
            svc.pool.offsets[name] = servers[name].offset()
        events = svc.pool.carry_over(old_pool, kept)
        if svc.pool.sorry_active and plan.sorry_name != old_pool.sorry_server:
            log.info("%s sorry server %s to VS %s", "Enabling" if svc.pool.sorry_inhibit else "Adding",
                     plan.sorry_name, plan.name)
        for srv in added:
            svc.pool.offsets[srv.plan.name] = srv.offset()
            events += svc.pool.set_alive(srv.plan.name, srv.all_up())
        svc.entry = None
        self._handle(svc, events)

    def _change_server(self, srv: ServerState, step: ServerStep, plan: RealServerPlan, now: float) -> None:
        """A real server that stays: unchanged checkers untouched, changed ones keep their verdict, new ones boot."""
        by_index: dict[int, list[CheckerState]] = {}
        for chk in srv.checkers:
            by_index.setdefault(config_index(chk.plan), []).append(chk)
        reused: set[int] = set()
        checkers: list[CheckerState] = []
        for cstep in step.checkers:
            fresh = [p for p in plan.checkers if config_index(p) == cstep.index]
            olds = by_index.get(cstep.old_index, []) if cstep.old_index is not None else []
            if cstep.action == "new" or len(olds) != len(fresh):
                checkers += [self._new_checker(p, now) for p in fresh]
                continue
            for chk, new_plan in zip(olds, fresh, strict=True):
                reused.add(id(chk))
                if cstep.action == "update":
                    self._stop_loops([chk])  # restarted with its new settings (its verdict stays)
                    chk.plan, chk.core = new_plan, carried_core(chk.core, new_plan, now)
                    log.info("%s on service %s: new settings, taking effect at its next check", new_plan.kind,
                             plan.name)
                checkers.append(chk)  # unchanged: its plan, probe and loop go on as they were
        self._stop_loops([c for c in srv.checkers if id(c) not in reused])
        srv.plan, srv.checkers = plan, checkers

    # ------------------------------------------------------------------ checker loops and workers
    def _start_loop(self, svc: ServiceState, srv: ServerState, chk: CheckerState) -> None:
        """The checker's own loop here, unless it is event-driven (BFD) or a worker process runs it."""
        if chk.plan.event or (self._worker_count > 1 and not chk.plan.immediate):
            return
        if self._engine is not None and runs_here(chk):
            self._engine.add(chk, (svc, srv), svc.plan.name)
            return
        task = asyncio.get_running_loop().create_task(self._checker_loop(svc, srv, chk))
        task.add_done_callback(self._task_ended)
        self._loops[id(chk)] = task

    def _stop_loops(self, checkers: list[CheckerState]) -> None:
        for chk in checkers:
            if (task := self._loops.pop(id(chk), None)) is not None:
                task.cancel()
            if self._engine is not None:
                self._engine.remove(chk)

    def _is_running(self, chk: CheckerState) -> bool:
        return id(chk) in self._loops or (self._engine is not None and chk in self._engine)

    def _engine_outcome(self, job: Job, result: ProbeResult, change: Change | None) -> None:
        svc, srv = job.owner
        self._after_attempt(svc, srv, job.chk, result.ok, result.weight_offset, change)

    def _count_workers(self) -> int:
        if self.worker_argv is None:
            return 1
        return worker_count(self.requested_workers)

    def _start_workers(self) -> None:
        if self._worker_count <= 1:
            return
        loop = asyncio.get_running_loop()
        for shard in range(self._worker_count):
            task = loop.create_task(self._worker(shard, self._worker_count))
            task.add_done_callback(self._task_ended)
            self._workers.append(task)

    async def _stop_workers(self) -> None:
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def _publish_worker_config(self) -> None:
        """Put the configuration being reloaded to where worker processes read it (ReloadError if it cannot)."""
        from .reload_snapshot import publish_for_workers

        if self.config_source is None:
            raise ReloadError("cannot hand the new configuration to the checker worker processes (no config fd); "
                              "keeping the running configuration")
        publish_for_workers(*self.config_source)


    def spawn(self, coro: Any) -> None:
        """Run a one-off coroutine (a signal's work) as a task that is kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._oneoff.add(task)
        task.add_done_callback(self._oneoff.discard)

    def stop(self) -> None:
        self._stop.set()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A checker, worker or publisher task must run until stop: if one ends on an error, stop as failed."""
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        log.error("checker task %s ended%s; stopping the checker so that it restarts whole", task.get_name(),
                  f" on {type(exc).__name__}: {exc}" if exc else "")
        self.failed = True
        self._stop.set()

    # ------------------------------------------------------------------ worker processes
    async def _worker(self, shard: int, count: int) -> None:
        """Start one worker process and apply what it reports; its death stops this service as failed."""
        assert self.worker_argv is not None
        proc = await asyncio.create_subprocess_exec(
            *self.worker_argv, "--checker-worker", f"{shard}/{count}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24)
        assert proc.stdout is not None and proc.stdin is not None
        try:
            # the plan it must build and its checkers' state here (a reload's restart keeps every verdict)
            proc.stdin.write(init_line(self.flat_checkers(), shard, count, self.clock()))
            while line := await proc.stdout.readline():
                try:
                    self._remote(parse_line(line))
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    log.error("checker worker %d sent a bad line (%s): %.200r", shard, exc, line)
            await proc.wait()
            if not self._stop.is_set():
                log.error("checker worker %d/%d exited with status %s; stopping the checker so that it restarts "
                          "whole", shard, count, proc.returncode)
                self.failed = True
                self._stop.set()
        finally:
            if proc.returncode is None:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

    def _remote(self, msg: dict[str, Any]) -> None:
        now = self.clock()
        if "s" in msg:
            for index, attempts, last_ok, reason, next_in in msg["s"]:
                chk = self.flat_checkers()[index][2]
                chk.attempts, chk.last_ok, chk.last_reason = attempts, last_ok, reason
                chk.core.next_due_s = now + next_in
            return
        svc, srv, chk = self.flat_checkers()[msg["i"]]
        chk.last_ok, chk.last_reason = msg["ok"], msg["r"]
        change = change_of(msg)
        if change is not None:
            chk.core.verdict = change.verdict
            chk.core.has_run = True  # a reload's carried core and restarted workers must know it has run
        self._after_attempt(svc, srv, chk, msg["ok"], msg.get("o"), change)

    def _start_service(self, plan: ServicePlan, now: float) -> ServiceState:
        servers = {rs.name: self._start_server(rs, now) for rs in plan.real_servers}
        return ServiceState(plan, plan.make_pool(), servers)

    def _start_server(self, plan: RealServerPlan, now: float) -> ServerState:
        return ServerState(plan, [self._new_checker(chk, now) for chk in plan.checkers])

    def _new_checker(self, plan: CheckerPlan, now: float) -> CheckerState:
        """A checker as at start: alpha's verdict, its first check spread over warmup."""
        offset = 0.0 if plan.immediate else self.rng.uniform(0.0, plan.timing.warmup_s)
        return CheckerState(plan, plan.make_core(now, offset))

    async def _settle_immediate_checkers(self) -> None:
        """FILE_CHECK decides before the first table, as keepalived reads its track files at start."""
        for svc in self.services:
            await self._settle_service(svc)

    async def _settle_service(self, svc: ServiceState) -> None:
        for srv in svc.servers.values():
            await self._settle_server(srv)
            svc.pool.offsets[srv.plan.name] = srv.offset()

    async def _settle_server(self, srv: ServerState) -> None:
        for chk in srv.checkers:
            if chk.plan.immediate and not chk.core.has_run:
                result = await chk.plan.probe.run()
                chk.last_ok, chk.last_reason = result.ok, result.reason
                if result.weight_offset is not None and result.ok:
                    chk.offset = result.weight_offset
                chk.core.record(result.ok, self.clock())

    # ------------------------------------------------------------------ checking
    async def _checker_loop(self, svc: ServiceState, srv: ServerState, chk: CheckerState) -> None:
        while True:
            delay = chk.core.next_due_s - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._ha is not None:
                await self._ha.wait_runs(svc.plan.name)  # ha_suspend: no VS address here, no check
            result, change = await attempt(chk, self.clock)
            self._after_attempt(svc, srv, chk, result.ok, result.weight_offset, change)

    def _after_attempt(self, svc: ServiceState, srv: ServerState, chk: CheckerState, ok: bool,
                       weight_offset: int | None, change: Change | None) -> None:
        events: list[PoolEvent] = []
        if ok and weight_offset is not None and weight_offset != chk.offset:
            chk.offset = weight_offset
            events += svc.pool.set_offset(srv.plan.name, srv.offset())
        if change is None:
            if not ok and chk.core.verdict is Verdict.UP:
                level = logging.INFO if self.log_all_failures(chk) else logging.DEBUG
                log.log(level, "%s on service %s failed (%s), will retry", chk.plan.kind, srv.plan.name,
                        chk.last_reason)
            self._handle(svc, events)
            return
        if change.verdict is Verdict.DOWN:
            log.info("%s on service %s failed after %d attempt(s): %s", chk.plan.kind, srv.plan.name,
                     change.failures, chk.last_reason)
            if change.confirmed and srv.plan.name not in svc.pool.alive:
                self._rs_notify(svc, srv, alive=False)
        else:
            log.info("%s on service %s succeeded", chk.plan.kind, srv.plan.name)
        was_alive = srv.plan.name in svc.pool.alive
        events += svc.pool.set_alive(srv.plan.name, srv.all_up())
        if self.mail is not None:
            self.mail.checker(svc.plan.name, srv.plan.name, srv.plan.config, chk.plan.kind,
                              change.verdict is Verdict.UP, chk.last_reason,
                              rs_was_alive=was_alive, rs_alive=srv.plan.name in svc.pool.alive)
        if change.verdict is Verdict.DOWN and chk.offset:
            # keepalived drops a failed checker's weight share silently, after the server has left
            chk.offset = 0
            events += svc.pool.set_offset(srv.plan.name, srv.offset(), quiet=srv.plan.name not in svc.pool.alive)
        self._handle(svc, events)

    async def _watch_bfd(self) -> None:
        """BFD_CHECK: each Up/Down the BFD process reports goes through the checker's usual result path."""
        if not any(c.plan.event for *_, c in self._each_checker()):
            await self._stop.wait()  # no BFD_CHECK now (a reload may add one: it restarts this task)
            return
        from ..bfd.events import session_events
        from .bfd_check import bfd_event, follows

        async for session, up in session_events(self.bfd_key, "checker"):
            for svc, srv, chk in list(self._each_checker()):  # a snapshot: acting on one may change the table
                if not follows(chk.plan.config, session):
                    continue
                act, change = bfd_event(chk.core, chk.plan.probe, up)
                if not act:
                    continue
                log.info("BFD check of [%s] RS(%s) is %s", session, srv.plan.name, "UP" if up else "DOWN")
                chk.attempts += 1
                chk.last_ok, chk.last_reason = up, f"BFD {session} is {'Up' if up else 'Down'}"
                self._after_attempt(svc, srv, chk, up, None, change)

    def log_all_failures(self, chk: CheckerState) -> bool:
        own = chk.plan.config.log_all_failures
        return bool(own) if own is not None else self.config.global_defs.checker_log_all_failures

    # ------------------------------------------------------------------ events
    def _handle(self, svc: ServiceState, events: list[PoolEvent]) -> None:
        if not events:
            return
        name = svc.plan.name
        for event in events:
            if isinstance(event, ServerUp | ServerDown):
                srv = svc.servers[event.key]
                alive = isinstance(event, ServerUp)
                inhibit = srv.plan.inhibit_on_failure
                verb = ("Enabling" if inhibit else "Adding") if alive else ("Disabling" if inhibit else "Removing")
                prep = "of" if inhibit else ("to" if alive else "from")
                log.info("%s service %s %s VS %s", verb, event.key, prep, name)
                self.health_log.record(name, event.key, alive, health_reason(
                    ((c.plan.kind, c.core.verdict is Verdict.DOWN, c.last_reason) for c in srv.checkers), alive),
                    time.time())
                self._rs_notify(svc, srv, alive)
            elif isinstance(event, WeightChanged):
                log.info("Changing weight from %d to %d for %sactive service %s of VS %s", event.old, event.new,
                         "" if event.key in svc.pool.alive else "in", event.key, name)
            elif isinstance(event, QuorumUp):
                log.info("Gained quorum %d+%d=%d <= %d for VS %s", svc.pool.quorum, svc.pool.hysteresis,
                         event.threshold, event.weight_sum, name)
                if event.sorry_out:
                    log.info("%s sorry server %s from VS %s", "Disabling" if svc.pool.sorry_inhibit else "Removing",
                             svc.plan.sorry_name, name)
                self._vs_notify(svc, up=True)
                self._quorum_mail(svc, event)
            elif isinstance(event, QuorumDown):
                log.info("%s %d-%d=%d > %d for VS %s", "Starting with quorum down" if event.at_start else "Lost quorum",
                         svc.pool.quorum, svc.pool.hysteresis, event.threshold, event.weight_sum, name)
                if event.sorry_in:
                    log.info("%s sorry server %s to VS %s", "Enabling" if svc.pool.sorry_inhibit else "Adding",
                             svc.plan.sorry_name, name)
                self._vs_notify(svc, up=False)
                self._quorum_mail(svc, event)
        svc.entry = None
        self._dirty.set()

    def _quorum_mail(self, svc: ServiceState, event: QuorumUp | QuorumDown) -> None:
        if self.mail is not None:
            self.mail.quorum(svc.plan.name, svc.plan.config, isinstance(event, QuorumUp), at_start=event.at_start,
                             quorum=svc.pool.quorum, hysteresis=svc.pool.hysteresis, threshold=event.threshold,
                             weight_sum=event.weight_sum)

    def _rs_notify(self, svc: ServiceState, srv: ServerState, alive: bool, timeout_s: float | None = None) -> None:
        script = srv.plan.config.notify_up if alive else srv.plan.config.notify_down
        self._fire(script, timeout_s)
        self._fifo(f"RS {srv.plan.name} {svc.plan.name} {'UP' if alive else 'DOWN'}")

    def _vs_notify(self, svc: ServiceState, up: bool, timeout_s: float | None = None) -> None:
        vs = svc.plan.config
        self._fire(vs.quorum_up if up else vs.quorum_down, timeout_s)
        self._fifo(f"VS {svc.plan.name} {'UP' if up else 'DOWN'}")

    def _fire(self, script: Script | None, timeout_s: float | None) -> None:
        if script is not None and script.argv:
            self.runner.fire(script, (), timeout_s)

    def _fifo(self, line: str) -> None:
        # keepalived writes the terminating NUL after each LVS line; readers split on lines either way
        for fifo in self.fifos:
            fifo.write(line)

    async def _shutdown_notifies(self) -> None:
        """omega: on the way down, quorum_down and notify_down run as if every server failed."""
        fired = False
        for svc in self.services:
            for row in svc.pool.rows():
                if not row.sorry:
                    log.info("Shutting down %sservice %s from VS %s", "" if row.alive else "(inhibited) ", row.key,
                             svc.plan.name)
            if not svc.plan.config.omega:
                continue
            for name in sorted(svc.pool.alive):
                self._rs_notify(svc, svc.servers[name], alive=False, timeout_s=STOP_SCRIPT_TIMEOUT_S)
                fired = True
            if svc.pool.has_quorum:
                self._vs_notify(svc, up=False, timeout_s=STOP_SCRIPT_TIMEOUT_S)
                fired = True
        if fired:
            await self.runner.wait_all(STOP_SCRIPT_TIMEOUT_S + 0.5)

    # ------------------------------------------------------------------ table
    def current_table(self) -> DesiredTable:
        for svc in self.services:
            if svc.entry is None:
                svc.entry = runtime_apply.adjust(svc.plan.virtual_service(svc.pool, self._groups),
                                                 virtual_server_name(svc.plan.config), self.runtime)  # runtime API
        return DesiredTable(tuple(svc.entry for svc in self.services if svc.entry is not None))

    async def _publisher(self) -> None:
        """Hand the latest table to the data plane, one apply at a time, retrying failures."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            waiters, self._apply_waiters = self._apply_waiters, []
            self.table = self.current_table()
            self._status_soon()  # the decision shows at once; "applied" turns true when the kernel has it
            await self._announce(withdraw_only=True)  # a VIP that lost its servers leaves before the table changes
            try:
                if self.table != self.applied:
                    await self.dataplane.apply(self.table)
                    self.applied = self.table
                if self._apply_error is not None:
                    log.info("data plane %s: the table is applied again", self.dataplane.name)
                    self._apply_error = None
            except DataPlaneError as exc:
                log.error("data plane %s: %s; keeping the previous rules, retrying in %.0f s",
                          self.dataplane.name, exc, APPLY_RETRY_S)
                self._apply_error = str(exc)
                self._status_soon()  # VRRP reads the error from the status file: say it now, not after the wait
                await self._announce()  # nothing we cannot forward is announced
                _wake(waiters)
                await asyncio.sleep(APPLY_RETRY_S)
                self._dirty.set()
            await self._announce()  # announced only once the table is in the kernel
            _wake(waiters)
            self.ready_event.set()  # the first table is in place (or its failure is in the status file)
            self._status_soon()

    async def _repairer(self) -> None:
        """Ask the backend every REPAIR_CHECK_S to put back rules someone else removed (nft flush ruleset)."""
        while True:
            await asyncio.sleep(REPAIR_CHECK_S)
            try:
                done = await self.dataplane.repair()
            except DataPlaneError as exc:
                if str(exc) != self._repair_error:
                    log.error("data plane %s: %s; trying again every %.1f s", self.dataplane.name, exc,
                              REPAIR_CHECK_S)
                    self._repair_error = str(exc)
                    self._status_soon()
                    await self._announce()
                continue
            if self._repair_error is not None:
                log.info("data plane %s: repaired, forwarding again", self.dataplane.name)
                self._repair_error = None
                self._status_soon()
            if done:
                log.warning("data plane %s: %s", self.dataplane.name, done)
                self.repairs += 1
                self.repaired_at = time.time()
                self.last_repair = done
                self._status_soon()
            await self._announce()  # a data plane broken under us (or back) withdraws (or announces again)

    async def _start_bgp(self) -> None:
        """pykeepalived_bgp: run the speaker; one that cannot start is logged and shown, the checker goes on."""
        if self.config.bgp is None:
            return
        from . import bgp_link  # BGP's modules load with pykeepalived_bgp only (a checker without it: 0.15 MiB less)
        from ..bgp.speaker import BgpSpeakerError

        speaker = bgp_link.speaker_for(self.config, self.status_path)
        if speaker is None:
            return
        try:
            await speaker.start()
        except (BgpSpeakerError, OSError) as exc:
            speaker.error = str(exc)
            log.error("pykeepalived_bgp: %s; nothing is announced", exc)
        self.bgp = speaker
        await self._announce()
        if self._bgp_follower is None:
            self._bgp_follower = asyncio.get_running_loop().create_task(self._follow_health())
            self._tasks.append(self._bgp_follower)

    async def _announce(self, *, withdraw_only: bool = False) -> None:
        """Bring the BGP announcements in line with quorum and the data plane (bgp/announce.py)."""
        if self.bgp is None:
            return
        from . import bgp_link

        health = ((s.plan.config, s.pool.has_quorum and self._checked_once(s)) for s in self.services)
        want = bgp_link.wanted_now(self.config, health, self.applied is not None and self.dataplane_error is None)
        await self.bgp.set_target(self.bgp.live & want if withdraw_only else want)

    @staticmethod
    def _checked_once(svc: ServiceState) -> bool:
        """Every real server of the service has been checked once (latched, so a reload does not undo it).

        A balancer that joins the tier starts with its servers in the table
        (no alpha); announcing before its first checks would send the flows
        ECMP moves to it into a table that may still count a dead server in,
        where the other balancers' tables no longer do (docs/ecmp.md).
        """
        if not svc.checked:
            svc.checked = all(chk.plan.event or chk.core.has_run or chk.attempts > 0
                              for srv in svc.servers.values() for chk in srv.checkers)
        return svc.checked

    async def _follow_health(self) -> None:
        """pykeepalived_bgp: look again every BGP_FOLLOW_S (a first check that changes nothing publishes nothing)."""
        while True:
            await asyncio.sleep(BGP_FOLLOW_S)
            await self._announce()

    async def _reload_bgp(self, old: KeepalivedConfig) -> None:
        """A reload that changes the sessions restarts bgpd (withdrawing first); one that changes only what
        is announced keeps it, and the next publish announces or withdraws."""
        if old.bgp is None and self.config.bgp is None:
            return
        from . import bgp_link

        if bgp_link.same_sessions(old, self.config):
            if self.bgp is not None and self.config.bgp is not None:
                self.bgp.settings = self.config.bgp
            return
        if self.bgp is not None:
            log.info("pykeepalived_bgp: the sessions changed; withdrawing and restarting bgpd")
            await self.bgp.stop()
            self.bgp = None
        await self._start_bgp()

    async def _refresh_status(self) -> None:
        """Rewrite the status file now and then for its counters; at scale, at most 1 % of a core for it.

        Changes are written at once (`_status_soon`) and SIGUSR1 (what
        `pykeepalived status` sends) writes a fresh one: only the counters of
        an unchanged table wait for this.
        """
        while True:
            await asyncio.sleep(max(STATUS_REFRESH_S, STATUS_REFRESH_COST * self._status_cost_s))
            self._status_soon()

    async def refresh_counts(self) -> None:
        """Connection counts from the data plane (backends without counters have none).

        Counting walks the kernel's connection table, which grows with the
        traffic, so it runs only when someone asks (`pykeepalived status`,
        SIGUSR1) or a load-based scheduler needs the figures, never on a timer.
        """
        try:
            counts = await self.dataplane.counts()
        except DataPlaneError as exc:
            log.warning("data plane %s: cannot read connection counts: %s", self.dataplane.name, exc)
            return
        if counts is not None:
            self.counts = counts
            self.counts_at = time.time()

    async def status_now(self) -> None:
        """SIGUSR1: fresh counts, then the status file at once (what `pykeepalived status` asks for)."""
        await self.refresh_counts()
        self.write_status()

    async def _rebalancer(self) -> None:
        """lc, wlc, sed, nq, fo, ovf, twos and thresholds: nftables cannot count, so follow conntrack each second."""
        while True:
            await asyncio.sleep(REBALANCE_S)
            await self.refresh_counts()
            try:
                await self.dataplane.rebalance(self.counts)
            except DataPlaneError as exc:
                log.error("data plane %s: rebalancing failed: %s", self.dataplane.name, exc)

    def _status_soon(self) -> None:
        """Rewrite the status file now, or once the interval since the last write has passed."""
        if self._status_timer is not None:
            return
        wait = self._status_written + STATUS_INTERVAL_S - self.clock()
        if wait <= 0:
            self.write_status()
        else:
            self._status_timer = asyncio.get_running_loop().call_later(wait, self._status_due)

    def _status_due(self) -> None:
        self._status_timer = None
        self.write_status()

    def status(self, with_table: bool = True) -> dict[str, Any]:
        """The queryable state: desired table, per-server checker verdicts, data-plane name.

        The table is made afresh from the status file's kept text (TableJson): a
        caller that does not read it says `with_table=False` (the state feed).
        """
        table = {"table": self._table_json(self.table)} if with_table else {}
        return {**self._status_head(), **table, **self._status_counts(),
                "services": [{**head, "real_servers": list(servers)} for head, servers in self.status_services()]}

    def status_head(self) -> dict[str, Any]:
        """`status()` without its table, counts and services (the state feed builds its part from these)."""
        return self._status_head()

    def status_services(self) -> Iterator[tuple[dict[str, Any], Iterator[dict[str, Any]]]]:
        """Each virtual server's head and its real servers' statuses, made one at a time as they are read."""
        now = self.clock()
        for svc in self.services:
            yield self._service_head(svc), self._server_statuses(svc, now)

    def _server_statuses(self, svc: ServiceState, now: float) -> Iterator[dict[str, Any]]:
        for name, srv in svc.servers.items():
            yield self._server_status(svc, name, srv, now)

    def status_parts(self) -> Iterator[str]:
        """`status()` as compact JSON (what the status file holds), in pieces.

        The head, the table STATUS_BATCH destinations at a time (TableJson keeps
        their text), then STATUS_BATCH real servers at a time.

        At 6,000 real servers the whole document as dicts is some 10 MiB, and
        its text 2-3 MB (twice: str, then bytes), all living only for the
        write: each write raised the checker's peak memory by that much
        (bench/checks.py). The file is written as the pieces come
        (write_private_parts).
        """
        now = self.clock()
        enc = _COMPACT.encode
        yield enc(self._status_head())[:-1] + ',"table":'
        yield from self._table_json.texts(self.table, STATUS_BATCH)
        yield from self._counts_parts()
        yield ',"services":['
        for i, svc in enumerate(self.services):
            yield ("," if i else "") + enc(self._service_head(svc))[:-1] + ',"real_servers":['
            batch: list[dict[str, Any]] = []
            sep = ""
            for name, srv in svc.servers.items():
                batch.append(self._server_status(svc, name, srv, now))
                if len(batch) == STATUS_BATCH:  # one encoder call per batch: its fixed cost, not per server
                    yield sep + enc(batch)[1:-1]
                    batch, sep = [], ","
            if batch:
                yield sep + enc(batch)[1:-1]
            yield "]}"
        yield "]}"

    def _status_head(self) -> dict[str, Any]:
        me = own_identity()
        return {
            "pid": os.getpid(),
            # what tells this process from a later one with the same pid (`pykeepalived status` checks it)
            "pid_start_ticks": me.start_ticks if me else None,
            "boot_id": me.boot_id if me else None,
            "time": time.time(),
            "dataplane": self.dataplane.name,
            "applied": self.applied == self.table,
            "dataplane_error": self.dataplane_error,
            "dataplane_repairs": {"count": self.repairs, "last_at": self.repaired_at, "last": self.last_repair},
            **({"bgp": self.bgp.status()} if self.bgp is not None else {}),
        }

    def _counts_parts(self) -> Iterator[str]:
        """`,"counts":{...},"counts_at":...` of the status file, STATUS_BATCH destinations at a time.

        Encoded from the counts as they are (JSON writes a tuple as an array):
        at 6,000 real servers the whole part built as lists and encoded at once
        was some 1.3 MiB living only for the write.
        """
        enc = _COMPACT.encode
        yield ',"counts":{'
        for i, (svc, dests) in enumerate(self.counts.items()):
            yield ("," if i else "") + enc(svc) + ":{"
            items = list(dests.items())
            for start in range(0, len(items), STATUS_BATCH):
                yield ("," if start else "") + enc(dict(items[start:start + STATUS_BATCH]))[1:-1]
            yield "}"
        yield '},"counts_at":' + enc(self.counts_at)

    def _status_counts(self) -> dict[str, Any]:
        return {"counts": {svc: {dest: list(c) for dest, c in dests.items()} for svc, dests in self.counts.items()},
                "counts_at": self.counts_at}

    @staticmethod
    def _service_head(svc: ServiceState) -> dict[str, Any]:
        return {"name": svc.plan.name, "quorum_up": svc.pool.has_quorum, "weight_sum": svc.pool.weight_sum()}

    @staticmethod
    def _server_status(svc: ServiceState, name: str, srv: ServerState, now: float) -> dict[str, Any]:
        return {
            "name": name,
            "alive": name in svc.pool.alive,
            "weight": srv.plan.weight,
            "effective_weight": svc.pool.effective_weight(name),
            "checkers": [{
                "kind": c.plan.kind,
                "verdict": c.core.verdict.value,
                "attempts": c.attempts,
                "last_ok": c.last_ok,
                "last_reason": c.last_reason,
                "next_in_s": round(max(0.0, c.core.next_due_s - now), 3),
            } for c in srv.checkers],
        }

    def write_status(self) -> None:
        """The status file for `pykeepalived status`: root-owned 0600, replaced whole (host/private_files.py)."""
        self._status_written = self.clock()
        if not self.status_path:
            return
        started = time.perf_counter()
        try:
            make_dirs(os.path.dirname(os.path.abspath(self.status_path)))
            # compact, through json's C encoder: with `indent` it takes its pure-Python path, which at 6,000
            # real servers cost 1.3 s of CPU and 16 MiB per write (bench/checks.py)
            write_private_parts(self.status_path, self.status_parts())
        except UnsafeFileError as exc:
            log.warning("status file not written: %s", exc)
        self._status_cost_s = time.perf_counter() - started


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def config_index(plan: CheckerPlan) -> int:
    """Which checker of its real server's config a checker plan comes from (its name is KIND#INDEX)."""
    return int(plan.name.rsplit("#", 1)[1])


def carried_core(old: CheckerCore, plan: CheckerPlan, now: float) -> CheckerCore:
    """A changed checker's new core with the old one's verdict and history: no re-check from DOWN, no flap.

    keepalived's migrate_checkers carries the same (is_up, has_run,
    retry_it); the next check comes no later than the new delay_loop.
    """
    core = plan.make_core(now, 0.0)
    core.verdict, core.has_run, core.failures = old.verdict, old.has_run, old.failures
    core.retry_it = min(old.retry_it, plan.timing.retry) if old.has_run else plan.timing.retry
    limit = plan.timing.delay_loop_s if old.has_run else plan.timing.warmup_s
    core.next_due_s = min(old.next_due_s, now + limit)
    if isinstance(core, HttpCheckerCore) and isinstance(old, HttpCheckerCore) and old.failed_url is not None:
        core.failed_url = 0  # a failing HTTP checker tries its (new) urls again from the first
    return core


def install_signal_handlers(service: CheckService, loop: asyncio.AbstractEventLoop) -> None:
    """TERM/INT stop; USR1 rewrites the status file at once and writes keepalived_check.data (keepalived's
    data dump). HUP (reload) is daemon/child_reload.py's.

    USR2 and RTMIN+2 ask VRRP for its stats and JSON dumps; the parent sends
    them to every child, so the checker must not die of them.
    """
    loop.add_signal_handler(signal.SIGTERM, service.stop)
    loop.add_signal_handler(signal.SIGINT, service.stop)
    def on_usr1() -> None:
        service.spawn(service.status_now())
        use_instance = service.config.global_defs.data_use_instance
        write_check_data(service.services, check_data_path(service.naming, use_instance))

    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    for sig in (signal.SIGUSR2, signal.SIGRTMIN + 2):
        loop.add_signal_handler(sig, lambda: None)
