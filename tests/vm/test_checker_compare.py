"""pykeepalived's checker decides as keepalived 2.2.7's does, for the same config and the same events.

keepalived runs tests/vm/scenario.py inside the qemu guest (its checker needs
IPVS, which this machine's kernel lacks); pykeepalived runs the very same
scenario on the host. Each real server's sequence of up/down decisions must
be equal; timing is not compared (TCG emulation runs several times slower).
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.vm import scenario
from tests.vm.guest import GuestImage, run_in_guest
from tests.vm.shares import share_for

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.keepalived,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_decisions_match_keepalived(guest_image: GuestImage, tmp_path: Path) -> None:
    share = tmp_path / "ka"
    share.mkdir()
    script = (f"modprobe ip_vs && modprobe ip_vs_rr && cd {REPO} && "
              f"{sys.executable} -m tests.vm.scenario --daemon keepalived --workdir {share}/run")
    # The two runs are independent (own namespaces, own kernel for the guest's) and mostly wait out the
    # scenario's fixed steps: the guest (one vCPU) runs keepalived's while this host runs ours.
    with ThreadPoolExecutor(max_workers=1) as pool:
        guest = pool.submit(run_in_guest, script, share=share_for(share), timeout_s=600, memory_mb=1536,
                            image=guest_image)
        ours = scenario.run("pykeepalived", tmp_path / "py")
        result = guest.result()
    assert result.returncode == 0, result.output[-4000:]
    theirs = json.loads((share / "run" / "keepalived.decisions.json").read_text())
    print("keepalived:", json.dumps(theirs, indent=1))
    print("pykeepalived:", json.dumps(ours, indent=1))
    # every step of the scenario produced decisions, and both daemons made the same ones per real server
    assert sum(len(v) for v in theirs.values()) >= 10, (share / "run" / "keepalived.log").read_text()[-4000:]
    assert ours == theirs
