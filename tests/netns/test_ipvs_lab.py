"""The guide's NAT lab on the kernel's IPVS: traffic through the VIP, and a connection that survives failover.

Needs a kernel with IPVS, so it skips on this machine's and runs inside the
qemu guest (tests/vm/test_ipvs_lab.py), where both routers pick the IPVS
backend. With `lvs_sync_daemon` the master multicasts its connections to
the backup, so a kept-alive connection keeps working through the backup
after the master dies; without it the backup does not know the connection
and its own stack resets it (the control case).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.lvs_lab import LvsLab
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root,
              pytest.mark.skipif(not Path("/proc/net/ip_vs").exists(), reason="this kernel has no IPVS loaded "
                                 "(tests/vm/test_ipvs_lab.py runs these in the qemu guest)")]

TIME_SCALE = float(os.environ.get("PYKEEPALIVED_TIME_SCALE", "1"))
VIP = "203.0.113.10"


def wait_file(path: Path, timeout_s: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def make_lab(tmp_path: Path, tag: str, *, sync_daemon: bool) -> LvsLab:
    return LvsLab("nat", prefix=unique_prefix(tag), name=tag, workdir=tmp_path / "lab", timeout_scale=TIME_SCALE,
                  sync_daemon=sync_daemon, dataplane="ipvs")


def check_traffic_through_ipvs(lab: LvsLab) -> None:
    """Requests through the VIP reach every real server in turn, and it is IPVS that forwards them."""
    names = [lab.client_get(f"http://{VIP}/whoami", 2.0 * TIME_SCALE).split()[0] for _ in range(9)]
    assert sorted(names) == ["rs1"] * 3 + ["rs2"] * 3 + ["rs3"] * 3
    table = lab.router("router1").netns.run(["ipvsadm", "-Ln"]).stdout
    assert f"TCP  {VIP}:80 rr" in table and "FWM  80 rr persistent 30" in table, table
    tables = lab.router("router1").netns.run(["nft", "list", "tables"]).stdout
    assert "pykeepalived_lvs" not in tables  # IPVS forwards, not our nftables table
    assert "Masq" in lab.status_text("router1")


@pytest.mark.parametrize("sync_daemon", [True, False], ids=["lvs_sync_daemon", "no sync (control)"])
def test_traffic_and_a_kept_alive_connection_through_the_masters_death(tmp_path: Path, sync_daemon: bool) -> None:
    with make_lab(tmp_path, "ipvssync" if sync_daemon else "ipvsnos", sync_daemon=sync_daemon) as lab:
        if sync_daemon:  # one lab each costs a minute or two in the emulated guest: share the first
            check_traffic_through_ipvs(lab)
        trigger, out = tmp_path / "go", tmp_path / "client.json"
        client = lab.client.netns.popen([sys.executable, script("ipvs_kept_alive_client.py"), VIP, str(trigger),
                                         str(out)])
        try:
            before = wait_file(out, 30 * TIME_SCALE)["before"]
            assert isinstance(before, list) and len(set(before)) == 1, before  # one connection, one server
            time.sleep(2.0 * TIME_SCALE)  # the master's sync thread sends what it buffered
            lab.kill_router("router1")
            lab.wait_for_master(timeout_s=15 * TIME_SCALE, name="router2")
            trigger.touch()
            after = wait_file(Path(f"{out}.done"), 60 * TIME_SCALE)["after"]
        finally:
            client.kill()
            client.wait(timeout=10)
        if sync_daemon:
            assert after == before[0], after  # the same connection, to the same server, through router2
        else:
            assert str(after).startswith("error"), after  # router2 never heard of it
