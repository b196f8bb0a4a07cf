"""global_defs max_auto_priority and min_auto_priority_delay: go realtime when the event loop falls behind.

keepalived 2.2.7 (lib/scheduler.c, lib/process.c), in its VRRP and checker
processes: whenever its loop wakes up and the earliest timer expired more than
`min_auto_priority_delay` microseconds ago (default 1 s), it logs "A thread
timer expired S.UUUUUU seconds ago" and raises itself one step: a process not
yet realtime becomes SCHED_RR at the lowest realtime priority (1), with
SCHED_RESET_ON_FORK and the process's RLIMIT_RTTIME (`*_rlimit_rttime`,
default 10,000 us); a realtime one goes up by one, never past
`max_auto_priority` ("Set realtime priority N"). `max_auto_priority` without a
value means 99; 0 (the default) or -1 turns the feature off. A process that
starts realtime (`vrrp_rt_priority`) climbs from there.

An asyncio loop has no single "earliest timer" to look at, so a watcher task
sleeps `TICK_S` (or the delay, when shorter) at a time and measures how late
it woke: a stall of the loop (a blocked call, a starved CPU, SIGSTOP) makes
that wake-up late by about the stall's length. The priority is the loop
thread's, as keepalived's single thread's; executor threads keep theirs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from dataclasses import dataclass

from ..config.model import GlobalDefs
from .tuning import KEEPALIVED_RT_RLIMIT_US as RT_RLIMIT_DEFAULT_US, Process, on_sigxcpu  # keepalived's 10 ms

log = logging.getLogger("pykeepalived")

MAX_RT_PRIORITY = 99  # sched_get_priority_max(SCHED_RR) on Linux
TICK_S = 0.1


@dataclass(frozen=True)
class AutoPriority:
    """One process's policy: climb up to `max_priority` when the loop is late by more than `min_delay_s`."""

    process: Process
    max_priority: int
    min_delay_s: float
    rlimit_rttime_us: int = RT_RLIMIT_DEFAULT_US

    @property
    def tick_s(self) -> float:
        return min(TICK_S, self.min_delay_s)


def auto_priority_for(g: GlobalDefs, process: Process) -> AutoPriority | None:
    """The VRRP or checker process's policy; None when max_auto_priority leaves it off (unset, 0 or -1)."""
    if g.max_auto_priority <= 0:
        return None
    limit = g.vrrp_rlimit_rttime if process == "vrrp" else g.checker_rlimit_rttime
    return AutoPriority(process, min(g.max_auto_priority, MAX_RT_PRIORITY), g.min_auto_priority_delay / 1e6,
                        max(2, limit) if limit is not None else RT_RLIMIT_DEFAULT_US)


def next_priority(realtime: bool, current: int, maximum: int, lowest: int = 1) -> int | None:
    """The realtime priority after one stall, None when already at the ceiling (keepalived's rule)."""
    if not realtime:
        return lowest
    if current >= maximum:
        return None
    return current + 1


def late_text(late_s: float) -> str:
    """keepalived's "S.UUUUUU" of a lateness."""
    us = round(late_s * 1e6)
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def raise_priority(policy: AutoPriority) -> int | None:
    """One step up for the calling thread; the new priority, None when nothing changed."""
    realtime = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK in (os.SCHED_RR, os.SCHED_FIFO)
    current = os.sched_getparam(0).sched_priority if realtime else 0
    wanted = next_priority(realtime, current, policy.max_priority, os.sched_get_priority_min(os.SCHED_RR))
    if wanted is None:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(wanted))
    except OSError:
        log.warning("child process: cannot raise priority")
        return None
    if not realtime:  # first time realtime: the RTTIME limit keepalived sets with it
        on_sigxcpu(policy.process)
        try:
            resource.setrlimit(resource.RLIMIT_RTTIME, (policy.rlimit_rttime_us // 2, policy.rlimit_rttime_us))
        except (OSError, ValueError):
            log.warning("child process cannot set realtime rlimit")
    log.info("Set realtime priority %d", wanted)
    return wanted


async def watch_stalls(policy: AutoPriority) -> None:
    """Run for the process's life: each late wake-up past the delay raises the priority one step."""
    loop = asyncio.get_running_loop()
    tick = policy.tick_s
    while True:
        due = loop.time() + tick
        await asyncio.sleep(tick)
        late = loop.time() - due
        if late > policy.min_delay_s:
            log.info("A thread timer expired %s seconds ago", late_text(late))
            raise_priority(policy)
