"""vrrp_track_process's pure core (matching, quorum, delays) and keepalived's weight rules in track.py."""

from __future__ import annotations

from pykeepalived.config.model import TrackProcess
from pykeepalived.vrrp.track import InstanceTracking, TrackKind, Tracked, TrackStatus
from pykeepalived.vrrp.track_process import ParamMatch, ProcessPattern, ProcessSample, ProcessTable


def cmd(*words: str) -> bytes:
    return b"".join(w.encode() + b"\0" for w in words)


def test_name_matches_comm_exactly_unlike_pgrep() -> None:
    p = ProcessPattern.from_config(TrackProcess("t", process=["ssh"]))
    assert not p.full_command
    assert p.matches(ProcessSample(1, 0, "ssh"))
    assert not p.matches(ProcessSample(1, 0, "sshd"))
    assert not p.matches(ProcessSample(1, 0, "ssh", zombie=True))


def test_parameters_imply_full_command_and_exact_match() -> None:
    p = ProcessPattern.from_config(TrackProcess("t", process=["/usr/sbin/nginx", "-g", "daemon off;"]))
    assert p.full_command and p.param_match is ParamMatch.EXACT
    assert p.matches(ProcessSample(1, 0, "nginx", cmd("/usr/sbin/nginx", "-g", "daemon off;")))
    assert not p.matches(ProcessSample(1, 0, "nginx", cmd("/usr/sbin/nginx", "-g", "daemon off;", "-x")))
    assert not p.matches(ProcessSample(1, 0, "nginx", cmd("/usr/sbin/nginx", "-g")))
    assert not p.matches(ProcessSample(1, 0, "nginx", cmd("nginx", "-g", "daemon off;")))


def test_param_match_partial_and_initial() -> None:
    partial = ProcessPattern.from_config(TrackProcess("t", process=["/bin/x", "-a"], param_match="partial"))
    assert partial.matches(ProcessSample(1, 0, "x", cmd("/bin/x", "-a", "-b")))
    assert not partial.matches(ProcessSample(1, 0, "x", cmd("/bin/x", "-ab")))
    initial = ProcessPattern.from_config(TrackProcess("t", process=["/bin/x", "-a"], param_match="initial"))
    assert initial.matches(ProcessSample(1, 0, "x", cmd("/bin/x", "-ab")))
    assert not initial.matches(ProcessSample(1, 0, "x", cmd("/bin/x", "-b")))
    none = ProcessPattern.from_config(TrackProcess("t", process=["/bin/x"], param_match="exact"))
    assert none.matches(ProcessSample(1, 0, "x", cmd("/bin/x")))
    assert not none.matches(ProcessSample(1, 0, "x", cmd("/bin/x", "-a")))


def table(**kw: object) -> ProcessTable:
    tp = TrackProcess("T", process=["srv"])
    for k, v in kw.items():
        setattr(tp, k, v)
    return ProcessTable({"T": tp})


def procs(*pids: int, parent: int = 1) -> list[ProcessSample]:
    return [ProcessSample(1, 0, "init")] + [ProcessSample(p, parent, "srv") for p in pids]


def test_quorum_and_quorum_max() -> None:
    t = table(quorum=2, quorum_max=3)
    t.observe(procs(10), 0.0)
    assert not t.has_quorum("T")
    assert t.observe(procs(10, 11), 1.0) == ["T"] and t.has_quorum("T")
    assert t.observe(procs(10, 11, 12), 2.0) == []
    assert t.observe(procs(10, 11, 12, 13), 3.0) == ["T"] and not t.has_quorum("T")
    assert t.observe(procs(10, 11), 4.0) == ["T"] and t.has_quorum("T")


def test_quorum_max_zero_means_must_not_run() -> None:
    t = table(quorum_max=0)
    t.observe(procs(), 0.0)
    assert t.has_quorum("T")
    t.observe(procs(10), 1.0)
    assert not t.has_quorum("T")


def test_terminate_delay_holds_the_loss_and_a_restart_cancels_it() -> None:
    t = table(terminate_delay_s=2.0)
    t.observe(procs(10), 0.0)
    assert t.observe(procs(), 1.0) == [] and t.has_quorum("T") and t.deadline() == 3.0
    assert t.observe(procs(11), 2.0) == [] and t.deadline() is None and t.has_quorum("T")
    t.observe(procs(), 5.0)
    assert t.expire(6.9) == [] and t.expire(7.0) == ["T"] and not t.has_quorum("T")


def test_fork_delay_only_for_children_of_counted_processes() -> None:
    t = table(fork_delay_s=1.0, quorum=2)
    t.observe(procs(10), 0.0)
    t.observe(procs(10) + [ProcessSample(11, 10, "srv")], 1.0)
    assert not t.has_quorum("T") and t.deadline() == 2.0
    assert t.expire(2.0) == ["T"] and t.has_quorum("T")
    exec_t = table(fork_delay_s=1.0)
    exec_t.observe(procs(), 0.0)
    assert exec_t.observe(procs(20, parent=99), 1.0) == ["T"]  # started by someone else: at once


def test_a_name_change_acts_at_once_even_with_terminate_delay() -> None:
    t = table(terminate_delay_s=5.0)
    t.observe(procs(10), 0.0)
    assert t.observe([ProcessSample(1, 0, "init"), ProcessSample(10, 1, "other")], 1.0) == ["T"]


def verdict(kind: TrackKind, weight: int, reverse: bool, status: TrackStatus) -> int:
    tracking = InstanceTracking(100, [Tracked(kind, "x", weight, reverse)])
    tracking.set_status(kind, "x", status)
    return tracking.verdict()[0]


def test_weight_reverse_as_keepalived_multiplies() -> None:
    up, down = TrackStatus.UP, TrackStatus.DOWN
    for kind in (TrackKind.SCRIPT, TrackKind.PROCESS, TrackKind.INTERFACE):
        assert (verdict(kind, 10, False, up), verdict(kind, 10, False, down)) == (110, 100)
        assert (verdict(kind, -10, False, up), verdict(kind, -10, False, down)) == (100, 90)
        assert (verdict(kind, 10, True, up), verdict(kind, 10, True, down)) == (90, 100)
        assert (verdict(kind, -10, True, up), verdict(kind, -10, True, down)) == (100, 110)


def test_track_file_weight_zero_reverse_and_clamps() -> None:
    def file_verdict(weight: int, reverse: bool, value: int) -> tuple[int, set[str]]:
        tracking = InstanceTracking(100, [Tracked(TrackKind.FILE, "f", weight, reverse)])
        tracking.set_file_value("f", value)
        return tracking.verdict()

    assert file_verdict(0, False, 1)[1] and not file_verdict(0, False, 0)[1]
    assert file_verdict(0, True, 0)[1] and not file_verdict(0, True, 5)[1]
    assert file_verdict(1, False, -254)[1] and not file_verdict(1, False, -253)[1]
    assert file_verdict(2, True, 5)[0] == 90
    tracking = InstanceTracking(50, [Tracked(TrackKind.FILE, "f", 1), Tracked(TrackKind.FILE, "g", 1)])
    tracking.set_file_value("f", 1000)
    tracking.set_file_value("g", -200)
    assert tracking.verdict()[0] == 103  # each file counts at most 253


def test_track_process_in_sync_groups_and_track_groups() -> None:
    from pykeepalived.config import read_config
    from pykeepalived.config.memfs import MemoryFileSystem
    from pykeepalived.vrrp.track import instance_trackers

    text = """track_group TG { group { VI_1 } }
static_ipaddress {
  198.51.100.1/24 dev eth1 track_group TG
  198.51.100.2/24 dev eth2 track_group TG no_track
}
static_rules {
  from 198.51.100.1 table 7 iif eth3 track_group TG
}
vrrp_track_process P { process x weight 10 }
vrrp_sync_group G { group { VI_1 VI_2 } track_process { P } }
vrrp_instance VI_1 { interface eth0 virtual_router_id 1 virtual_ipaddress { 192.0.2.1 } }
vrrp_instance VI_2 { interface eth0 virtual_router_id 2 virtual_ipaddress { 192.0.2.2 } track_process { P weight -5 } }
"""
    result = read_config("/k.conf", fs=MemoryFileSystem({"/k.conf": text}))
    cfg = result.config
    one = instance_trackers(cfg.vrrp_instances["VI_1"], cfg)
    assert Tracked(TrackKind.PROCESS, "P", 0) in one  # a sync group's tracker: weight ignored
    assert [i.name for i in one if i.kind is TrackKind.INTERFACE] == ["eth0", "eth1", "eth3"]
    two = instance_trackers(cfg.vrrp_instances["VI_2"], cfg)
    assert [i.name for i in two if i.kind is TrackKind.INTERFACE] == ["eth0"]
