"""What a reload carries over: a pool's state into the new config's pool, a checker's verdict into its new core."""

from __future__ import annotations

from typing import Any, cast

from pykeepalived.check.logic import CheckerCore, Verdict
from pykeepalived.check.plan import CheckerPlan
from pykeepalived.check.pool import Member, Pool, QuorumDown, QuorumUp, ServerUp, WeightChanged
from pykeepalived.check.service import carried_core
from pykeepalived.config.checker_timing import CheckerTiming
from pykeepalived.config.model import TcpCheck

T = CheckerTiming(delay_loop_s=6, connect_timeout_s=2, retry=2, delay_before_retry_s=1, warmup_s=0, alpha=False)


def _pool(*members: Member, quorum: int = 1, sorry: str | None = None) -> Pool:
    pool = Pool(list(members), quorum=quorum, sorry_server=sorry)
    pool.start({m.key for m in members})
    return pool


def test_kept_servers_keep_alive_and_offsets_without_events() -> None:
    old = _pool(Member("a"), Member("b"))
    old.set_alive("b", False)
    old.set_offset("a", 2)
    new = Pool([Member("a"), Member("b")])
    assert new.carry_over(old, {"a", "b"}) == []
    assert new.alive == {"a"} and new.offsets == {"a": 2} and new.has_quorum


def test_a_new_weight_of_an_alive_server_is_a_weight_change_in_place() -> None:
    old = _pool(Member("a", 1))
    new = Pool([Member("a", 5)])
    assert new.carry_over(old, {"a"}) == [WeightChanged("a", 1, 5)]
    assert new.rows()[0].weight == 5


def test_a_higher_quorum_loses_quorum_and_brings_the_sorry_server_in() -> None:
    old = _pool(Member("a"), Member("b"), quorum=1, sorry="s")
    new = Pool([Member("a"), Member("b")], quorum=2, sorry_server="s")
    old.set_alive("b", False)
    assert new.carry_over(old, {"a", "b"}) == [QuorumDown(1, 2, False, True)]
    assert [r.key for r in new.rows()] == ["s"]


def test_removed_servers_leave_and_new_ones_join_through_set_alive() -> None:
    old = _pool(Member("a"), Member("b"))
    new = Pool([Member("a"), Member("c")])
    assert new.carry_over(old, {"a"}) == []
    assert new.alive == {"a"}
    assert new.set_alive("c", True) == [ServerUp("c")]
    assert [r.key for r in new.rows()] == ["a", "c"]


def test_quorum_regained_by_a_lower_quorum() -> None:
    old = Pool([Member("a")], quorum=1)
    old.start(set())
    new = Pool([Member("a")], quorum=1)
    assert new.carry_over(old, {"a"}) == []
    assert new.set_alive("a", True) == [ServerUp("a"), QuorumUp(1, 1)]


def _plan(timing: CheckerTiming) -> CheckerPlan:
    probe = cast(Any, object())  # never run: the core is all these tests look at
    return CheckerPlan("TCP_CHECK#0", "TCP_CHECK", timing, probe, TcpCheck(kind="TCP_CHECK"))


def test_a_changed_checker_keeps_its_verdict_and_history() -> None:
    old = CheckerCore(T, now=0)
    old.record(False, 0)  # first failure: DOWN at once
    assert old.verdict is Verdict.DOWN
    new_timing = CheckerTiming(delay_loop_s=2, connect_timeout_s=1, retry=1, delay_before_retry_s=1, warmup_s=0,
                               alpha=False)
    core = carried_core(old, _plan(new_timing), now=1)
    assert core.verdict is Verdict.DOWN and core.has_run  # no re-check from DOWN: a failure stays quiet
    assert core.next_due_s == 3  # the new delay_loop (2 s) is sooner than the old one's due time (6)
    assert core.record(False, 3) is None
    assert core.record(True, 5) is not None and core.verdict is Verdict.UP


def test_an_up_checker_keeps_its_retries_after_a_change() -> None:
    old = CheckerCore(T, now=0)
    old.record(True, 0)
    core = carried_core(old, _plan(T), now=1)
    assert core.verdict is Verdict.UP
    assert core.record(False, 6) is None  # retry 2: one failure is not DOWN (a fresh core's first would be)
