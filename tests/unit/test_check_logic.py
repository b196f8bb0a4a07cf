"""Checker verdicts and pools with a fake clock: keepalived's retry, alpha and quorum rules."""

from __future__ import annotations

import pytest

from pykeepalived.check.logic import Change, CheckerCore, CheckTiming, Verdict
from pykeepalived.check.pool import Member, Pool, QuorumDown, QuorumUp, Row, ServerDown, ServerUp

T = CheckTiming(delay_loop_s=6, connect_timeout_s=2, retry=2, delay_before_retry_s=1, warmup_s=0)


def test_retry_plus_one_failures_before_down_spaced_by_delay_before_retry() -> None:
    c = CheckerCore(T, now=0)
    assert c.record(True, 0) is None and c.next_due_s == 6
    assert c.record(False, 6) is None and c.next_due_s == 7
    assert c.record(False, 7) is None and c.next_due_s == 8
    assert c.record(False, 8) == Change(Verdict.DOWN, 3)
    assert c.next_due_s == 14
    assert c.record(False, 14) is None and c.next_due_s == 20  # DOWN: every delay_loop
    assert c.record(True, 20) == Change(Verdict.UP)  # one success is enough


def test_a_success_between_failures_resets_the_count() -> None:
    c = CheckerCore(T, now=0)
    c.record(True, 0)
    c.record(False, 6)
    c.record(False, 7)
    assert c.record(True, 8) is None
    assert c.record(False, 14) is None and c.record(False, 15) is None
    assert c.record(False, 16) == Change(Verdict.DOWN, 3)


def test_before_the_first_success_one_failure_is_down() -> None:
    c = CheckerCore(T, now=0)
    assert c.verdict is Verdict.UP
    assert c.record(False, 0) == Change(Verdict.DOWN, 1)


def test_alpha_starts_down() -> None:
    c = CheckerCore(CheckTiming(alpha=True), now=0)
    assert c.verdict is Verdict.DOWN
    assert c.record(True, 0) == Change(Verdict.UP)


def test_first_attempt_is_spread_over_warmup_only() -> None:
    assert CheckerCore(CheckTiming(warmup_s=10), now=5, first_offset_s=3).next_due_s == 8
    assert CheckerCore(CheckTiming(warmup_s=2), now=5, first_offset_s=3).next_due_s == 7


def test_worst_detection_bound() -> None:
    assert T.worst_detection_s() == pytest.approx(6 + 2 * 3 + 1 * 2)


def _pool(**kw: object) -> Pool:
    members = [Member("a", 1), Member("b", 2), Member("c", 1, inhibit_on_failure=True)]
    return Pool(members, **kw)  # type: ignore[arg-type]


def test_dead_servers_leave_or_stay_at_weight_zero_with_inhibit() -> None:
    p = _pool()
    assert p.set_alive("a", True) == [ServerUp("a"), QuorumUp()]
    p.set_alive("b", True)
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 0)]
    p.set_alive("c", True)
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 1)]
    assert p.set_alive("b", False) == [ServerDown("b")]
    assert p.rows() == [Row("a", 1), Row("c", 1)]


def test_quorum_with_hysteresis_and_sorry_server() -> None:
    p = _pool(quorum=3, hysteresis=1, sorry_server="sorry")
    assert p.rows() == [Row("sorry", 1)]
    p.set_alive("b", True)  # weight 2 < 3 + 1
    assert not p.has_quorum
    assert p.set_alive("a", True) == [ServerUp("a")]  # 1 + 2 = 3 < 3 + 1: not yet
    assert p.has_quorum is False
    assert p.set_alive("c", True) == [ServerUp("c"), QuorumUp()]
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 1)]
    assert p.set_alive("c", False) == [ServerDown("c")]  # 3 >= 3 - 1: kept
    assert p.set_alive("a", False) == [ServerDown("a")]  # 2 >= 2: kept
    assert p.set_alive("b", False) == [ServerDown("b"), QuorumDown()]
    assert p.rows() == [Row("sorry", 1)]


def test_unreachable_quorum_is_lowered_to_the_total_weight() -> None:
    p = _pool(quorum=10, hysteresis=20)
    assert (p.quorum, p.hysteresis) == (4, 3)
