"""A data plane that fails under the routers, in the NAT lab (issue 12, items 9 and 13).

- `nft flush ruleset` on the master (what Debian's nftables.conf does on every
  restart of the nftables service) takes the checker's table with it: the
  checker must notice and put the whole table back within a second, and
  later changes must work again. A client sends a request through the VIP
  every 50 ms meanwhile; the window in which requests fail is measured.
- A checker that cannot program the data plane (here: libnftables' Python
  binding "not installed", by an `nftables.py` that raises ImportError ahead
  on PYTHONPATH) must put the VRRP instances in front of its virtual servers
  in FAULT, so that the backup takes the VIPs and serves; `pykeepalived
  status` says why; once the binding is back the master takes over again.

The lab's own nftables table for the fwmark service's marks goes with the
flush too (it is the lab's, not ours), so the plain VIP service is measured.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import LabError, unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import VIP, LvsLab
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

# The checker looks every 0.5 s and rebuilds in one transaction: about 0.5 s of refused requests. The issue
# asks for at most 1 s; the margin is for this 2-core machine, shared with other test runs.
MAX_OUTAGE_S = 1.5
REQUEST_EVERY_S = 0.05
URL = f"http://{VIP}/whoami"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("dpf"), name="dp-faults", workdir=tmp_path / "lab",
                 dataplane="nftables")
    try:
        lab.up()
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name} =====\n{router.log()[-5000:]}")
        lab.close()


def _outage(lines: list[str], since: float) -> tuple[float, int, int]:
    """(seconds between the last success before the first failure and the first success after the last one,
    failed requests, requests) among the attempts started after `since`."""
    attempts = [(float(t), ok == "ok") for t, ok, *_ in (line.split() for line in lines if line.strip())]
    attempts = [a for a in attempts if a[0] >= since]
    failed = [t for t, ok in attempts if not ok]
    if not failed:
        return 0.0, 0, len(attempts)
    before = [t for t, ok in attempts if ok and t < failed[0]]
    after = [t for t, ok in attempts if ok and t > failed[-1]]
    start = before[-1] if before else since
    end = after[0] if after else float("inf")
    return end - start, len(failed), len(attempts)


def _status(lab: LvsLab, router: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "pykeepalived", "status", "--json", "--status-file",
            str(lab.router(router).status_file)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    assert proc.stdout.strip(), proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def _pid(path: Path) -> int:
    return int(path.read_text().strip())


def test_nft_flush_ruleset_on_the_master_loses_requests_for_at_most_a_second(lab: LvsLab) -> None:
    router1 = lab.router("router1")
    client = lab.client.netns.popen([sys.executable, script("http_client_loop.py"), str(VIP), str(REQUEST_EVERY_S)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        flushed = time.monotonic()
        router1.netns.run(["nft", "flush", "ruleset"])
        time.sleep(4.0)
    finally:
        client.kill()
        out, _ = client.communicate(timeout=10)
    lines = out.decode().splitlines()
    window, failed, total = _outage(lines, flushed - 1.0)
    print(f"outage after `nft flush ruleset`: {window:.3f} s, {failed} of {total} requests failed")
    assert total > 40, lines[-5:]  # the loop really ran (about 20 requests a second)
    assert window <= MAX_OUTAGE_S, f"requests failed for {window:.2f} s after the flush:\n" + "\n".join(lines)
    assert "was removed by someone else" in router1.log()

    status = _status(lab, "router1")
    repairs = status["dataplane_repairs"]
    assert isinstance(repairs, dict) and repairs["count"] >= 1 and repairs["last_at"], status
    assert status["dataplane_error"] is None

    # Later changes work again on the rebuilt table: a dead real server leaves it.
    lab.stop_real_server("rs2")

    def rs2_gone() -> bool:
        try:
            return "rs2" not in {lab.client_get(URL, 1.0).split()[0] for _ in range(6)}
        except LabError:
            return False

    wait_until(rs2_gone, 15.0, interval_s=0.3, what="rs2 out of the rebuilt table")
    lab.start_real_server("rs2")
    wait_until(lambda: "rs2" in {lab.client_get(URL, 1.0).split()[0] for _ in range(3)}, 15.0, interval_s=0.3,
               what="rs2 back in the table")
    assert "No such file or directory" not in router1.log()

    # A checker that crashed (and is being restarted) is no fault: the kernel keeps the rules.
    os.kill(_pid(router1.pid_files[2]), signal.SIGKILL)
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        assert lab.which_router_is_master() == "router1"
        lab.client_get(URL, 1.0)
        time.sleep(0.2)
    assert "FAULT" not in router1.log()


FAKE_NFTABLES = 'raise ImportError("No module named \'nftables\' (the test\'s stand-in for a missing binding)")\n'


def test_a_checker_that_cannot_program_the_data_plane_hands_the_vips_to_the_backup(lab: LvsLab,
                                                                                   tmp_path: Path) -> None:
    router1 = lab.router("router1")
    lab.stop_router("router1")
    lab.wait_for_master(10.0, "router2")
    fake = tmp_path / "no-nftables"
    fake.mkdir()
    (fake / "nftables.py").write_text(FAKE_NFTABLES)
    router1.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    offset = len(router1.log())
    lab.start_router("router1")

    def fault_logged() -> bool:
        text = router1.log()[offset:]
        return "(RH_EXT) Entering FAULT STATE" in text and "cannot program the data plane" in text

    wait_until(fault_logged, 15.0, interval_s=0.2, what="router1's instances in FAULT")
    log = router1.log()[offset:]
    assert "the test's stand-in for a missing binding" in log.split("cannot program the data plane", 1)[1]

    # The backup holds (or took back) the VIPs and serves; router1 stays out.
    lab.wait_for_master(5.0, "router2")
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        assert lab.which_router_is_master() == "router2"
        assert lab.client_get(URL, 2.0).split()[0] in {"rs1", "rs2", "rs3"}
        time.sleep(0.3)

    status = _status(lab, "router1")
    error = status["dataplane_error"]
    assert isinstance(error, str) and "python3-nftables" in error, status
    text = lab.status_text("router1")
    assert "DATA PLANE FAILING" in text, text

    # The binding comes back: the next respawned checker programs the table, the fault clears and
    # router1 (priority 150) takes the VIPs back.
    (fake / "nftables.py").unlink()

    def router1_serves() -> bool:
        return lab.which_router_is_master() == "router1"

    wait_until(router1_serves, 15.0, interval_s=0.2, what="router1 master again")
    assert "data plane works again" in router1.log()[offset:]
    wait_until(lambda: _status(lab, "router1")["dataplane_error"] is None, 5.0, what="the error cleared")
    assert lab.client_get(URL, 2.0).split()[0] in {"rs1", "rs2", "rs3"}
