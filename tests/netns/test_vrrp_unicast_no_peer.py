"""unicast_fault_no_peer: a unicast instance without peers stays in FAULT, as keepalived 2.2.7's does.

Without the keyword keepalived falls back to multicast (deprecated usage);
with it the instance goes to FAULT and sends nothing. Each daemon runs
alone on r1; the client watches for adverts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import LabError, VrrpSettings

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "np")


def _observe(lab: Lab, tmp_path: Path, kind: str) -> tuple[bool, int, bool]:
    """(the fault line logged, adverts seen, VIP held) after a few seconds."""
    peer = lab.peer(kind, lab.r1, [VrrpSettings(
        vrid=54, priority=100, vips=[VIP4], version=3, advert_int_s=0.2,
        extra=[f"unicast_src_ip {lab.r1.ipv4.ip}", "unicast_fault_no_peer"])])
    pcap = tmp_path / f"{kind}.pcap"
    with capture(lab.c, pcap, "ip proto 112"):
        try:
            peer.start()
            time.sleep(2.0)  # a backup would be master after 0.8 s
        except LabError:
            # keepalived logs no state for an instance that starts in FAULT: start() gives up after 5 s
            # and kills it (SIGKILL: a VIP it had added would stay)
            pass
        held = peer.holds(VIP4.ip)
        log = peer.log()
        peer.stop()
    return "Cannot use unicast without any peers - going to fault state" in log, \
        len(fields(pcap, "vrrp", ["ip.src"])), held


def test_unicast_fault_no_peer_as_keepalived(lab: Lab, tmp_path: Path) -> None:
    theirs = _observe(lab, tmp_path, "ka")
    ours = _observe(lab, tmp_path, "py")
    assert theirs == (True, 0, False)
    assert ours == theirs
