"""old_unicast_checksum against keepalived 2.2.7: unicast VRRPv3/IPv4 with the pre-1.3.6 checksum.

- ours `old_unicast_checksum`, keepalived without: keepalived hears the old
  checksum, switches to it ("Setting unicast VRRPv3 checksum to old
  version") and stays backup;
- keepalived `old_unicast_checksum` (it accepts only the old checksum), ours
  without: we switch as keepalived would and it stays backup;
- ours `old_unicast_checksum never`: keepalived's old-checksum adverts are
  checksum errors for us, so both end up master (what two keepalived would do).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

SWITCHED = "Setting unicast VRRPv3 checksum to old version"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "oc")


def _settings(me: Host, peer: Host, priority: int, old: str | None) -> list[VrrpSettings]:
    extra = [f"unicast_src_ip {me.ipv4.ip}", "unicast_peer {", f"    {peer.ipv4.ip}", "}"]
    if old is not None:
        extra.append(f"old_unicast_checksum {old}".strip())
    return [VrrpSettings(vrid=57, priority=priority, vips=[VIP4], version=3, advert_int_s=0.2, extra=extra)]


def test_ours_old_keepalived_switches(lab: Lab) -> None:
    ours = lab.peer("py", lab.r1, _settings(lab.r1, lab.r2, 150, ""))
    theirs = lab.peer("ka", lab.r2, _settings(lab.r2, lab.r1, 100, None))
    theirs.start()
    ours.start()
    wait_sole_holder(ours, [theirs], VIP4, 5.0, 2.0)
    assert SWITCHED in theirs.log()


def test_keepalived_old_ours_switches(lab: Lab) -> None:
    ours = lab.peer("py", lab.r1, _settings(lab.r1, lab.r2, 150, None))
    theirs = lab.peer("ka", lab.r2, _settings(lab.r2, lab.r1, 100, ""))
    theirs.start()
    ours.start()
    wait_sole_holder(ours, [theirs], VIP4, 5.0, 2.0)
    assert SWITCHED in ours.log()


def test_never_refuses_the_old_checksum(lab: Lab) -> None:
    ours = lab.peer("py", lab.r1, _settings(lab.r1, lab.r2, 100, "never"))
    theirs = lab.peer("ka", lab.r2, _settings(lab.r2, lab.r1, 150, ""))
    theirs.start()
    ours.start()
    time.sleep(2.0)
    assert ours.holds(VIP4.ip) and theirs.holds(VIP4.ip)
    assert SWITCHED not in ours.log()
