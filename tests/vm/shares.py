"""Which host directory to share into the qemu guest so that it sees the checkout and a workdir."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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
