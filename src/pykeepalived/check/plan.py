"""From the parsed config to what the checker service runs: services, real servers, checkers, probes.

Names follow keepalived's log spelling (`[10.0.0.1]:tcp:80`, `FWM 1`,
`[group]:80`) so that log lines, notify_fifo lines and the status view read
the same as keepalived's. Everything that can be refused (a checker we cannot
run) is refused here, before the first check, with the config's file:line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config.checker_timing import completed_timing
from ..config.model import CheckerBase, HttpCheck, KeepalivedConfig, RealServer, VirtualServer
from ..config.vocabulary import HTTP_KINDS, CheckerKind
from ..lvs.plan import (desired_service, real_destination, real_server_name, service_name, sorry_destination,
                        sorry_server_name)
from ..config.checker_timing import CheckerTiming
from .probes import ProbeContext, make_probes

if TYPE_CHECKING:  # `-t` builds the plan to refuse what cannot run; cores and pools are the daemon's
    from ..lvs.model import Destination, GroupEntry, VirtualService
    from .logic import CheckerCore
    from .pool import Pool, Row
    from .probe import Probe

# keepalived's PING, UDP, DNS and MISC checkers only wait delay_loop while DOWN (TCP keeps retrying)
WAIT_WHILE_DOWN: frozenset[CheckerKind] = frozenset({"PING_CHECK", "UDP_CHECK", "DNS_CHECK", "MISC_CHECK"})
# FILE_CHECK follows a file that keepalived watches with inotify: we read it this often, and act at once
FILE_POLL_S = 0.2
FILE_TIMING = CheckerTiming(delay_loop_s=FILE_POLL_S, connect_timeout_s=1.0, retry=0,
                          delay_before_retry_s=FILE_POLL_S, warmup_s=0.0, alpha=False)


@dataclass(slots=True)
class CheckerPlan:
    """One checker of one real server: its timing and its probe."""

    name: str
    kind: CheckerKind
    timing: CheckerTiming
    probe: Probe
    config: CheckerBase
    immediate: bool = False
    event: bool = False  # BFD_CHECK: never scheduled, its verdict follows the BFD process (check/bfd_check.py)

    def make_core(self, now: float, first_offset_s: float) -> CheckerCore:
        """HTTP_GET/SSL_GET step through their urls with keepalived's HTTP rules; the others share one rule."""
        from .logic import CheckerCore, HttpCheckerCore

        if self.kind in HTTP_KINDS and isinstance(self.config, HttpCheck):
            from .http import HttpProbe  # only HTTP_GET/SSL_GET configs load the HTTP probe (and asyncio, ssl)

            if isinstance(self.probe, HttpProbe):
                return HttpCheckerCore(self.timing, now, first_offset_s, urls=self.probe.steps,
                                       fast_recovery=self.config.fast_recovery)
        return CheckerCore(self.timing, now, first_offset_s, retry_while_down=self.kind not in WAIT_WHILE_DOWN)


@dataclass(slots=True)
class RealServerPlan:
    name: str
    config: RealServer
    weight: int
    inhibit_on_failure: bool
    checkers: list[CheckerPlan] = field(default_factory=list)


@dataclass
class ServicePlan:
    name: str
    config: VirtualServer
    real_servers: list[RealServerPlan]
    sorry_name: str | None = None

    def __post_init__(self) -> None:
        self.by_name = {rs.name: rs for rs in self.real_servers}
        # (server, weight, alive) -> its table entry: a decision about one server of thousands rebuilds the
        # service's entry from kept objects (57 -> ~15 ms at 5,000 servers; the diff then finds them equal at once)
        self._destinations: dict[tuple[str, int, bool], Destination] = {}
        # lvs/plan.py service_pool's value, made once and named by the kept destinations: every entry shares it
        self.table_pool = tuple((self._real(rs.name, rs.weight, True).name, rs.weight) for rs in self.real_servers)

    def make_pool(self) -> Pool:
        from .pool import Member, Pool

        vs = self.config
        return Pool(
            [Member(rs.name, rs.weight, rs.inhibit_on_failure) for rs in self.real_servers],
            quorum=vs.quorum,
            hysteresis=vs.hysteresis,
            sorry_server=self.sorry_name,
            sorry_inhibit=vs.sorry_server_inhibit,
        )

    def virtual_service(self, pool: Pool, groups: dict[str, tuple[GroupEntry, ...]]) -> VirtualService:
        """The desired table entry for this service, from its pool's rows now."""
        return desired_service(self.config, self.name, (self._destination(row) for row in pool.rows()),
                               pool.has_quorum, groups, self.table_pool)

    def _destination(self, row: Row) -> Destination:
        if row.sorry:
            return sorry_destination(self.config, row.weight, row.alive)
        return self._real(row.key, row.weight, row.alive)

    def _real(self, server: str, weight: int, alive: bool) -> Destination:
        key = (server, weight, alive)
        dest = self._destinations.get(key)
        if dest is None:
            if len(self._destinations) > 2 * len(self.real_servers):  # weights that came and went: start over
                self._destinations.clear()
            dest = self._destinations[key] = real_destination(self.config, self.by_name[server].config,
                                                              weight, alive)
        return dest


def timing_of(checker: CheckerBase) -> CheckerTiming:
    """The timing config completion wrote into the checker (config/checker_timing.py's rules): nothing re-defaulted."""
    return completed_timing(checker)


def build_plan(config: KeepalivedConfig) -> list[ServicePlan]:
    """Every virtual server with its real servers and their probes (UnsupportedChecker if one cannot run)."""
    track_paths = {name: tf.file for name, tf in config.track_files.items() if tf.file}
    track_weights = {name: (tf.weight, tf.weight_reverse) for name, tf in config.track_files.items()}
    plans: list[ServicePlan] = []
    timings: dict[CheckerTiming, CheckerTiming] = {}  # one object per distinct timing, not one per checker
    for vs in config.virtual_servers:
        name = service_name(vs)
        servers: list[RealServerPlan] = []
        for rs in vs.real_servers:
            rs_name = real_server_name(vs, rs)
            inhibit = rs.inhibit_on_failure if rs.inhibit_on_failure is not None else vs.inhibit_on_failure
            plan = RealServerPlan(rs_name, rs, rs.weight if rs.weight is not None else vs.weight, inhibit)
            ctx = ProbeContext(vs, rs, config.ssl, config.global_defs, track_paths, track_weights)
            for index, checker in enumerate(rs.checkers):
                immediate = checker.kind == "FILE_CHECK"
                timing = FILE_TIMING if immediate else timings.setdefault(t := timing_of(checker), t)
                for probe in make_probes(checker, ctx):
                    plan.checkers.append(CheckerPlan(
                        sys.intern(f"{checker.kind}#{index}"), checker.kind, timing, probe, checker, immediate,
                        event=checker.kind == "BFD_CHECK"))
            servers.append(plan)
        plans.append(ServicePlan(name, vs, servers, sorry_server_name(vs)))
    return plans

