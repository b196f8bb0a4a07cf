"""The vrrp_track_process loop: poll /proc, feed the quorum core, report the trackers that moved.

keepalived scans /proc once and then listens to the kernel's proc connector
(netlink CN_PROC). That connector exists only in the initial network
namespace: keepalived 2.2.7 run inside any other namespace logs "Failed to
set/clear process event listen - errno 111" and never sees a process start or
stop (checked on this host). pykeepalived polls /proc instead, every
PROC_POLL_S, so that it tracks processes wherever it runs (a namespace,
`net_namespace`, a container); fork and terminate delays wake it on time.
A scan reads /proc/PID/stat of every process (15 to 30 us each on this 2-core test host), so on a
host with many processes the interval grows to keep the scans under
MAX_CPU_SHARE of a core (1,000 processes: 0.3 to 0.6 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..host.proc_watch import read_processes
from .track_process import ProcessTable

PROC_POLL_S = 0.2
MAX_CPU_SHARE = 0.05  # a scan may cost at most this share of a core: many processes poll less often
log = logging.getLogger("pykeepalived.vrrp")


def first_scan(table: ProcessTable, now: float) -> None:
    """keepalived's start-up scan: the counts the instances start with, no delays."""
    table.observe(read_processes(table.needs_cmdline), now)


async def watch_processes(table: ProcessTable, changed: Callable[[str, bool], None],
                          clock: Callable[[], float]) -> None:
    """Poll /proc for ever; `changed(name, have_quorum)` for each tracker whose quorum moved.

    The first scan must already have been given to `table` (start-up counts,
    no delays); fork and terminate delays wake the loop on time.
    """
    need_cmdline = table.needs_cmdline
    interval = PROC_POLL_S
    while True:
        deadline = table.deadline()
        wait = interval if deadline is None else min(interval, max(0.0, deadline - clock()))
        await asyncio.sleep(wait)
        before = {name: table.has_quorum(name) for name in table.names()}
        table.expire(clock())
        started = time.perf_counter()
        try:
            seen = read_processes(need_cmdline)
        except OSError as exc:  # /proc unreadable for a moment: keep the counts, try again
            log.error("cannot read /proc for vrrp_track_process: %s", exc)
            seen = None
        interval = max(PROC_POLL_S, (time.perf_counter() - started) / MAX_CPU_SHARE)
        if seen is not None:
            table.observe(seen, clock())
        for name, had in before.items():
            quorum = table.has_quorum(name)
            if quorum == had:
                continue
            log.info("Quorum %s for tracked process %s", "gained" if quorum else "lost", name)
            changed(name, quorum)
