"""Which VRRP instances a failing data plane puts in FAULT, and which status files count (issue 12, item 13)."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.vrrp import dataplane_fault
from pykeepalived.vrrp.dataplane_fault import (
    HEAD_BYTES, checker_error, checker_error_in_head, fault_reason, served_instances, serving,
)
from pykeepalived.vrrp.machine import State

CONF = """
vrrp_instance WEB {{
  state MASTER
  interface eth0
  virtual_router_id 50
  priority 150
  virtual_ipaddress {{
    203.0.113.10/24
  }}
}}
vrrp_instance GROUPED {{
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 150
  virtual_ipaddress {{
    192.0.2.1/24
  }}
  virtual_ipaddress_excluded {{
    198.51.100.77/24
  }}
}}
vrrp_instance GATEWAY {{
  state MASTER
  interface eth1
  virtual_router_id 52
  priority 150
  virtual_ipaddress {{
    10.11.12.10/24
  }}
}}
virtual_server_group RANGE {{
  198.51.100.70-80 80
}}
{extra}
virtual_server 203.0.113.10 80 {{
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.11.12.1 80 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
}}
virtual_server group RANGE {{
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 10.11.12.2 80 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
}}
"""

FWMARK_VS = """
virtual_server fwmark 80 {
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  real_server 10.11.12.3 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
"""


def load(extra: str = "") -> KeepalivedConfig:
    result = read_config_text(CONF.format(extra=extra))
    assert not result.errors, result.errors
    return result.config


def test_an_instance_serves_the_virtual_servers_at_its_vips_and_excluded_vips_and_group_ranges() -> None:
    cfg = load()
    assert [sorted(names) for _, names in serving(cfg)] == [["WEB"], ["GROUPED"]]
    assert served_instances(cfg) == {"WEB", "GROUPED"}  # GATEWAY (the real servers' route) serves none


def test_a_virtual_server_no_instance_matches_is_served_by_every_instance() -> None:
    assert served_instances(load(FWMARK_VS)) == {"WEB", "GROUPED", "GATEWAY"}


def test_only_a_status_file_written_since_the_vrrp_process_started_counts() -> None:
    started = 1000.0
    assert checker_error({"time": 1001.0, "dataplane_error": "no binding"}, started) == "no binding"
    assert checker_error({"time": 999.0, "dataplane_error": "no binding"}, started) is None  # an earlier run's
    assert checker_error({"time": 1001.0, "dataplane_error": None}, started) is None  # a crashed checker's: no fault
    assert checker_error({"time": 1001.0}, started) is None
    assert checker_error(["not", "a", "status"], started) is None


def test_only_the_head_of_a_big_status_file_is_read() -> None:
    """A checker with thousands of real servers writes megabytes; VRRP reads the first keys only."""
    servers = [{"name": f"[10.0.{i // 250}.{i % 250}]:80", "alive": True, "checkers": []} for i in range(20000)]
    status = {"pid": 42, "time": 1001.0, "dataplane": "nftables", "applied": False,
              "dataplane_error": 'nftables refused the change: "time": 5', "services": [{"real_servers": servers}]}
    text = json.dumps(status, indent=1)
    assert len(text) > 10 * HEAD_BYTES
    assert checker_error_in_head(text[:HEAD_BYTES], 1000.0) == 'nftables refused the change: "time": 5'
    assert checker_error_in_head(text[:HEAD_BYTES], 1002.0) is None  # written before we started
    ok = json.dumps({**status, "dataplane_error": None}, indent=1)[:HEAD_BYTES]
    assert checker_error_in_head(ok, 1000.0) is None
    with pytest.raises(ValueError):  # cut inside the error: no news, not "no error"
        checker_error_in_head(text[:text.index("refused")], 1000.0)
    with pytest.raises(ValueError):
        checker_error_in_head("", 1000.0)


def test_the_fault_reason_is_one_line_of_bounded_length() -> None:
    assert fault_reason("nftables refused\nthe change") == "data plane: nftables refused the change"
    assert len(fault_reason("x" * 5000)) <= len("data plane: ") + dataplane_fault.MAX_REASON_CHARS


def test_the_module_does_no_io() -> None:
    tree = ast.parse(Path(dataplane_fault.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert not imported & {"asyncio", "socket", "time", "os", "pyroute2", "subprocess", "pathlib"}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def test_the_fault_reaches_the_served_instances_and_their_json_dump_and_survives_tracker_updates(
        loop: asyncio.AbstractEventLoop) -> None:
    """The VRRP shell's half (no sockets: the machines are started and faulted without running the loop)."""
    from pykeepalived.vrrp.service import VrrpService

    cfg = load()
    service = VrrpService(cfg, status_file="/nonexistent/checker.json")
    service._loop = loop
    for name in service.machines:
        service._apply(service.core.start(name, loop.time()))
    served = served_instances(cfg)
    service._set_dataplane_fault(served, "nftables refused the change: No such file or directory")
    faults = {entry["data"]["iname"]: entry["data"]["faults"] for entry in service.snapshot()}  # type: ignore[index]
    reason = "data plane: nftables refused the change: No such file or directory"
    assert faults == {"WEB": [reason], "GROUPED": [reason], "GATEWAY": []}
    assert service.machines["WEB"].state is State.FAULT and service.machines["GATEWAY"].state is not State.FAULT
    service._sync_tracking("WEB")  # a tracker's verdict (here: eth0 not seen yet) must not clear the data plane's
    assert reason in service.machines["WEB"].faults
    service._set_dataplane_fault(served, None)
    assert reason not in service.machines["WEB"].faults and reason not in service.machines["GROUPED"].faults


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_only_a_regular_status_file_of_our_own_user_counts(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """Whoever can plant the file could fault our instances at will: another user's file or a link is ignored."""
    from pykeepalived.vrrp.service import VrrpService

    cfg = load()
    path = tmp_path / "checker.json"
    service = VrrpService(cfg, status_file=str(path))
    service._loop = loop
    served = served_instances(cfg)
    path.write_text(json.dumps({"pid": 1, "time": time.time() + 60, "dataplane_error": "refused"}))
    service._read_dataplane_status(str(path), served, None)
    assert service._dataplane_fault == "data plane: refused"

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"pid": 1, "time": time.time() + 60, "dataplane_error": None}))
    os.chown(other, 65534, 65534)
    os.replace(other, path)
    service._read_dataplane_status(str(path), served, None)
    assert service._dataplane_fault == "data plane: refused"  # not believed: no news

    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps({"pid": 1, "time": time.time() + 60,
                                                         "dataplane_error": None}))
    with pytest.raises(OSError):  # ELOOP: the watcher takes it as no news
        service._read_dataplane_status(str(path), served, None)
