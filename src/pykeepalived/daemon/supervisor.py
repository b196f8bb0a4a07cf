"""The parent process: starts the VRRP and checker children and keeps them running.

Started without -P/-C, pykeepalived always runs this parent, with a child for
each subsystem the config needs. As in keepalived, each subsystem runs in a process of its own so that a burst
of health checks can never delay a VRRP advert, and a crash of one leaves the
other running. The parent forwards SIGHUP/SIGUSR1/SIGUSR2/SIGRTMIN+2 to the children,
stops both on SIGTERM/SIGINT, and restarts a child that dies: at once if it
had run for a while, after a pause if it keeps dying (so a broken child does
not spin).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .run import DaemonOptions, begin

log = logging.getLogger("pykeepalived")

STOP_TIMEOUT_S = 10.0
QUICK_DEATH_S = 60.0
RESPAWN_PAUSE_S = 2.0
FORWARDED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0


def child_argv(base: Sequence[str], subsystem_flag: str) -> list[str]:
    """The child's command line: ours, in the foreground, one subsystem, without the parent's pid file."""
    return [sys.executable, "-m", "pykeepalived", *base, subsystem_flag, "--dont-fork", "--child"]


async def _spawn(child: Child) -> None:
    child.proc = await asyncio.create_subprocess_exec(*child.argv, stdin=asyncio.subprocess.DEVNULL)
    child.started_at = time.monotonic()
    log.info("Starting %s child process, pid=%d", child.name, child.proc.pid)


def _signal(child: Child, sig: int) -> None:
    if child.proc is not None and child.proc.returncode is None:
        try:
            child.proc.send_signal(sig)
        except ProcessLookupError:
            pass


def _forward(children: list[Child], sig: int) -> None:
    for child in children:
        _signal(child, sig)


async def supervise(children: list[Child]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    for sig in FORWARDED:
        loop.add_signal_handler(sig, _forward, children, sig)
    for child in children:
        await _spawn(child)
    stop_task = loop.create_task(stop.wait())
    try:
        while not stop.is_set():
            waits = {loop.create_task(c.proc.wait()): c for c in children if c.proc is not None}
            done, _ = await asyncio.wait({*waits, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                if task not in done:
                    task.cancel()
            if stop.is_set():
                break
            for task in done:
                if task not in waits:
                    continue
                child = waits[task]
                ran_s = time.monotonic() - child.started_at
                log.error("%s child process (pid %d) exited with status %s after %.1f s; restarting",
                          child.name, child.proc.pid if child.proc else -1, task.result(), ran_s)
                if ran_s < QUICK_DEATH_S:
                    await asyncio.sleep(RESPAWN_PAUSE_S)
                if not stop.is_set():
                    await _spawn(child)
    finally:
        for child in children:
            _signal(child, signal.SIGTERM)
        for child in children:
            if child.proc is None:
                continue
            try:
                await asyncio.wait_for(child.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("%s child process did not stop; killing it", child.name)
                _signal(child, signal.SIGKILL)
                await child.proc.wait()


def run_supervisor(base_argv: Sequence[str], opts: DaemonOptions, vrrp: bool, check: bool) -> int:
    """Run as keepalived's parent: returns when both children have stopped after SIGTERM/SIGINT."""
    pids = begin(opts, "Keepalived", "pykeepalived", opts.pid_file)
    if pids is None:
        return 1
    children = []
    if vrrp:
        children.append(Child("VRRP", child_argv(base_argv, "--vrrp")))
    if check:
        children.append(Child("Healthcheck", child_argv(base_argv, "--check")))
    try:
        asyncio.run(supervise(children))
    finally:
        pids.remove()
    log.info("Stopped pykeepalived")
    return 0
