"""The processes vrrp_track_process counts, read by polling /proc (vrrp/process_watch.py runs the loop).

keepalived scans /proc once and then listens to the kernel's proc connector
(netlink CN_PROC). That connector exists only in the initial network
namespace: keepalived 2.2.7 run inside any other namespace logs "Failed to
set/clear process event listen - errno 111" and never sees a process start or
stop (checked on this host). pykeepalived polls instead, every
PROC_POLL_S, so that it tracks processes wherever it runs (a namespace,
`net_namespace`, a container). One scan reads /proc/PID/stat (name, state,
parent) of each process, and /proc/PID/cmdline only when a tracker matches the
full command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CMDLINE_BYTES = 65536  # a command line longer than this cannot equal a configured one anyway


@dataclass(frozen=True)
class ProcessInfo:
    """One running process as /proc showed it (cmdline only read when asked for)."""

    pid: int
    ppid: int
    comm: str
    cmdline: bytes = b""
    zombie: bool = False


def _read(path: str, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _sample(pid: str, need_cmdline: bool) -> ProcessInfo | None:
    try:
        stat = _read(f"/proc/{pid}/stat", 1024)
        cmdline = _read(f"/proc/{pid}/cmdline", CMDLINE_BYTES) if need_cmdline else b""
    except OSError:
        return None  # gone meanwhile
    left, right = stat.find(b"("), stat.rfind(b")")
    fields = stat[right + 2:].split()
    if left < 0 or right < 0 or len(fields) < 2:
        return None
    comm = stat[left + 1:right].decode(errors="replace")
    return ProcessInfo(int(pid), int(fields[1]), comm, cmdline, zombie=fields[0] == b"Z")


def read_processes(need_cmdline: bool) -> list[ProcessInfo]:
    """Every process (thread group) this /proc shows."""
    samples: list[ProcessInfo] = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            sample = _sample(name, need_cmdline)
            if sample is not None:
                samples.append(sample)
    return samples
