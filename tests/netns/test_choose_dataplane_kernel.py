"""Choosing the data plane on this host's kernel: `auto` and `ipvs` run `modprobe ip_vs` first.

Loading a module changes the host, so these live with the netns suites (root,
`-m netns`), not with the unit tests (tests/unit/conftest.py refuses kernel
tools there).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pykeepalived.config.vocabulary import DataPlaneChoice
from pykeepalived.config.model import GlobalDefs, KeepalivedConfig, RealServer, VirtualServer
from pykeepalived.lvs.choose import choose_dataplane, ipvs_available
from pykeepalived.lvs.ipvs_sync import kernel_has_ipvs
from pykeepalived.lvs.model import DataPlaneError
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]


def config(setting: DataPlaneChoice | None = None) -> KeepalivedConfig:
    vs = VirtualServer(kind="address", address=ipaddress.ip_address("203.0.113.10"), port=80, protocol="TCP",
                       lvs_sched="rr", lvs_method="NAT",
                       real_servers=[RealServer(ipaddress.ip_address("10.11.12.1"), 80, weight=1)])
    cfg = KeepalivedConfig(global_defs=GlobalDefs(), virtual_servers=[vs])
    if setting is not None:
        cfg.global_defs.pykeepalived_dataplane = setting
    return cfg


@pytest.mark.skipif(kernel_has_ipvs(), reason="this kernel has IPVS")
def test_forcing_ipvs_on_a_kernel_without_it_says_so() -> None:
    with pytest.raises(DataPlaneError, match="no IPVS"):
        choose_dataplane("auto", config("ipvs"))


def test_auto_without_libnftables_binding_falls_back_with_the_reason(tmp_path: Path) -> None:
    """The binding "not installed": an `nftables.py` that raises ImportError ahead on PYTHONPATH."""
    if ipvs_available():
        pytest.skip("auto would choose IPVS on this kernel")
    (tmp_path / "nftables.py").write_text('raise ImportError("No module named \'nftables\'")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, script("choose_without_nftables.py")], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    name, error = json.loads(proc.stdout)
    assert name == "none"
    assert error.startswith("no data plane (auto found neither IPVS nor a usable nftables)")
    assert "python3-nftables" in error and "No module named 'nftables'" in error
