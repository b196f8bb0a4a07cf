"""bench/dataplane.py's rounds: every mode takes every place in its round, and each is compared with its round's direct.

With direct always first, whatever the first place in a round costs fell on
the anchor alone: this 2-core machine drifts by up to 30 % between runs
seconds apart, and the first keep-alive run after a round of new
connections was seen to be the slowest of its round whatever its mode
(docs/dataplane.md, "Does the order of the runs matter?").
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dataplane.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dataplane_rounds", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _orders(**kwargs: Any) -> list[list[str]]:
    seen: list[tuple[str, str]] = []

    def record(mode: str, style: str) -> dict[str, Any]:
        seen.append((mode, style))
        return {}

    runs = _bench().interleaved_rounds(3, ["keepalive", "new_conn"], ["direct", "stateless", "dr"], record, **kwargs)
    assert [(r["mode"], r["style"]) for r in runs] == seen
    return [[r["mode"] for r in runs if r["run"] == n and r["style"] == "keepalive"] for n in (1, 2, 3)]


def test_each_round_starts_at_the_next_mode() -> None:
    assert _orders() == [["direct", "stateless", "dr"], ["stateless", "dr", "direct"], ["dr", "direct", "stateless"]]


def test_no_rotate_keeps_the_order() -> None:
    assert _orders(rotate=False) == [["direct", "stateless", "dr"]] * 3


def test_round_ratios_compare_each_mode_with_its_own_rounds_direct_by_requests_and_by_cpu() -> None:
    def run(n: int, mode: str, rps: float, cpu_us: float) -> dict[str, Any]:
        return {"run": n, "style": "keepalive", "mode": mode, "requests_per_s": rps, "cpu_us_per_request": cpu_us}

    runs = [run(1, "direct", 100.0, 20.0), run(1, "stateless", 90.0, 25.0),
            run(2, "stateless", 60.0, 20.0), run(2, "direct", 50.0, 20.0),
            run(3, "stateless", 10.0, 10.0)]  # no direct in round 3: left out, not compared with another round's
    ratios = _bench().round_ratios(runs, ["keepalive"])["keepalive"]
    assert ratios["stateless_over_direct"] == {"median": 1.05, "rounds": [0.9, 1.2]}
    # direct's CPU per request over the mode's: 0.8 costs 1/0.8 of what routing does
    assert ratios["stateless_over_direct_by_cpu"] == {"median": 0.9, "rounds": [0.8, 1.0]}
