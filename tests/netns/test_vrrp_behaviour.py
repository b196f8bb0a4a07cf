"""Daemon behaviour around the protocol: split brain and heal, notify scripts and FIFO, track_file."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpSettings, wait_until

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vb")


@pytest.mark.parametrize(("r1_kind", "r2_kind"), [("py", "py"), pytest.param("py", "ka", marks=pytest.mark.keepalived),
                                                  pytest.param("ka", "py", marks=pytest.mark.keepalived)])
def test_split_brain_heals_to_one_master(lab: Lab, r1_kind: str, r2_kind: str) -> None:
    advert_s = 0.1
    s1 = [VrrpSettings(vrid=61, priority=150, vips=[VIP4], version=3, advert_int_s=advert_s)]
    s2 = [VrrpSettings(vrid=61, priority=100, vips=[VIP4], version=3, advert_int_s=advert_s)]
    r1 = lab.peer(r1_kind, lab.r1, s1)
    r2 = lab.peer(r2_kind, lab.r2, s2)
    r2.start()
    r1.start()
    wait_sole_holder(r1, [r2], VIP4, 3.0, 0.3)

    lab.lan.cut(lab.r2)  # the routers no longer hear each other
    wait_until(lambda: r1.holds(VIP4.ip) and r2.holds(VIP4.ip), 3.0, what="both masters (split brain)")
    time.sleep(0.5)
    assert r1.holds(VIP4.ip) and r2.holds(VIP4.ip)

    lab.lan.heal(lab.r2)
    healed_in = wait_until(lambda: r1.holds(VIP4.ip) and not r2.holds(VIP4.ip), 2.0,
                           what="one master again after heal")
    # the adverts meet within one interval; allow for polling and netlink on a busy machine
    assert healed_in < advert_s + 0.5
    wait_sole_holder(r1, [r2], VIP4, 0.5, 1.0)


def _recorder(path: Path, out: Path) -> str:
    path.write_text(f'#!/bin/sh\necho "$(basename $0) $*" >> {out}\n')
    path.chmod(0o755)
    return str(path)


def test_notify_scripts_and_fifo_follow_keepalived_formats(lab: Lab, tmp_path: Path) -> None:
    log = tmp_path / "notify.log"
    scripts = {name: _recorder(tmp_path / name, log) for name in ("master.sh", "backup.sh", "fault.sh", "stop.sh",
                                                                    "any.sh")}
    fifo = tmp_path / "vrrp.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        extra = [
            f"notify_master {scripts['master.sh']}",
            f"notify_backup {scripts['backup.sh']}",
            f"notify_fault {scripts['fault.sh']}",
            f"notify_stop {scripts['stop.sh']}",
            f"notify {scripts['any.sh']}",
        ]
        settings = [VrrpSettings(vrid=62, priority=150, vips=[VIP4], version=3, advert_int_s=0.1, extra=extra)]
        r1 = lab.peer("py", lab.r1, settings,
                      extra_global=f"enable_script_security\nscript_user root\nvrrp_notify_fifo {fifo}\n")
        assert isinstance(r1, PyKeepalivedPeer)
        r1.start()
        wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
        lab.lan.set_link(lab.r1, False)
        wait_until(lambda: "fault.sh" in (log.read_text() if log.exists() else ""), 3.0, what="notify_fault")
        lab.lan.set_link(lab.r1, True)
        wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master again")
        r1.stop()
        wait_until(lambda: "stop.sh" in log.read_text(), 3.0, what="notify_stop")
        time.sleep(0.3)
        lines = [line.strip() for line in log.read_text().splitlines()]
        fifo_lines = os.read(reader, 65536).decode().splitlines()
    finally:
        os.close(reader)
    # state scripts get only their own words; the generic one gets INSTANCE name state priority
    for expected in ("backup.sh", "master.sh", "fault.sh", "stop.sh",
                     "any.sh INSTANCE VI_1 BACKUP 150", "any.sh INSTANCE VI_1 MASTER 150",
                     "any.sh INSTANCE VI_1 FAULT 150", "any.sh INSTANCE VI_1 STOP 150"):
        assert expected in lines, (expected, lines)
    assert fifo_lines == [
        'INSTANCE "VI_1" BACKUP 150',
        'INSTANCE "VI_1" MASTER 150',
        'INSTANCE "VI_1" FAULT 150',
        'INSTANCE "VI_1" BACKUP 150',
        'INSTANCE "VI_1" MASTER 150',
        'INSTANCE "VI_1" STOP 150',
    ]


def test_track_file_weight_moves_priority_and_the_vip(lab: Lab, tmp_path: Path) -> None:
    weightfile = tmp_path / "weight"
    weightfile.write_text("0\n")
    extra_global = f"vrrp_track_file tf {{\n    file {weightfile}\n    weight 10\n}}\n"
    # keepalived puts track_file at top level; the lab renders extra_global inside global_defs,
    # so write the config ourselves
    s1 = [VrrpSettings(vrid=63, priority=120, vips=[VIP4], version=3, advert_int_s=0.1,
                       extra=["track_file {", "    tf", "}"])]
    s2 = [VrrpSettings(vrid=63, priority=100, vips=[VIP4], version=3, advert_int_s=0.1)]
    r1 = lab.peer("py", lab.r1, s1)
    r2 = lab.peer("py", lab.r2, s2)
    assert isinstance(r1, PyKeepalivedPeer)
    r1.conf_path.write_text(r1.conf_path.read_text() + extra_global)
    r2.start()
    r1.start()
    wait_sole_holder(r1, [r2], VIP4, 3.0, 0.3)
    weightfile.write_text("-3\n")  # 120 - 30 = 90 < 100: the other router preempts
    wait_sole_holder(r2, [r1], VIP4, 5.0, 0.3)
    assert r1.snapshot()[0]["data"]["effective_priority"] == 90
    weightfile.write_text("0\n")
    wait_sole_holder(r1, [r2], VIP4, 5.0, 0.3)


def test_no_accept_drops_traffic_to_the_vip_of_a_non_owner_master(lab: Lab) -> None:
    settings = [VrrpSettings(vrid=64, priority=150, vips=[VIP4], version=3, advert_int_s=0.1, extra=["no_accept"])]
    r1 = lab.peer("py", lab.r1, settings)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
    assert lab.c.ping(lab.r1.ipv4.ip)
    assert not lab.c.ping(VIP4.ip, wait_s=0.5)  # the VIP answers ARP but drops what is sent to it
    table = lab.r1.netns.run(["nft", "list", "table", "inet", "pykeepalived"]).stdout
    assert str(VIP4.ip) in table
    r1.stop()
    tables = lab.r1.netns.run(["nft", "list", "tables"]).stdout
    assert "pykeepalived" not in tables


def test_accept_mode_default_lets_traffic_in(lab: Lab) -> None:
    settings = [VrrpSettings(vrid=65, priority=150, vips=[VIP4], version=3, advert_int_s=0.1)]
    r1 = lab.peer("py", lab.r1, settings)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
    assert lab.c.ping(VIP4.ip)


@pytest.mark.parametrize(("owner_kind", "other_kind"), [("py", "py"),
                                                        pytest.param("py", "ka", marks=pytest.mark.keepalived),
                                                        pytest.param("ka", "py", marks=pytest.mark.keepalived)])
def test_address_owner_takes_over_at_once(lab: Lab, owner_kind: str, other_kind: str) -> None:
    """Priority 255 (state MASTER): master at start, no Master_Down_Interval wait."""
    other = lab.peer(other_kind, lab.r2, [VrrpSettings(vrid=66, priority=100, vips=[VIP4], version=2)])
    owner = lab.peer(owner_kind, lab.r1, [VrrpSettings(vrid=66, priority=255, vips=[VIP4], version=2,
                                                       extra=["state MASTER"])])
    other.start()
    wait_sole_holder(other, [owner], VIP4, 6.0, 0)
    owner.start()
    took = wait_sole_holder(owner, [other], VIP4, 3.0, 1.0)
    assert took < 2.0  # well under the 3.6 s a non-owner would wait


@pytest.mark.parametrize("other_kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_advert_interval_of_10_ms_is_stable(lab: Lab, other_kind: str) -> None:
    """VRRPv3's smallest interval: a hundred adverts a second, one master, no flapping."""
    r1 = lab.peer("py", lab.r1, [VrrpSettings(vrid=67, priority=150, vips=[VIP4], version=3, advert_int_s=0.01)])
    r2 = lab.peer(other_kind, lab.r2, [VrrpSettings(vrid=67, priority=100, vips=[VIP4], version=3,
                                                      advert_int_s=0.01)])
    r2.start()
    r1.start()
    wait_sole_holder(r1, [r2], VIP4, 2.0, 3.0)
    assert isinstance(r1, PyKeepalivedPeer)
    stats = r1.snapshot()[0]["stats"]
    assert stats["advert_sent"] > 250 and stats["release_master"] == 0
    r1.kill()
    r1.remove_vips()
    wait_sole_holder(r2, [r1], VIP4, 1.0, 0.5)


@pytest.mark.parametrize(("r1_kind", "r2_kind"), [("py", "py"), pytest.param("py", "ka", marks=pytest.mark.keepalived),
                                                  pytest.param("ka", "py", marks=pytest.mark.keepalived)])
def test_unicast_peers_elect_and_fail_over(lab: Lab, r1_kind: str, r2_kind: str) -> None:
    def unicast(me: str, peer: str) -> list[str]:
        return [f"unicast_src_ip {me}", "unicast_peer {", f"    {peer}", "}"]

    a, b = str(lab.r1.ipv4.ip), str(lab.r2.ipv4.ip)
    r1 = lab.peer(r1_kind, lab.r1, [VrrpSettings(vrid=68, priority=150, vips=[VIP4], version=3, advert_int_s=0.1,
                                                 extra=unicast(a, b))])
    r2 = lab.peer(r2_kind, lab.r2, [VrrpSettings(vrid=68, priority=100, vips=[VIP4], version=3, advert_int_s=0.1,
                                                 extra=unicast(b, a))])
    r2.start()
    r1.start()
    wait_sole_holder(r1, [r2], VIP4, 3.0, 0.5)
    r1.kill()
    r1.remove_vips()
    wait_sole_holder(r2, [r1], VIP4, 2.0, 0.3)
    r1.start()
    wait_sole_holder(r1, [r2], VIP4, 3.0, 0.5)
