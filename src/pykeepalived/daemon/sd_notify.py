"""systemd's notify protocol: a few KEY=VALUE lines in one datagram to $NOTIFY_SOCKET.

With `Type=notify` systemd waits for READY=1 before it calls the unit
started, brackets a reload between RELOADING=1 (with MONOTONIC_USEC=, which
systemd 253+ requires) and READY=1, shows STATUS= in `systemctl status`, and
with `WatchdogSec=` restarts the unit when WATCHDOG=1 stops arriving for that
long. The protocol is small enough to speak directly (sd_notify(3)): an
AF_UNIX datagram socket, the address a path or, after '@', an abstract name.
No library is needed and none is imported.

Only the parent speaks it (NotifyAccess=main, systemd's default): the
notifier takes the variables out of the environment when it is made, as
sd_notify(unset_environment=1) does, so that the children and the scripts
they run never send anything in the daemon's name.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger("pykeepalived")

ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def socket_address(value: str) -> str | bytes | None:
    """The address $NOTIFY_SOCKET names: a path, or an abstract name ('@name'); None if we cannot use it."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock:... (systemd 254 in VMs) or garbage: not ours to guess


def watchdog_interval_s(env: MutableMapping[str, str], pid: int) -> float | None:
    """systemd's watchdog timeout for this process (WATCHDOG_USEC), None when off or meant for another pid."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1_000_000


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, what RELOADING=1's MONOTONIC_USEC= carries."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def one_line(text: str) -> str:
    """A STATUS= value: one line (a newline would end the field)."""
    return " ".join(text.split())


class Notifier:
    """Sends notify messages; a no-op without $NOTIFY_SOCKET. Never raises: systemd's absence stops nothing."""

    def __init__(self, env: MutableMapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        pid = os.getpid() if pid is None else pid
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = socket_address(raw) if raw else None
        if raw and self.address is None:
            log.warning("NOTIFY_SOCKET=%s is not a unix socket address; not notifying systemd", raw)
        self.watchdog_s = watchdog_interval_s(env, pid)
        for name in ENV_VARS:  # children and scripts must not speak for us (sd_notify's unset_environment)
            env.pop(name, None)
        self.sock: socket.socket | None = None
        self.sent: list[str] = []  # for tests and the parent dump

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram with `fields` (KEY=VALUE each); False if not sent."""
        if self.address is None:
            return False
        message = "\n".join(fields)
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("systemd notify %r not sent: %s", message, exc)
            return False
        self.sent.append(message)
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={one_line(status)}"] if status else []))

    def reloading(self, status: str | None = None) -> bool:
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}",
                         *([f"STATUS={one_line(status)}"] if status else []))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
