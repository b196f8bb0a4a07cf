"""Moving this process into a named network namespace (/run/netns/NAME), as keepalived's net_namespace does.

Python 3.11 has no os.setns (it came in 3.12), so this calls libc's setns(2)
through ctypes. Not pyroute2's netns.setns: it creates the namespace when it
is missing unless told otherwise (keepalived never creates one: it logs and
exits), it calls the syscall by a number from its own table, and importing
pyroute2 costs start-up time that `-t` does not otherwise pay.

setns(CLONE_NEWNET) moves the calling thread only; threads started after it
(the event loop's executor) inherit it, so the daemon calls this first thing,
from its only thread, before any socket exists. Children forked afterwards
inherit the namespace too. Note that /sys is not remounted (keepalived does
not either): /sys/class/net still shows the namespace /sys was mounted in,
while /proc/net, /proc/sys/net, sockets and netlink see the new one.
"""

from __future__ import annotations

import os

from ..errors import PyKeepalivedError

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000


class NetnsError(PyKeepalivedError):
    """The named network namespace cannot be entered (missing, not a namespace, or not allowed)."""


def netns_path(name: str) -> str:
    """/run/netns/NAME; a name that is not one plain file name (`a/b`, `..`) is refused, as `ip netns` does."""
    if not name or "/" in name or name in (".", ".."):
        raise NetnsError(f"'{name}' is not a network namespace name")
    return f"{NETNS_DIR}/{name}"


def netns_exists(name: str) -> bool:
    try:
        return os.path.exists(netns_path(name))
    except NetnsError:
        return False


def _setns(fd: int, nstype: int) -> None:
    import ctypes  # only the daemon in a namespace needs it: -t without one stays lean
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def enter_netns(name: str) -> None:
    """Move this process (its calling thread and all it starts later) into /run/netns/NAME.

    Raises NetnsError with keepalived's words ("Failed to open /run/netns/NAME")
    when the namespace does not exist, and a clear reason for anything else.
    """
    path = netns_path(name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"Failed to open {path} ({exc.strerror}): network namespace {name} does not exist "
                         "(create it with `ip netns add`)" if isinstance(exc, FileNotFoundError)
                         else f"Failed to open {path}: {exc.strerror}") from None
    try:
        _setns(fd, CLONE_NEWNET)
    except OSError as exc:
        raise NetnsError(f"setns() into {path} failed: {exc.strerror}"
                         + (" (not a network namespace)" if exc.errno == 22 else "")) from None
    finally:
        os.close(fd)


def same_netns(name: str) -> bool:
    """This process already runs in /run/netns/NAME (same inode as /proc/self/ns/net)."""
    try:
        target = os.stat(netns_path(name))
        mine = os.stat("/proc/self/ns/net")
    except (OSError, NetnsError):
        return False
    return (target.st_dev, target.st_ino) == (mine.st_dev, mine.st_ino)
