"""SIGUSR1 in the checker: keepalived_check.data, filled from the running services and written 0600.

keepalived's checker answers SIGUSR1 with keepalived_check.data in its dump
directory ($TMPDIR, else /tmp); ours does that besides rewriting the status
file for `pykeepalived status`. The running state comes in as plain
protocols (what this module reads of check/service.py's ServiceState),
since check/service.py calls this module and cannot be imported by it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from ..config.model import RealServer, Script, VirtualServer
from ..config.instance_names import Naming, data_dump_path
from ..host.private_files import UnsafeFileError, keepalived_tmp_dir, write_private_parts
from .data_dump import RealServerView, VirtualServerView, check_data_parts
from .logic import Verdict
from .plan import RealServerPlan, ServicePlan
from .pool import Pool

log = logging.getLogger("pykeepalived.check")

CHECK_DATA_FILE = "keepalived_check.data"


class _CheckerLike(Protocol):
    offset: int

    @property
    def core(self) -> object: ...


class ServerLike(Protocol):
    plan: RealServerPlan

    @property
    def checkers(self) -> Sequence[_CheckerLike]: ...


class ServiceLike(Protocol):
    plan: ServicePlan
    pool: Pool

    @property
    def servers(self) -> Mapping[str, ServerLike]: ...


def _cmd(script: Script | None) -> str | None:
    if script is None or not script.argv:
        return None
    return " ".join(f"'{word}'" for word in script.argv) + ", uid:gid 0:0"


def _verdict(checker: _CheckerLike) -> object:
    return getattr(checker.core, "verdict", None)


def _real_server(vs: VirtualServer, plan: RealServerPlan, server: ServerLike | None, pool: Pool) -> RealServerView:
    rs: RealServer = plan.config
    checkers = list(server.checkers) if server is not None else []
    failed = sum(1 for c in checkers if _verdict(c) is not Verdict.UP)
    effective = plan.weight + sum(c.offset for c in checkers)
    alive = plan.name in pool.alive
    return RealServerView(
        address=str(rs.address), port=rs.port or vs.port or 0, weight=plan.weight, effective_weight=effective,
        method=rs.lvs_method or vs.lvs_method or "NAT",
        connect_timeout_s=rs.connect_timeout_s if rs.connect_timeout_s is not None else vs.connect_timeout_s,
        delay_loop_s=rs.delay_loop_s if rs.delay_loop_s is not None else vs.delay_loop_s,
        alive=alive, failed_checkers=failed, in_table=alive or plan.inhibit_on_failure,
        alpha=bool(rs.alpha), uthreshold=rs.uthreshold or 0, lthreshold=rs.lthreshold or 0,
        retry=rs.retry, delay_before_retry_s=rs.delay_before_retry_s, warmup_s=rs.warmup_s,
        inhibit=plan.inhibit_on_failure, notify_up=_cmd(rs.notify_up), notify_down=_cmd(rs.notify_down),
        virtualhost=rs.virtualhost, smtp_alert=bool(rs.smtp_alert),
    )


def collect(services: Iterable[ServiceLike]) -> tuple[VirtualServerView, ...]:
    """The view of every virtual server at this moment."""
    return tuple(replace(vs, real_servers=tuple(servers)) for vs, servers in views(services))


def views(services: Iterable[ServiceLike]) -> Iterator[tuple[VirtualServerView, Iterator[RealServerView]]]:
    """Each virtual server's view (its `real_servers` left empty) and its real servers' views, made lazily."""
    for svc in services:
        vs = svc.plan.config
        sorry = vs.sorry_server
        kind = "group" if vs.group else ("fwmark" if vs.fwmark else "ip")
        family = 6 if (vs.address is not None and vs.address.version == 6) or vs.ip_family == 6 else 4
        yield VirtualServerView(
            kind=kind, address=str(vs.address or ""), port=vs.port or 0, fwmark=vs.fwmark or 0,
            group=vs.group or "", family=family, connect_timeout_s=vs.connect_timeout_s,
            delay_loop_s=vs.delay_loop_s, scheduler=vs.lvs_sched or "wlc", sched_flags=tuple(vs.sched_flags),
            ops="ops" in vs.sched_flags, persistence_timeout=vs.persistence_timeout_s,
            persistence_granularity=vs.persistence_granularity, protocol=vs.protocol or "TCP",
            alpha=vs.alpha, omega=vs.omega, retry=vs.retry, delay_before_retry_s=vs.delay_before_retry_s,
            warmup_s=vs.warmup_s, inhibit=vs.inhibit_on_failure, quorum=vs.quorum, hysteresis=vs.hysteresis,
            quorum_up=_cmd(vs.quorum_up), quorum_down=_cmd(vs.quorum_down), ha_suspend=vs.ha_suspend,
            smtp_alert=bool(vs.smtp_alert), method=vs.lvs_method or "NAT", virtualhost=vs.virtualhost,
            sorry_server=f"[{sorry.address}]:{sorry.port or vs.port or 0}" if sorry is not None else None,
            sorry_method=vs.sorry_server_lvs_method or vs.lvs_method or "NAT", sorry_inhibit=vs.sorry_server_inhibit,
            alive=svc.pool.has_quorum, quorum_up_state=svc.pool.has_quorum,
        ), _real_servers(vs, svc)


def _real_servers(vs: VirtualServer, svc: ServiceLike) -> Iterator[RealServerView]:
    for rs in svc.plan.real_servers:
        yield _real_server(vs, rs, svc.servers.get(rs.name), svc.pool)


def check_data_path(naming: Naming, data_use_instance: bool, directory: str | None = None) -> str:
    """keepalived_check.data in keepalived's tmp dir; with data_use_instance, keepalived_check.NS_INSTANCE.data."""
    return data_dump_path(CHECK_DATA_FILE, directory or keepalived_tmp_dir(), naming, data_use_instance)


def write_check_data(services: Iterable[ServiceLike], path: str | None = None) -> str | None:
    """keepalived_check.data (root-owned 0600); None if refused."""
    target = path or check_data_path(Naming(), False)
    try:
        write_private_parts(target, check_data_parts(views(services)))  # never the whole text at once
    except UnsafeFileError as exc:
        log.error("checker data dump not written: %s", exc)
        return None
    return target
