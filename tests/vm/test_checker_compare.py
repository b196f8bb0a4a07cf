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
from pathlib import Path

import pytest

from tests.vm import scenario
from tests.vm.guest import GuestImage, run_in_guest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.keepalived,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


# the guest lays an empty tmpfs over these (tests/vm/initramfs.py): a checkout below one is invisible there
MASKED_IN_GUEST = (Path("/tmp"), Path("/run"), Path("/var/tmp"), Path("/var/log"))


def share_for(workdir: Path) -> Path:
    """The host directory to share into the guest: the workdir, or all of /tmp when the checkout is there too.

    CI clones the repository wherever it likes (a clone below /tmp would be
    hidden by the guest's tmpfs); sharing /tmp read-write shows the checkout,
    its virtualenv and the workdir at their own paths.
    """
    needed = [REPO, Path(sys.executable).parent, workdir]
    for masked in MASKED_IN_GUEST:
        hidden = [p for p in needed if p.is_relative_to(masked)]
        if hidden and hidden != [workdir]:
            if masked != Path("/tmp") or not workdir.is_relative_to(masked):
                pytest.skip(f"{hidden[0]} is below {masked}, which the guest cannot see")
            return masked
    return workdir


def test_decisions_match_keepalived(guest_image: GuestImage, tmp_path: Path) -> None:
    ours = scenario.run("pykeepalived", tmp_path / "py")
    share = tmp_path / "ka"
    share.mkdir()
    script = (f"modprobe ip_vs && modprobe ip_vs_rr && cd {REPO} && "
              f"{sys.executable} -m tests.vm.scenario --daemon keepalived --workdir {share}/run")
    result = run_in_guest(script, share=share_for(share), timeout_s=600, memory_mb=1536, image=guest_image)
    assert result.returncode == 0, result.output[-4000:]
    theirs = json.loads((share / "run" / "keepalived.decisions.json").read_text())
    print("keepalived:", json.dumps(theirs, indent=1))
    print("pykeepalived:", json.dumps(ours, indent=1))
    # every step of the scenario produced decisions, and both daemons made the same ones per real server
    assert sum(len(v) for v in theirs.values()) >= 10, (share / "run" / "keepalived.log").read_text()[-4000:]
    assert ours == theirs
