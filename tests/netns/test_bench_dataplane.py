"""Smoke test of bench/dataplane.py: a short run measures every mode and style and leaves nothing behind.

Throughput figures are not judged (tests assert behaviour, not timings): only
that wrk got answers through each path (direct routing, the VIP, HAProxy, stateless NAT, DR)
without errors, that the summary and ratios are filled in, and that the lab's
namespaces and the apply namespace are gone afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root,
              pytest.mark.skipif(not (shutil.which("wrk") and shutil.which("haproxy")),
                                 reason="needs wrk and haproxy (bootstrap.sh installs them)")]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dataplane.py"
MODES = {"direct", "direct_tracked", "vip", "nat_rule", "haproxy", "stateless", "dr", "dr_flows"}


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(240)
def test_short_run_measures_every_path_and_cleans_up() -> None:
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--duration", "1", "--no-apply"],
                          capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert {(r["style"], r["mode"]) for r in out["runs"]} == {(s, m) for s in ("keepalive", "new_conn") for m in MODES}
    for run in out["runs"]:
        assert run["requests"] > 0 and run["non_2xx"] == 0, run
        assert run["socket_errors"]["connect"] == 0, run
        assert run["cpu_us_per_request"] > 0 and 0 < run["cpu_busy_share"] <= 1, run
    for style in ("keepalive", "new_conn"):
        assert set(out["summary"][style]) == MODES
        assert out["ratios"][style]["vip_over_direct"] > 0 and out["ratios"][style]["vip_over_haproxy"] > 0
        assert out["ratios"][style]["stateless_over_direct"] > 0 and out["ratios"][style]["dr_over_direct"] > 0
        assert out["round_ratios"][style]["stateless_over_direct_by_cpu"]["median"] > 0
    assert out["settings"]["ruleset"]["stateless_chains"] and out["settings"]["ruleset"]["netdev_ingress_chains"]
    # the lab's namespaces, by the prefix the bench printed: another run on the machine may have its own meanwhile
    made = re.search(r"^namespaces (bdp-\S+)$", proc.stderr, re.MULTILINE)
    assert made is not None, proc.stderr[-3000:]
    assert {n for n in _namespaces() - before if n.startswith(made.group(1))} == set()
