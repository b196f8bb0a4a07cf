"""global_defs vrrp_netlink_{cmd,monitor}_rcv_bufs[_force]: the VRRP process's rtnetlink receive buffers.

Read with `ss -f netlink -m -e` in the daemon's own namespace (nothing else runs
there), for pykeepalived and for keepalived 2.2.7 on the same file. The kernel
doubles what SO_RCVBUF(FORCE) asks for; SO_RCVBUF is capped by rmem_max, FORCE
is not.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

CMD_BYTES = 3_000_003  # odd sizes, so that no socket has them by chance
MONITOR_BYTES = 100_003


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "nb")


def _rtnl_buffers(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-f", "netlink", "-a", "-m"], capture_output=True,
                         text=True, check=True).stdout
    return [int(m.group(1)) for line in out.splitlines() if "rtnl:" in line
            for m in [re.search(r"\brb(\d+)", line)] if m]


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_netlink_receive_buffers(lab: Lab, kind: str) -> None:
    extra = (f"vrrp_netlink_cmd_rcv_bufs {CMD_BYTES}\nvrrp_netlink_cmd_rcv_bufs_force\n"
             f"vrrp_netlink_monitor_rcv_bufs {MONITOR_BYTES}\n")
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=95, priority=100, vips=[ip_interface("192.0.2.195/24")])],
                    extra_global=extra)
    peer.start()
    netns = lab.r1.netns.name
    wait_until(lambda: 2 * CMD_BYTES in _rtnl_buffers(netns), 5, what=f"the command socket: {_rtnl_buffers(netns)}")
    assert 2 * MONITOR_BYTES in _rtnl_buffers(netns)
