"""Checker verdicts and pools with a fake clock: keepalived's retry, alpha and quorum rules."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.check.logic import Change, CheckerCore, HttpCheckerCore, Verdict
from pykeepalived.config.checker_timing import CheckerTiming
from pykeepalived.check.pool import Member, Pool, QuorumDown, QuorumUp, Row, ServerDown, ServerUp, WeightChanged
from pykeepalived.config.checker_timing import checker_timing
from pykeepalived.config.model import RealServer, TcpCheck, VirtualServer


def timing(**changes: Any) -> CheckerTiming:
    """keepalived's timing of a TCP_CHECK nobody configured (config/checker_timing.py), with `changes`."""
    t = checker_timing(TcpCheck(kind="TCP_CHECK"), RealServer(ipaddress.ip_address("192.0.2.1")),
                       VirtualServer("address"))
    return CheckerTiming(**{**dataclasses.asdict(t), **changes})


T = timing(delay_loop_s=6, connect_timeout_s=2, retry=2, delay_before_retry_s=1, warmup_s=0)


def test_retry_plus_one_failures_before_down_spaced_by_delay_before_retry() -> None:
    c = CheckerCore(T, now=0)
    assert c.record(True, 0) is None and c.next_due_s == 6
    assert c.record(False, 6) is None and c.next_due_s == 7
    assert c.record(False, 7) is None and c.next_due_s == 8
    assert c.record(False, 8) == Change(Verdict.DOWN, 3)
    assert c.next_due_s == 14


def test_while_down_the_retry_rhythm_goes_on_and_one_success_is_up() -> None:
    c = CheckerCore(T, now=0)
    c.record(True, 0)
    for now in (6, 7, 8):
        c.record(False, now)
    assert c.record(False, 14) is None and c.next_due_s == 15  # keepalived retries while down too
    assert c.record(False, 15) is None and c.next_due_s == 16
    assert c.record(False, 16) is None and c.next_due_s == 22
    assert c.record(True, 22) == Change(Verdict.UP)
    assert c.next_due_s == 28


def test_a_success_between_failures_resets_the_count() -> None:
    c = CheckerCore(T, now=0)
    c.record(True, 0)
    c.record(False, 6)
    c.record(False, 7)
    assert c.record(True, 8) is None
    assert c.record(False, 14) is None and c.record(False, 15) is None
    assert c.record(False, 16) == Change(Verdict.DOWN, 3)


def test_the_first_attempt_decides_at_once() -> None:
    c = CheckerCore(T, now=0)
    assert c.verdict is Verdict.UP
    assert c.record(False, 0) == Change(Verdict.DOWN, 1)
    assert c.next_due_s == 6


def test_alpha_starts_down_and_a_first_failure_confirms_it() -> None:
    c = CheckerCore(timing(alpha=True, retry=3), now=0)
    assert c.verdict is Verdict.DOWN
    assert c.record(False, 0) == Change(Verdict.DOWN, 1, confirmed=True)
    assert c.record(False, 60) is None
    c2 = CheckerCore(timing(alpha=True), now=0)
    assert c2.record(True, 0) == Change(Verdict.UP)


def test_first_attempt_is_spread_over_warmup_only() -> None:
    assert CheckerCore(timing(warmup_s=10), now=5, first_offset_s=3).next_due_s == 8
    assert CheckerCore(timing(warmup_s=2), now=5, first_offset_s=3).next_due_s == 7


def test_worst_detection_bound() -> None:
    assert T.worst_detection_s() == pytest.approx(6 + 2 * 3 + 1 * 2)


@given(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 4))
def test_down_needs_retry_plus_one_failures_in_a_row_after_a_success(results: list[bool], retry: int) -> None:
    """Against keepalived's rule stated plainly: once it has succeeded, only retry+1 failures in a row are DOWN."""
    c = CheckerCore(timing(delay_loop_s=10, retry=retry, delay_before_retry_s=1, warmup_s=0), now=0)
    now = 0.0
    run = 0
    for i, ok in enumerate(results):
        change = c.record(ok, now)
        run = 0 if ok else run + 1
        if change is not None and change.verdict is Verdict.DOWN and not change.confirmed:
            assert i == 0 or run % (retry + 1) == 0
        if ok:
            assert c.verdict is Verdict.UP
        now = c.next_due_s


def _pool(**kw: object) -> Pool:
    members = [Member("a", 1), Member("b", 2), Member("c", 1, inhibit_on_failure=True)]
    return Pool(members, **kw)  # type: ignore[arg-type]


def test_dead_servers_leave_or_stay_at_weight_zero_with_inhibit() -> None:
    p = _pool()
    assert p.start({"a", "b", "c"}) == [QuorumUp(4, 1, at_start=True)]
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 1)]
    assert p.set_alive("c", False) == [ServerDown("c")]
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 0, alive=False)]
    assert p.set_alive("b", False) == [ServerDown("b")]
    assert p.rows() == [Row("a", 1), Row("c", 0, alive=False)]


def test_without_a_sorry_server_losing_quorum_keeps_the_alive_servers() -> None:
    p = _pool(quorum=3)
    p.start({"a", "b"})
    assert p.set_alive("b", False) == [ServerDown("b"), QuorumDown(1, 3)]
    assert p.rows() == [Row("a", 1), Row("c", 0, alive=False)]


def test_quorum_with_hysteresis_and_sorry_server() -> None:
    p = _pool(quorum=3, hysteresis=1, sorry_server="sorry")
    assert p.start(set()) == [QuorumDown(0, 4, at_start=True, sorry_in=True)]
    assert p.rows() == [Row("c", 0, alive=False), Row("sorry", 1, sorry=True)]
    p.set_alive("b", True)  # weight 2 < 3 + 1
    assert not p.has_quorum
    assert p.set_alive("a", True) == [ServerUp("a")]  # 1 + 2 = 3 < 3 + 1: not yet
    assert p.rows() == [Row("c", 0, alive=False), Row("sorry", 1, sorry=True)]
    assert p.set_alive("c", True) == [ServerUp("c"), QuorumUp(4, 4, sorry_out=True)]
    assert p.rows() == [Row("a", 1), Row("b", 2), Row("c", 1)]
    assert p.set_alive("c", False) == [ServerDown("c")]  # 3 >= 3 - 1: kept
    assert p.set_alive("a", False) == [ServerDown("a")]  # 2 >= 2: kept
    assert p.set_alive("b", False) == [ServerDown("b"), QuorumDown(0, 2, sorry_in=True)]
    assert p.rows() == [Row("c", 0, alive=False), Row("sorry", 1, sorry=True)]


def test_sorry_server_inhibit_stays_at_weight_zero() -> None:
    p = Pool([Member("a")], sorry_server="s", sorry_inhibit=True)
    p.start({"a"})
    assert p.rows() == [Row("a", 1), Row("s", 0, alive=False, sorry=True)]


def test_weight_offsets_change_the_row_and_the_quorum() -> None:
    p = Pool([Member("a", 5), Member("b", 5)], quorum=6)
    p.start({"a", "b"})
    assert p.set_offset("a", 3) == [WeightChanged("a", 5, 8)]
    assert p.rows() == [Row("a", 8), Row("b", 5)]
    assert p.set_offset("a", -10) == [WeightChanged("a", 8, 0), QuorumDown(5, 6)]  # clamped at 0
    assert p.set_offset("a", -20) == []
    assert p.set_offset("a", 1) == [WeightChanged("a", 0, 6), QuorumUp(11, 6)]


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.booleans(), st.integers(-70000, 70000) | st.none()),
                max_size=40), st.sets(st.sampled_from("abcd")))
def test_the_kept_weight_sum_is_always_the_sum_of_the_alive_weights(
        steps: list[tuple[str, bool, int | None]], at_start: set[str]) -> None:
    p = Pool([Member("a", 5), Member("b", 1), Member("c", 70000), Member("d", 0)], quorum=6, hysteresis=2)
    p.start(at_start)
    for key, alive, offset in steps:
        if offset is None:
            p.set_alive(key, alive)
        else:
            p.set_offset(key, offset, quiet=key not in p.alive and alive)
        assert p.weight_sum() == sum(max(0, min(p.effective_weight(k), 65535)) for k in p.alive)


def test_unreachable_quorum_is_lowered_to_the_total_weight() -> None:
    p = _pool(quorum=10, hysteresis=20)
    assert (p.quorum, p.hysteresis) == (4, 3)


H = timing(delay_loop_s=6, connect_timeout_s=2, retry=2, delay_before_retry_s=1, warmup_s=0)


def test_http_one_url_down_after_retry_plus_one_and_back_after_two_rounds() -> None:
    c = HttpCheckerCore(H, now=0)
    assert c.record(True, 0) is None and c.next_due_s == 6
    assert c.record(False, 6) is None and c.next_due_s == 7
    assert c.record(False, 7) is None and c.next_due_s == 8
    assert c.record(False, 8) == Change(Verdict.DOWN, 3)
    assert c.next_due_s == 14  # while down: every max(delay_before_retry, delay_loop), no retry rhythm
    assert c.record(False, 14) is None and c.next_due_s == 20
    assert c.record(True, 20) is None  # the failed url answers: every url is checked again first
    assert c.next_due_s == 26
    assert c.record(True, 26) == Change(Verdict.UP)


def test_http_urls_are_checked_one_per_delay_loop() -> None:
    c = HttpCheckerCore(H, now=0, urls=3)
    steps = []
    now = 0.0
    for _ in range(4):
        steps.append(c.step)
        assert c.record(True, now) is None
        now = c.next_due_s
    assert steps == [0, 1, 2, 0] and now == 24
    assert c.step == 1
    assert c.record(False, 24) is None and c.step == 1 and c.next_due_s == 25  # the same url is retried


def test_http_first_failure_is_down_at_once_and_fast_recovery_hurries_the_second_round() -> None:
    c = HttpCheckerCore(H, now=0, fast_recovery=True)
    assert c.record(False, 0) == Change(Verdict.DOWN, 1)
    assert c.next_due_s == 6
    assert c.record(True, 6) is None and c.next_due_s == 6  # fast_recovery: no wait before the round
    assert c.record(True, 6) == Change(Verdict.UP)


def test_ping_udp_dns_misc_only_wait_delay_loop_while_down() -> None:
    c = CheckerCore(T, now=0, retry_while_down=False)
    c.record(True, 0)
    for now in (6, 7, 8):
        c.record(False, now)
    assert c.verdict is Verdict.DOWN and c.next_due_s == 14
    assert c.record(False, 14) is None and c.next_due_s == 20
    assert c.record(True, 20) == Change(Verdict.UP)


def test_http_alpha_first_failure_notifies_nothing() -> None:
    c = HttpCheckerCore(timing(alpha=True, delay_loop_s=6, delay_before_retry_s=1), now=0)
    assert c.record(False, 0) is None
    assert c.record(True, 6) is None  # the failed url answered: one more round
    assert c.record(True, 12) == Change(Verdict.UP)
