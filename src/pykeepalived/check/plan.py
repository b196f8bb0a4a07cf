"""From the parsed config to what the checker service runs: services, real servers, checkers, probes.

Names follow keepalived's log spelling (`[10.0.0.1]:tcp:80`, `FWM 1`,
`[group]:80`) so that log lines, notify_fifo lines and the status view read
the same as keepalived's. Everything that can be refused (a checker we cannot
run) is refused here, before the first check, with the config's file:line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.model import CheckerBase, HttpCheck, KeepalivedConfig, RealServer, VirtualServer
from ..config.vocabulary import HTTP_KINDS, CheckerKind, Family
from ..lvs.model import Destination, GroupEntry, VirtualService
from .http import HttpProbe
from .logic import CheckerCore, CheckTiming, HttpCheckerCore
from .pool import Member, Pool, Row
from .probe import Probe
from .probes import ProbeContext, make_probes

# keepalived's PING, UDP, DNS and MISC checkers only wait delay_loop while DOWN (TCP keeps retrying)
WAIT_WHILE_DOWN: frozenset[CheckerKind] = frozenset({"PING_CHECK", "UDP_CHECK", "DNS_CHECK", "MISC_CHECK"})
# FILE_CHECK follows a file that keepalived watches with inotify: we read it this often, and act at once
FILE_POLL_S = 0.2


def trio(address: object, protocol: str | None, port: int | None) -> str:
    """keepalived's `[address]:proto:port` (proto `none` when the service has none, e.g. fwmark)."""
    return f"[{address}]:{(protocol or 'none').lower()}:{port or 0}"


def service_name(vs: VirtualServer) -> str:
    if vs.kind == "group":
        return f"[{vs.group}]:{vs.port or 0}"
    if vs.kind == "fwmark":
        return f"FWM {vs.fwmark}"
    return trio(vs.address, vs.protocol, vs.port)


@dataclass
class CheckerPlan:
    """One checker of one real server: its timing and its probe."""

    name: str
    kind: CheckerKind
    timing: CheckTiming
    probe: Probe
    config: CheckerBase
    immediate: bool = False

    def make_core(self, now: float, first_offset_s: float) -> CheckerCore:
        """HTTP_GET/SSL_GET step through their urls with keepalived's HTTP rules; the others share one rule."""
        if self.kind in HTTP_KINDS and isinstance(self.probe, HttpProbe) and isinstance(self.config, HttpCheck):
            return HttpCheckerCore(self.timing, now, first_offset_s, urls=self.probe.steps,
                                   fast_recovery=self.config.fast_recovery)
        return CheckerCore(self.timing, now, first_offset_s, retry_while_down=self.kind not in WAIT_WHILE_DOWN)


@dataclass
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

    def make_pool(self) -> Pool:
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
        vs = self.config
        return VirtualService(
            name=self.name,
            kind=vs.kind,
            address=str(vs.address) if vs.address is not None else None,
            port=vs.port,
            protocol=vs.protocol,
            fwmark=vs.fwmark,
            group=vs.group,
            group_entries=groups.get(vs.group or "", ()),
            family=self.family(),
            scheduler=vs.lvs_sched or "wlc",
            sched_flags=tuple(vs.sched_flags),
            method=vs.lvs_method or "NAT",
            persistence_timeout_s=vs.persistence_timeout_s,
            persistence_granularity=vs.persistence_granularity,
            persistence_engine=vs.persistence_engine,
            quorum_up=pool.has_quorum,
            destinations=tuple(self._destination(row) for row in pool.rows()),
        )

    def family(self) -> Family | None:
        """The address family keepalived gives the service: what fwmark services need to be told.

        ip_family; else (fwmark) the first real or sorry server not behind a
        tunnel; else a persistence_granularity with a dot means IPv4, other
        granularity IPv6; else the tunnelled servers' one family.
        """
        vs = self.config
        if vs.ip_family in (4, 6) or vs.kind != "fwmark":
            return vs.ip_family
        servers = [(rs.address.version, rs.lvs_method or vs.lvs_method) for rs in vs.real_servers]
        if vs.sorry_server is not None:
            servers.append((vs.sorry_server.address.version, vs.sorry_server_lvs_method or vs.lvs_method))
        for version, method in servers:
            if method != "TUN":
                return version
        if vs.persistence_granularity:
            return 4 if "." in vs.persistence_granularity else 6
        families = {version for version, _ in servers}
        return families.pop() if len(families) == 1 else None

    def _destination(self, row: Row) -> Destination:
        vs = self.config
        if row.sorry:
            sorry = vs.sorry_server
            assert sorry is not None
            return Destination(str(sorry.address), sorry.port if sorry.port is not None else vs.port, row.weight,
                               method=vs.sorry_server_lvs_method or vs.lvs_method or "NAT", alive=row.alive, sorry=True)
        rs = self.by_name[row.key].config
        return Destination(
            str(rs.address), rs.port, row.weight,
            method=rs.lvs_method or vs.lvs_method or "NAT", alive=row.alive,
            uthreshold=rs.uthreshold, lthreshold=rs.lthreshold, tunnel=rs.tunnel or vs.tunnel,
        )


def group_entries(config: KeepalivedConfig) -> dict[str, tuple[GroupEntry, ...]]:
    return {
        name: tuple(
            GroupEntry(e.kind, str(e.address) if e.address is not None else None,
                       str(e.last_address) if e.last_address is not None else None, e.prefix_len, e.port, e.fwmark,
                       e.family)
            for e in group.entries
        )
        for name, group in config.virtual_server_groups.items()
    }


def timing_of(checker: CheckerBase) -> CheckTiming:
    """The completed timing (config/complete.py has inherited it from the real and virtual server)."""
    delay_loop = checker.delay_loop_s if checker.delay_loop_s is not None else 60.0
    return CheckTiming(
        delay_loop_s=delay_loop,
        connect_timeout_s=checker.connect_timeout_s if checker.connect_timeout_s is not None else 5.0,
        retry=checker.retry if checker.retry is not None else 1,
        delay_before_retry_s=checker.delay_before_retry_s if checker.delay_before_retry_s is not None else 1.0,
        warmup_s=checker.warmup_s if checker.warmup_s is not None else delay_loop,
        alpha=bool(checker.alpha),
    )


def build_plan(config: KeepalivedConfig) -> list[ServicePlan]:
    """Every virtual server with its real servers and their probes (UnsupportedChecker if one cannot run)."""
    track_paths = {name: tf.file for name, tf in config.track_files.items() if tf.file}
    track_weights = {name: (tf.weight, tf.weight_reverse) for name, tf in config.track_files.items()}
    plans: list[ServicePlan] = []
    for vs in config.virtual_servers:
        name = service_name(vs)
        servers: list[RealServerPlan] = []
        for rs in vs.real_servers:
            rs_name = trio(rs.address, vs.protocol, rs.port)
            inhibit = rs.inhibit_on_failure if rs.inhibit_on_failure is not None else vs.inhibit_on_failure
            plan = RealServerPlan(rs_name, rs, rs.weight if rs.weight is not None else vs.weight, inhibit)
            ctx = ProbeContext(vs, rs, config.ssl, config.global_defs, track_paths, track_weights)
            for index, checker in enumerate(rs.checkers):
                timing = timing_of(checker)
                immediate = checker.kind == "FILE_CHECK"
                if immediate:
                    timing = CheckTiming(delay_loop_s=FILE_POLL_S, connect_timeout_s=1.0, retry=0,
                                         delay_before_retry_s=FILE_POLL_S, warmup_s=0.0, alpha=False)
                for probe in make_probes(checker, ctx):
                    plan.checkers.append(CheckerPlan(
                        f"{checker.kind}#{index}", checker.kind, timing, probe, checker, immediate))
            servers.append(plan)
        sorry = None
        if vs.sorry_server is not None:
            sorry = trio(vs.sorry_server.address, vs.protocol, vs.sorry_server.port or vs.port)
        plans.append(ServicePlan(name, vs, servers, sorry))
    return plans

