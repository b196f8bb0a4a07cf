"""Smoke test of bench/schedulers.py: a small run prints both JSON lines and leaves no namespace behind.

The benchmark runs as a user would run it (a subprocess). Only what must hold
at any size is judged: rr and wrr follow their cycle exactly, fo sends
everything to the heaviest server, and dh keeps every VIP on one server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "schedulers.py"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(240)
def test_small_run_prints_shares_and_apply_times_and_cleans_up() -> None:
    # the apply timings of rr and sh only (sh: a Maglev map of 65,521 slots, changed by replays and deltas)
    proc = subprocess.run([sys.executable, str(BENCH), "--connections", "60", "--apply-schedulers", "rr,sh"],
                          capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shares, timings = (json.loads(line) for line in proc.stdout.splitlines())
    runs = {(r["scheduler"], tuple(r["weights"]), r["mode"]): r for r in shares["runs"]}
    for key in (("rr", (1, 1, 1), "short"), ("rr", (1, 2, 3), "short"), ("wrr", (1, 2, 3), "short"),
                ("fo", (1, 2, 3), "long"), ("dh", (1, 2, 3), "short")):
        assert runs[key]["max_deviation"] == 0, runs[key]
    assert {r["scheduler"] for r in shares["runs"]} == {
        "rr", "wrr", "sh", "dh", "mh", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "lblc", "lblcr"}
    assert timings["one_of_1000_real_servers_down_s"]["rr"]["median"] > 0
    assert timings["one_of_1000_real_servers_down_s"]["sh"]["median"] > 0
    assert timings["load_1000_services_x3_s"]["rr"] > 0
    # its own namespace, by the name it printed: another run on the machine may have one of its own meanwhile
    made = re.search(r"^namespace (sched-\S+)$", proc.stderr, re.MULTILINE)
    assert made is not None, proc.stderr[-3000:]
    assert made.group(1) not in _namespaces()
