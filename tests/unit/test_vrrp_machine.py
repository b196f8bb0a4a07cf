"""The VRRP state machine, driven with a fake clock and exact action lists."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.config.model import IpAddressSpec
from pykeepalived.vrrp.core import VrrpCore
from pykeepalived.vrrp.machine import (
    TRANSITIONS,
    AddVips,
    Announce,
    GroupStateChanged,
    MasterRxLowerPriority,
    PacketDropped,
    RemoveVips,
    SendAdvert,
    State,
    StateChanged,
    Stopped,
    VrrpMachine,
    skew_s,
)
from pykeepalived.vrrp.packet import Advert, AuthType
from pykeepalived.vrrp.settings import InstanceSettings
from pykeepalived.vrrp.track import InstanceTracking, ScriptHealth, Tracked, TrackKind, TrackStatus

OURS = IPv4Address("192.0.2.11")
PEER_HIGH = IPv4Address("192.0.2.12")
PEER_LOW = IPv4Address("192.0.2.10")
VIP = IPv4Address("192.0.2.100")


def settings_(**kw: object) -> InstanceSettings:
    base = InstanceSettings(
        name="VI_1", vrid=51, version=2, family=4, interface="eth0", base_priority=100,
        wanted_master=False, advert_int_cs=100,
        vips=(IpAddressSpec(IPv4Interface("192.0.2.100/32")),),
        garp_master_delay_s=5.0, garp_master_repeat=5,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def advert(priority: int, *, version: int = 2, vrid: int = 51, interval_cs: int = 100,
           addresses: tuple[IPv4Address, ...] = (VIP,), auth: int = 0, data: bytes = b"") -> Advert:
    return Advert(version=version, vrid=vrid, priority=priority, advert_int_cs=interval_cs,
                  addresses=addresses, auth_type=auth, auth_data=data)


def kinds(actions: list[object]) -> list[str]:
    return [type(a).__name__ for a in actions]


def run_until(m: VrrpMachine, end: float) -> list[object]:
    """Fire the machine's timers up to `end`, as the shell would."""
    out: list[object] = []
    while (t := m.get_timer()) is not None and t <= end:
        out.extend(m.handle_timer(t))
    return out


def test_skew_and_master_down_interval_follow_the_rfc() -> None:
    assert skew_s(2, 100, 100) == pytest.approx(156 / 256)
    assert skew_s(3, 100, 100) == pytest.approx(156 / 256)
    assert skew_s(3, 200, 10) == pytest.approx(56 * 0.1 / 256)
    m = VrrpMachine(settings_(), OURS)
    assert m.master_down_interval_s() == pytest.approx(3 + 156 / 256)


def test_backup_at_start_then_master_after_master_down_interval() -> None:
    m = VrrpMachine(settings_(), OURS)
    acts = m.start(0.0)
    assert acts == [StateChanged("VI_1", State.INIT, State.BACKUP, 100, "init")]
    assert m.get_timer() == pytest.approx(3 + 156 / 256)
    acts = run_until(m, 3.61)
    assert kinds(acts) == ["SendAdvert", "AddVips", "Announce", "StateChanged"]
    assert acts[0] == SendAdvert("VI_1", 100)
    assert m.state is State.MASTER


def test_master_advertises_every_interval_and_repeats_garp_after_delay() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 3.7)
    start = m.last_transition_s
    acts = run_until(m, start + 5.01)
    adverts = [a for a in acts if isinstance(a, SendAdvert)]
    assert len(adverts) == 5
    assert Announce("VI_1", 5) in acts


def test_owner_becomes_master_at_once() -> None:
    m = VrrpMachine(settings_(base_priority=255, wanted_master=True), OURS)
    acts = m.start(0.0)
    assert kinds(acts) == ["SendAdvert", "AddVips", "Announce", "StateChanged"]
    assert acts[0] == SendAdvert("VI_1", 255)


def test_backup_accepts_higher_priority_and_resets_down_timer() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    assert m.receive(advert(150), PEER_LOW, 255, 3.0) == []
    assert m.get_timer() == pytest.approx(3.0 + 3 + 156 / 256)
    assert m.master_address == PEER_LOW
    assert run_until(m, 6.0) == []
    assert m.state is State.BACKUP


def test_backup_discards_lower_priority_with_preempt_and_takes_over() -> None:
    m = VrrpMachine(settings_(base_priority=150), OURS)
    m.start(0.0)
    deadline = m.get_timer()
    acts = m.receive(advert(100), PEER_LOW, 255, 1.0)
    assert kinds(acts) == ["Log"]
    assert m.get_timer() == deadline
    run_until(m, deadline)
    assert m.state is State.MASTER


def test_nopreempt_backup_stays_behind_lower_priority_master() -> None:
    m = VrrpMachine(settings_(base_priority=150, nopreempt=True), OURS)
    m.start(0.0)
    for t in range(1, 20):
        m.receive(advert(100), PEER_LOW, 255, float(t))
        run_until(m, float(t))
    assert m.state is State.BACKUP


def test_preempt_delay_holds_then_preempts() -> None:
    m = VrrpMachine(settings_(base_priority=150, preempt_delay_s=5.0), OURS)
    m.start(0.0)
    t = 1.0
    while t < 20 and m.state is State.BACKUP:
        m.receive(advert(100), PEER_LOW, 255, t)
        run_until(m, t + 0.999)
        t += 1.0
    assert m.state is State.MASTER
    assert 5.0 < m.last_transition_s < 5.0 + 3 + 1


def test_priority_zero_makes_backup_take_over_after_skew() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    m.receive(advert(150), PEER_HIGH, 255, 1.0)
    m.receive(advert(0), PEER_HIGH, 255, 1.5)
    assert m.get_timer() == pytest.approx(1.5 + 156 / 256)
    run_until(m, 2.2)
    assert m.state is State.MASTER
    assert m.stats.pri_zero_rcvd == 1


def test_master_yields_to_higher_priority() -> None:
    m = VrrpMachine(settings_(base_priority=255, wanted_master=True), OURS)
    m.start(0.0)
    m2 = VrrpMachine(settings_(), OURS)
    m2.start(0.0)
    run_until(m2, 4)
    acts = m2.receive(advert(200), PEER_LOW, 255, 5.0)
    assert RemoveVips("VI_1") in acts
    assert m2.state is State.BACKUP
    assert m2.stats.release_master == 1


def test_master_equal_priority_higher_address_wins() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 4)
    assert m.state is State.MASTER
    acts = m.receive(advert(100), PEER_LOW, 255, 5.0)
    assert m.state is State.MASTER
    assert SendAdvert("VI_1", 100) in acts
    assert MasterRxLowerPriority("VI_1", PEER_LOW, 100) in acts
    m.receive(advert(100), PEER_HIGH, 255, 5.5)
    assert m.state is State.BACKUP


def test_master_answers_priority_zero_with_an_advert() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 4)
    assert m.receive(advert(0), PEER_HIGH, 255, 4.2) == [SendAdvert("VI_1", 100)]


@pytest.mark.parametrize(
    ("pkt", "ttl", "counter"),
    [
        (advert(200), 254, "ip_ttl_err"),
        (advert(200, vrid=52), 255, "vrid_err"),
        (advert(200, version=3), 255, "version_mismatch"),
        (advert(200, interval_cs=200), 255, "advert_interval_err"),
        (advert(200, auth=1, data=b"secret"), 255, "authtype_mismatch"),
        (advert(200, auth=7), 255, "invalid_authtype"),
    ],
)
def test_bad_adverts_are_counted_and_change_nothing(pkt: Advert, ttl: int, counter: str) -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    timer = m.get_timer()
    acts = m.receive(pkt, PEER_HIGH, ttl, 1.0)
    assert kinds(acts) == ["PacketDropped"]
    assert isinstance(acts[0], PacketDropped) and acts[0].counter == counter
    assert getattr(m.stats, counter) == 1
    assert m.get_timer() == timer
    assert m.stats.advert_rcvd == 0


def test_password_must_match() -> None:
    m = VrrpMachine(settings_(auth_type=AuthType.PASS, auth_data=b"secret"), OURS)
    m.start(0.0)
    assert m.receive(advert(200, auth=1, data=b"wrong"), PEER_HIGH, 255, 1.0)[0].counter == "auth_failure"  # type: ignore[union-attr]
    assert m.receive(advert(200, auth=1, data=b"secret"), PEER_HIGH, 255, 1.0) == []


def test_address_list_mismatch_is_counted_not_dropped() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    acts = m.receive(advert(200, addresses=(IPv4Address("192.0.2.99"),)), PEER_HIGH, 255, 1.0)
    assert kinds(acts) == ["Log"]
    assert m.stats.addr_list_err == 1 and m.stats.advert_rcvd == 1


def test_v3_backup_adopts_master_interval() -> None:
    m = VrrpMachine(settings_(version=3, advert_int_cs=100), OURS)
    m.start(0.0)
    m.receive(advert(150, version=3, interval_cs=10), PEER_HIGH, 255, 1.0)
    assert m.master_adver_int_cs == 10
    assert m.get_timer() == pytest.approx(1.0 + 0.3 + 156 * 0.1 / 256)


def test_fault_from_master_sends_priority_zero_and_removes_vips() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 4)
    acts = m.set_fault("interface eth0", True, 5.0)
    assert acts[:2] == [SendAdvert("VI_1", 0), RemoveVips("VI_1")]
    assert m.state is State.FAULT
    assert m.receive(advert(50), PEER_HIGH, 255, 5.5) == []
    acts = m.set_fault("interface eth0", False, 6.0)
    assert m.state is State.BACKUP
    assert m.get_timer() == pytest.approx(6.0 + 3 + 156 / 256)


def test_fault_at_start() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.set_fault("script chk (init)", True, 0.0)
    m.start(0.0)
    assert m.state is State.FAULT


def test_priority_change_shifts_backup_down_timer() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    before = m.get_timer()
    assert before is not None
    m.set_priority(200, 1.0)
    assert m.get_timer() == pytest.approx(before - 100 / 256)


def test_clean_stop_with_handover_keeps_vips_until_new_master() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 4)
    acts = m.stop(10.0)
    assert kinds(acts) == ["SendAdvert", "Log"]
    assert acts[0] == SendAdvert("VI_1", 0)
    assert m.state is State.MASTER and m.stopping
    m.receive(advert(90), PEER_HIGH, 255, 10.6)
    acts = run_until(m, 11.0)
    assert kinds(acts) == ["RemoveVips", "StateChanged", "Stopped"]
    assert m.state is State.STOP


def test_clean_stop_without_peer_releases_at_deadline() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    run_until(m, 4)
    m.stop(10.0)
    acts = run_until(m, 20.0)
    assert RemoveVips("VI_1") in acts and Stopped("VI_1") in acts
    assert m.last_transition_s < 12.5


def test_clean_stop_without_handover_is_keepalived_behaviour() -> None:
    m = VrrpMachine(settings_(handover=False), OURS)
    m.start(0.0)
    run_until(m, 4)
    acts = m.stop(10.0)
    assert kinds(acts) == ["SendAdvert", "RemoveVips", "StateChanged", "Stopped"]


def test_backup_stop_is_immediate() -> None:
    m = VrrpMachine(settings_(), OURS)
    m.start(0.0)
    assert kinds(m.stop(1.0)) == ["StateChanged", "Stopped"]


# ------------------------------------------------------------------ sync groups (through VrrpCore)
def _pair() -> VrrpCore:
    core = VrrpCore([settings_(name="EXT", vrid=1), settings_(name="INT", vrid=2)], {"VG1": ["EXT", "INT"]})
    core.set_source("EXT", OURS)
    core.set_source("INT", OURS)
    return core


def core_run_until(core: VrrpCore, name: str, end: float) -> list[object]:
    """Fire `name`'s timers up to `end`, as the shell would (the core's TimerChanged say when)."""
    out: list[object] = []
    while (t := core.machine(name).get_timer()) is not None and t <= end:  # type: ignore[attr-defined]
        out.extend(core.timer(name, t))
    return out


def test_sync_group_goes_master_only_when_all_want_to() -> None:
    core = _pair()
    a, b = core.machine("EXT"), core.machine("INT")
    core.start("EXT", 0.0)
    core.start("INT", 0.0)
    core.receive("INT", advert(150, vrid=2), PEER_HIGH, 255, 2.0)  # INT still sees a master
    core_run_until(core, "EXT", 3.7)
    assert a.state is State.BACKUP and a.wants_master
    acts = core_run_until(core, "INT", 6.0)
    assert a.state is State.MASTER and b.state is State.MASTER
    assert GroupStateChanged("VG1", State.BACKUP, State.MASTER) in acts


def test_sync_group_member_backup_pulls_all_back() -> None:
    core = _pair()
    a, b = core.machine("EXT"), core.machine("INT")
    core.start("EXT", 0.0)
    core.start("INT", 0.0)
    core_run_until(core, "EXT", 4)
    core_run_until(core, "INT", 4)
    assert core.group_state("VG1") is State.MASTER
    acts = core.receive("INT", advert(200, vrid=2), PEER_HIGH, 255, 5.0)
    assert a.state is State.BACKUP and b.state is State.BACKUP
    assert RemoveVips("EXT") in acts and RemoveVips("INT") in acts


def test_sync_group_fault_pulls_all_and_recovers_together() -> None:
    core = _pair()
    a, b = core.machine("EXT"), core.machine("INT")
    core.start("EXT", 0.0)
    core.start("INT", 0.0)
    core_run_until(core, "EXT", 4)
    core_run_until(core, "INT", 4)
    core.set_fault("EXT", "interface eth0", True, 5.0)
    assert a.state is State.FAULT and b.state is State.FAULT and core.group_state("VG1") is State.FAULT
    core.set_fault("INT", "script x", True, 5.5)
    core.set_fault("EXT", "interface eth0", False, 6.0)
    assert a.state is State.FAULT
    core.set_fault("INT", "script x", False, 6.5)
    assert a.state is State.BACKUP and b.state is State.BACKUP


# ------------------------------------------------------------------ trackers
def test_script_health_rise_and_fall() -> None:
    h = ScriptHealth(rise=2, fall=3)
    assert h.status is TrackStatus.INIT
    assert h.record(True) is True and h.status is TrackStatus.UP  # at start one success is enough
    assert not h.record(False) and not h.record(False)
    assert h.record(False) and h.status is TrackStatus.DOWN
    assert h.record(True) is False and h.status is TrackStatus.DOWN  # then it takes `rise` successes
    assert h.record(True) is True and h.status is TrackStatus.UP


def test_script_health_first_failure_counts_at_once() -> None:
    h = ScriptHealth(rise=3, fall=3)
    assert h.record(False) and h.status is TrackStatus.DOWN


def test_tracking_weights_and_faults() -> None:
    t = InstanceTracking(100, [
        Tracked(TrackKind.SCRIPT, "chk", 0),
        Tracked(TrackKind.INTERFACE, "eth1", -20),
        Tracked(TrackKind.SCRIPT, "bonus", 30),
        Tracked(TrackKind.FILE, "f", 5),
    ])
    assert t.verdict() == (100, {"script chk (init)"})
    t.set_status(TrackKind.SCRIPT, "chk", TrackStatus.UP)
    t.set_status(TrackKind.INTERFACE, "eth1", TrackStatus.DOWN)
    t.set_status(TrackKind.SCRIPT, "bonus", TrackStatus.UP)
    t.set_file_value("f", 3)
    assert t.verdict() == (100 - 20 + 30 + 15, set())
    t.set_status(TrackKind.SCRIPT, "chk", TrackStatus.DOWN)
    assert t.verdict()[1] == {"script chk"}
    t.set_file_value("f", 100)
    assert t.verdict()[0] == 254
    assert InstanceTracking(255, [Tracked(TrackKind.INTERFACE, "x", -50)]).verdict() == (255, set())


# ------------------------------------------------------------------ exhaustive property
events = st.lists(
    st.one_of(
        st.tuples(st.just("advert"), st.integers(0, 255), st.sampled_from([PEER_LOW, PEER_HIGH]),
                  st.sampled_from([255, 254, 1])),
        st.tuples(st.just("timer")),
        st.tuples(st.just("fault"), st.booleans()),
        st.tuples(st.just("priority"), st.integers(1, 254)),
        st.tuples(st.just("stop")),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events, st.booleans(), st.sampled_from([2, 3]))
def test_any_event_sequence_keeps_invariants(seq: list[tuple[object, ...]], nopreempt: bool, version: int) -> None:
    m = VrrpMachine(settings_(nopreempt=nopreempt, version=version), OURS)
    now = 0.0
    holding = False
    for act in m.start(now):
        assert not isinstance(act, (AddVips, RemoveVips))
    for ev in seq:
        now += 0.37
        if ev[0] == "advert":
            acts = m.receive(advert(int(ev[1]), version=version), ev[2], int(ev[3]), now)  # type: ignore[arg-type]
        elif ev[0] == "timer":
            t = m.get_timer()
            acts = m.handle_timer(t if t is not None else now)
            now = max(now, t or now)
        elif ev[0] == "fault":
            acts = m.set_fault("x", bool(ev[1]), now)
        elif ev[0] == "priority":
            acts = m.set_priority(int(ev[1]), now)
        else:
            acts = m.stop(now)
        for act in acts:
            if isinstance(act, AddVips):
                assert not holding
                holding = True
            elif isinstance(act, RemoveVips):
                assert holding
                holding = False
            elif isinstance(act, StateChanged):
                assert act.new in TRANSITIONS[act.old]
        assert holding == (m.state is State.MASTER)
        t = m.get_timer()
        assert t is None or t >= now - 1e-9 or m.state is not State.STOP
    assert m.state is not State.INIT
