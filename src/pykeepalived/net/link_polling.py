"""Link state read by polling a NIC (linkbeat), for drivers whose netlink link events cannot be trusted.

keepalived 2.2.7 (vrrp_if.c) polls an interface named in linkbeat_interfaces
(or every instance's interface with linkbeat_use_polling) once a second and
ignores netlink's reports of its state. It reads the link the way the
configured method says, and at the first poll picks the first method that
works when none (or one the driver lacks) is configured:

- MII: the PHY's basic mode status register (SIOCGMIIPHY, SIOCGMIIREG on
  BMSR, read twice because its link bit latches low);
- ETHTOOL: ETHTOOL_GLINK through SIOCETHTOOL (the driver's own idea of the
  link, netif_carrier_ok for most);
- IOCTL: nothing from the driver, only the flags below.

Whatever the method, the link counts as up only if SIOCGIFFLAGS also shows
IFF_UP and IFF_RUNNING, the same rule as net/links.py. These are the same
ioctls keepalived issues, so a driver answers us as it answers keepalived
(reading /sys/class/net/IF/carrier would only give netif_carrier_ok, the
very state whose events the user does not trust).
"""

from __future__ import annotations

import array
import errno
import fcntl
import socket
import struct
from dataclasses import dataclass

__all__ = ["LinkProbe", "METHODS"]

SIOCGIFFLAGS = 0x8913
SIOCETHTOOL = 0x8946
SIOCGMIIPHY = 0x8947
SIOCGMIIREG = 0x8948
ETHTOOL_GLINK = 0x0000000A
MII_BMCR = 0
MII_BMSR = 1
BMSR_LSTATUS = 0x0004
IFF_UP = 0x1
IFF_RUNNING = 0x40
IFREQ_SIZE = 40  # struct ifreq: 16 bytes of name, a 24-byte union
METHODS = ("MII", "ETHTOOL", "IOCTL")


def _ifreq(ifname: str, data: bytes = b"") -> bytes:
    name = ifname.encode()[:15]
    return struct.pack("16s", name) + data.ljust(IFREQ_SIZE - 16, b"\0")


@dataclass
class LinkProbe:
    """One interface's linkbeat: the method in use (None until the first successful probe)."""

    ifname: str
    configured: str | None = None  # MII, ETHTOOL, IOCTL or None: the first that works
    method: str | None = None

    def poll(self, sock: socket.socket) -> tuple[bool, str | None]:
        """Whether the link is up now, and a note to log when the method differs from the one configured."""
        note = None
        if self.method is None:
            up, self.method = self._first_working(sock)
            if self.configured and self.configured != self.method:
                note = (f"({self.ifname}): Configured linkbeat type {self.configured} not supported, "
                        f"using {self.method}")
        else:
            up = self._read(sock, self.method)
        if up is None:  # the interface is gone: find the method again when it is back
            self.method = None
            return False, note
        return up and self._flags_up(sock), note

    def _first_working(self, sock: socket.socket) -> tuple[bool | None, str]:
        # keepalived 2.2.7's order: MII then ETHTOOL (also after a configured MII that does not work), MII after
        # a configured ETHTOOL that does not work, IOCTL last; a configured IOCTL asks nothing of the driver
        order = {"IOCTL": [], "ETHTOOL": ["ETHTOOL", "MII"]}.get(self.configured or "", ["MII", "ETHTOOL"])
        for method in order:
            try:
                return self._read(sock, method), method
            except OSError as exc:
                if exc.errno == errno.ENODEV:
                    return None, method
        return self._read(sock, "IOCTL"), "IOCTL"

    def _read(self, sock: socket.socket, method: str) -> bool | None:
        """The link by `method`; None if there is no such interface; OSError if the driver lacks the method."""
        try:
            if method == "MII":
                return self._mii(sock)
            if method == "ETHTOOL":
                return self._ethtool(sock)
            return True
        except OSError as exc:
            if exc.errno == errno.ENODEV and method != "IOCTL":
                return None
            if method == "IOCTL" or self.method is None:
                raise
            return False  # a method that worked at first fails now: count the link as down

    def _mii(self, sock: socket.socket) -> bool:
        phy = fcntl.ioctl(sock, SIOCGMIIPHY, _ifreq(self.ifname))
        phy_id = struct.unpack_from("H", phy, 16)[0]

        def reg(num: int) -> int:
            out = fcntl.ioctl(sock, SIOCGMIIREG, _ifreq(self.ifname, struct.pack("HHHH", phy_id, num, 0, 0)))
            return int(struct.unpack_from("HHHH", out, 16)[3])

        if reg(MII_BMCR) == 0xFFFF or (first := reg(MII_BMSR)) == 0:
            raise OSError(errno.EOPNOTSUPP, f"no MII transceiver present for {self.ifname}")
        return bool((first | reg(MII_BMSR)) & BMSR_LSTATUS)  # the link bit latches: read it twice

    def _ethtool(self, sock: socket.socket) -> bool:
        value = array.array("I", [ETHTOOL_GLINK, 0])  # struct ethtool_value {cmd, data}
        address, _ = value.buffer_info()
        fcntl.ioctl(sock, SIOCETHTOOL, _ifreq(self.ifname, struct.pack("P", address)))
        return bool(value[1])

    def _flags_up(self, sock: socket.socket) -> bool:
        try:
            out = fcntl.ioctl(sock, SIOCGIFFLAGS, _ifreq(self.ifname))
        except OSError as exc:
            return exc.errno != errno.ENODEV  # as keepalived: only a missing interface is down
        flags = struct.unpack_from("H", out, 16)[0]
        return bool(flags & IFF_UP) and bool(flags & IFF_RUNNING)
