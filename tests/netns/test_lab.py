"""The lab itself: namespaces on one segment, and real keepalived / FRR peers on it.

These tests pin down what every later interop test relies on: that a VIP
held by a peer is visible, that kill() is a crash (no clean-up, no priority-0
advert) while stop() is a clean shutdown, that FRR and keepalived agree on
VRRPv3 (checksum included), and that cut() makes a partition, not a link
failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pykeepalived.lab import (
    FrrPeer,
    KeepalivedPeer,
    LabError,
    Lan,
    VrrpPeer,
    VrrpSettings,
    unique_prefix,
    wait_until,
)
from pykeepalived.lab.netns import Netns

from .vrrp_helpers import HAVE_FRR, HAVE_KEEPALIVED, VIP4, VIP6, needs_root

pytestmark = [pytest.mark.netns, needs_root]

needs_keepalived = pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")
needs_frr = pytest.mark.skipif(not HAVE_FRR, reason="FRR (vrrpd, vtysh) not installed")


@pytest.fixture
def lan() -> Iterator[Lan]:
    with Lan(unique_prefix("lab")) as lan:
        yield lan


PeerList = list[VrrpPeer]


@pytest.fixture
def peers() -> Iterator[PeerList]:
    """Peers a test starts; all closed afterwards (before the Lan goes), logs shown on failure."""
    started: PeerList = []
    yield started
    for peer in started:
        print(f"===== {peer!r} =====\n{peer.log()[-4000:]}")
    errors: list[BaseException] = []
    for peer in started:
        try:
            peer.close()
        except LabError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def holders(peers: PeerList, vip: IPv4Address | IPv6Address) -> list[str]:
    return [p.host.name for p in peers if p.holds(vip)]


def held_by(peers: PeerList, vip: IPv4Address | IPv6Address, *names: str) -> Callable[[], bool]:
    """A condition for wait_until: exactly these hosts hold `vip`."""
    return lambda: holders(peers, vip) == list(names)


def stays(predicate: Callable[[], bool], duration_s: float) -> bool:
    """True if `predicate` holds at every poll for `duration_s` (no flapping)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.05)
    return True


@pytest.mark.netns
@needs_root
def test_lan_hosts_reach_each_other_and_close_removes_everything() -> None:
    prefix = unique_prefix("lan")
    with Lan(prefix) as lan:
        r1 = lan.add_host("r1", 11)
        lan.add_host("r2", 12)
        c = lan.add_host("c", 1)
        assert str(r1.ipv4) == "192.0.2.11/24" and str(r1.ipv6) == "2001:db8::11/64"
        assert {r1.ipv4.ip, r1.ipv6.ip, r1.link_local()} <= r1.addresses()
        assert len(r1.mac()) == 17
        assert c.ping(r1.ipv4.ip)
        assert c.ping(r1.ipv6.ip)
        names = [f"{prefix}-{n}" for n in ("sw", "r1", "r2", "c")]
        assert all(Netns(n).exists() for n in names)
    assert not any(Netns(n).exists() for n in names)
    lan.close()  # idempotent


@pytest.mark.netns
@needs_root
def test_cut_is_a_partition_and_set_link_a_link_failure(lan: Lan) -> None:
    r1, c = lan.add_host("r1", 11), lan.add_host("c", 1)
    lan.cut(r1)
    assert not c.ping(r1.ipv4.ip, wait_s=0.3)
    assert "LOWER_UP" in r1.netns.ip("link", "show", "dev", "eth0")  # carrier kept: no FAULT
    lan.heal(r1)
    assert c.ping(r1.ipv4.ip)
    lan.set_link(r1, False)
    assert "LOWER_UP" not in r1.netns.ip("link", "show", "dev", "eth0")
    lan.set_link(r1, True)


@pytest.mark.netns
@pytest.mark.keepalived
@needs_root
@needs_keepalived
def test_start_failure_raises_with_log_tail(lan: Lan, tmp_path: Path) -> None:
    r1 = lan.add_host("r1", 11)
    peer = KeepalivedPeer(
        r1, [VrrpSettings(1, 100, [VIP4])], tmp_path, command=["sh", "-c", "echo no-such-luck; exit 3", "sh"]
    )
    with pytest.raises(LabError, match="no-such-luck"):
        peer.start()
    peer.close()


@pytest.mark.netns
@pytest.mark.keepalived
@needs_root
@needs_keepalived
def test_keepalived_pair_kill_is_a_crash(lan: Lan, peers: PeerList, tmp_path: Path) -> None:
    r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 1)
    k1 = KeepalivedPeer(r1, [VrrpSettings(51, 150, [VIP4], auth_pass="lab")], tmp_path)
    k2 = KeepalivedPeer(r2, [VrrpSettings(51, 100, [VIP4], auth_pass="lab")], tmp_path)
    peers += [k1, k2]
    k1.start()
    k2.start()
    # BACKUP at start; the master-down timer is 3 x 1 s + skew (~3.4 s for priority 150).
    wait_until(held_by(peers, VIP4.ip, "r1"), 6.0, what="r1 master")
    assert c.ping(VIP4.ip)

    k1.kill()
    assert not k1.running()
    assert r1.netns.pids() == []
    assert k1.holds(VIP4.ip), "kill() let keepalived clean up its VIP"
    assert "sent 0 priority" not in k1.log()
    k1.remove_vips()
    assert not k1.holds(VIP4.ip)
    took = wait_until(lambda: k2.holds(VIP4.ip), 6.0, what="r2 takes over")
    print(f"takeover after kill: {took:.2f} s")
    assert c.ping(VIP4.ip)


@pytest.mark.netns
@needs_root
@needs_frr
def test_frr_pair_v3_both_families(lan: Lan, peers: PeerList, tmp_path: Path) -> None:
    r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 1)
    f1 = FrrPeer(r1, [VrrpSettings(10, 150, [VIP4, VIP6], version=3, advert_int_s=0.1)], tmp_path)
    f2 = FrrPeer(r2, [VrrpSettings(10, 100, [VIP4, VIP6], version=3, advert_int_s=0.1)], tmp_path)
    peers += [f1, f2]
    f1.start()
    f2.start()
    for vip in (VIP4.ip, VIP6.ip):
        wait_until(held_by(peers, vip, "r1"), 5.0, what=f"r1 holds {vip}")
    assert c.ping(VIP4.ip) and c.ping(VIP6.ip)

    f1.stop()
    for vip in (VIP4.ip, VIP6.ip):
        wait_until(held_by(peers, vip, "r2"), 3.0, what=f"r2 holds {vip}")
    assert c.ping(VIP4.ip) and c.ping(VIP6.ip)


@pytest.mark.netns
@pytest.mark.keepalived
@needs_root
@needs_keepalived
@needs_frr
def test_keepalived_and_frr_interoperate_v3(lan: Lan, peers: PeerList, tmp_path: Path) -> None:
    """VRRPv3/IPv4 checksums: keepalived 2.2.7 and FRR 8.4 both include the IPv4 pseudo-header."""
    r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 1)
    k1 = KeepalivedPeer(r1, [VrrpSettings(20, 150, [VIP4], version=3, advert_int_s=0.1)], tmp_path)
    f2 = FrrPeer(r2, [VrrpSettings(20, 100, [VIP4], version=3, advert_int_s=0.1)], tmp_path)
    peers += [k1, f2]
    f2.start()
    k1.start()
    wait_until(held_by(peers, VIP4.ip, "r1"), 5.0, what="keepalived r1 master")
    # FRR really hears keepalived (a checksum mismatch would make it master too).
    assert stays(held_by(peers, VIP4.ip, "r1"), 1.0)
    assert "checksum" not in k1.log().lower() and "checksum" not in f2.log().lower()
    assert c.ping(VIP4.ip)

    k1.stop()
    wait_until(held_by(peers, VIP4.ip, "r2"), 3.0, what="FRR r2 takes over")
    assert c.ping(VIP4.ip)


@pytest.mark.netns
@pytest.mark.keepalived
@needs_root
@needs_keepalived
def test_cut_makes_split_brain_and_heal_ends_it(lan: Lan, peers: PeerList, tmp_path: Path) -> None:
    r1, r2 = lan.add_host("r1", 11), lan.add_host("r2", 12)
    k1 = KeepalivedPeer(r1, [VrrpSettings(30, 150, [VIP4], version=3, advert_int_s=0.1)], tmp_path)
    k2 = KeepalivedPeer(r2, [VrrpSettings(30, 100, [VIP4], version=3, advert_int_s=0.1)], tmp_path)
    peers += [k1, k2]
    k1.start()
    k2.start()
    wait_until(held_by(peers, VIP4.ip, "r1"), 5.0, what="r1 master")

    lan.cut(r1)
    wait_until(held_by(peers, VIP4.ip, "r1", "r2"), 3.0, what="split brain")
    assert "FAULT" not in k1.log()

    lan.heal(r1)
    wait_until(lambda: len(holders(peers, VIP4.ip)) == 1, 3.0, what="one master again")
    assert stays(held_by(peers, VIP4.ip, "r1"), 0.5)


@pytest.mark.netns
@pytest.mark.keepalived
@needs_root
@needs_keepalived
def test_keepalived_track_script_and_link_down_are_fault(lan: Lan, peers: PeerList, tmp_path: Path) -> None:
    """Mixed-family settings become two keepalived instances; a failing script or link means FAULT."""
    r1, r2 = lan.add_host("r1", 11), lan.add_host("r2", 12)
    flag = tmp_path / "healthy"
    flag.write_text("")
    script = tmp_path / "check.sh"
    script.write_text(f"#!/bin/sh\ntest -e {flag}\n")
    script.chmod(0o755)
    s1 = VrrpSettings(40, 150, [VIP4, VIP6], version=3, advert_int_s=0.1, track_script=str(script))
    k1 = KeepalivedPeer(r1, [s1], tmp_path)
    k2 = KeepalivedPeer(r2, [VrrpSettings(40, 100, [VIP4, VIP6], version=3, advert_int_s=0.1)], tmp_path)
    peers += [k1, k2]
    k1.start()
    k2.start()
    for vip in (VIP4.ip, VIP6.ip):
        wait_until(held_by(peers, vip, "r1"), 5.0, what=f"r1 holds {vip}")
    assert k1.states() == {"VI_1": "MASTER", "VI_1_v6": "MASTER"}

    flag.unlink()
    for vip in (VIP4.ip, VIP6.ip):
        wait_until(held_by(peers, vip, "r2"), 5.0, what=f"r2 holds {vip}")
    assert k1.states() == {"VI_1": "FAULT", "VI_1_v6": "FAULT"}

    lan.set_link(r2, False)
    wait_until(lambda: k2.states().get("VI_1") == "FAULT", 3.0, what="r2 FAULT on link down")
    assert not k2.holds(VIP4.ip)
