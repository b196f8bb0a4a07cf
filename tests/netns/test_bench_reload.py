"""Smoke test of bench/reload.py: a short sequence measures both implementations and leaves nothing behind.

Figures are not judged, except what keepalived 2.2.7 itself always does here:
it accepts every reload but the broken one, and sends an extra advert on each.
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

BENCH = Path(__file__).resolve().parents[2] / "bench" / "reload.py"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(240)
def test_short_run_measures_both_and_cleans_up() -> None:
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(BENCH), "--unchanged", "2", "--pace", "1"],
                          capture_output=True, text=True, timeout=220, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    steps = ["unchanged-1", "unchanged-2", "add-real-server", "remove-real-server", "change-priority",
             "broken-config"]
    for name in ("pykeepalived", "keepalived"):
        assert [r["step"] for r in out[name]["reloads"]] == steps
        assert out[name]["summary"]["reloads"] == len(steps)
    ours = out["pykeepalived"]["summary"]
    assert ours["requests"] > 0 and set(ours["wrk"]) == {"accepted_reloads", "broken_config"}
    assert all({"keepalive", "new_conn"} <= set(phase) for phase in ours["wrk"].values()), ours["wrk"]
    theirs = out["keepalived"]
    assert theirs["summary"]["as_expected"] == len(steps), theirs["reloads"]
    assert all(r["master_adverts_within_1s"] >= 2 for r in theirs["reloads"][:-1]), theirs["reloads"]
    assert {n for n in _namespaces() - before if n.startswith(("brl-", "brk-"))} == set()
