"""Sizing a VRRP socket's receive buffer after it is open, and the interface MTU the MTU policy needs.

The size itself comes from vrrp/rx_bufs.py (keepalived's rules); a failure is
keepalived's log line and the socket keeps the size it had.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct

log = logging.getLogger("pykeepalived")
SIOCGIFMTU = 0x8921


def interface_mtu(ifname: str) -> int | None:
    """The MTU of `ifname` in this network namespace; None if there is no such interface."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, struct.pack("16si", ifname.encode()[:15], 0))
    except OSError:
        return None
    return int(struct.unpack("16si", answer)[1])


def set_socket_rcvbuf(fileno: int, size: int) -> None:
    """SO_RCVBUF on an open socket (the kernel doubles it and caps the request at net.core.rmem_max)."""
    sock = socket.socket(fileno=fileno)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.info("vrrp set receive socket buffer size error %d", exc.errno or 0)
    finally:
        sock.detach()
