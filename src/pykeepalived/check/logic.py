"""One health checker's verdict over time, keepalived's rules, without I/O.

The checker I/O (connect, HTTP, DNS, scripts...) reports each attempt as a
success or a failure; this core decides when the next attempt is due and when
the checker changes between UP and DOWN, as keepalived's checkers do
(`check_tcp.c tcp_epilog` and its siblings):

- a failure is retried after `delay_before_retry` until `retry` retries have
  failed too; then the next attempt waits `delay_loop`. While UP, that last
  failure (retry + 1 in a row) makes the checker DOWN;
- one success makes a DOWN checker UP again (LVS checkers have no rise count);
  while DOWN the same retry rhythm goes on (delay_before_retry x retry, then
  delay_loop), only without a change of verdict;
- the retry count starts used up, so the very first attempt decides at once:
  one failure is DOWN, one success is UP. `alpha` starts the checker DOWN
  (without it, UP); a first failure under alpha confirms DOWN, which
  keepalived reports with notify_down;
- the first attempt is spread over `warmup` (the caller draws the random
  offset, so that this core stays deterministic).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..config.checker_timing import CheckerTiming


class Verdict(enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Change:
    """The verdict after an attempt that decided something.

    `failures` counts the failed attempts in a row that led to a DOWN;
    `confirmed` is a first verdict that equals the starting one (alpha's first
    failure), which changes nothing but is reported as keepalived does.
    """

    verdict: Verdict
    failures: int = 0
    confirmed: bool = False


class CheckerCore:
    """The schedule and verdict of one checker: `next_due_s`, then `record(ok, now)`."""

    # one per checker (6,000 at bench/checks.py's scale): no instance dict each
    __slots__ = ("timing", "retry_while_down", "verdict", "has_run", "retry_it", "failures", "next_due_s")

    def __init__(self, timing: CheckerTiming, now: float, first_offset_s: float = 0.0, *,
                 retry_while_down: bool = True) -> None:
        self.timing = timing
        # TCP_CHECK keeps its retry rhythm while DOWN; PING, UDP, DNS and MISC just wait delay_loop
        self.retry_while_down = retry_while_down
        self.verdict = Verdict.DOWN if timing.alpha else Verdict.UP
        self.has_run = False
        self.retry_it = timing.retry
        self.failures = 0
        self.next_due_s = now + max(0.0, min(first_offset_s, timing.warmup_s))

    def record(self, ok: bool, now: float) -> Change | None:
        """One attempt finished at `now`; returns the verdict it decided, if any."""
        t = self.timing
        change: Change | None = None
        self.failures = 0 if ok else self.failures + 1
        if not ok and self.verdict is Verdict.DOWN and self.has_run and not self.retry_while_down:
            self.next_due_s = now + t.delay_loop_s
            return None
        if ok or self.retry_it >= t.retry:
            delay = t.delay_loop_s
            self.retry_it = 0
            if ok and self.verdict is Verdict.DOWN:
                change = Change(Verdict.UP)
                self.verdict = Verdict.UP
            elif not ok and (self.verdict is Verdict.UP or not self.has_run):
                change = Change(Verdict.DOWN, self.failures, confirmed=self.verdict is Verdict.DOWN)
                self.verdict = Verdict.DOWN
        else:
            delay = t.delay_before_retry_s
            self.retry_it += 1
        self.has_run = True
        self.next_due_s = now + delay
        return change


class HttpCheckerCore(CheckerCore):
    """HTTP_GET / SSL_GET as keepalived schedules them (`check_http.c`), one url per attempt.

    The urls are checked one at a time, each `delay_loop` after the previous
    success; a failing url is retried every `delay_before_retry` until `retry`
    retries failed too, which takes the checker DOWN. While DOWN the failed url
    is tried every max(delay_before_retry, delay_loop); once it answers, every
    url is checked again from the first, and only when all have passed is the
    checker UP: coming back takes one more round than for the other checkers.
    `fast_recovery` runs those recovery checks back to back.
    """

    __slots__ = ("urls", "fast_recovery", "step", "failed_url")

    def __init__(self, timing: CheckerTiming, now: float, first_offset_s: float = 0.0, *, urls: int = 1,
                 fast_recovery: bool = False) -> None:
        super().__init__(timing, now, first_offset_s)
        self.urls = max(1, urls)
        self.fast_recovery = fast_recovery
        self.step = 0  # the url the next attempt checks
        self.failed_url: int | None = None

    def record(self, ok: bool, now: float) -> Change | None:
        t = self.timing
        change: Change | None = None
        self.failures = 0 if ok else self.failures + 1
        finished_round = False
        if not ok and self.verdict is Verdict.DOWN and self.has_run:
            # already known dead: no retry counting, no new failed url (keepalived's CHECKER_FAILED)
            self._schedule(now, ok)
            return None
        if ok:
            finished_round = self.step == self.urls - 1
            self.step = 0 if finished_round else self.step + 1
            self.retry_it = 0
        else:
            self.has_run = True  # keepalived marks a failed first attempt as run before judging it
            self.retry_it += 1
        if ok and finished_round and self.failed_url is None:
            if self.verdict is Verdict.DOWN:
                change = Change(Verdict.UP)
            self.verdict = Verdict.UP
            self.has_run = True
            self.step = 0
        elif not ok and self.retry_it > t.retry:
            if self.verdict is Verdict.UP:
                change = Change(Verdict.DOWN, self.failures)
                self.verdict = Verdict.DOWN
            self.failed_url = self.step
        elif ok and self.failed_url is not None:
            self.failed_url = None
            self.step = 0
        self._schedule(now, ok)
        return change

    def _schedule(self, now: float, ok: bool) -> None:
        t = self.timing
        if ok:
            delay = t.delay_loop_s
            if not self.has_run:
                self.retry_it = t.retry
        elif self.failed_url is not None:
            delay = max(t.delay_before_retry_s, t.delay_loop_s)
        else:
            delay = t.delay_before_retry_s
        if self.fast_recovery and (not self.has_run or (self.verdict is Verdict.DOWN and self.failed_url is None)):
            delay = 0.0
        self.next_due_s = now + delay
