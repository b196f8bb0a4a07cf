"""Smoke test of bench/ecmp.py: a short run measures every tier size and the survival events, and leaves nothing.

Figures are not judged (tests assert behaviour, not timings): only that wrk
got answers through each tier size without errors, that the survival events
kept every connection, and that no namespace is left. About a minute and a
half: `soak` (run with -m soak), never in CI's hour.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.soak, needs_root,
              pytest.mark.skipif(not shutil.which("wrk"), reason="needs wrk (bootstrap.sh installs it)")]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ecmp.py"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(300)
def test_short_run_measures_every_tier_and_keeps_connections() -> None:
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--duration", "1",
                           "--survival-connections", "30"], capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    for style, modes in out["throughput"]["summary"].items():
        assert set(modes) == {"direct", "tier_3", "tier_2", "tier_1"}, style
        assert all(m["requests_per_s_median"] > 0 for m in modes.values())
    for run in out["throughput"]["runs"]:
        assert run["socket_errors"] == 0 and run["non_2xx"] == 0, run
        if run["mode"].startswith("tier_"):
            assert len(run["balancer_share"]) == int(run["mode"][-1]), run
    for event in ("crash_hold_time", "crash_bfd", "add_balancer"):
        assert out[event]["kept"] == 30 and out[event]["lost"] == 0, out[event]
    assert {n for n in _namespaces() - before if n.startswith("ecmpbenc-")} == set()
