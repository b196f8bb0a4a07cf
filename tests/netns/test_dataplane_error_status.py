"""A checker whose applies fail says so in its status file, and stops saying so when they work (issue 12, item 13).

The checker daemon runs alone (-C) in a namespace with a DR virtual server
whose real server has no route yet: every apply fails ("no route to real
server"), the checker retries each second, and its status file carries the
reason as `dataplane_error` (what the VRRP process reads to go to FAULT) and
`pykeepalived status` prints it. Once the route exists the next retry
applies the table and the error is null again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Netns, unique_prefix, wait_until

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """
global_defs {
    enable_script_security
    script_user root
}
virtual_server 203.0.113.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.99.0.1 80 {
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}
"""


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("dperr"))
    netns.create()
    try:
        yield netns
    finally:
        netns.delete()  # kills the daemon too, and takes its nftables table with it


def _status(path: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def test_a_failing_apply_is_published_as_dataplane_error_and_cleared_when_it_works(ns: Netns, tmp_path: Path) -> None:
    conf, status, log = tmp_path / "keepalived.conf", tmp_path / "checker.json", tmp_path / "checker.log"
    conf.write_text(CONF)
    pids = [str(tmp_path / f"{n}.pid") for n in ("main", "vrrp", "check")]
    argv = [sys.executable, "-m", "pykeepalived", "-C", "-n", "-l", "-G", "-f", str(conf), "-p", pids[0],
            "-r", pids[1], "-c", pids[2], "--status-file", str(status), "--dataplane", "nftables"]
    ns.ip("link", "set", "lo", "up")
    with open(log, "wb") as out:
        daemon = ns.popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: isinstance(_status(status).get("dataplane_error"), str) or daemon.poll() is not None,
                   10.0, what=f"dataplane_error in {status}")
        assert daemon.poll() is None, log.read_text()
        error = str(_status(status)["dataplane_error"])
        assert "no route to real server 10.99.0.1" in error
        shown = subprocess.run([sys.executable, "-m", "pykeepalived", "status", "--status-file", str(status)],
                               capture_output=True, text=True, timeout=20, check=False)
        assert "DATA PLANE FAILING: " in shown.stdout and "no route to real server" in shown.stdout, shown

        ns.ip("link", "add", "d0", "type", "veth", "peer", "name", "d1")  # this kernel has no dummy devices
        ns.ip("addr", "add", "10.99.0.2/24", "dev", "d0")
        ns.ip("link", "set", "d1", "up")
        ns.ip("link", "set", "d0", "up")
        wait_until(lambda: _status(status).get("dataplane_error", "") is None and _status(status).get("applied"),
                   5.0, what="the error cleared")
        assert "the table is applied again" in log.read_text()
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
