"""Per-interface IPv4/IPv6 settings (/proc/sys/net/ipv{4,6}/conf/IFNAME/KEY) that VRRP changes.

keepalived sets a few of them (promote_secondaries, the VMAC's arp_ignore,
accept_local, rp_filter, and the base interface's arp_ignore/arp_filter) and
puts the old values back when it stops; `DevconfChanges` does the same with a
count per (interface, key), so that two instances on one interface restore
the value only when the last one lets go. The files belong to the network
namespace of the process, so they are this namespace's interfaces.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import NetError

__all__ = ["DevconfChanges", "read_conf", "write_conf"]

_ROOT = Path("/proc/sys/net")
IFNAMSIZ = 16


def _path(family: int, ifname: str, key: str) -> Path:
    if not ifname or "/" in ifname or ifname in (".", "..") or len(ifname.encode()) >= IFNAMSIZ:
        raise NetError(f"invalid interface name {ifname!r}")
    return _ROOT / ("ipv4" if family == 4 else "ipv6") / "conf" / ifname / key


def read_conf(family: int, ifname: str, key: str) -> str | None:
    """The setting's current value, or None if the interface (or the setting) does not exist."""
    try:
        return _path(family, ifname, key).read_text().strip()
    except OSError:
        return None


def write_conf(family: int, ifname: str, key: str, value: str) -> None:
    """Set one value; a NetError names the interface, the setting and why."""
    path = _path(family, ifname, key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise NetError(f"cannot set net.ipv{family}.conf.{ifname}.{key}={value}: "
                       f"{os.strerror(exc.errno or 0)}") from exc


class DevconfChanges:
    """Settings we changed and their values before, restored when the last user lets go."""

    def __init__(self) -> None:
        self._saved: dict[tuple[int, str, str], tuple[str, int]] = {}

    def set(self, family: int, ifname: str, key: str, value: str) -> None:
        """Set `key` to `value`, remembering the old value the first time."""
        slot = (family, ifname, key)
        held = self._saved.get(slot)
        if held is not None:
            self._saved[slot] = (held[0], held[1] + 1)
            return
        old = read_conf(family, ifname, key)
        if old is None:
            raise NetError(f"cannot read net.ipv{family}.conf.{ifname}.{key}: no such interface or setting")
        if old != value:
            write_conf(family, ifname, key, value)
        self._saved[slot] = (old, 1)

    def release(self, family: int, ifname: str, key: str) -> None:
        """One user less; the last one puts the old value back (if the interface is still there)."""
        slot = (family, ifname, key)
        held = self._saved.get(slot)
        if held is None:
            return
        old, users = held
        if users > 1:
            self._saved[slot] = (old, users - 1)
            return
        del self._saved[slot]
        if read_conf(family, ifname, key) not in (None, old):
            write_conf(family, ifname, key, old)

    def forget(self, ifname: str) -> None:
        """The interface is gone (a VMAC we deleted): nothing of it to restore."""
        for slot in [s for s in self._saved if s[1] == ifname]:
            del self._saved[slot]

    def restore_all(self) -> None:
        """Put back every value still held; errors on one do not stop the others."""
        errors: list[str] = []
        for family, ifname, key in list(self._saved):
            self._saved[(family, ifname, key)] = (self._saved[(family, ifname, key)][0], 1)
            try:
                self.release(family, ifname, key)
            except NetError as exc:
                errors.append(str(exc))
        if errors:
            raise NetError("; ".join(errors))
