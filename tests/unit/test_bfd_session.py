"""One BFD session's state machine against a scripted neighbour, with keepalived 2.2.7's choices."""

from __future__ import annotations

from ipaddress import ip_address

from pykeepalived.bfd.packet import ControlPacket, Diag, State
from pykeepalived.bfd.session import BfdSession, Expired, SessionSettings, StateChanged, Transmit
from pykeepalived.check.bfd_check import BfdProbe, bfd_event
from pykeepalived.check.logic import CheckerCore, Verdict
from pykeepalived.check.probe import Target
from pykeepalived.config import read_config_text
from pykeepalived.config.checker_timing import CheckerTiming
from pykeepalived.vrrp.track import InstanceTracking, TrackKind, TrackStatus, instance_trackers

SETTINGS = SessionSettings("s", min_tx_us=100_000, min_rx_us=100_000, idle_tx_us=1_000_000, detect_mult=3)


def session(settings: SessionSettings = SETTINGS) -> BfdSession:
    return BfdSession(settings, 0xAAAA, lambda: 0.0)


def peer(state: State, your: int = 0xAAAA, **kw: int | bool) -> ControlPacket:
    return ControlPacket(state, 0xBBBB, your, int(kw.get("tx", 100_000)), int(kw.get("rx", 100_000)), 3,
                         poll=bool(kw.get("poll", False)), final=bool(kw.get("final", False)))


def changes(actions: list[object]) -> list[tuple[State, State, bool]]:
    return [(a.old, a.new, a.notify) for a in actions if isinstance(a, StateChanged)]


def sent(actions: list[object]) -> list[ControlPacket]:
    return [a.packet for a in actions if isinstance(a, Transmit)]


def up_session() -> BfdSession:
    s = session()
    s.start(0.0)
    s.receive(peer(State.DOWN, your=0), 0.1)
    s.receive(peer(State.UP), 0.2)
    assert s.state is State.UP
    return s


def test_three_way_handshake_notifies_once_up() -> None:
    s = session()
    first = sent(s.start(0.0))
    assert first[0].state is State.DOWN and first[0].desired_min_tx_us == 1_000_000  # idle rate while not Up
    acts = s.receive(peer(State.DOWN, your=0), 0.1)
    assert changes(acts) == [(State.DOWN, State.INIT, False)]
    assert sent(acts)[0].your_discr == 0xBBBB  # answered at once
    acts = s.receive(peer(State.UP), 0.2)
    assert changes(acts) == [(State.INIT, State.UP, True)]
    pkt = sent(acts)[0]
    assert pkt.state is State.UP and pkt.poll and pkt.desired_min_tx_us == 100_000  # the Up rate, by poll


def test_poll_is_answered_with_final_and_final_ends_our_poll() -> None:
    s = up_session()
    assert sent(s.receive(peer(State.UP, poll=True), 0.3))[0].final
    s.receive(peer(State.UP, final=True), 0.35)
    assert not s.poll


def test_detection_time_expiry_goes_down_and_notifies() -> None:
    s = up_session()
    assert s.detect_time_us == 300_000
    timer = s.get_timer()
    assert timer is not None
    acts = s.handle_timer(0.2 + 0.3)
    assert any(isinstance(a, Expired) and a.was_up for a in acts)
    assert changes(acts) == [(State.UP, State.DOWN, True)]
    assert s.diag is Diag.EXPIRED and s.remote_discr == 0


def test_neighbour_down_takes_us_down() -> None:
    s = up_session()
    assert changes(s.receive(peer(State.DOWN), 0.3)) == [(State.UP, State.DOWN, True)]
    assert s.diag is Diag.NEIGHBOR_DOWN


def test_neighbour_admin_down_is_not_passed_on_as_keepalived() -> None:
    s = up_session()
    assert changes(s.receive(peer(State.ADMIN_DOWN), 0.3)) == [(State.UP, State.DOWN, False)]


def test_passive_session_waits_for_its_neighbour() -> None:
    s = session(SessionSettings("p", passive=True))
    assert s.start(0.0) == [] and s.get_timer() is None
    assert sent(s.receive(peer(State.DOWN, your=0), 1.0))


def test_transmit_interval_follows_the_neighbours_required_rx_and_jitter() -> None:
    s = BfdSession(SETTINGS, 1, lambda: 1.0)  # the largest jitter: 25% less
    s.start(0.0)
    assert s.next_tx == 0.75  # idle 1 s
    s.receive(peer(State.DOWN, your=0, rx=2_000_000), 0.0)
    assert s.tx_interval_us() == 2_000_000


def test_ttl_check_as_keepalived() -> None:
    assert SETTINGS.ttl_accepted(255) and not SETTINGS.ttl_accepted(254)
    hops = SessionSettings("h", max_hops=2)
    assert hops.ttl_accepted(253) and not hops.ttl_accepted(252)


def test_bfd_check_alpha_and_first_report() -> None:
    timing = CheckerTiming(delay_loop_s=1, connect_timeout_s=1, retry=0, delay_before_retry_s=1, warmup_s=0,
                           alpha=True)
    core = CheckerCore(timing, 0.0)
    probe = BfdProbe(Target(address=ip_address("192.0.2.1"), port=80, connect_timeout_s=1.0), "s")
    assert core.verdict is Verdict.DOWN  # alpha: down until the session is Up
    act, change = bfd_event(core, probe, True)
    assert act and change is not None and change.verdict is Verdict.UP and probe.up
    assert bfd_event(core, probe, True) == (False, None)  # nothing new
    act, change = bfd_event(core, probe, False)
    assert change is not None and change.verdict is Verdict.DOWN
    plain = CheckerCore(CheckerTiming(1, 1, 0, 1, 0, False), 0.0)
    assert bfd_event(plain, probe, True) == (True, None)  # first report counts, changes nothing


CONF = """
bfd_instance b { neighbor_ip 192.0.2.2 }
vrrp_instance {name} {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  virtual_ipaddress { 192.0.2.10/24 }
  dont_track_primary
  track_bfd { b {weight} }
}
"""


def _verdict(weight: str, status: TrackStatus) -> tuple[int, set[str]]:
    cfg = read_config_text(CONF.replace("{name}", "VI").replace("{weight}", weight)).config
    t = InstanceTracking(100, instance_trackers(cfg.vrrp_instances["VI"], cfg))
    t.set_status(TrackKind.BFD, "b", status)
    return t.verdict()


def test_track_bfd_weights_as_keepalived() -> None:
    assert _verdict("", TrackStatus.DOWN) == (100, {"bfd b"})
    assert _verdict("", TrackStatus.UP) == (100, set())
    assert _verdict("weight 20", TrackStatus.DOWN) == (100, set())
    assert _verdict("weight 20", TrackStatus.UP) == (120, set())
    assert _verdict("weight -20", TrackStatus.DOWN) == (80, set())
    assert _verdict("weight -20", TrackStatus.UP) == (100, set())
    assert _verdict("weight 0 reverse", TrackStatus.DOWN) == (100, set())
    assert _verdict("weight 0 reverse", TrackStatus.UP) == (100, {"bfd b"})


def test_sync_group_track_bfd_applies_to_every_member_as_a_fault_tracker() -> None:
    cfg = read_config_text("""
bfd_instance b { neighbor_ip 192.0.2.2 }
vrrp_sync_group G { group { VI_1 VI_2 } track_bfd { b weight 10 } }
vrrp_instance VI_1 { state BACKUP interface eth0 virtual_router_id 51 priority 100 dont_track_primary }
vrrp_instance VI_2 { state BACKUP interface eth0 virtual_router_id 52 priority 100 dont_track_primary }
""").config
    for name in ("VI_1", "VI_2"):
        t = InstanceTracking(100, instance_trackers(cfg.vrrp_instances[name], cfg))
        t.set_status(TrackKind.BFD, "b", TrackStatus.DOWN)
        assert t.verdict() == (100, {"bfd b"})  # a group ignores weights without sync_group_tracking_weight
