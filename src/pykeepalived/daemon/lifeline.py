"""A child process dies with the process that started it.

A VRRP or checker child left running after its parent was killed holds its
VIPs and pid file with nobody to manage it, and a restarted daemon cannot
start a new one. So every process the daemon starts (the VRRP and checker
children, the checker's worker processes) asks the kernel, first thing, for
SIGTERM when its parent dies (PR_SET_PDEATHSIG): SIGTERM, not SIGKILL, so
that the child stops as cleanly as on `kill -TERM` (VRRP sends priority 0 and
removes its VIPs). The parent passes its pid on the command line
(`--parent-pid`): a parent that died between the fork and the prctl() would
never deliver the signal, and getppid() then names another process, so the
child stops at once.

The kernel sends the signal when the parent *thread* that forked exits: every
parent here forks from the thread that runs its event loop, which lives as
long as the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
# what the parent passes on to its children (keepalived's RELOAD, DATA, STATS and JSON signals)
FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGRTMIN + 2)
_held = 0  # forwarded_signals_held() nesting depth (asyncio tasks spawning at once)
_mask_before: set[int | signal.Signals] = set()


class ParentGone(Exception):
    """The parent that started this process is no longer its parent."""


def _prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)  # this process's own libc (host/tuning.py's _libc says why)
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Get `sig` when the parent dies; raise ParentGone if `parent_pid` is not our parent any more."""
    _prctl(PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent_pid:
        raise ParentGone(f"parent process {parent_pid} is gone (parent now {os.getppid()}); not starting")


@contextlib.contextmanager
def forwarded_signals_held() -> Iterator[None]:
    """Fork children with the forwarded signals blocked; the parent gets them again afterwards.

    A respawned child takes a few hundred milliseconds to install its
    handlers; a SIGUSR1 (`pykeepalived status`) or SIGHUP forwarded in that
    window would kill it by default. Blocked signals survive fork and exec as
    pending, so the child receives them once it calls
    `accept_forwarded_signals()` with its handlers in place.

    Holds may overlap (the supervisor spawns both children at once, each
    spawn awaiting its fork): only the outermost one blocks and restores, or
    the later hold would put back the earlier one's blocked mask for good and
    the parent would never forward a signal again.
    """
    global _held, _mask_before
    if _held == 0:
        _mask_before = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, _mask_before)


def accept_forwarded_signals() -> None:
    """In a child, once its signal handlers are installed: deliver what the parent forwarded meanwhile."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)


def leave_interrupt_to_parent(loop: asyncio.AbstractEventLoop, what: str) -> None:
    """A child ignores SIGINT: the parent gets it too and stops the children in their order.

    Ctrl-C at a terminal sends SIGINT to the whole foreground process group,
    the children included. Had each child stopped on it at once, the checker
    would remove the LVS rules while VRRP still held the VIPs for its
    hand-over (the refusals daemon/handover.py prevents on SIGTERM). The
    parent's SIGINT runs the same ordered stop as SIGTERM and sends SIGTERM
    to each child in turn; a child whose parent is gone gets SIGTERM from
    the kernel (die_with_parent), so ignoring SIGINT leaves no child behind.
    """
    log = logging.getLogger("pykeepalived")
    loop.add_signal_handler(signal.SIGINT, lambda: log.info(
        "%s: SIGINT left to the parent, which stops the children in order", what))
