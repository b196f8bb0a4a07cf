"""KEEPALIVED-MIB's checker part through snmpd: pykeepalived on IPVS against keepalived 2.2.7's `-x`, in the guest.

keepalived's checker refuses to run without IPVS, which this machine's kernel
lacks, so tests/netns/test_snmp_side_by_side.py compares only the VRRP rows
here. In the qemu guest (Debian's kernel, IPVS as a module) its virtual-server
test runs: each daemon with its own snmpd, the same configuration (one
virtual server, three real servers in namespaces with a TCP_CHECK each),
pykeepalived's data plane on IPVS, and the walks of virtualServerTable and
realServerTable must be equal but for the columns that module lists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.netns import test_snmp_side_by_side
from tests.vm.guest import GuestImage
from tests.vm.inner_pytest import guest_script, passed_in_guest
from tests.vm.shares import REPO

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TIME_SCALE = 5
GUEST_TIMEOUT_S = 600
INNER_BASETEMP = "/run/pkvm-snmp-compare"


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
def test_snmpwalk_checker_rows_equal_keepalived_on_ipvs(guest_image: GuestImage, tmp_path: Path) -> None:
    # the daemons the inner test starts import pykeepalived from this checkout, not from wherever the venv's
    # editable install points (another worktree's src when this one is a git worktree)
    script = f"export PYTHONPATH={REPO / 'src'}\n" + guest_script(
        "tests/netns/test_snmp_side_by_side.py", load="ip_vs", basetemp=INNER_BASETEMP, time_scale=TIME_SCALE,
        select="virtual_server_rows")
    assert passed_in_guest(script, tmp_path, guest_image, GUEST_TIMEOUT_S) == 1
    assert test_snmp_side_by_side.LVS_CONFIG  # the module the guest ran
