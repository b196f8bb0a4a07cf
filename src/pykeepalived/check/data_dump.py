"""SIGUSR1's keepalived_check.data for the checker process: keepalived 2.2.7's LVS Topology section.

keepalived's checker writes its global definitions, the LVS topology (each
virtual server, then its real servers, check/check_data.c dump_vs and
dump_rs) and its checker queue. No exporter we know of reads this file; we
write the topology part with keepalived's labels, indents and number forms
(times as seconds with six decimals, format_decimal) from a plain view the
shell fills (check/dump_writer.py). The global definitions and the checker
queue (one block per checker kind with keepalived's internal fields) are left
out: docs/dumps.md says so. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LVS_VERSION = "1.2.1"  # what keepalived 2.2.7 prints from the kernel headers it was built with


@dataclass(frozen=True)
class RealServerView:
    address: str
    port: int
    weight: int
    effective_weight: int
    method: str  # NAT, DR, TUN
    connect_timeout_s: float
    delay_loop_s: float
    alive: bool
    failed_checkers: int = 0
    in_table: bool = True
    alpha: bool = False
    uthreshold: int = 0
    lthreshold: int = 0
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    inhibit: bool = False
    notify_up: str | None = None
    notify_down: str | None = None
    virtualhost: str | None = None
    smtp_alert: bool = False


@dataclass(frozen=True)
class VirtualServerView:
    kind: str  # "ip", "fwmark" or "group"
    address: str = ""
    port: int = 0
    fwmark: int = 0
    group: str = ""
    family: int = 4
    connect_timeout_s: float = 5.0
    delay_loop_s: float = 60.0
    scheduler: str = "wlc"
    sched_flags: tuple[str, ...] = ()
    ops: bool = False
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None
    protocol: str = "TCP"
    alpha: bool = False
    omega: bool = False
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    inhibit: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: str | None = None
    quorum_down: str | None = None
    ha_suspend: bool = False
    smtp_alert: bool = False
    method: str = "NAT"
    virtualhost: str | None = None
    sorry_server: str | None = None
    sorry_method: str = "NAT"
    sorry_inhibit: bool = False
    alive: bool = True
    quorum_up_state: bool = True
    real_servers: tuple[RealServerView, ...] = ()


def decimal6(seconds: float) -> str:
    """keepalived's format_decimal(value in microseconds, 6): `5.000000`."""
    micros = int(round(seconds * 1_000_000))
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _onoff(flag: bool) -> str:
    return "ON" if flag else "OFF"


def _abled(flag: bool) -> str:
    return "enabled" if flag else "disabled"


def _retry_lines(retry: int | None, delay: float | None, warmup: float | None) -> list[str]:
    lines = []
    if retry is not None:
        lines.append(f"   Retry count = {retry}")
    if delay is not None:
        lines.append(f"   Retry delay = {decimal6(delay)}")
    if warmup is not None:
        lines.append(f"   Warmup = {decimal6(warmup)}")
    return lines


def _vs_lines(vs: VirtualServerView) -> list[str]:
    lines = [" ------< Virtual server >------"]
    if vs.kind == "group":
        lines.append(f" VS GROUP = [{vs.group}]:{vs.port}")
    elif vs.kind == "fwmark":
        lines.append(f" VS FWMARK = {vs.fwmark}")
    else:
        lines.append(f" VS VIP = {vs.address}, VPORT = {vs.port}")
    if vs.virtualhost:
        lines.append(f"   VirtualHost = {vs.virtualhost}")
    lines += [
        f"   Address family = inet{'' if vs.family == 4 else '6'}",
        f"   connection timeout = {decimal6(vs.connect_timeout_s)}",
        f"   delay_loop = {decimal6(vs.delay_loop_s)}",
        f"   lvs_sched = {vs.scheduler}",
        f"   Hashed = {_abled('hashed' in vs.sched_flags)}",
    ]
    if vs.scheduler == "sh" or vs.scheduler == "mh":
        lines.append(f"   {vs.scheduler}-port = {_abled(f'{vs.scheduler}-port' in vs.sched_flags)}")
        lines.append(f"   {vs.scheduler}-fallback = {_abled(f'{vs.scheduler}-fallback' in vs.sched_flags)}")
    else:
        lines += [f"   flag-{n} = {_abled(f'flag-{n}' in vs.sched_flags)}" for n in (1, 2, 3)]
    lines.append(f"   One packet scheduling = {_abled(vs.ops)}"
                 + (" (inactive due to not UDP)" if vs.ops and vs.protocol != "UDP" else ""))
    if vs.persistence_timeout:
        lines.append(f"   persistence timeout = {vs.persistence_timeout}")
    if vs.persistence_granularity:
        lines.append(f"   persistence granularity = {vs.persistence_granularity}")
    lines += [
        f"   protocol = {vs.protocol}",
        f"   alpha is {_onoff(vs.alpha)}",
        f"   omega is {_onoff(vs.omega)}",
        *_retry_lines(vs.retry, vs.delay_before_retry_s, vs.warmup_s),
        f"   Inhibit on failure is {_onoff(vs.inhibit)}",
        f"   quorum = {vs.quorum}, hysteresis = {vs.hysteresis}",
    ]
    if vs.quorum_up:
        lines.append(f"   Quorum up notify script = {vs.quorum_up}")
    if vs.quorum_down:
        lines.append(f"   Quorum down notify script = {vs.quorum_down}")
    if vs.ha_suspend:
        lines.append("   Using HA suspend")
    lines.append(f"   Using smtp notification = {'yes' if vs.smtp_alert else 'no'}")
    lines.append(f"   default forwarding method = {vs.method}")
    if vs.sorry_server:
        lines.append(f"   sorry server = {vs.sorry_server}")
        lines.append(f"     forwarding method = {vs.sorry_method}")
        lines.append(f"     Inhibit on failure is {_onoff(vs.sorry_inhibit)}")
    lines += [f"   alive = {int(vs.alive)}", f"   quorum_state_up = {int(vs.quorum_up_state)}", "   reloaded = 0"]
    return lines  # its real servers follow (check_data_parts)


def _rs_lines(rs: RealServerView) -> list[str]:
    lines = [
        "   ------< Real server >------",
        f"   RIP = {rs.address}, RPORT = {rs.port}, WEIGHT = {max(rs.effective_weight, 0)} "
        f"EFF WEIGHT = {rs.effective_weight}",
        f"   forwarding method = {rs.method}",
        f"   Alpha is {_onoff(rs.alpha)}",
        f"   connection timeout = {decimal6(rs.connect_timeout_s)}",
        f"   connection limit range = {rs.lthreshold} -> {rs.uthreshold}",
        f"   Delay loop = {decimal6(rs.delay_loop_s)}",
        *_retry_lines(rs.retry, rs.delay_before_retry_s, rs.warmup_s),
        f"   Inhibit on failure is {_onoff(rs.inhibit)}",
    ]
    if rs.notify_up:
        lines.append(f"     RS up notify script = {rs.notify_up}")
    if rs.notify_down:
        lines.append(f"     RS down notify script = {rs.notify_down}")
    if rs.virtualhost:
        lines.append(f"    VirtualHost = '{rs.virtualhost}'")
    lines += [
        f"   Using smtp notification = {'yes' if rs.smtp_alert else 'no'}",
        f"   initial weight = {rs.weight}",
        f"   effective weight = {rs.effective_weight}",
        f"   previous effective_weight = {rs.effective_weight}",
        f"   alive = {int(rs.alive)}",
        f"   num failed checkers = {rs.failed_checkers}",
        f"   RS set = {int(rs.in_table)}",
        "   reloaded = 0",
    ]
    return lines


def format_check_data(services: tuple[VirtualServerView, ...]) -> str:
    """The whole file: the LVS Topology section (nothing when there is no virtual server)."""
    return "".join(check_data_parts((vs, vs.real_servers) for vs in services))


def check_data_parts(services: Iterable[tuple[VirtualServerView, Iterable[RealServerView]]]) -> Iterator[str]:
    """format_check_data's text in pieces, one virtual server's head or one real server at a time.

    Each virtual server comes with its real servers apart (its own
    `real_servers` is not read), so that the caller can make their views one
    by one: at 6,000 real servers the whole text as lines was some 16 MiB that
    lived only for the write, and each SIGUSR1 raised the checker's peak
    memory by that much (bench/checks.py).
    """
    first = True
    for vs, servers in services:
        if first:
            yield f"------< LVS Topology >------\n System is compiled with LVS v{LVS_VERSION}\n"
            first = False
        yield _text(_vs_lines(vs))
        for rs in servers:
            yield _text(_rs_lines(rs))


def _text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)
