"""Pools the issue-18 reply experiment's runs (bench/dataplane.py --proto-reply-ingress [--proto-direct-ingress]).

Why: on this shared 2-core machine one round's ratio scatters by +-20 %, more than the effect measured (a few
per cent), so the runs of several invocations are pooled: each round's mode over the same round's `direct`
(the bench's round_ratios), and the pairs run seconds apart (stateless_ri over stateless, stateless_ri over
direct_ri), with their median and quartiles.

    python3 bench/slreply_pool.py bench/slreply_results/run*.json
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

PAIRS = (("stateless", "direct"), ("stateless_ri", "direct"), ("direct_ri", "direct"),
         ("stateless_ri", "stateless"), ("stateless_ri", "direct_ri"))


def same_round(runs: list[dict[str, Any]], mode: str, anchor: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in runs:
        if r["mode"] != mode:
            continue
        for a in runs:
            if a["mode"] == anchor and a["run"] == r["run"] and a["style"] == r["style"] and a["requests_per_s"]:
                out.setdefault(r["style"], []).append(r["requests_per_s"] / a["requests_per_s"])
    return out


def main(paths: list[str]) -> int:
    pooled: dict[tuple[str, str], list[float]] = {}
    for path in paths:
        with open(path) as f:
            runs = json.load(f)["runs"]
        for mode, anchor in PAIRS:
            for style, values in same_round(runs, mode, anchor).items():
                pooled.setdefault((style, f"{mode}/{anchor}"), []).extend(values)
    for (style, pair), values in sorted(pooled.items()):
        quartiles = statistics.quantiles(values, n=4) if len(values) > 3 else values
        print(f"{style:9} {pair:24} n={len(values):3} median={statistics.median(values):.3f} "
              f"quartiles={[round(q, 3) for q in quartiles]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
