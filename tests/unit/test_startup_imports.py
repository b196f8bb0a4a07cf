"""Start-up: each light command imports only what it needs (issue 14; the time is bench/startup.py's).

A fresh interpreter runs the command through `pykeepalived.cli.main` and
reports which modules were imported. The list pins the structure, not a
timing: `-t` reads a VRRP instance and a virtual server with a TCP_CHECK
real server (so it builds the checker plan and asks the data plane what it
cannot build) without the daemon, netlink, nftables, the ruleset builder,
logging or hashing; `--version` without the configuration reader; genhash
without the configuration reader either (it only fetches a page).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFIG = """\
global_defs {
  router_id startup
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 6
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.0.0.1 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 3
    }
  }
}
"""

# What the daemon needs and a light command must not pay for.
DAEMON = [
    "asyncio", "logging", "threading", "subprocess", "tempfile", "ctypes", "pyroute2", "nftables",
    "pykeepalived.daemon.run", "pykeepalived.vrrp.service", "pykeepalived.check.service",
    "pykeepalived.lvs.nft_rules", "pykeepalived.lvs.nft", "pykeepalived.lvs.ipvs", "pykeepalived.lvs.ipvs_sync",
    "pykeepalived.lvs.sync_daemon", "pykeepalived.lvs.sched", "pykeepalived.lvs.null", "pykeepalived.lvs.skip",
    "pykeepalived.check.pool", "pykeepalived.check.logic", "pykeepalived.check.http",
]
# What HTTP checks, dumps and files need (genhash hashes and parses URLs): not `-t` or --version.
NOT_FOR_A_CONFIG_TEST = ["ssl", "hashlib", "json", "pathlib", "urllib.parse", "shutil"]
READER = ["pykeepalived.config", "pykeepalived.config.model", "dataclasses", "inspect"]


def imported_by(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    """Run `pykeepalived ARGV` in a fresh interpreter; its exit status and the modules it imported."""
    code = textwrap.dedent(f"""
        import sys
        from pykeepalived.cli import main
        status = main({argv!r})
        sys.stdout.write("\\n--- modules\\n" + str(status) + "\\n" + "\\n".join(sorted(sys.modules)))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                        *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    status, *modules = done.stdout.rsplit("\n--- modules\n", 1)[-1].splitlines()
    return int(status), set(modules)


def test_config_test_imports_the_reader_and_the_checker_plan_only(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONFIG)
    status, modules = imported_by(["-t", "--no-host-checks", "--dataplane", "nftables", "-f", str(conf)], tmp_path)
    assert status == 0
    assert {"pykeepalived.check.plan", "pykeepalived.check.tcp", "pykeepalived.lvs.nft_limits"} <= modules  # it ran
    assert sorted(set(DAEMON + NOT_FOR_A_CONFIG_TEST) & modules) == []


def test_version_imports_no_configuration_reader(tmp_path: Path) -> None:
    status, modules = imported_by(["--version"], tmp_path)
    assert status == 0
    assert sorted(set(DAEMON + NOT_FOR_A_CONFIG_TEST + READER) & modules) == []


@pytest.mark.parametrize("argv", [["genhash", "-s", "127.0.0.1", "-p", "1", "-u", "/"],
                                  ["genhash", "--url", "http://127.0.0.1:1/"]], ids=["keepalived's", "ours"])
def test_genhash_imports_no_configuration_reader(tmp_path: Path, argv: list[str]) -> None:
    """It fetches the page (port 1 of loopback: refused at once) with the HTTP checker's request and digest."""
    status, modules = imported_by(argv, tmp_path)
    assert status != 0 and "pykeepalived.check.http_response" in modules
    assert sorted(set(DAEMON + READER[:2] + ["ssl", "json", "pathlib", "shutil"]) & modules) == []
