"""The NAT lab when pykeepalived's processes are killed on the master (issue 12's demonstrations).

- SIGKILL of the VRRP child (the parent lives and respawns it): at no moment
  do both routers hold a VIP for longer than one advert interval, and the
  VIPs end on exactly one router. The killed child's VIPs stay on the
  interfaces; the respawned child removes them at start, before the backup's
  master-down timer (3 x advert_int + skew) makes it master.
- SIGKILL of the parent: no process of that router is left, the VIPs move to
  the backup (the children stop cleanly: priority 0), and the daemon started
  again over the pid files the killed one left runs normally.

One lab is shared: the second test starts from where the first one left it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import unique_prefix, wait_until
from pykeepalived.lab.lvs_lab import LvsLab

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

ADVERT_INT_S = 1.0  # the lab's advert_int
SAMPLE_S = 0.05


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("lpf"), name="lab-pfaults", workdir=tmp_path_factory.mktemp("lpf"))
    try:
        lab.up()
        yield lab
    finally:
        for router in lab.routers.values():
            print(f"===== {router.name} =====\n{router.log()[-5000:]}")
        try:
            lab.close()
        finally:
            for name in lab.routers:  # orphans a killed parent left (today's code): never leave them running
                for pid in lab.router_processes(name):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def _holdings(lab: LvsLab) -> dict[str, set[str]]:
    vips = {str(v) for v in lab.vips}
    return {name: {str(a) for a in r.addresses()} & vips for name, r in lab.routers.items()}


def _longest_overlap(lab: LvsLab, duration_s: float) -> tuple[float, list[str]]:
    """Sample both routers for `duration_s`: the longest stretch in which some VIP was on both, and a trace."""
    longest = 0.0
    since: float | None = None
    trace: list[str] = []
    start = time.monotonic()
    while (now := time.monotonic()) - start < duration_s:
        held = _holdings(lab)
        both = set.intersection(*held.values())
        if both:
            since = now if since is None else since
            longest = max(longest, now - since)
        else:
            since = None
        line = " ".join(f"{n}={len(v)}" for n, v in held.items())
        if not trace or not trace[-1].endswith(f"s {line}"):
            trace.append(f"{now - start:.2f}s {line}")
        time.sleep(SAMPLE_S)
    return longest, trace


def _sole_holder(lab: LvsLab) -> str | None:
    held = _holdings(lab)
    full = [n for n, v in held.items() if v == {str(x) for x in lab.vips}]
    empty = [n for n, v in held.items() if not v]
    return full[0] if len(full) == 1 and len(empty) == len(held) - 1 else None


def _vrrp_child(lab: LvsLab, name: str) -> int:
    pid_file = lab.router(name).pid_files[1]
    return int(Path(pid_file).read_text().strip())


def test_sigkill_of_the_vrrp_child_never_leaves_a_vip_on_both_routers(lab: LvsLab) -> None:
    lab.wait_for_master(15.0, "router1")
    child = _vrrp_child(lab, "router1")
    os.kill(child, signal.SIGKILL)
    # the backup's master-down timer is 3.6 s: watch well past it and the master's return
    longest, trace = _longest_overlap(lab, 9.0)
    print("\n".join(trace))
    assert longest <= ADVERT_INT_S, f"a VIP on both routers for {longest:.2f} s:\n" + "\n".join(trace)
    wait_until(lambda: _sole_holder(lab) is not None, 10.0, what=f"every VIP on one router: {_holdings(lab)}")
    new_child = _vrrp_child(lab, "router1")
    assert new_child != child
    assert "removed leftover address" in lab.router("router1").log()


def test_sigkill_of_the_parent_leaves_no_orphan_and_a_restart_works(lab: LvsLab) -> None:
    lab.wait_for_master(15.0, "router1")
    wait_until(lambda: _sole_holder(lab) == "router1", 15.0, what=f"router1 holding every VIP: {_holdings(lab)}")
    router = lab.router("router1")
    offset = len(router.log())
    assert len(lab.router_processes("router1")) >= 3  # parent, VRRP child, checker child
    lab.kill_daemon_parent("router1")
    wait_until(lambda: not lab.router_processes("router1"), 5.0,
               what=f"no process of router1 left: {lab.router_processes('router1')}")
    wait_until(lambda: _sole_holder(lab) == "router2", 5.0, what=f"the VIPs on router2: {_holdings(lab)}")

    lab.start_router("router1", keep_pid_files=True)  # over whatever the killed daemon left
    wait_until(lambda: _sole_holder(lab) is not None, 15.0, what=f"every VIP on one router: {_holdings(lab)}")
    time.sleep(1.0)
    restarted = router.log()[offset:]
    assert "already running" not in restarted, restarted[-3000:]
    assert "exited with status" not in restarted, restarted[-3000:]
    assert router.running()
