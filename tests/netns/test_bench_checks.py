"""Smoke test of bench/checks.py: a --quick run must finish, print its JSON, and remove within the bound.

The benchmark is run as a user would run it (a subprocess), so that its own
clean-up, its JSON and its exit code are what is tested; the figures are not
judged here, only that the small run keeps keepalived's removal bound.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "checks.py"
PER_IMPL_KEYS = {
    "checks_per_s", "cpu_pct_of_one_core", "peak_rss_mib", "death_to_removal_s", "removal_bound_s",
    "within_bound", "revival_to_adding_s", "peak_open_fds",
}


@pytest.mark.timeout(240)
def test_quick_run_prints_json_and_removes_within_bound() -> None:
    impls = ["pykeepalived", "haproxy"] if shutil.which("haproxy") else ["pykeepalived"]
    # with haproxy: --fair-pairs, so HAProxy also runs with pykeepalived's ruleset loaded (and it is removed after)
    # --pk-notrack: pykeepalived's checks untracked, and a fifth contender with them tracked
    which = ["--fair-pairs", "--pk-notrack"] if len(impls) == 2 else ["--only", "pykeepalived"]
    # --pk-daemon: pykeepalived whole, a parent with its checker child and the state feed between them
    argv = [sys.executable, str(BENCH), "--quick", "--pk-daemon", *which]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["benchmark"] == "checks"
    assert doc["settings"]["removal_bound_s"] == 6.0
    assert doc["settings"]["pykeepalived_whole_daemon"] is True
    for impl in impls:
        result = doc[impl]
        assert PER_IMPL_KEYS <= result.keys(), sorted(PER_IMPL_KEYS - result.keys())
        assert result["death_to_removal_s"]["n"] == result["killed"] > 0
        assert result["within_bound"] is True, result["death_to_removal_s"]
        assert result["checks_per_s"] > 0
    if len(impls) == 2:
        assert doc["settings"]["pykeepalived_checker_notrack"] is True
        assert doc["pykeepalived_tracked"]["within_bound"] is True
        for key in ("ratio", "ratio_same_table", "ratio_no_table", "ratio_tracked", "ratio_tracked_same_table"):
            assert {"checks_per_s", "cpu", "peak_rss", "removal_median", "removal_p99"} <= doc[key].keys()
        loaded = doc["haproxy_with_pk_table"]["nft_ruleset_loaded"]
        assert loaded["nat_hooks"] > 0 and loaded["tables"], loaded  # HAProxy's checks crossed conntrack too
        assert doc["pykeepalived_no_table"]["within_bound"] is True

