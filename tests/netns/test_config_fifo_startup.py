"""Starting the daemon with an `include` of a FIFO, or `-f FIFO`, does not hang (keepalived skips such files).

Before, the reader opened the FIFO and waited for a writer that never came:
start-up hung forever. Now the FIFO is skipped with a warning and the daemon
starts on the rest of the configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import tcp_listener
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .router_fixtures import CHECKED_SERVER
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """
global_defs {{
    router_id lb
}}
include {fifo}
""" + CHECKED_SERVER
SKIPPED = "is not a regular non-executable file (a FIFO) - skipping"


@pytest.fixture
def lb() -> Iterator[Host]:
    with Lan(unique_prefix("fif")) as lan:
        yield lan.add_host("lb", 1)


def _start(host: Host, tmp_path: Path, conf: Path, *flags: str) -> DaemonProcess:
    return DaemonProcess(host.netns.name, ["-n", "-l", "-G", *flags, "-f", str(conf),
                                           "--status-file", str(tmp_path / "status.json"),
                                           "-p", str(tmp_path / "p.pid"),
                                           "-r", str(tmp_path / "r.pid"), "-c", str(tmp_path / "c.pid")],
                         tmp_path / "log")


def test_checker_starts_with_an_include_of_a_fifo(lb: Host, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    rs = str(lb.ipv4.ip)
    listener = tcp_listener(lb, rs, 8080)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(fifo=tmp_path / "fifo", rs=rs))
    daemon = _start(lb, tmp_path, conf, "-C", "--dataplane", "none")
    try:
        wait_until(lambda: (tmp_path / "status.json").exists(), 15,
                   what=f"the checker's status file:\n{(tmp_path / 'log').read_text()[-2000:]}")
        assert f"{conf}:5: warning: {tmp_path / 'fifo'} {SKIPPED}" in (tmp_path / "log").read_text()
        assert daemon.running()
    finally:
        daemon.stop()
        listener.kill()


def test_daemon_starts_with_f_naming_a_fifo(lb: Host, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    daemon = _start(lb, tmp_path, tmp_path / "fifo")
    try:
        wait_until(lambda: (tmp_path / "p.pid").exists(), 15,
                   what=f"the daemon's pid file:\n{(tmp_path / 'log').read_text()[-2000:]}")
        assert f"configuration file {tmp_path / 'fifo'} {SKIPPED}" in (tmp_path / "log").read_text()
        assert daemon.running()
    finally:
        daemon.stop()
