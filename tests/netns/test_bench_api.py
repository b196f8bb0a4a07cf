"""Smoke test of bench/api.py: a short run measures the daemon with and without the API and leaves nothing behind.

Figures are not judged, only that both runs were measured and the API run really scraped and streamed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api.py"


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.timeout(120)
def test_short_run_measures_both_and_cleans_up() -> None:
    before = _namespaces()
    proc = subprocess.run([sys.executable, str(BENCH), "--seconds", "3", "--settle", "3"],
                          capture_output=True, text=True, timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    for run in ("none", "api"):
        assert out[run]["processes"] >= 3 and out[run]["rss_kib_parent"] > 0, out
        assert out[run]["cpu_s"] >= 0, out
    assert out["api"]["scrapes"] >= 2 and out["api"]["stream_events"] >= 1, out
    assert {"cpu_percent_of_one_core", "rss_kib_total"} <= set(out["api_minus_none"])
    assert {n for n in _namespaces() - before if n.startswith("bapi-")} == set()
