"""One running checker: its plan, its verdict core, what its last attempt said; and one attempt.

Shared by the checker process and its worker processes (workers.py), so that
an attempt means the same wherever it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .logic import Change, CheckerCore, HttpCheckerCore
from .plan import CheckerPlan
from .probe import ProbeResult

log = logging.getLogger("pykeepalived.check")


@dataclass(slots=True, eq=False)
class CheckerState:
    """One checker's running state. Compared and hashed by identity: each is a checker of its own (the probe
    engine keys its jobs by the state itself, with no id() int per checker)."""

    plan: CheckerPlan
    core: CheckerCore
    offset: int = 0
    last_ok: bool | None = None
    last_reason: str = ""
    attempts: int = 0


async def attempt(chk: CheckerState, clock: Callable[[], float]) -> tuple[ProbeResult, Change | None]:
    """Run the probe once (the url in turn for HTTP) and record the result in the core."""
    try:
        if isinstance(chk.core, HttpCheckerCore):
            result: ProbeResult = await chk.plan.probe.run_step(chk.core.step)  # type: ignore[attr-defined]
        else:
            result = await chk.plan.probe.run()
    except Exception as exc:  # noqa: BLE001 - see internal_error
        result = internal_error(chk, exc)
    return result, record_result(chk, result, clock())


def internal_error(chk: CheckerState, exc: Exception) -> ProbeResult:
    """A probe bug must not end its checker: logged, and counted as a failed attempt."""
    log.error("%s: internal error %s: %s", chk.plan.kind, type(exc).__name__, exc)
    return ProbeResult(False, f"internal error: {type(exc).__name__}: {exc}")


def record_result(chk: CheckerState, result: ProbeResult, now: float) -> Change | None:
    """What every attempt ends with, wherever it ran (a task here, the probe engine, a worker process)."""
    chk.attempts += 1
    chk.last_ok, chk.last_reason = result.ok, result.reason
    return chk.core.record(result.ok, now)
