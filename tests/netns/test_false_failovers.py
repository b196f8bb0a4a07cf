"""No false failovers under CPU and memory pressure (issue 17; keepalived issues #2066, #2238).

A pykeepalived pair and a keepalived 2.2.7 pair run side by side in
namespaces (lab/stress.py), every router process and a stress-ng load in each
router's namespace in one CPU-limited cgroup. pykeepalived must show zero
spurious transitions; keepalived's count is printed beside it, not asserted
(at its defaults it has some under this load: that is the issue's point).

The short run (VRRPv3, adverts every 50 ms, the harder case) runs in CI; the
10-minute runs of both configurations are `soak`. Two quick checks cover the
process settings the result rests on: the VRRP process is realtime by default
(turned off by `pykeepalived_vrrp_realtime off`), and a config with
`vrrp_rt_priority` no longer gets the VRRP process SIGKILLed at start by
keepalived's 10 ms RLIMIT_RTTIME.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.stress import PROFILES, Load, run_side_by_side

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

needs_stress = pytest.mark.skipif(shutil.which("stress-ng") is None or shutil.which("keepalived") is None,
                                  reason="needs stress-ng and keepalived")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "rt")


def _policy(pid: int) -> tuple[int, int]:
    return os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(pid).sched_priority


def _start(lab: Lab, extra_global: str = "") -> tuple[PyKeepalivedPeer, int]:
    settings = [VrrpSettings(vrid=77, priority=150, vips=[VIP4], version=3, advert_int_s=0.1)]
    r1 = lab.peer("py", lab.r1, settings, extra_global=extra_global)
    assert isinstance(r1, PyKeepalivedPeer)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 5.0, what="master")
    return r1, int(r1.vrrp_pid_path.read_text())


def test_vrrp_process_is_realtime_by_default(lab: Lab) -> None:
    r1, pid = _start(lab)
    assert _policy(pid) == (os.SCHED_RR, 1)
    assert os.sched_getscheduler(pid) & os.SCHED_RESET_ON_FORK  # scripts start at normal priority


def test_realtime_default_steps_down_at_the_soft_cpu_limit(lab: Lab) -> None:
    """SIGXCPU (the soft RLIMIT_RTTIME: a long stretch without sleeping) under the default, which the user did
    not ask for: every thread back to normal scheduling and said so, never SIGKILLed at the hard limit."""
    r1, pid = _start(lab)
    os.kill(pid, signal.SIGXCPU)
    wait_until(lambda: all(_policy_of(pid, int(t)) == os.SCHED_OTHER for t in os.listdir(f"/proc/{pid}/task")),
               5.0, what="every thread at SCHED_OTHER")
    wait_until(lambda: "back to normal scheduling" in r1.log(), 5.0, what="the log line")
    assert r1.running() and r1.holds(VIP4.ip)


def _policy_of(pid: int, tid: int) -> int:
    return os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK


def test_realtime_default_turned_off(lab: Lab) -> None:
    r1, pid = _start(lab, "pykeepalived_vrrp_realtime off")
    assert _policy(pid) == (os.SCHED_OTHER, 0)


def test_vrrp_rt_priority_without_rlimit_survives_start(lab: Lab) -> None:
    """keepalived's 10 ms RLIMIT_RTTIME SIGKILLed the Python process during its start-up."""
    r1, pid = _start(lab, "vrrp_rt_priority 50")
    time.sleep(1.0)
    assert r1.running(), r1.log()[-3000:]
    assert _policy(pid) == (os.SCHED_RR, 50)


def _report(doc: dict[str, object]) -> None:
    print(json.dumps(doc, indent=2))


def _run(tmp_path: Path, profile: str, duration_s: float) -> None:
    result = run_side_by_side(PROFILES[profile], Load(), duration_s, tmp_path)
    doc = result.as_dict()
    _report(doc)
    ours = next(r for r in result.pairs if r.implementation == "pykeepalived")
    theirs = next(r for r in result.pairs if r.implementation == "keepalived")
    print(f"{profile}: spurious transitions over {duration_s:g} s: pykeepalived {ours.spurious}, "
          f"keepalived 2.2.7 {theirs.spurious}")
    assert ours.daemons_alive, result.logs
    assert ours.spurious == 0, (ours.transitions, ours.longest_master_silence_s)


@needs_stress
@pytest.mark.keepalived
@pytest.mark.slow
def test_no_false_failovers_under_stress_50ms(tmp_path: Path) -> None:
    _run(tmp_path, "v3-50ms", 25.0)


@needs_stress
@pytest.mark.keepalived
@pytest.mark.soak
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_no_false_failovers_soak(tmp_path: Path, profile: str) -> None:
    _run(tmp_path, profile, 600.0)
