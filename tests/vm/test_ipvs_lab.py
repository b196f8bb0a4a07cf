"""The NAT lab on the kernel's IPVS, inside the qemu guest: traffic, and stateful failover with lvs_sync_daemon.

Runs tests/netns/test_ipvs_lab.py in the guest (this machine's kernel has no
IPVS): requests through the VIP reach every real server through IPVS NAT,
and a kept-alive connection survives the master's death when the routers
sync their connections (and is reset by the backup when they do not).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.netns import test_ipvs_lab
from tests.vm.guest import GuestImage
from tests.vm.inner_pytest import guest_script, passed_in_guest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TIME_SCALE = 5
GUEST_TIMEOUT_S = 1200
INNER_BASETEMP = "/run/pkvm-ipvs-lab"


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
def test_ipvs_nat_traffic_and_stateful_failover(guest_image: GuestImage, tmp_path: Path) -> None:
    script = guest_script("tests/netns/test_ipvs_lab.py", load="ip_vs", basetemp=INNER_BASETEMP,
                          time_scale=TIME_SCALE)
    # traffic and failover with lvs_sync_daemon, and failover without it
    assert passed_in_guest(script, tmp_path, guest_image, GUEST_TIMEOUT_S) == 2
    assert test_ipvs_lab.VIP  # the module the guest ran
