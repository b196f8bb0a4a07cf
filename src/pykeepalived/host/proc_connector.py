"""The kernel's process events (netlink proc connector), which keepalived's track_process listens to.

Only the initial network namespace has the connector: elsewhere the listen
request is refused (ECONNREFUSED, as keepalived 2.2.7 logs "Failed to
set/clear process event listen - errno 111"), and `open` returns None so that
the caller polls /proc instead. We only need to know that a process forked,
exec'd, was renamed or exited: the caller then rescans /proc, so the event
layout beyond its type and ids is not decoded, and thread events are ignored.
"""

from __future__ import annotations

import errno
import socket
import struct

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
NLMSG_DONE = 3
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_COMM = 0x200
PROC_EVENT_EXIT = 0x80000000
_NLMSG = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_AT = _NLMSG.size + _CN_MSG.size  # proc_event: what, cpu, timestamp_ns, then the event's data
_DATA_AT = _EVENT_AT + 16


class ProcConnector:
    """A non-blocking proc connector socket subscribed to process events."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def open(cls) -> ProcConnector | None:
        """Subscribed, or None where the kernel refuses (another network namespace, no CONFIG_PROC_EVENTS)."""
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_CONNECTOR)
        except OSError:
            return None
        try:
            sock.bind((0, CN_IDX_PROC))
            op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
            cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
            sock.send(_NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn)
            sock.setblocking(False)
        except OSError:
            sock.close()
            return None
        return cls(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> bool:
        """Read what is queued; True if a process (not a thread) forked, exec'd, was renamed or exited,
        or if events were lost (the socket overflowed): either way /proc must be read again."""
        relevant = False
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return relevant
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    relevant = True
                    continue
                raise
            relevant = relevant or _relevant(data)

    def close(self) -> None:
        self.sock.close()


def _relevant(data: bytes) -> bool:
    if len(data) < _DATA_AT + 8:
        return False
    (what,) = struct.unpack_from("=I", data, _EVENT_AT)
    if what == PROC_EVENT_FORK:
        child_pid, child_tgid = struct.unpack_from("=ii", data, _DATA_AT + 8)
        return bool(child_pid == child_tgid)
    if what in (PROC_EVENT_EXEC, PROC_EVENT_COMM, PROC_EVENT_EXIT):
        pid, tgid = struct.unpack_from("=ii", data, _DATA_AT)
        return bool(pid == tgid)
    return False


def listening_here() -> bool:
    """Whether this process's network namespace has the connector (for logs and tests)."""
    conn = ProcConnector.open()
    if conn is None:
        return False
    conn.close()
    return True

