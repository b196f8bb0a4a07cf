"""TUN traffic end to end: the data-plane lab's TUN variants, run inside the qemu guest.

This machine's kernel has no IPIP, so tests/netns/test_dataplane_lab.py skips
its TUN variants here. Debian's kernel in the guest has ipip as a module: the
routers' nftables backend `dup`s each packet of the rr and fwmark services
through an IPIP device `pkt<hex>` towards the chosen real server, and sends
those of the lab's stateless mh service from the ingress hook (`fwd ip to
SERVER device pkt<hex>`, lvs/nft_forward.py), all but those too long for
the tunnel, which a copy path without flow sets `dup`s to the same server;
the real server decapsulates it on tunl0 (where it holds the VIPs) and
answers the client through the gateway. The guest runs those very tests
(round robin over rs1..rs3 through the VIP, with its flows in table ip's
flow sets only, a dead real server, the master's death, persistence across
80/443, status counts, a request past the tunnel's MTU, and the mh service:
from ingress, "fragmentation needed" for its too-long packets, a bulk upload
whose merged packets take the copy path to the same server) with PYKEEPALIVED_TIME_SCALE
stretching their waits: Python is 20-30x slower under TCG emulation.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.netns import test_dataplane_lab
from tests.vm.guest import GuestImage
from tests.vm.inner_pytest import guest_script, passed_in_guest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

# the inner tests' waits: each lab takes ~30 s to come up in the guest instead of ~2 s, and 61-72 s while the
# labs run beside the guest (CI, 2026-12-06), where 5 left a dead real server's removal 5-17 s past its
# scaled slack twice (the same code passed it alone)
TIME_SCALE = 8
GUEST_TIMEOUT_S = 1500
# Guest-local tmpfs (never shared, see tests/vm/initramfs.py): the labs' configs, logs and nginx files,
# and the inner pytest's tmp_path, which must not land in the host's /tmp when CI shares all of it.
INNER_BASETEMP = "/run/pkvm-tun-dataplane"


def inner_test_count() -> int:
    """How many tests the TUN selection must pass: every test of the module runs once per lab kind."""
    return sum(1 for name in vars(test_dataplane_lab) if name.startswith("test_"))


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
def test_tun_traffic_reaches_every_real_server_through_ipip(guest_image: GuestImage, tmp_path: Path) -> None:
    script = guest_script("tests/netns/test_dataplane_lab.py", load="ipip", basetemp=INNER_BASETEMP,
                          time_scale=TIME_SCALE, select="tun")
    # all of them ran and passed: a skip would mean the guest could not make IPIP devices after all
    assert passed_in_guest(script, tmp_path, guest_image, GUEST_TIMEOUT_S) == inner_test_count()
