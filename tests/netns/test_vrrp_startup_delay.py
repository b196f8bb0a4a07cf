"""global_defs vrrp_startup_delay: a backup becomes master no earlier than the delay plus its down interval.

As keepalived 2.2.7 (run on the same file): the instances enter BACKUP at
once and the master-down count starts at the end of the delay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

DELAY_S = 2.0
VIP = ip_interface("192.0.2.191/24")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "sd")


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_master_waits_for_the_startup_delay(lab: Lab, kind: str) -> None:
    settings = [VrrpSettings(vrid=91, priority=100, vips=[VIP], version=3, advert_int_s=0.1)]
    peer = lab.peer(kind, lab.r1, settings, extra_global=f"vrrp_startup_delay {DELAY_S:g}")
    started = time.monotonic()
    peer.start()  # returns once the instance is in BACKUP: at once, not after the delay
    assert time.monotonic() - started < DELAY_S
    wait_until(lambda: peer.holds(VIP.ip), DELAY_S + 5, what="master after the delay")
    took = time.monotonic() - started
    down_interval = 3 * 0.1 + (256 - 100) / 256 * 0.1
    assert DELAY_S + down_interval - 0.2 <= took <= DELAY_S + down_interval + 1.5
