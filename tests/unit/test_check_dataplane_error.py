"""The checker's status names a data plane that cannot forward (issue 12, items 9 and 13), and `status` prints it.

`auto` without IPVS or libnftables' binding falls back to keeping the table
only; that fallback carries the reason, which the status file reports as
`dataplane_error` (the VRRP process faults on it). `--dataplane none` is a
choice, not an error.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pykeepalived.check.service import CheckService
from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.lvs.choose import ipvs_available
from pykeepalived.lvs.null import TableOnly
from pykeepalived.status import Liveness, render

RUNNING = Liveness(trusted=True, running=True, problem=None, age_s=0.0)


def config() -> KeepalivedConfig:
    vs = VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"), port=80, protocol="TCP",
                       lvs_sched="rr", lvs_method="NAT",
                       real_servers=[RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)])
    return KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[vs])


def test_a_fallback_without_a_data_plane_is_reported() -> None:
    service = CheckService(config(), TableOnly(error="no data plane (auto found neither IPVS nor nftables): x"))
    status = service.status()
    assert status["dataplane_error"] == "no data plane (auto found neither IPVS nor nftables): x"
    assert status["dataplane_repairs"] == {"count": 0, "last_at": None, "last": None}
    assert render(status, RUNNING).splitlines()[1] == (
        "DATA PLANE FAILING: no data plane (auto found neither IPVS nor nftables): x")


def test_no_data_plane_by_choice_is_no_error() -> None:
    status = CheckService(config(), TableOnly()).status()
    assert status["dataplane_error"] is None
    assert "DATA PLANE FAILING" not in render(status, RUNNING)


def test_auto_without_libnftables_binding_falls_back_with_the_reason(tmp_path: Path) -> None:
    """The binding "not installed": an `nftables.py` that raises ImportError ahead on PYTHONPATH."""
    if ipvs_available():
        pytest.skip("auto would choose IPVS on this kernel")
    (tmp_path / "nftables.py").write_text('raise ImportError("No module named \'nftables\'")\n')
    script = textwrap.dedent("""
        import ipaddress, json
        from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
        from pykeepalived.lvs import choose
        vs = VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"), port=80, protocol="TCP",
                           real_servers=[RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)])
        plane = choose.choose_dataplane("auto", KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[vs]))
        print(json.dumps([plane.name, getattr(plane, "error", None)]))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    name, error = json.loads(proc.stdout)
    assert name == "none"
    assert error.startswith("no data plane (auto found neither IPVS nor a usable nftables)")
    assert "python3-nftables" in error and "No module named 'nftables'" in error
