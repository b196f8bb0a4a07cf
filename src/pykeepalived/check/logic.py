"""One health checker's verdict over time, keepalived's rules, without I/O.

The checker I/O (connect, HTTP, DNS, scripts...) reports each attempt as a
success or a failure; this core decides when the next attempt is due and when
the real server changes between UP and DOWN:

- while UP, a failure is retried every `delay_before_retry` until `retry`
  retries have failed too (retry + 1 failures), then the checker is DOWN;
- while DOWN, it is checked every `delay_loop`, and one success is UP again
  (LVS checkers have no rise counter);
- without `alpha` a checker starts UP, but until its first success a single
  failure is enough to mark it DOWN; with `alpha` it starts DOWN;
- the first attempt is spread over `warmup` (the caller draws the random
  offset, so that this core stays deterministic).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class CheckTiming:
    """Completed timing of one checker (inherited from real and virtual server already)."""

    delay_loop_s: float = 60.0
    connect_timeout_s: float = 5.0
    retry: int = 1
    delay_before_retry_s: float = 1.0
    warmup_s: float = 60.0
    alpha: bool = False

    def worst_detection_s(self) -> float:
        """How long after a death the removal can come at the latest (the bound bench/checks.py checks)."""
        return self.delay_loop_s + self.connect_timeout_s * (self.retry + 1) + self.delay_before_retry_s * self.retry


@dataclass(frozen=True)
class Change:
    """The checker's verdict changed; `failures` is how many failed attempts led to a DOWN."""

    verdict: Verdict
    failures: int = 0


class CheckerCore:
    """The schedule and verdict of one checker: `next_due_s`, then `record(ok, now)`."""

    def __init__(self, timing: CheckTiming, now: float, first_offset_s: float = 0.0) -> None:
        self.timing = timing
        self.verdict = Verdict.DOWN if timing.alpha else Verdict.UP
        self.ever_succeeded = False
        self.failures = 0
        self.next_due_s = now + max(0.0, min(first_offset_s, timing.warmup_s))

    def record(self, ok: bool, now: float) -> Change | None:
        """One attempt finished at `now`; returns the change of verdict, if any."""
        t = self.timing
        if ok:
            self.ever_succeeded = True
            self.failures = 0
            self.next_due_s = now + t.delay_loop_s
            if self.verdict is Verdict.DOWN:
                self.verdict = Verdict.UP
                return Change(Verdict.UP)
            return None
        self.failures += 1
        if self.verdict is Verdict.DOWN:
            self.next_due_s = now + t.delay_loop_s
            return None
        if self.ever_succeeded and self.failures <= t.retry:
            self.next_due_s = now + t.delay_before_retry_s
            return None
        failures, self.failures = self.failures, 0
        self.verdict = Verdict.DOWN
        self.next_due_s = now + t.delay_loop_s
        return Change(Verdict.DOWN, failures)
