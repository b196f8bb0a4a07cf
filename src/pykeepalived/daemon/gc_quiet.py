"""The VRRP and checker processes' garbage collector, kept off the advert path and the checks.

CPython's cyclic collector runs inside whatever code allocates when the
allocation counters cross their thresholds: building an advert, a timer
firing. A young collection looks at a few hundred objects (tens of
microseconds); a full one walks every tracked object, and after start-up that
is every module, the parsed config and the service: docs/false-failovers.md
has the pause lengths measured before and after. `freeze_when_ready` waits
until the service runs and FREEZE_DELAY_S more (the first states and their
notify scripts are done by then) and freezes the heap into the permanent
generation, which later collections skip: a full collection then walks only
what was made since. The freeze itself costs next to nothing; there is no
collection before it, on purpose: that would be the very pause this avoids
(20-50 ms), and a realtime process under keepalived's 10 ms RLIMIT_RTTIME
(max_auto_priority's climb) is SIGKILLed by such a stretch. What start-up
left as cyclic garbage (a parse of a ten-instance config leaves 26 objects)
stays frozen, once. A reload does not refreeze: the new config's objects live
in the ordinary generations, whose full collections stay short, and the
start-up config's objects not in cycles are freed by reference counting.

Thresholds stay CPython's: the frozen heap is what made full collections
long, and a disabled collector would let reference cycles (asyncio futures
and exceptions make them) grow without bound.

PYKEEPALIVED_GC_STATS=PATH writes, at exit, the collections seen and their
pauses per generation as JSON (how the figures in the docs were taken);
PYKEEPALIVED_GC_FREEZE=0 leaves the heap unfrozen (the "before" of those
figures).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
from typing import Any

log = logging.getLogger("pykeepalived")

STATS_ENV = "PYKEEPALIVED_GC_STATS"
FREEZE_ENV = "PYKEEPALIVED_GC_FREEZE"
FREEZE_DELAY_S = 1.0


class PauseStats:
    """Every collection's length, by generation, from gc.callbacks (two clock reads per collection)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        gen = int(info.get("generation", 0))
        self.count[gen] += 1
        self.total_s[gen] += took
        self.max_s[gen] = max(self.max_s[gen], took)

    def as_dict(self) -> dict[str, Any]:
        return {f"gen{g}": {"collections": self.count[g], "total_ms": round(self.total_s[g] * 1000, 3),
                            "max_ms": round(self.max_s[g] * 1000, 3)} for g in range(3)}


_state: dict[str, Any] = {"frozen": False, "stats": None}


def _freeze(why: str) -> None:
    started = time.perf_counter()
    gc.freeze()
    _state["frozen"] = True
    log.debug("garbage collector: %d objects frozen %s (%.3f ms)", gc.get_freeze_count(), why,
              (time.perf_counter() - started) * 1000)


async def freeze_when_ready(ready: asyncio.Event) -> None:
    """Once `ready` is set (the instances run), collect and freeze the start-up heap."""
    await ready.wait()
    await asyncio.sleep(FREEZE_DELAY_S)  # after the start-up burst (first states, their notify scripts)
    if os.environ.get(FREEZE_ENV, "1") != "0":
        _freeze("after start-up")


def measure() -> None:
    """Start counting pauses when PYKEEPALIVED_GC_STATS names a file (written by write_stats)."""
    if os.environ.get(STATS_ENV) and _state["stats"] is None:
        stats = PauseStats()
        _state["stats"] = stats
        gc.callbacks.append(stats)


def write_stats() -> None:
    stats: PauseStats | None = _state["stats"]
    path = os.environ.get(STATS_ENV)
    if stats is None or not path:
        return
    doc = {"pid": os.getpid(), "frozen": _state["frozen"], "freeze_count": gc.get_freeze_count(),
           "thresholds": gc.get_threshold(), **stats.as_dict()}
    try:
        with open(f"{path}.{os.getpid()}", "w", encoding="utf-8") as f:
            json.dump(doc, f)
    except OSError as exc:
        log.info("cannot write the garbage collector's figures to %s: %s", path, exc.strerror)


_tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def start(ready: asyncio.Event) -> None:
    """The policy of the VRRP and checker processes: pauses measured if asked, the heap frozen once the service runs.

    For the checker the frozen heap is the configuration and thousands of
    checkers: without the freeze each full collection walks all of them.
    """
    measure()
    task = asyncio.get_running_loop().create_task(freeze_when_ready(ready))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
