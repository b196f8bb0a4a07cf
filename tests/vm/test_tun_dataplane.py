"""TUN traffic end to end: the data-plane lab's TUN variants, run inside the qemu guest.

This machine's kernel has no IPIP, so tests/netns/test_dataplane_lab.py skips
its TUN variants here. Debian's kernel in the guest has ipip as a module: the
routers' nftables backend `dup`s each packet for a VIP to an IPIP device
`pkt<hex>` towards the chosen real server, the real server decapsulates it on
tunl0 (where it holds the VIPs) and answers the client through the gateway.
The guest runs those very tests (round robin over rs1..rs3 through the VIP, a
dead real server, the master's death, persistence across 80/443, status
counts, a request past the tunnel's MTU) with PYKEEPALIVED_TIME_SCALE
stretching their waits: Python is 20-30x slower under TCG emulation.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.netns import test_dataplane_lab
from tests.vm.guest import GuestImage, run_in_guest
from tests.vm.shares import REPO, share_for

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TIME_SCALE = 5  # the inner tests' waits; each lab takes ~30 s to come up in the guest instead of ~2 s
GUEST_TIMEOUT_S = 1500
# Guest-local tmpfs (never shared, see tests/vm/initramfs.py): the labs' configs, logs and nginx files,
# and the inner pytest's tmp_path, which must not land in the host's /tmp when CI shares all of it.
INNER_BASETEMP = "/run/pkvm-tun-dataplane"


def inner_test_count() -> int:
    """How many tests the TUN selection must pass: every test of the module runs once per lab kind."""
    return sum(1 for name in vars(test_dataplane_lab) if name.startswith("test_"))


def guest_script() -> str:
    """Load ipip, run the TUN data-plane tests, and on failure show what the routers logged."""
    pytest_argv = [sys.executable, "-m", "pytest", "tests/netns/test_dataplane_lab.py", "-k", "tun",
                   "-p", "no:cacheprovider", "-q", "-rA", f"--basetemp={INNER_BASETEMP}"]
    return "\n".join([
        "modprobe ipip || exit 3",
        f"cd {shlex.quote(str(REPO))} || exit 3",
        # TMPDIR on the guest's own tmpfs: pytest's capture files are open-but-unlinked, which 9p (the
        # shared /tmp when the checkout lives there, as in CI) cannot truncate
        f"mkdir -p {INNER_BASETEMP}-tmp && export TMPDIR={INNER_BASETEMP}-tmp",
        f"export PYKEEPALIVED_TIME_SCALE={TIME_SCALE} PYTHONDONTWRITEBYTECODE=1",
        shlex.join(pytest_argv),
        "rc=$?",
        f'[ "$rc" = 0 ] || for log in $(find {INNER_BASETEMP} -name "router*.log"); do',
        '    echo "===== $log"; tail -n 40 "$log"',
        "done",
        'exit "$rc"',
    ])


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
def test_tun_traffic_reaches_every_real_server_through_ipip(guest_image: GuestImage, tmp_path: Path) -> None:
    result = run_in_guest(guest_script(), share=share_for(tmp_path), timeout_s=GUEST_TIMEOUT_S,
                          memory_mb=1536, cpus=min(2, os.cpu_count() or 1), image=guest_image)
    print(result.output)
    print(f"[guest: exit {result.returncode}, boot {result.boot_s:.1f} s, total {result.elapsed_s:.1f} s]")
    assert result.returncode == 0, result.output[-6000:]
    summary = result.output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    # all of them ran and passed: a skip would mean the guest could not make IPIP devices after all
    assert passed is not None and int(passed.group(1)) == inner_test_count(), summary
    assert "skipped" not in summary and "failed" not in summary and "error" not in summary, summary
