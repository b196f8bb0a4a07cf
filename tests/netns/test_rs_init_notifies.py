"""global_defs rs_init_notifies: real servers up at start get their notify_up and FIFO line (issue 14).

keepalived 2.2.7 (ipwrapper.c init_service_rs) runs notify_up and writes
"RS ... UP" to the notify FIFOs for each real server it adds at start as
alive when rs_init_notifies is set; without it, a server that starts up and
stays up is never notified. A real server without checkers is up from the
start and stays so.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pykeepalived.lab import wait_until

from .router_fixtures import lone_router, start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONFIG = """\
global_defs {{
  router_id rsi
  script_user root
  enable_script_security
{extra}
}}
virtual_server 192.0.2.100 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.11 8080 {{
    notify_up "/usr/bin/touch {marker}"
  }}
}}
"""


def _run(tmp_path: Path, extra: str) -> bool:
    marker = tmp_path / "notified"
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG.format(extra=extra, marker=marker))
    status = tmp_path / "status.json"
    log_path = tmp_path / "daemon.log"
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-D", "-C", "-f", str(conf),
            "-p", str(tmp_path / "p.pid"), "-c", str(tmp_path / "c.pid"),
            "--status-file", str(status), "--dataplane", "none"]
    with lone_router("rsi") as host:
        daemon = start_logged(host, argv, log_path)
        try:
            wait_until(status.exists, 15.0, what=f"the checker up:\n{log_path.read_text()[-2000:]}")
            if "rs_init_notifies" in extra:
                wait_until(marker.exists, 5.0, what=f"notify_up at start:\n{log_path.read_text()[-2000:]}")
            else:
                time.sleep(1.5)  # time enough for a notify_up that should not come
            return marker.exists()
        finally:
            stop_group(daemon)
            print(log_path.read_text(errors="replace")[-3000:])


def test_rs_init_notifies_runs_notify_up_at_start(tmp_path: Path) -> None:
    assert _run(tmp_path, "  rs_init_notifies")


def test_without_it_a_server_up_from_the_start_is_not_notified(tmp_path: Path) -> None:
    assert not _run(tmp_path, "")
