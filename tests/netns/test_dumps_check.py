"""Signals to the main pid reach both children: keepalived.data, keepalived_check.data, stats, JSON (issue 14).

Exporters signal the pid in keepalived's main pid file. Before the fix in
daemon/lifeline.py our parent, having spawned both children at once, kept the
forwarded signals blocked for good: nothing was ever forwarded.

keepalived's checker answers the DATA signal with keepalived_check.data beside
the VRRP process's keepalived.data. This kernel has no IPVS, so keepalived's
own checker cannot run here to compare with; the labels and forms of the
LVS Topology section follow keepalived 2.2.7's check/check_data.c (dump_vs,
dump_rs), and this test checks the lines that state each server's health
follow what the checker sees: one real server listening, one not.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from pykeepalived.lab import wait_until

from .router_fixtures import lone_router, start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONFIG = """\
global_defs {
  router_id dumps-check
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.11 8080 {
    weight 2
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
  real_server 192.0.2.11 8081 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
"""

LISTENER = ("import socket\n"
            "import time\n"
            "s = socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('192.0.2.11', 8080))\n"
            "s.listen(64)\n"
            "time.sleep(120)\n")


def test_data_signal_writes_the_checker_dump_with_live_health(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    pid_file = tmp_path / "keepalived.pid"
    log_path = tmp_path / "daemon.log"
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-D", "-f", str(conf), "-p", str(pid_file),
            "-r", str(tmp_path / "vrrp.pid"), "-c", str(tmp_path / "checkers.pid"),
            "--status-file", str(tmp_path / "status.json"), "--dataplane", "none"]
    with lone_router("dchk") as host:
        listener = host.netns.popen([sys.executable, "-c", LISTENER])
        try:
            daemon = start_logged(host, argv, log_path, env=dict(os.environ, TMPDIR=str(dumps)))
            try:
                wait_until(lambda: pid_file.exists() and "(VI_1) Entering MASTER STATE" in log_path.read_text(),
                           15.0, what="the daemon up and master")
                pid = int(pid_file.read_text().strip())
                check_data, vrrp_data = dumps / "keepalived_check.data", dumps / "keepalived.data"

                def settled() -> bool:
                    os.kill(pid, signal.SIGUSR1)  # the parent forwards it to both children
                    time.sleep(0.3)
                    if not check_data.exists() or not vrrp_data.exists():
                        return False
                    return "   alive = 0" in check_data.read_text()

                wait_until(settled, 15.0, interval_s=0.5, what="a checker dump with the dead server down")
                lines = check_data.read_text().splitlines()
                for sig in (signal.SIGUSR2, signal.SIGRTMIN + 2):  # STATS and JSON, also through the parent
                    os.kill(pid, sig)
                wait_until(lambda: (dumps / "keepalived.stats").exists() and (dumps / "keepalived.json").exists(),
                           5.0, what="stats and JSON dumps")
            finally:
                stop_group(daemon)
                print(log_path.read_text(errors="replace")[-3000:])
        finally:
            stop_group(listener)
    assert stat.S_IMODE(check_data.stat().st_mode) == 0o600
    assert stat.S_IMODE(vrrp_data.stat().st_mode) == 0o600
    assert " VRRP Instance = VI_1" in vrrp_data.read_text().splitlines()
    assert lines[:2] == ["------< LVS Topology >------", " System is compiled with LVS v1.2.1"]
    for expected in (" ------< Virtual server >------", " VS VIP = 192.0.2.100, VPORT = 80",
                     "   Address family = inet", "   delay_loop = 1.000000", "   lvs_sched = rr",
                     "   protocol = TCP", "   quorum = 1, hysteresis = 0", "   default forwarding method = NAT",
                     "   ------< Real server >------", "   RIP = 192.0.2.11, RPORT = 8080, WEIGHT = 2 EFF WEIGHT = 2",
                     "   RIP = 192.0.2.11, RPORT = 8081, WEIGHT = 1 EFF WEIGHT = 1",
                     "   forwarding method = NAT", "   connection timeout = 5.000000"):
        assert expected in lines, expected
    first = lines.index("   RIP = 192.0.2.11, RPORT = 8080, WEIGHT = 2 EFF WEIGHT = 2")
    second = lines.index("   RIP = 192.0.2.11, RPORT = 8081, WEIGHT = 1 EFF WEIGHT = 1")
    assert "   alive = 1" in lines[first:second] and "   num failed checkers = 0" in lines[first:second]
    assert "   alive = 0" in lines[second:] and "   num failed checkers = 1" in lines[second:]
