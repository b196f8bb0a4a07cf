"""ha_suspend: the checkers of a virtual server whose address is not on this host do not run.

The checker daemon runs in a namespace with a virtual server on 192.0.2.100
(ha_suspend) and one on 192.0.2.101 (without), each with a TCP_CHECK on a
closed port: a check that runs fails at once and says so. The 192.0.2.100
address comes and goes with `ip addr`, as a VRRP master would add it.
(keepalived 2.2.7's checker needs IPVS, which this kernel lacks: its
behaviour is taken from check_api.c update_checker_activity.)
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from .daemon_process import DaemonProcess
from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id hs
}
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  ha_suspend
  real_server 192.0.2.1 1 {
    TCP_CHECK {
      connect_timeout 1
      retry 0
      log_all_failures
    }
  }
}
virtual_server 192.0.2.101 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.1 2 {
    TCP_CHECK {
      connect_timeout 1
      retry 0
      log_all_failures
    }
  }
}
"""

SUSPENDED_RS = "[192.0.2.1]:tcp:1"
VS = "[192.0.2.100]:tcp:80"


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkha")


def failures(log: str, rs: str) -> int:
    return sum(1 for line in log.splitlines() if "TCP_CHECK on service" in line and rs in line)


def attempts(box: Box, daemon: DaemonProcess) -> dict[str, int]:
    """Real server name -> checks run so far, from the checker's status file (SIGUSR1 rewrites it at once)."""
    os.kill(daemon.pid, signal.SIGUSR1)
    time.sleep(0.5)
    status = json.loads(next(box.root.glob("*.status")).read_text())
    return {srv["name"]: sum(c["attempts"] for c in srv["checkers"])
            for svc in status["services"] for srv in svc["real_servers"]}


@pytest.mark.parametrize("workers", [(), ("--checker-workers", "2")])
def test_checkers_follow_the_virtual_address(box: Box, workers: tuple[str, ...]) -> None:
    daemon = box.start(box.conf(CONF), "-C", "--dataplane", "none", *workers)
    try:
        daemon.wait_log(f"Deactivating healthchecker for service {SUSPENDED_RS} for VS {VS}", 10)
        daemon.wait_log("[192.0.2.1]:tcp:2", 10)  # the other VS is checked meanwhile
        time.sleep(2.5)
        assert failures(daemon.log(), SUSPENDED_RS) == 0, daemon.log()
        box.ip("addr", "add", "192.0.2.100/32", "dev", "eth0")
        daemon.wait_log(f"Activating healthchecker for service {SUSPENDED_RS} for VS {VS}", 5)
        assert wait_for(lambda: failures(daemon.log(), SUSPENDED_RS) > 0, 5) is not None, daemon.log()
        box.ip("addr", "del", "192.0.2.100/32", "dev", "eth0")
        daemon.wait_log(f"Suspending healthchecker for service {SUSPENDED_RS} for VS {VS}", 5)
        time.sleep(1.5)  # a check already under way may still end, and the status file catch up
        before = attempts(box, daemon)
        time.sleep(3.5)
        after = attempts(box, daemon)
        assert after[SUSPENDED_RS] == before[SUSPENDED_RS], (before, after)
        assert after["[192.0.2.1]:tcp:2"] >= before["[192.0.2.1]:tcp:2"] + 2, (before, after)
    finally:
        daemon.stop()
