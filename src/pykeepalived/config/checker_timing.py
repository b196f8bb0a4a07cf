"""A health checker's timing, worked out once: keepalived 2.2.7's inheritance over the defaults.

Config completion (`complete.py`) writes what `checker_timing` returns into
every checker of every real server; the checker plan (`check/plan.py
timing_of`) reads those completed values and chooses nothing itself. The
numbers are in `checker_defaults.py`. keepalived's rules (`check_data.c`,
where it completes real servers and then checkers):

- a value the checker sets wins; else the real server's; else the virtual
  server's (which has delay_loop 60 s and connect_timeout 5 s of its own);
- else the kind's default: retry 1 (DNS_CHECK 3, MISC_CHECK 0) and
  delay_before_retry 1 s (HTTP_GET and SSL_GET 3 s, DNS_CHECK the checker's
  own delay_loop);
- warmup defaults to the checker's own (inherited) delay_loop;
- alpha comes from the real server, else the virtual server (off).

Two timeouts belong to one checker kind and are worked out here too:
MISC_CHECK's misc_timeout (the virtual server's delay_loop, not the
checker's) and the connect_timeout of an SMTP_CHECK's deprecated `host {}`
block (keepalived 2.2.7 leaves it at zero, a bug we do not copy: the
block's own, else the real server's, else the virtual server's).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PyKeepalivedError
from .checker_defaults import kind_defaults
from .model import CheckerBase, MiscCheck, RealServer, VirtualServer


@dataclass(frozen=True)
class CheckerTiming:
    """One checker's completed timing, in seconds."""

    delay_loop_s: float
    connect_timeout_s: float
    retry: int
    delay_before_retry_s: float
    warmup_s: float
    alpha: bool

    def worst_detection_s(self) -> float:
        """How long after a death the removal can come at the latest (the bound bench/checks.py checks)."""
        return self.delay_loop_s + self.connect_timeout_s * (self.retry + 1) + self.delay_before_retry_s * self.retry


def _first(*values: float | None, default: float) -> float:
    """The first value that is set (keepalived's "unset" is our None), else `default`."""
    return next((v for v in values if v is not None), default)


def checker_timing(checker: CheckerBase, rs: RealServer, vs: VirtualServer) -> CheckerTiming:
    """The timing keepalived gives `checker` of real server `rs` of virtual server `vs`."""
    kind = kind_defaults(checker.kind)
    delay_loop = _first(checker.delay_loop_s, rs.delay_loop_s, default=vs.delay_loop_s)
    connect_timeout = _first(checker.connect_timeout_s, default=inherited_connect_timeout_s(rs, vs))
    retry = next((v for v in (checker.retry, rs.retry, vs.retry) if v is not None), kind.retry)
    dbr = _first(checker.delay_before_retry_s, rs.delay_before_retry_s, vs.delay_before_retry_s,
                 kind.delay_before_retry_s, default=delay_loop)
    warmup = _first(checker.warmup_s, rs.warmup_s, vs.warmup_s, default=delay_loop)
    alpha = next((v for v in (checker.alpha, rs.alpha) if v is not None), vs.alpha)
    return CheckerTiming(delay_loop_s=delay_loop, connect_timeout_s=connect_timeout, retry=retry,
                         delay_before_retry_s=dbr, warmup_s=warmup, alpha=alpha)


def complete_timing(checker: CheckerBase, rs: RealServer, vs: VirtualServer) -> None:
    """Write the checker's timing into it, so that every later reader sees the completed values."""
    t = checker_timing(checker, rs, vs)
    checker.delay_loop_s = t.delay_loop_s
    checker.connect_timeout_s = t.connect_timeout_s
    checker.retry = t.retry
    checker.delay_before_retry_s = t.delay_before_retry_s
    checker.warmup_s = t.warmup_s
    checker.alpha = t.alpha


class TimingNotCompleted(PyKeepalivedError):
    """A checker read before config completion filled its timing (a bug of the caller, not of the config)."""


def completed_timing(checker: CheckerBase) -> CheckerTiming:
    """The timing `complete_timing` wrote into `checker`; TimingNotCompleted if it has not run."""
    c = checker
    loop, connect, retry, dbr, warmup, alpha = (c.delay_loop_s, c.connect_timeout_s, c.retry,
                                                c.delay_before_retry_s, c.warmup_s, c.alpha)
    if loop is None or connect is None or retry is None or dbr is None or warmup is None or alpha is None:
        where = f"{c.location}: " if c.location else ""
        raise TimingNotCompleted(f"{where}{c.kind}: timing read before config completion")
    return CheckerTiming(delay_loop_s=loop, connect_timeout_s=connect, retry=retry, delay_before_retry_s=dbr,
                         warmup_s=warmup, alpha=alpha)


def misc_timeout_s(checker: MiscCheck, vs: VirtualServer) -> float:
    """How long a MISC_CHECK script may run: misc_timeout, else the virtual server's delay_loop."""
    return checker.misc_timeout_s or vs.delay_loop_s


def inherited_connect_timeout_s(rs: RealServer, vs: VirtualServer) -> float:
    """The connect_timeout a checker of `rs` gets when it sets none: the real server's, else the virtual server's."""
    return rs.connect_timeout_s if rs.connect_timeout_s is not None else vs.connect_timeout_s


def smtp_host_connect_timeout_s(host: CheckerBase, rs: RealServer, vs: VirtualServer) -> float:
    """An SMTP_CHECK `host {}` block's connect_timeout: its own, else the inherited one."""
    return host.connect_timeout_s if host.connect_timeout_s is not None else inherited_connect_timeout_s(rs, vs)
