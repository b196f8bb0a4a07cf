"""The NAT lab on the kernel's IPVS, inside the qemu guest: traffic, and stateful failover with lvs_sync_daemon.

Runs tests/netns/test_ipvs_lab.py in the guest (this machine's kernel has no
IPVS): requests through the VIP reach every real server through IPVS NAT,
and a kept-alive connection survives the master's death when the routers
sync their connections (and is reset by the backup when they do not).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.netns import test_ipvs_lab
from tests.vm.guest import GuestImage, run_in_guest
from tests.vm.shares import REPO, share_for

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TIME_SCALE = 5
GUEST_TIMEOUT_S = 1200
INNER_BASETEMP = "/run/pkvm-ipvs-lab"


def guest_script() -> str:
    pytest_argv = [sys.executable, "-m", "pytest", "tests/netns/test_ipvs_lab.py", "-p", "no:cacheprovider", "-q",
                   "-rA", f"--basetemp={INNER_BASETEMP}"]
    return "\n".join([
        "modprobe ip_vs || exit 3",
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
def test_ipvs_nat_traffic_and_stateful_failover(guest_image: GuestImage, tmp_path: Path) -> None:
    result = run_in_guest(guest_script(), share=share_for(tmp_path), timeout_s=GUEST_TIMEOUT_S,
                          memory_mb=1536, cpus=min(2, os.cpu_count() or 1), image=guest_image)
    print(result.output)
    print(f"[guest: exit {result.returncode}, boot {result.boot_s:.1f} s, total {result.elapsed_s:.1f} s]")
    assert result.returncode == 0, result.output[-6000:]
    summary = result.output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    expected = 2  # traffic and failover with lvs_sync_daemon, and failover without it
    assert passed is not None and int(passed.group(1)) == expected, summary
    assert "skipped" not in summary and "failed" not in summary, summary
    assert test_ipvs_lab.VIP  # the module the guest ran
