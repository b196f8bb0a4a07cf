"""Process settings from global_defs, applied in each process as keepalived 2.2.7 applies them.

keepalived sets, in its VRRP and checker processes once the config is read:
the name (prctl PR_SET_NAME: `ps -e`, `top`, /proc/PID/comm), a SCHED_RR
realtime priority with SCHED_RESET_ON_FORK (scripts do not inherit it) and
then RLIMIT_RTTIME (soft half the limit, default limit 10,000 us; SIGXCPU at
the soft limit only logs), or without a realtime priority the nice value;
mlockall (current, future, on fault) for *_no_swap; and the CPU affinity. The
parent takes only `process_name`. Every failure is one log line in
keepalived's words and the process carries on, as keepalived's does.

Two defaults differ from keepalived's, both because the processes run Python
(docs/false-failovers.md has the measurements):

- RLIMIT_RTTIME without `*_rlimit_rttime` is RT_RLIMIT_DEFAULT_US (1 s, soft
  half), not keepalived's 10,000 us: the kernel SIGKILLs a realtime process at
  the hard limit, and Python's start-up alone runs longer than 10 ms of CPU
  without blocking (a `vrrp_rt_priority` config killed the VRRP process at
  start). The limit's job, stopping a runaway realtime loop, is kept.
- The VRRP process runs SCHED_RR at DEFAULT_VRRP_RT_PRIORITY (1, the lowest)
  when the config says nothing of its scheduling (no `vrrp_rt_priority`,
  `vrrp_priority`, `max_auto_priority` or `min_auto_priority_delay`): under
  a CPU quota (a cgroup's cpu.max) or a CPU-bound neighbour a normal-priority
  VRRP process misses adverts and the backup takes over (keepalived issues
  #2066, #2238); a realtime one is neither throttled by the quota nor
  preempted by normal tasks. `pykeepalived_vrrp_realtime off` gives
  keepalived's behaviour. Where realtime is refused (a container without
  CAP_SYS_NICE, a v1 cpu cgroup without realtime budget), the default says so
  in one info line and the process carries on at normal priority.

Linux keeps nice, scheduling policy and affinity per thread and a new thread
starts with its creator's: the settings are applied before the event loop
and its worker threads exist, so that all of them run under them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Literal

from ..config.model import GlobalDefs

log = logging.getLogger("pykeepalived")

Process = Literal["parent", "vrrp", "checker", "bfd"]
KEEPALIVED_RT_RLIMIT_US = 10000  # keepalived's default RLIMIT_RTTIME, for C code
RT_RLIMIT_DEFAULT_US = 1_000_000  # ours without *_rlimit_rttime: Python needs more than 10 ms at a stretch
MIN_AUTO_PRIORITY_DELAY_DEFAULT_US = 1_000_000  # config/model.py's default: not set in the config
DEFAULT_VRRP_RT_PRIORITY = 1  # SCHED_RR priority of the VRRP process unless configured (pykeepalived_vrrp_realtime)
PR_SET_NAME = 15
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4


@dataclass(frozen=True)
class ProcessTuning:
    """What one process sets; None/empty: left as the process started."""

    process: Process
    name: str | None = None
    nice: int | None = None
    rt_priority: int | None = None
    rlimit_rttime_us: int = RT_RLIMIT_DEFAULT_US
    no_swap: bool = False
    cpus: tuple[int, ...] = ()
    rt_by_default: bool = False  # rt_priority is pykeepalived's default, not the config's: refusal is only noted


def tuning_for(g: GlobalDefs, process: Process, *, alone: bool = False) -> ProcessTuning:
    """The settings of `process`; `alone`: it also stands for the parent (-P / -C), so process_name counts."""
    if process == "parent":
        return ProcessTuning("parent", name=g.process_name)
    if process == "bfd":  # the BFD child (daemon/run_bfd.py)
        return ProcessTuning(
            "bfd", name=g.bfd_process_name, nice=g.bfd_priority, rt_priority=g.bfd_rt_priority,
            rlimit_rttime_us=max(2, g.bfd_rlimit_rttime) if g.bfd_rlimit_rttime is not None else RT_RLIMIT_DEFAULT_US,
            no_swap=g.bfd_no_swap, cpus=tuple(g.bfd_cpu_affinity or ()))
    vrrp = process == "vrrp"
    name = g.vrrp_process_name if vrrp else g.checker_process_name
    limit = g.vrrp_rlimit_rttime if vrrp else g.checker_rlimit_rttime
    cpus = g.vrrp_cpu_affinity if vrrp else g.checker_cpu_affinity
    rt_priority = g.vrrp_rt_priority if vrrp else g.checker_rt_priority
    rt_by_default = vrrp and g.pykeepalived_vrrp_realtime and not _scheduling_configured(g)
    return ProcessTuning(
        process,
        name=name or (g.process_name if alone else None),
        nice=g.vrrp_priority if vrrp else g.checker_priority,
        rt_priority=DEFAULT_VRRP_RT_PRIORITY if rt_by_default else rt_priority,
        rt_by_default=rt_by_default,
        rlimit_rttime_us=max(2, limit) if limit is not None else RT_RLIMIT_DEFAULT_US,  # keepalived: 1 -> 2
        no_swap=g.vrrp_no_swap if vrrp else g.checker_no_swap,
        cpus=tuple(cpus or ()),
    )


def _scheduling_configured(g: GlobalDefs) -> bool:
    """The config says how the VRRP process is scheduled: a priority, a nice value or the auto-priority rules."""
    return (g.vrrp_rt_priority is not None or g.vrrp_priority is not None or g.max_auto_priority != 0
            or g.min_auto_priority_delay != MIN_AUTO_PRIORITY_DELAY_DEFAULT_US)


_original_nice: int | None = None  # the nice value before apply_tuning changed it (None: unchanged)
_tuned_nice: int | None = None  # the nice value apply_tuning set
_forks_at_original_nice = 0  # script starts under way in script_priority (the loop thread's)


@contextmanager
def script_priority() -> Iterator[None]:
    """Fork a script at the nice value the process started with, as keepalived resets it before exec.

    Linux keeps nice per thread and a fork takes the forking thread's, so the
    calling thread runs at the original value while the body forks, and goes
    back to the tuned value when the last start under way is done. This holds
    from the script's first instruction (setting it on the script's pid after
    the start raced with short scripts), and needs no preexec hook, which is
    unsafe in a process with threads.
    """
    global _forks_at_original_nice
    if _original_nice is None or _tuned_nice is None:
        yield
        return
    if _forks_at_original_nice == 0:
        _set_own_nice(_original_nice, "reset process priority")
    _forks_at_original_nice += 1
    try:
        yield
    finally:
        _forks_at_original_nice -= 1
        if _forks_at_original_nice == 0:
            _set_own_nice(_tuned_nice, f"set process priority to {_tuned_nice}")


def _set_own_nice(value: int, what: str) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except OSError as exc:
        log.info("Unable to %s - %s", what, exc.strerror)


def _libc() -> ctypes.CDLL:
    """The C library the process already has (dlopen(NULL)), with errno kept for ctypes.get_errno.

    Not ctypes.util.find_library("c"): it runs `ldconfig -p` in a subprocess, and importing ctypes.util
    imports shutil and tempfile, and with them bz2, lzma, zlib and random, whose C libraries stayed mapped
    in every daemon process (the checker's resident size, bench/checks.py) for a lookup that needs none.
    """
    return ctypes.CDLL(None, use_errno=True)


def set_process_name(name: str) -> None:
    if _libc().prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) != 0:
        log.info("Failed to set process name '%s'", name)


def _lock_memory() -> None:
    if _libc().mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
        log.info("Unable to lock process in memory - %s", os.strerror(ctypes.get_errno()))


def on_sigxcpu(process: Process, *, demote: bool = False) -> None:
    """Log SIGXCPU (the soft RLIMIT_RTTIME) in keepalived's words instead of dying of it.

    `demote` (the realtime default, not a configured priority): every thread
    also goes back to normal scheduling, so that a long stretch of Python
    (a reload of a large config, a burst of work) is never SIGKILLed at the
    hard limit for a priority the user did not ask for.
    """
    label = {"vrrp": "VRRP", "checker": "Checker", "bfd": "BFD"}.get(process, "Unknown")

    def handler(signum: int, frame: FrameType | None) -> None:
        if demote:
            leave_realtime_all_threads()
            log.warning("%s process ran at realtime priority without sleeping for too long: back to normal "
                        "scheduling until it restarts (pykeepalived_vrrp_realtime)", label)
            return
        log.info("%s process has used too much CPU time, %s_rlimit_rttime may need to be increased", label,
                 process)

    signal.signal(signal.SIGXCPU, handler)


def leave_realtime_all_threads() -> None:
    """Every thread of the process at normal scheduling (Linux schedules each thread on its own)."""
    for entry in os.scandir("/proc/self/task"):
        try:
            os.sched_setscheduler(int(entry.name), os.SCHED_OTHER, os.sched_param(0))
        except (OSError, ValueError):
            pass


def apply_tuning(t: ProcessTuning) -> None:
    """Set what `t` says in the calling process (its main thread, before other threads start)."""
    if t.name:
        set_process_name(t.name)
    if t.rt_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(t.rt_priority))
        except OSError as exc:
            if t.rt_by_default:
                log.info("VRRP process stays at normal priority: realtime scheduling refused (%s); "
                         "pykeepalived_vrrp_realtime off silences this", exc.strerror)
            else:
                log.warning("child process: cannot raise priority")
        else:
            on_sigxcpu(t.process, demote=t.rt_by_default)
            try:
                resource.setrlimit(resource.RLIMIT_RTTIME, (t.rlimit_rttime_us // 2, t.rlimit_rttime_us))
            except (OSError, ValueError):
                log.warning("child process cannot set realtime rlimit")
    elif t.nice is not None and t.nice != 0:
        global _original_nice, _tuned_nice
        before = os.getpriority(os.PRIO_PROCESS, 0)
        try:
            os.setpriority(os.PRIO_PROCESS, 0, t.nice)
        except OSError as exc:
            log.info("Unable to set process priority to %d - %s", t.nice, exc.strerror)
        else:
            _original_nice, _tuned_nice = before, t.nice
    if t.no_swap:
        _lock_memory()
    if t.cpus:
        try:
            os.sched_setaffinity(0, t.cpus)
        except OSError as exc:
            log.warning("unable to set cpu affinity to %s process (%s)", t.process, exc.strerror)
