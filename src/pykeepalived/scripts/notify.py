"""State-change notifications: notify_* scripts and notify_fifo lines, in keepalived's formats.

State-specific scripts (notify_master, notify_backup, notify_fault, notify_stop)
run with exactly their configured words; the generic `notify` script gets four
more: INSTANCE|GROUP, the name, the state, the priority (0 for groups). The
FIFO gets one line per change, `INSTANCE "VI_1" MASTER 100`.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import stat

from ..config.model import Script, SyncGroup, VrrpInstance
from ..host.private_files import UnsafeFileError
from .runner import ScriptRunner

log = logging.getLogger("pykeepalived.notify")

NOTIFY_STOP_TIMEOUT_S = 1.0
STATE_WORDS = {"MASTER", "BACKUP", "FAULT", "STOP", "DELETED"}


class NotifyFifo:
    """A FIFO we write to without ever blocking (opened read-write, so no reader is needed).

    keepalived opens whatever FIFO it finds at the path. We make it ourselves
    (mode 0600, or 0640 and chowned when the config names a user/group for it:
    `notify_fifo FILE [user [group]]`) and accept an existing one only if it is
    a real FIFO (no symlink), owned by root or the configured user, and not
    writable by group or others (group write only for the configured group).
    Anything else is refused with one log line saying why, and no lines are
    written: someone else's FIFO could be read, blocked or swapped by them.
    """

    def __init__(self, path: str, user: str | None = None, group: str | None = None) -> None:
        self.path = path
        self.user = user
        self.group = group
        self._fd: int | None = None

    def open(self) -> None:
        try:
            self._fd = self._open_checked()
        except UnsafeFileError as exc:
            log.error("notify_fifo %s", exc)

    def _open_checked(self) -> int:
        uid, gid = self._owner_ids()
        created = False
        try:
            os.mkfifo(self.path, 0o600)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeFileError(f"{self.path}: cannot create it: {exc.strerror}") from None
        try:
            before = os.lstat(self.path)
            if stat.S_ISLNK(before.st_mode):
                raise UnsafeFileError(f"{self.path}: is a symbolic link; refusing it")
            if not stat.S_ISFIFO(before.st_mode):
                raise UnsafeFileError(f"{self.path}: exists and is not a FIFO; refusing it")
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise UnsafeFileError(f"{self.path}: cannot open it: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISFIFO(st.st_mode):
                raise UnsafeFileError(f"{self.path}: was replaced while being opened; refusing it")
            if created:
                os.fchown(fd, uid if uid is not None else os.geteuid(), gid if gid is not None else -1)
                os.fchmod(fd, 0o640 if gid is not None else 0o600)
                st = os.fstat(fd)
            self._check_owner_and_mode(st, uid, gid)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _owner_ids(self) -> tuple[int | None, int | None]:
        """The uid/gid the config names for the FIFO (None: not named)."""
        uid = gid = None
        if self.user is not None:
            try:
                pw = pwd.getpwnam(self.user)
            except KeyError:
                raise UnsafeFileError(f"{self.path}: user '{self.user}' does not exist; refusing the FIFO") from None
            uid = pw.pw_uid
        if self.group is not None:
            try:
                gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise UnsafeFileError(f"{self.path}: group '{self.group}' does not exist; refusing the FIFO") from None
        return uid, gid

    def _check_owner_and_mode(self, st: os.stat_result, uid: int | None, gid: int | None) -> None:
        owners = {0, os.geteuid()} | ({uid} if uid is not None else set())
        if st.st_uid not in owners:
            allowed = "root" + (f" or {self.user}" if self.user else "")
            raise UnsafeFileError(f"{self.path}: is owned by uid {st.st_uid}, not {allowed}; refusing it")
        if st.st_mode & stat.S_IWOTH:
            raise UnsafeFileError(f"{self.path}: is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                                  "refusing it")
        if st.st_mode & stat.S_IWGRP and (gid is None or st.st_gid != gid):
            raise UnsafeFileError(f"{self.path}: is writable by group {st.st_gid} (mode "
                                  f"{stat.S_IMODE(st.st_mode):04o}), not a group configured for it; refusing it")

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


class FifoGroup:
    """Several notify FIFOs written as one: keepalived's VRRP process writes each line to notify_fifo and to
    vrrp_notify_fifo when both are set (to one of them when they name the same file)."""

    def __init__(self, fifos: list[NotifyFifo]) -> None:
        self.fifos = fifos

    def open(self) -> None:
        for fifo in self.fifos:
            fifo.open()

    def write(self, line: str) -> None:
        for fifo in self.fifos:
            fifo.write(line)

    def close(self) -> None:
        for fifo in self.fifos:
            fifo.close()


class Notifier:
    """Turns state changes into scripts and FIFO lines."""

    def __init__(self, runner: ScriptRunner, fifo: NotifyFifo | FifoGroup | None = None) -> None:
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
        "DELETED": getattr(obj, "notify_deleted", None),  # an instance a reload removed (vrrp_instance only)
    }.get(state)
