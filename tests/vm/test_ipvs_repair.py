"""IPVS services of ours that someone else deletes are added back (issue 12, item 9), in the qemu guest.

This machine's kernel has no IPVS; the guest's has. The pure half (which
services went, what to re-add) is tests/unit/test_ipvs_repair.py; this is
the netlink half: `repair_now()` after `ipvsadm -D` and `ipvsadm -C`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.vm.guest import GuestImage, run_in_guest
from tests.vm.shares import REPO, share_for

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

FIRST = sorted([
    "-A -t 203.0.113.10:80 -s rr",
    "-a -t 203.0.113.10:80 -r 10.11.12.1:80 -m -w 1",
    "-a -t 203.0.113.10:80 -r 10.11.12.2:80 -m -w 2",
    "-A -f 80 -s wlc -p 30",
    "-a -f 80 -r 10.11.12.1:0 -g -w 1",
])


def test_deleted_ipvs_services_are_added_back(guest_image: GuestImage, tmp_path: Path) -> None:
    script = (f"modprobe ip_vs && cd {REPO} && PYTHONPATH={REPO}/src:{REPO} "
              f"{sys.executable} -m tests.vm.ipvs_repair_script > {tmp_path}/out.json")
    result = run_in_guest(script, share=share_for(tmp_path), timeout_s=300, image=guest_image)
    assert result.returncode == 0, result.output[-4000:]
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["first"] == FIRST
    assert got["nothing"] is None
    assert "203.0.113.10:80/6 were deleted by someone else" in got["deleted_one"]
    assert got["after_one"] == FIRST
    assert "fwmark 80" in got["cleared"] and "203.0.113.10:80/6" in got["cleared"]
    assert got["after_clear"] == FIRST
    assert got["nothing_again"] is None
    assert "-a -t 203.0.113.10:80 -r 10.11.12.3:80 -m -w 1" in got["later"]
    assert not any("10.11.12.2" in line for line in got["later"])
    assert got["closed"] == []
