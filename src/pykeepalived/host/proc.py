"""Who a process id is: its start time and command line from /proc, and this boot's id.

A pid alone names a process only while it lives: once it exits the kernel
hands the number to the next process. The checker therefore records, next to
its pid, its start time (field 22 of /proc/PID/stat, clock ticks since boot)
and the boot id; `pykeepalived status` compares them (and that the command
line is a pykeepalived) before it sends a signal, so that a stale status file
never makes it signal an unrelated process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
BOOT_ID = PROC / "sys/kernel/random/boot_id"
_START_FIELD = 22  # starttime, counted from 1 as proc(5) does


@dataclass(frozen=True)
class ProcessIdentity:
    """A pid with what tells it from a later process of the same number."""

    pid: int
    start_ticks: int
    boot_id: str | None


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat from field 3 on (index 0 is the state); None if no such process.

    The command name (field 2) is in parentheses and may itself hold spaces
    and parentheses, so the fields are counted from the last `)`.
    """
    try:
        text = (PROC / str(pid) / "stat").read_bytes().decode("ascii", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 1 :].split()


def _field(pid: int | str, number: int) -> str | None:
    """Field `number` of /proc/PID/stat, counted from 1 as proc(5) does."""
    fields = _stat_fields(pid)
    index = number - 3  # the fields after `)` start with field 3
    return fields[index] if fields is not None and 0 <= index < len(fields) else None


def _int_field(pid: int | str, number: int) -> int | None:
    value = _field(pid, number)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def start_ticks(pid: int | str) -> int | None:
    """Field 22 of /proc/PID/stat (the start time in clock ticks since boot); None if no such process."""
    return _int_field(pid, _START_FIELD)


def parent_of(pid: int) -> int | None:
    """The parent's pid (field 4); None if no such process."""
    return _int_field(pid, 4)


def is_zombie(pid: int) -> bool:
    """True for a process that has exited and waits to be reaped, and for one that is gone altogether."""
    state = _field(pid, 3)
    return state is None or state == "Z"


def is_running(pid: int) -> bool:
    """The process exists and has not exited: a zombie nobody has reaped (its parent was killed) holds nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def started_at() -> float:
    """When this process started, as wall-clock time (now, if /proc cannot tell)."""
    ticks = start_ticks("self")
    if ticks is None:
        return time.time()
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - max(0.0, age)


def boot_id() -> str | None:
    """This boot's random id (changes at every boot), None where the kernel has none."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def argv_of(pid: int) -> list[str] | None:
    """The process's command line; None if it is gone, [] for a kernel thread or zombie."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


def is_pykeepalived(argv: list[str]) -> bool:
    """`python -m pykeepalived ...`, or the `pykeepalived` script (run directly or by its interpreter)."""
    if any(a == "-m" and i + 1 < len(argv) and argv[i + 1].split(".")[0] == "pykeepalived"
           for i, a in enumerate(argv)):
        return True
    return any(os.path.basename(a) == "pykeepalived" for a in argv[:2])


_own: ProcessIdentity | None = None


def own_identity() -> ProcessIdentity | None:
    """This process's identity (read once per process: none of it changes while the process lives)."""
    global _own
    pid = os.getpid()
    if _own is None or _own.pid != pid:
        ticks = start_ticks(pid)
        if ticks is None:
            return None
        _own = ProcessIdentity(pid, ticks, boot_id())
    return _own


def identity_problem(pid: int, recorded_ticks: object, recorded_boot: object) -> str | None:
    """Why `pid` is not the pykeepalived process that recorded (start ticks, boot id); None when it is."""
    if not isinstance(recorded_ticks, int) or isinstance(recorded_ticks, bool):
        return (f"the status file does not record when pid {pid} started, so it cannot be told from another "
                f"process that got the same number")
    if recorded_boot is not None and recorded_boot != boot_id():
        return f"the status file was written before the last reboot (pid {pid} is another process now)"
    ticks = start_ticks(pid)
    if ticks is None:
        return f"pid {pid} is gone"
    if ticks != recorded_ticks:
        return f"pid {pid} is another process now (started at tick {ticks}, not {recorded_ticks})"
    argv = argv_of(pid)
    if argv is None:
        return f"pid {pid} is gone"
    if not argv:
        return f"pid {pid} has exited (or is a kernel thread)"
    if not is_pykeepalived(argv):
        return f"pid {pid} is not pykeepalived ({' '.join(argv)[:80] or 'no command line'})"
    return None
