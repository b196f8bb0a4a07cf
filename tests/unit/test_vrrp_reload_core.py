"""Reload hooks of the VRRP core: settings taken in place (state and timers kept), machines added and removed,
sync groups re-formed; fake clock, exact actions."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

from pykeepalived.config.model import IpAddressSpec
from pykeepalived.vrrp.core import TimerChanged, VrrpCore
from pykeepalived.vrrp.machine import AddVips, Announce, GroupStateChanged, RemoveVips, SendAdvert, State
from pykeepalived.vrrp.packet import Advert
from pykeepalived.vrrp.settings import InstanceSettings

OURS = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")


def settings_(name: str = "VI_1", **kw: object) -> InstanceSettings:
    base = InstanceSettings(name=name, vrid=51, version=2, family=4, interface="eth0", base_priority=150,
                            wanted_master=False, advert_int_cs=100,
                            vips=(IpAddressSpec(IPv4Interface("192.0.2.100/32")),), unicast_src=None,
                            multicast_src=OURS)
    return replace(base, **kw)  # type: ignore[arg-type]


def master(core: VrrpCore, name: str = "VI_1") -> float:
    """Start the instance and let its master-down timer fire: MASTER at the returned time."""
    core.start(name, 0.0)
    due = core.machine(name).master_down_interval_s()
    actions = core.timer(name, due)
    assert core.machine(name).state is State.MASTER and any(isinstance(a, AddVips) for a in actions)
    return due


def test_unchanged_settings_change_nothing() -> None:
    core = VrrpCore([settings_()], {})
    t = master(core)
    assert core.update("VI_1", settings_(), t + 0.3) == []
    assert core.machine("VI_1").state is State.MASTER


def test_a_master_keeps_its_advert_timer_on_a_priority_change() -> None:
    core = VrrpCore([settings_()], {})
    t = master(core)
    actions = core.update("VI_1", settings_(base_priority=120), t + 0.3)
    # no advert, no GARP, no VIP change, and the armed timer is not moved
    assert not [a for a in actions if isinstance(a, (SendAdvert, Announce, AddVips, RemoveVips, TimerChanged))]
    actions = core.set_priority("VI_1", 120, t + 0.3)  # the shell's tracking hands the new base priority in
    assert not [a for a in actions if isinstance(a, (SendAdvert, Announce, AddVips, RemoveVips))]
    adverts = core.timer("VI_1", t + 1.0)
    assert SendAdvert("VI_1", 120) in adverts
    assert core.machine("VI_1").state is State.MASTER


def test_a_longer_advert_interval_moves_the_next_advert_only() -> None:
    core = VrrpCore([settings_()], {})
    t = master(core)
    actions = core.update("VI_1", settings_(advert_int_cs=300), t + 0.5)
    assert TimerChanged("VI_1", t + 3.0) in actions
    assert not [a for a in actions if isinstance(a, SendAdvert)]


def test_a_backup_moves_its_down_timer_by_the_difference() -> None:
    core = VrrpCore([settings_(base_priority=100)], {})
    core.start("VI_1", 0.0)
    core.receive("VI_1", Advert(version=2, vrid=51, priority=200, advert_int_cs=100,
                                addresses=(IPv4Address("192.0.2.100"),)), PEER, 255, 0.5)
    before = core.machine("VI_1").master_down_interval_s()
    actions = core.update("VI_1", settings_(base_priority=100, advert_int_cs=200), 0.6)
    after = core.machine("VI_1").master_down_interval_s()
    assert after - before == 3.0
    assert TimerChanged("VI_1", 0.5 + after) in actions
    assert core.machine("VI_1").state is State.BACKUP


def test_added_machine_starts_and_removed_one_is_forgotten() -> None:
    core = VrrpCore([settings_()], {})
    master(core)
    core.add(settings_("VI_2", vrid=52))
    assert core.machine("VI_2").state is State.INIT
    core.start("VI_2", 5.0)
    assert core.machine("VI_2").state is State.BACKUP
    stop = core.stop("VI_1", 6.0)
    assert SendAdvert("VI_1", 0) in stop
    core.remove("VI_1")
    assert set(core.machines) == {"VI_2"}


def test_regroup_keeps_an_unchanged_group_and_settles_a_new_one_silently() -> None:
    core = VrrpCore([settings_(), settings_("VI_2", vrid=52)], {"G": ["VI_1", "VI_2"]})
    core.start("VI_1", 0.0)
    core.start("VI_2", 0.0)
    assert core.group_state("G") is State.BACKUP
    core.regroup({"G": ["VI_1", "VI_2"]})
    assert core.group_state("G") is State.BACKUP
    core.regroup({"H": ["VI_1"]})
    assert core.group_names == frozenset({"H"}) and core.group_state("H") is State.BACKUP
    actions = core.timer("VI_1", 10.0)  # VI_1 alone in H now: nobody holds it back
    assert core.machine("VI_1").state is State.MASTER
    assert GroupStateChanged("H", State.BACKUP, State.MASTER) in actions
