"""vrrp_strict / strict_mode at run time, compared with keepalived 2.2.7 for the same configuration.

A VRRPv2 instance with `state MASTER` at priority 100, PASS authentication
and `accept`: in strict mode keepalived 2.2.7 sends adverts without
authentication and keeps accept off (RFC 3768), so the VIP does not answer.
Each daemon runs alone on r1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "st")


def _observe(lab: Lab, tmp_path: Path, kind: str, strict_line: str) -> dict[str, object]:
    extra = ["state MASTER", "accept"]
    extra_global = ""
    if strict_line == "vrrp_strict":
        extra_global = "vrrp_strict"
    elif strict_line:
        extra.append(strict_line)
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=52, priority=100, vips=[VIP4], version=2, advert_int_s=1.0,
                                                auth_pass="secret", extra=extra)], extra_global=extra_global)
    pcap = tmp_path / f"{kind}-{strict_line or 'plain'}.pcap"
    with capture(lab.c, pcap, "ip proto 112"):
        peer.start()  # returns once the first state is logged: the instance's timers run from then
        started = time.monotonic()
        wait_until(lambda: peer.holds(VIP4.ip), 6.0, what=f"{peer!r} master")
        # keepalived 2.2.7: `state MASTER` without priority 255 waits the whole down timer (3.6 s) either way
        took = time.monotonic() - started
        answers = lab.c.ping(VIP4.ip, count=1, wait_s=1.0)
        peer.stop()
    auth = {row[0] for row in fields(pcap, "vrrp && vrrp.prio > 0", ["vrrp.auth_type"])}
    return {"starts as": "MASTER" if took < 2.6 else "BACKUP", "auth types": auth, "VIP answers": answers}


@pytest.mark.parametrize("strict_line", ["vrrp_strict", "strict_mode"])
def test_strict_mode_as_keepalived(lab: Lab, tmp_path: Path, strict_line: str) -> None:
    theirs = _observe(lab, tmp_path, "ka", strict_line)
    ours = _observe(lab, tmp_path, "py", strict_line)
    assert theirs == {"starts as": "BACKUP", "auth types": {"0"}, "VIP answers": False}
    assert ours == theirs


def test_without_strict_mode_as_keepalived(lab: Lab, tmp_path: Path) -> None:
    """The same configuration without strict mode: PASS authentication, the VIP answers."""
    theirs = _observe(lab, tmp_path, "ka", "")
    ours = _observe(lab, tmp_path, "py", "")
    assert theirs == {"starts as": "BACKUP", "auth types": {"1"}, "VIP answers": True}
    assert ours == theirs
