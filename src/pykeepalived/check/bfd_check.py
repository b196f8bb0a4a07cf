"""BFD_CHECK: a real server followed by a bfd_instance's session, as keepalived 2.2.7's check_bfd.c.

Nothing is probed: the BFD process (bfd/events.py) reports each Up and Down
of the session, and the checker's verdict follows. The checker starts UP, or
DOWN with `alpha`; the BFD process reports every session's state when it
starts (Down), as keepalived's does, so either way the real server is in the
pool only once its session is Up, without `alpha` after a moment up. A
report that matches the verdict changes nothing once the checker has run. The
result then takes the same path as any probe's (CheckService._after_attempt):
pool, log lines, notify scripts, mails.

Pure: the probe object only answers what the last report said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.model import BfdCheck, CheckerBase
from .context import ProbeContext, UnsupportedChecker
from .logic import Change, CheckerCore, Verdict
from .probe import ProbeResult, Target


@dataclass
class BfdProbe:
    """Never scheduled (`CheckerPlan.event`); `run()` answers with the session's last reported state."""

    target: Target
    session: str
    up: bool | None = None  # no report yet
    kind: str = "BFD_CHECK"

    async def run(self) -> ProbeResult:
        """What the last report said (`pykeepalived probe` has none: a BFD_CHECK cannot be run once)."""
        if self.up is None:
            return ProbeResult(False, f"BFD {self.session}: no report yet (BFD_CHECK follows the BFD process's "
                                      "session; it cannot be probed once)")
        return ProbeResult(self.up, f"BFD {self.session} is {'Up' if self.up else 'Down'}")


def make_probe(checker: CheckerBase, target: Target, ctx: ProbeContext) -> BfdProbe:
    if not isinstance(checker, BfdCheck) or checker.name is None:
        where = f"{checker.location}: " if checker.location else ""
        raise UnsupportedChecker(f"{where}BFD_CHECK without a bfd_instance name")
    return BfdProbe(target, checker.name)


def follows(checker: CheckerBase, session: str) -> bool:
    return isinstance(checker, BfdCheck) and checker.name == session


def bfd_event(core: CheckerCore, probe: Any, up: bool) -> tuple[bool, Change | None]:
    """Record one report in the checker's core: (act on it at all, the verdict change if any).

    keepalived skips a report that equals the checker's state once it has run;
    the first report always counts (it is logged), though it may change nothing.
    """
    if (core.verdict is Verdict.UP) == up and core.has_run:
        return False, None
    if isinstance(probe, BfdProbe):
        probe.up = up
    core.has_run = True
    if (core.verdict is Verdict.UP) == up:
        return True, None
    core.verdict = Verdict.UP if up else Verdict.DOWN
    core.failures = 0 if up else 1
    return True, Change(core.verdict, 0 if up else 1)
