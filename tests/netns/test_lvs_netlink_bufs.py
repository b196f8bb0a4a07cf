"""global_defs lvs_netlink_*_rcv_bufs[_force] and process_monitor_rcv_bufs[_force] (issue 14).

The checker's rtnetlink socket (ha_suspend's address watch) takes
lvs_netlink_cmd_rcv_bufs, else lvs_netlink_monitor_rcv_bufs; the proc
connector socket vrrp_track_process follows takes process_monitor_rcv_bufs.
Read with `ss -f netlink -a -m`: the kernel doubles what SO_RCVBUF(FORCE)
asks for, and FORCE is not capped by rmem_max.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.lab import wait_until
from pykeepalived.net.netlink_bufs import process_monitor_rcvbuf
from pykeepalived.vrrp.process_watch import watch_processes
from pykeepalived.vrrp.track_process import ProcessTable

from .router_fixtures import lone_router, start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CMD_BYTES = 3_000_017  # odd sizes, so that no socket has them by chance
MONITOR_BYTES = 1_000_033
PROC_BYTES = 2_000_039

CONF = """global_defs {{
    router_id hs
{extra}
}}
virtual_server 192.0.2.100 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    ha_suspend
    real_server 192.0.2.1 1 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


def _buffers(kind: str, netns: str | None = None) -> list[int]:
    argv = ["ss", "-f", "netlink", "-a", "-m"]
    out = subprocess.run(["ip", "netns", "exec", netns, *argv] if netns else argv, capture_output=True, text=True,
                         check=True).stdout
    return [int(m.group(1)) for line in out.splitlines() if f"{kind}:" in line
            for m in [re.search(r"\brb(\d+)", line)] if m]


def _checker_buffers(tmp_path: Path, extra: str, wanted: int) -> list[int]:
    with lone_router("lnb") as host:
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CONF.format(extra=extra))
        log = tmp_path / "log"
        proc = start_logged(host, [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-C", "-f", str(conf),
                                   "--dataplane", "none", "--status-file", str(tmp_path / "status.json"),
                                   "-p", str(tmp_path / "p.pid"), "-c", str(tmp_path / "c.pid")], log)
        try:
            netns = host.netns.name
            wait_until(lambda: wanted in _buffers("rtnl", netns), 15,
                       what=f"the checker's rtnetlink socket: {_buffers('rtnl', netns)}\n{log.read_text()[-2000:]}")
            return _buffers("rtnl", netns)
        finally:
            stop_group(proc)


def test_checker_socket_takes_the_command_size(tmp_path: Path) -> None:
    extra = (f"    lvs_netlink_cmd_rcv_bufs {CMD_BYTES}\n    lvs_netlink_cmd_rcv_bufs_force\n"
             f"    lvs_netlink_monitor_rcv_bufs {MONITOR_BYTES}\n    lvs_netlink_monitor_rcv_bufs_force")
    assert 2 * CMD_BYTES in _checker_buffers(tmp_path, extra, 2 * CMD_BYTES)


def test_checker_socket_takes_the_monitor_size_alone(tmp_path: Path) -> None:
    extra = f"    lvs_netlink_monitor_rcv_bufs {MONITOR_BYTES}\n    lvs_netlink_monitor_rcv_bufs_force"
    assert 2 * MONITOR_BYTES in _checker_buffers(tmp_path, extra, 2 * MONITOR_BYTES)


def test_process_monitor_socket(tmp_path: Path) -> None:
    """The proc connector exists only in the initial network namespace: the watcher runs in this process there."""
    text = f"global_defs {{\n process_monitor_rcv_bufs {PROC_BYTES}\n process_monitor_rcv_bufs_force\n}}\n"
    g = read_config_text(text).config.global_defs

    async def main() -> list[int]:
        clock = asyncio.get_running_loop().time
        task = asyncio.create_task(watch_processes(ProcessTable({}), lambda name, up: None, clock,
                                                   process_monitor_rcvbuf(g)))
        try:
            for _ in range(50):
                await asyncio.sleep(0.05)
                found = await asyncio.to_thread(_buffers, "connector")
                if 2 * PROC_BYTES in found:
                    return found
            return found
        finally:
            task.cancel()

    assert 2 * PROC_BYTES in asyncio.run(main())
