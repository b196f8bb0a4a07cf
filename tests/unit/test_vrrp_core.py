"""VrrpCore: machines and sync groups behind one sans-IO API whose TimerChanged actions cover every machine.

The shell arms only the timers the core tells it about (service.py has no
sibling re-arming any more), so the guarantee tested here is that after any
input the timers announced so far equal every machine's real next deadline.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface

from hypothesis import given, settings
from hypothesis import strategies as st

from pykeepalived.config.model import IpAddressSpec
from pykeepalived.vrrp.core import CoreAction, TimerChanged, VrrpCore
from pykeepalived.vrrp.machine import GroupStateChanged, State, StateChanged, VrrpMachine
from pykeepalived.vrrp.packet import Advert
from pykeepalived.vrrp.settings import InstanceSettings

OURS = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")
VIP = IPv4Address("192.0.2.100")
NAMES = ("EXT", "INT", "DMZ", "SOLO")


def _settings(name: str, vrid: int, **kw: object) -> InstanceSettings:
    base = InstanceSettings(name=name, vrid=vrid, version=2, family=4, interface="eth0", base_priority=100,
                            wanted_master=False, advert_int_cs=100,
                            vips=(IpAddressSpec(IPv4Interface("192.0.2.100/32")),))
    return replace(base, **kw)  # type: ignore[arg-type]


def _core() -> VrrpCore:
    """Three instances in one sync group, one alone."""
    core = VrrpCore([_settings(n, i + 1) for i, n in enumerate(NAMES)], {"VG": ["EXT", "INT", "DMZ"]})
    for n in NAMES:
        core.set_source(n, OURS)
    return core


def _advert(vrid: int, priority: int) -> Advert:
    return Advert(version=2, vrid=vrid, priority=priority, advert_int_cs=100, addresses=(VIP,),
                  auth_type=0, auth_data=b"")


class FakeShell:
    """Keeps the timers exactly as TimerChanged says, as service.py does, and nothing else."""

    def __init__(self, core: VrrpCore) -> None:
        self.core = core
        self.timers: dict[str, float] = {}

    def apply(self, actions: list[CoreAction]) -> list[CoreAction]:
        for a in actions:
            if isinstance(a, TimerChanged):
                if a.at is None:
                    self.timers.pop(a.instance, None)
                else:
                    self.timers[a.instance] = a.at
        return actions

    def fire_due(self, now: float) -> None:
        while self.timers:
            name, at = min(self.timers.items(), key=lambda kv: kv[1])
            if at > now:
                return
            del self.timers[name]  # a call_at handle runs once
            self.apply(self.core.timer(name, at))

    def assert_timers_cover_every_machine(self) -> None:
        real = {n: m.get_timer() for n, m in self.core.machines.items()}  # type: ignore[attr-defined]
        assert self.timers == {n: t for n, t in real.items() if t is not None}


def test_a_sibling_moved_by_the_group_gets_its_timer_in_the_same_answer() -> None:
    core = _core()
    shell = FakeShell(core)
    for n in NAMES:
        shell.apply(core.start(n, 0.0))
    for n in ("EXT", "DMZ"):  # these two still hear a master; INT does not
        shell.apply(core.receive(n, _advert(NAMES.index(n) + 1, 150), PEER, 255, 0.5))
    shell.apply(core.timer("INT", shell.timers.pop("INT")))  # INT wants master, the group holds it back
    assert core.machine("INT").state is State.BACKUP and core.machine("INT").wants_master
    shell.assert_timers_cover_every_machine()
    # EXT and DMZ time out too: the last one takes the whole group to MASTER
    shell.apply(core.timer("EXT", shell.timers.pop("EXT")))
    acts = shell.apply(core.timer("DMZ", shell.timers.pop("DMZ")))
    assert {core.machine(n).state for n in ("EXT", "INT", "DMZ")} == {State.MASTER}
    assert any(isinstance(a, GroupStateChanged) and a.new is State.MASTER for a in acts)
    # one answer re-arms the siblings the group moved (their advert timers), not only DMZ
    assert {a.instance for a in acts if isinstance(a, TimerChanged)} >= {"EXT", "INT", "DMZ"}
    shell.assert_timers_cover_every_machine()


def test_group_follow_up_comes_right_after_the_member_s_own_state_change() -> None:
    core = _core()
    for n in NAMES:
        core.start(n, 0.0)
    acts = core.set_fault("EXT", "interface eth0", True, 1.0)
    changes = [a for a in acts if isinstance(a, StateChanged)]
    assert [(c.instance, c.new) for c in changes] == [("EXT", State.FAULT), ("INT", State.FAULT),
                                                      ("DMZ", State.FAULT)]
    assert acts.index(changes[0]) < acts.index(changes[1])
    assert core.group_state("VG") is State.FAULT and core.machine("SOLO").state is State.BACKUP


def test_machines_hold_no_reference_to_a_group_or_to_each_other() -> None:
    core = _core()
    for m in core.machines.values():
        assert isinstance(m, VrrpMachine)
        assert not any(isinstance(v, VrrpMachine) or type(v).__name__ == "SyncGroup" for v in vars(m).values())


_input = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(NAMES), st.sampled_from([0, 50, 100, 150, 200])),
    st.tuples(st.just("fault"), st.sampled_from(NAMES), st.booleans()),
    st.tuples(st.just("priority"), st.sampled_from(NAMES), st.integers(1, 254)),
    st.tuples(st.just("wait"), st.sampled_from(NAMES), st.integers(1, 400)),
    st.tuples(st.just("stop"), st.sampled_from(NAMES), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_input, max_size=40))
def test_after_any_input_the_announced_timers_are_every_machine_s_deadline(steps: list[tuple[str, str, int]]) -> None:
    core = _core()
    shell = FakeShell(core)
    now = 0.0
    for n in NAMES:
        shell.apply(core.start(n, now))
    shell.assert_timers_cover_every_machine()
    for kind, name, arg in steps:
        if kind == "wait":
            now += arg / 100
            shell.fire_due(now)
        elif kind == "receive":
            shell.apply(core.receive(name, _advert(NAMES.index(name) + 1, arg), PEER, 255, now))
        elif kind == "fault":
            shell.apply(core.set_fault(name, "interface eth9", arg, now))
        elif kind == "priority":
            shell.apply(core.set_priority(name, arg, now))
        else:
            shell.apply(core.stop(name, now))
        shell.assert_timers_cover_every_machine()


def test_the_shell_feeds_machines_only_through_the_core_and_writes_no_machine_field() -> None:
    """vrrp/service.py: attributes written only on itself, machine inputs only as self.core.<input>(...)."""
    import ast
    from pathlib import Path

    import pykeepalived.vrrp.service as service

    tree = ast.parse(Path(service.__file__).read_text())
    inputs = {"start", "stop", "receive", "handle_timer", "timer", "set_fault", "set_priority", "force_state",
              "set_source", "count_undecodable"}
    stray_writes, stray_inputs, timers = [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if isinstance(node.ctx, ast.Store) and owner != "self":
                stray_writes.append(f"{node.lineno}: {ast.unparse(node)}")
            elif node.attr in inputs and owner not in ("self.core", "self.sync_daemons", "service", "entry.sock"):
                stray_inputs.append(f"{node.lineno}: {ast.unparse(node)}")
            elif node.attr in ("get_timer", "stats", "_machines") or (node.attr == "group" and "machine" in owner):
                timers.append(f"{node.lineno}: {ast.unparse(node)}")
    assert (stray_writes, stray_inputs, timers) == ([], [], [])
