"""Runtime maintenance in the VRRP core (VrrpCore.hold / release): priority 0, BACKUP, held whatever is heard."""

from __future__ import annotations

from pykeepalived.vrrp.core import CoreAction, VrrpCore
from pykeepalived.vrrp.machine import SendAdvert, State, StateChanged

from .test_vrrp_core import OURS, PEER, FakeShell, _advert, _settings


def _master_pair() -> tuple[VrrpCore, FakeShell]:
    """EXT and INT in sync group VG, both MASTER at priority 150."""
    core = VrrpCore([_settings("EXT", 1, base_priority=150), _settings("INT", 2, base_priority=150)],
                    {"VG": ["EXT", "INT"]})
    shell = FakeShell(core)
    for n in ("EXT", "INT"):
        core.set_source(n, OURS)
        shell.apply(core.start(n, 0.0))
    shell.fire_due(10.0)
    assert {m.state for m in core.machines.values()} == {State.MASTER}
    return core, shell


def _kinds(actions: list[CoreAction]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, SendAdvert):
            out.append(f"advert {a.instance} {a.priority}")
        elif isinstance(a, StateChanged):
            out.append(f"{a.instance} {a.new.name}")
    return out


def test_hold_sends_priority_zero_from_every_master_before_any_state_change() -> None:
    core, shell = _master_pair()
    kinds = _kinds(shell.apply(core.hold(["EXT", "INT"], 10.0, "maintenance")))
    assert kinds[:2] == ["advert EXT 0", "advert INT 0"]
    assert set(kinds[2:]) == {"EXT BACKUP", "INT BACKUP"}
    assert core.machines["EXT"].counters["pri_zero_sent"] == 1


def test_a_held_instance_stays_backup_after_its_master_down_timer_and_lower_adverts() -> None:
    core, shell = _master_pair()
    shell.apply(core.hold(["EXT", "INT"], 10.0, "maintenance"))
    now = 10.0
    for _ in range(10):  # the peer, priority 100 (lower than ours), is master now
        now += 1.0
        for n, vrid in (("EXT", 1), ("INT", 2)):
            shell.apply(core.receive(n, _advert(vrid, 100), PEER, 255, now))
        shell.fire_due(now)
    assert {m.state for m in core.machines.values()} == {State.BACKUP}
    assert core.machines["EXT"].master_address == PEER  # the peer's adverts are taken (and not logged as lower)
    shell.fire_due(now + 30.0)  # and the peer goes silent: still held
    assert {m.state for m in core.machines.values()} == {State.BACKUP}
    core.release(["EXT", "INT"])
    now += 31.0
    for n, vrid in (("EXT", 1), ("INT", 2)):  # the peer's adverts again: released, we preempt at the down timer
        shell.apply(core.receive(n, _advert(vrid, 100), PEER, 255, now))
    shell.fire_due(now + 10.0)
    assert {m.state for m in core.machines.values()} == {State.MASTER}


def test_hold_leaves_a_backup_in_backup_and_sends_nothing() -> None:
    core = VrrpCore([_settings("SOLO", 4)], {})
    core.set_source("SOLO", OURS)
    shell = FakeShell(core)
    shell.apply(core.start("SOLO", 0.0))
    assert _kinds(shell.apply(core.hold(["SOLO"], 0.5, "maintenance"))) == []
    shell.fire_due(100.0)
    assert core.machines["SOLO"].state is State.BACKUP
    core.remove("SOLO")
    assert core.held == set()
