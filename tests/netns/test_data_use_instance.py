"""global_defs data_use_instance: the data dumps carry the instance name (issue 14).

keepalived 2.2.7 (open_dump_file) names keepalived.data and
keepalived_check.data after the namespace and instance when data_use_instance
is set: keepalived.NAMESPACE_INSTANCE.data, here keepalived.blue.data. Two
daemons on one host (two `instance`s) then do not overwrite each other's dumps.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from pykeepalived.lab import wait_until

from .router_fixtures import lone_router, start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONFIG = """\
instance blue
global_defs {{
  router_id dui
{extra}
}}
vrrp_instance VI_1 {{
  state MASTER
  interface eth0
  virtual_router_id 62
  priority 150
  advert_int 1
  virtual_ipaddress {{
    192.0.2.100/24
  }}
}}
virtual_server 192.0.2.100 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.11 8080 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
}}
"""


def _dumps(tmp_path: Path, extra: str) -> set[str]:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(extra=extra))
    pid_file = tmp_path / "keepalived.pid"
    log_path = tmp_path / "daemon.log"
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-D", "-f", str(conf), "-p", str(pid_file),
            "-r", str(tmp_path / "vrrp.pid"), "-c", str(tmp_path / "checkers.pid"),
            "--status-file", str(tmp_path / "status.json"), "--dataplane", "none"]
    with lone_router("dui") as host:
        daemon = start_logged(host, argv, log_path, env=dict(os.environ, TMPDIR=str(dumps)))
        try:
            wait_until(lambda: pid_file.exists() and "(VI_1) Entering MASTER STATE" in log_path.read_text()
                       and (tmp_path / "status.json").exists(), 15.0, what="the daemon up and master")
            pid = int(pid_file.read_text().strip())

            def both() -> bool:
                os.kill(pid, signal.SIGUSR1)  # the parent forwards it to both children
                time.sleep(0.3)
                return len([p for p in dumps.iterdir() if p.name.endswith(".data")]) >= 2

            wait_until(both, 10.0, interval_s=0.5, what="both data dumps")
        finally:
            stop_group(daemon)
            print(log_path.read_text(errors="replace")[-3000:])
    return {p.name for p in dumps.iterdir() if not p.name.startswith(".")}


def test_data_use_instance_names_both_dumps(tmp_path: Path) -> None:
    assert _dumps(tmp_path, "  data_use_instance") == {"keepalived.blue.data", "keepalived_check.blue.data"}


def test_without_it_the_names_stay(tmp_path: Path) -> None:
    assert _dumps(tmp_path, "") == {"keepalived.data", "keepalived_check.data"}
