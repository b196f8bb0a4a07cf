"""vrrp_rx_bufs_policy / vrrp_rx_bufs_multiplier / kernel_rx_buf_size: a VRRP socket's receive buffer.

Both instances share one socket (same interface, same group), each adding its
share as keepalived 2.2.7 does: MTU x multiplier for the first, its own
kernel_rx_buf_size for the second. Read from the VRRP process's own sockets
(pidfd_getfd, then getsockopt: `ss` has no memory figures for raw sockets),
for pykeepalived and keepalived on the same file.
"""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until
from pykeepalived.lab.peers import KeepalivedPeer

from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

MULTIPLIER = 7
SYS_PIDFD_GETFD = 438
OWN = 50_001


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "rx")


def _vrrp_socket_buffers(pid: int) -> list[int]:
    """SO_RCVBUF of every raw IPv4 protocol-112 socket process `pid` holds."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    found = []
    try:
        for entry in os.listdir(f"/proc/{pid}/fd"):
            if not os.readlink(f"/proc/{pid}/fd/{entry}").startswith("socket:"):
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(entry), 0)
            if fd < 0:
                continue
            sock = socket.socket(fileno=fd)
            try:
                if (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_RAW, 112):
                    found.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            finally:
                sock.close()
    finally:
        os.close(pidfd)
    return found


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_socket_buffer_is_the_sum_of_the_instances_shares(lab: Lab, kind: str) -> None:
    mtu = 1400  # not the usual 1500, so that the MTU is really read
    lab.r1.netns.ip("link", "set", lab.r1.ifname, "mtu", str(mtu))
    settings = [VrrpSettings(vrid=96, priority=100, vips=[ip_interface("192.0.2.196/24")], name="VI_1"),
                VrrpSettings(vrid=97, priority=100, vips=[ip_interface("192.0.2.197/24")], name="VI_2",
                             extra=[f"kernel_rx_buf_size {OWN}"])]
    peer = lab.peer(kind, lab.r1, settings,
                    extra_global=f"vrrp_rx_bufs_policy MTU\nvrrp_rx_bufs_multiplier {MULTIPLIER}\n")
    peer.start()
    want = 2 * (MULTIPLIER * mtu + OWN)  # the kernel doubles SO_RCVBUF
    assert isinstance(peer, KeepalivedPeer)  # pykeepalived's peer is one too, on the same files
    pid = int(peer.vrrp_pid_path.read_text())
    wait_until(lambda: want in _vrrp_socket_buffers(pid), 5, what=f"{want} among {_vrrp_socket_buffers(pid)}")
