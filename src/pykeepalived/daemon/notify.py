"""State-change notifications: notify_* scripts and notify_fifo lines, in keepalived's formats.

State-specific scripts (notify_master, notify_backup, notify_fault, notify_stop)
run with exactly their configured words; the generic `notify` script gets four
more: INSTANCE|GROUP, the name, the state, the priority (0 for groups). The
FIFO gets one line per change, `INSTANCE "VI_1" MASTER 100`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from ..config.model import Script, SyncGroup, VrrpInstance
from .scripts import ScriptRunner

log = logging.getLogger("pykeepalived.notify")

NOTIFY_STOP_TIMEOUT_S = 1.0
STATE_WORDS = {"MASTER", "BACKUP", "FAULT", "STOP", "DELETED"}


class NotifyFifo:
    """A FIFO we write to without ever blocking (opened read-write, so no reader is needed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> None:
        try:
            st = os.stat(self.path)
            if not stat.S_ISFIFO(st.st_mode):
                log.error("notify_fifo %s exists and is not a FIFO; not writing to it", self.path)
                return
        except FileNotFoundError:
            os.mkfifo(self.path, 0o600)
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def write(self, line: str) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, (line + "\n").encode())
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                log.warning("notify_fifo %s: %s", self.path, exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Notifier:
    """Turns state changes into scripts and FIFO lines."""

    def __init__(self, runner: ScriptRunner, fifo: NotifyFifo | None = None) -> None:
        self.runner = runner
        self.fifo = fifo

    def instance_state(self, inst: VrrpInstance, state: str, priority: int) -> None:
        self._notify("INSTANCE", inst.name, state, priority, _state_script(inst, state), inst.notify)

    def group_state(self, group: SyncGroup, state: str) -> None:
        self._notify("GROUP", group.name, state, 0, _state_script(group, state), group.notify)

    def event(self, inst: VrrpInstance, event: str, priority: int) -> None:
        """MASTER_RX_LOWER_PRI and friends: a FIFO line and the event's own script."""
        if self.fifo is not None:
            self.fifo.write(f'INSTANCE "{inst.name}" {event} {priority}')
        if event == "MASTER_RX_LOWER_PRI" and inst.notify_master_rx_lower_pri is not None:
            self.runner.fire(inst.notify_master_rx_lower_pri)

    def _notify(self, kind: str, name: str, state: str, priority: int,
                specific: Script | None, generic: Script | None) -> None:
        timeout = NOTIFY_STOP_TIMEOUT_S if state == "STOP" else None
        if specific is not None:
            self.runner.fire(specific, (), timeout)
        if generic is not None:
            self.runner.fire(generic, (kind, name, state, str(priority)), timeout)
        if self.fifo is not None:
            self.fifo.write(f'{kind} "{name}" {state} {priority}')


def _state_script(obj: VrrpInstance | SyncGroup, state: str) -> Script | None:
    return {
        "MASTER": obj.notify_master,
        "BACKUP": obj.notify_backup,
        "FAULT": obj.notify_fault,
        "STOP": obj.notify_stop,
    }.get(state)
