"""Running a tests/netns module inside the qemu guest, the way the vm tests that need the guest's kernel do.

The guest's kernel has what this machine's lacks (IPIP, IPVS); the netns tests
are written once and run in both places. Inside, waits are stretched by
PYKEEPALIVED_TIME_SCALE (Python is 20-30x slower under emulation), the inner
pytest's files stay on the guest's own tmpfs, and a failure prints what the
lab's routers logged.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from tests.vm.guest import GuestImage, guest_cpus, run_in_guest
from tests.vm.shares import REPO, share_for


# The guest-local tmpfs where bytecode goes when the checkout is shared read-write (see bytecode_exports).
GUEST_PYCACHE = "/run/pkvm-pycache"


def bytecode_exports() -> list[str]:
    """Let the guest's Python keep the bytecode it compiles, without ever writing it to the host.

    Every Python process of a lab (pytest, each router's parent and two children, every `pykeepalived -t`
    and `status`) imports most of pykeepalived; with no bytecode kept each one compiles it all again,
    seconds per process under emulation. The checkout normally lies on the read-only host root with the
    guest's tmpfs overlay on top: bytecode next to the sources lands in guest RAM, and the host's own
    bytecode for the standard library is used as it is. A checkout below /tmp is shared read-write
    (tests/vm/shares.py): there all bytecode goes to a guest-local prefix instead, so nothing is written
    into the host's checkout (the standard library is then compiled once per guest run).
    """
    if REPO.is_relative_to("/tmp"):
        return [f"export PYTHONPYCACHEPREFIX={GUEST_PYCACHE}", "unset PYTHONDONTWRITEBYTECODE"]
    return ["unset PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX"]


def guest_script(module: str, *, load: str, basetemp: str, time_scale: float, select: str | None = None) -> str:
    """Load a kernel module, run `pytest MODULE [-k SELECT]`, and on failure show the routers' log tails.

    `basetemp` is on the guest-local tmpfs (never shared, see initramfs.py), so the labs' files never
    land in the host's /tmp when CI shares all of it; TMPDIR goes there too, because pytest's capture
    files are open-but-unlinked, which 9p cannot truncate.
    """
    pytest_argv = [sys.executable, "-m", "pytest", module, *(["-k", select] if select else []),
                   "-p", "no:cacheprovider", "-q", "-rA", "--durations=0", f"--basetemp={basetemp}"]
    return "\n".join([
        f"modprobe {load} || exit 3",
        f"cd {shlex.quote(str(REPO))} || exit 3",
        f"mkdir -p {basetemp}-tmp && export TMPDIR={basetemp}-tmp",
        # this checkout's pykeepalived (its lab helpers and the routers it starts), not whatever the virtualenv's
        # editable install points at: the same in CI, and right in a second worktree
        f"export PYKEEPALIVED_TIME_SCALE={time_scale:g} PYTHONPATH={shlex.quote(str(REPO / 'src'))}",
        *bytecode_exports(),
        shlex.join(pytest_argv),
        "rc=$?",
        f'[ "$rc" = 0 ] || for log in $(find {basetemp} -name "router*.log"); do',
        '    echo "===== $log"; tail -n 40 "$log"',
        "done",
        'exit "$rc"',
    ])


def passed_in_guest(script: str, tmp_path: Path, image: GuestImage, timeout_s: float) -> int:
    """Run `script` in the guest; it must exit 0 with nothing skipped, failed or in error. How many passed."""
    result = run_in_guest(script, share=share_for(tmp_path), timeout_s=timeout_s, memory_mb=1536,
                          cpus=guest_cpus(), image=image)
    print(result.output)
    print(f"[guest: exit {result.returncode}, boot {result.boot_s:.1f} s, total {result.elapsed_s:.1f} s]")
    assert result.returncode == 0, result.output[-6000:]
    summary = result.output.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert "skipped" not in summary and "failed" not in summary and "error" not in summary, summary
    return int(passed.group(1))
