"""global_defs config_save_dir and tmp_config_directory at start (issue 14).

keepalived 2.2.7 creates a missing config_save_dir (mode 0700 under its umask) and reports one
that is not a directory; it reports a tmp_config_directory where it cannot
make its unlinked config copy. The daemon here is the real one, in a lab host.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "cd")


def test_config_save_dir_is_made_and_tmp_config_directory_checked(lab: Lab, tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    absent = tmp_path / "no-such-dir"
    r1 = lab.peer("py", lab.r1, [VrrpSettings(vrid=83, priority=150, vips=[VIP4], version=3, advert_int_s=0.1)],
                  extra_global=f"config_save_dir {saved}/\ntmp_config_directory {absent}")
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
    wait_until(saved.is_dir, 2.0, what="config_save_dir made")
    # 0700 less the daemon's umask 0177, as keepalived 2.2.7 makes it (drw------- checked with keepalived -t)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    wait_until(lambda: f"Cannot open config directory {absent} for writing" in r1.log(), 2.0,
               what="tmp_config_directory refused")


def test_config_save_dir_that_is_a_file_is_reported(lab: Lab, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r1 = lab.peer("py", lab.r1, [VrrpSettings(vrid=84, priority=150, vips=[VIP4], version=3, advert_int_s=0.1)],
                  extra_global=f"config_save_dir {blocker}\ntmp_config_directory {tmp_path}")
    r1.start()
    wait_until(lambda: f"config_save_dir {blocker} exists and is not a directory" in r1.log(), 3.0,
               what="the complaint")
    assert "Cannot open config directory" not in r1.log()
