"""Smoke test of bench/chaos.py: one lab event and one VRRP-only pair event, short, and nothing left behind.

Figures are not judged, only that each part measured what it reports: the
reload in the NAT lab (a planned event: all connections kept), and the
master's SIGKILL for both implementations' pairs (the VIP moves: the backup
ends as its sole holder).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root,
              pytest.mark.skipif(not (shutil.which("wrk") and HAVE_KEEPALIVED),
                                 reason="needs wrk and keepalived (bootstrap.sh installs them)")]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
PREFIXES = ("bch", "bcn", "bcd")


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(240)
def test_short_run_measures_both_and_cleans_up() -> None:
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(BENCH), "--kinds", "nat", "--events", "reload",
                           "--pair-events", "master_sigkill", "--streams", "10", "--window", "0.5"],
                          capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    reload = out["lab"]["nat"]["reload"]
    assert reload["streams"]["connections"] == 10 and reload["requests"]["keepalive"] > 0, reload
    assert reload["streams"]["kept"] == 10, reload
    pairs = out["pair"]["master_sigkill"]
    assert set(pairs) == {"keepalived", "pykeepalived"}
    for impl, run in pairs.items():
        assert run["detail"]["final_holder"] == ["r2"], (impl, run)
        assert run["steady_s"] is not None and run["longest_gap_s"] > 0, (impl, run)
    assert set(out["summary"]["pair"]["master_sigkill"]) == {"keepalived", "pykeepalived"}
    assert {n for n in _namespaces() - before if n.startswith(PREFIXES)} == set()
