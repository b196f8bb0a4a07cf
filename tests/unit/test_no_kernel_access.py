"""The unit suite's guard (tests/unit/conftest.py) refuses kernel tools and netlink, and nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.unit.conftest import GUARD, KernelTouched


def test_kernel_tools_and_netlink_are_refused() -> None:
    try:
        with pytest.raises(KernelTouched, match="'modprobe'"):
            subprocess.run(["modprobe", "-n", "ip_vs"], capture_output=True, check=False)
        with pytest.raises(KernelTouched, match="'nft'"):
            subprocess.run("/usr/sbin/nft -f /etc/nftables.conf", shell=False, capture_output=True, check=False)
        with pytest.raises(KernelTouched, match="netlink"):
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        assert len(GUARD.seen) == 3
    finally:
        GUARD.seen.clear()


def test_other_processes_and_sockets_are_fine() -> None:
    proc = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, check=True)
    assert proc.stdout == "ok\n"
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    assert GUARD.seen == []
