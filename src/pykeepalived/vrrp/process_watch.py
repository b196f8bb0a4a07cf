"""The vrrp_track_process loop: poll /proc, feed the quorum core, report the trackers that moved.

keepalived scans /proc once and then listens to the kernel's proc connector
(netlink CN_PROC). That connector exists only in the initial network
namespace: keepalived 2.2.7 run inside any other namespace logs "Failed to
set/clear process event listen - errno 111" and never sees a process start or
stop (checked on this host). pykeepalived listens to the same events where
they exist (host/proc_connector.py) and rescans /proc when a process forks,
execs, is renamed or exits; elsewhere (a namespace, `net_namespace`, a
container) it polls /proc every PROC_POLL_S. Fork and terminate delays wake
it on time. A scan reads /proc/PID/stat of every process (15 to 30 us each on
this 2-core test host), so scans are spaced to cost at most MAX_CPU_SHARE of a
core (1,000 processes: one scan every 0.3 to 0.6 s at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..host.proc_connector import ProcConnector
from ..net.netlink_bufs import RcvBuf, set_rcvbuf
from ..host.proc_watch import read_processes
from .track_process import ProcessTable

PROC_POLL_S = 0.2
CONNECTOR_RESCAN_S = 5.0  # with process events, /proc is still read this often (events can be lost)
MAX_CPU_SHARE = 0.05  # a scan may cost at most this share of a core: many processes poll less often
log = logging.getLogger("pykeepalived.vrrp")


def first_scan(table: ProcessTable, now: float) -> None:
    """keepalived's start-up scan: the counts the instances start with, no delays."""
    table.observe(read_processes(table.needs_cmdline), now)


async def watch_processes(table: ProcessTable, changed: Callable[[str, bool], None],
                          clock: Callable[[], float], rcvbuf: RcvBuf | None = None) -> None:
    """Watch for ever; `changed(name, have_quorum)` for each tracker whose quorum moved.

    The first scan must already have been given to `table` (start-up counts,
    no delays); fork and terminate delays wake the loop on time. With the
    kernel's process events (the initial network namespace) /proc is read
    again as soon as a process forks, execs, is renamed or exits, and every
    CONNECTOR_RESCAN_S anyway; elsewhere every PROC_POLL_S. Either way scans
    are spaced so that they cost at most MAX_CPU_SHARE of a core.
    """
    need_cmdline = table.needs_cmdline
    connector = ProcConnector.open()
    if connector is not None:
        set_rcvbuf(connector.sock, rcvbuf)  # global_defs process_monitor_rcv_bufs[_force]
    news = asyncio.Event()
    loop = asyncio.get_running_loop()
    if connector is not None:
        log.info("vrrp_track_process: following the kernel's process events")

        def readable() -> None:
            try:
                if connector.drain():
                    news.set()
            except OSError as exc:
                log.error("process events: %s", exc)
                news.set()

        loop.add_reader(connector.fileno(), readable)
        news.set()  # a process may have come or gone between the start-up scan and the subscription
    else:
        log.info("vrrp_track_process: no process events in this network namespace; polling /proc every %.1f s",
                 PROC_POLL_S)
    try:
        while True:
            spacing = table.last_scan_s / MAX_CPU_SHARE  # scans cost at most MAX_CPU_SHARE of a core
            deadline = table.deadline()
            if connector is None:
                wait = max(PROC_POLL_S, spacing)
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - clock()))
                await asyncio.sleep(wait)
            else:
                await asyncio.sleep(spacing)
                wait = CONNECTOR_RESCAN_S if deadline is None else max(0.0, deadline - clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(news.wait(), wait)
                news.clear()
            _scan_once(table, changed, clock, need_cmdline)
    finally:
        if connector is not None:
            loop.remove_reader(connector.fileno())
            connector.close()


def _scan_once(table: ProcessTable, changed: Callable[[str, bool], None], clock: Callable[[], float],
               need_cmdline: bool) -> None:
    before = {name: table.has_quorum(name) for name in table.names()}
    table.expire(clock())
    started = time.perf_counter()
    try:
        seen = read_processes(need_cmdline)
    except OSError as exc:  # /proc unreadable for a moment: keep the counts, try again
        log.error("cannot read /proc for vrrp_track_process: %s", exc)
        seen = None
    table.last_scan_s = time.perf_counter() - started
    if seen is not None:
        table.observe(seen, clock())
    for name, had in before.items():
        quorum = table.has_quorum(name)
        if quorum != had:
            log.info("Quorum %s for tracked process %s", "gained" if quorum else "lost", name)
            changed(name, quorum)
