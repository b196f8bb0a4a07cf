"""prctl(2) for the two things we ask of it: a signal when the parent dies, and nothing else yet.

A process we start must not outlive the one that manages it (the checker's
bgpd would go on announcing VIPs nobody checks); the kernel's
PR_SET_PDEATHSIG is the only way that holds even under SIGKILL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

PR_SET_PDEATHSIG = 1


def prctl(option: int, arg: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


def set_parent_death_signal(sig: int) -> None:
    """Get `sig` when the thread that forked us exits (survives exec, cleared by a change of credentials)."""
    prctl(PR_SET_PDEATHSIG, sig)
