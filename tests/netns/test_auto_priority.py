"""global_defs max_auto_priority / min_auto_priority_delay: a stalled VRRP process turns realtime (issue 14).

keepalived 2.2.7 raises its process to SCHED_RR priority 1 when a timer fires
later than min_auto_priority_delay, then one step per further stall up to
max_auto_priority. The stall here is real: the VRRP process is stopped with
SIGSTOP for longer than the delay and continued.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import PyKeepalivedPeer, VrrpSettings, wait_until
from pykeepalived.lab.checkers import tcp_listener

from .router_fixtures import CHECKED_SERVER, lone_router, start_logged, stop_group
from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "ap")


def _stall(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def _policy(pid: int) -> tuple[int, int]:
    return os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(pid).sched_priority


def _start(lab: Lab, extra_global: str) -> tuple[PyKeepalivedPeer, int]:
    settings = [VrrpSettings(vrid=74, priority=150, vips=[VIP4], version=3, advert_int_s=0.1)]
    r1 = lab.peer("py", lab.r1, settings, extra_global=extra_global)
    assert isinstance(r1, PyKeepalivedPeer)
    r1.start()
    wait_until(lambda: r1.holds(VIP4.ip), 3.0, what="master")
    return r1, int(r1.vrrp_pid_path.read_text())


def test_stalls_raise_the_vrrp_process_to_realtime_up_to_the_maximum(lab: Lab) -> None:
    r1, pid = _start(lab, "max_auto_priority 2\nmin_auto_priority_delay 200000")
    assert _policy(pid) == (os.SCHED_OTHER, 0)
    time.sleep(0.5)
    assert _policy(pid) == (os.SCHED_OTHER, 0)  # an idle loop is not late
    for expected in (1, 2, 2):
        _stall(pid, 0.6)
        wait_until(lambda: _policy(pid) == (os.SCHED_RR, expected), 3.0, what=f"SCHED_RR priority {expected}")
        time.sleep(0.3)
    assert r1.log().count("Set realtime priority") == 2  # never past max_auto_priority
    limits = re.search(r"^Max realtime timeout\s+(\S+)\s+(\S+)", Path(f"/proc/{pid}/limits").read_text(), re.M)
    assert limits and limits.groups() == ("5000", "10000")  # keepalived's default RLIMIT_RTTIME with realtime
    assert "A thread timer expired 0." in r1.log()
    assert r1.running() and r1.holds(VIP4.ip)


def test_without_max_auto_priority_a_stall_changes_nothing(lab: Lab) -> None:
    r1, pid = _start(lab, "min_auto_priority_delay 200000")
    _stall(pid, 0.6)
    time.sleep(0.5)
    assert _policy(pid) == (os.SCHED_OTHER, 0)
    assert "Set realtime priority" not in r1.log()


def test_a_realtime_process_climbs_from_its_own_priority(lab: Lab) -> None:
    r1, pid = _start(lab, "vrrp_rt_priority 5\nvrrp_rlimit_rttime 400000\nmax_auto_priority 6\n"
                          "min_auto_priority_delay 200000")
    assert _policy(pid) == (os.SCHED_RR, 5)
    _stall(pid, 0.6)
    wait_until(lambda: _policy(pid) == (os.SCHED_RR, 6), 3.0, what="SCHED_RR priority 6")


CHECK_CONF = """
global_defs {{
    router_id lb
    max_auto_priority
    min_auto_priority_delay 200000
}}
""" + CHECKED_SERVER


def test_stalls_raise_the_checker_process_too(tmp_path: Path) -> None:
    with lone_router("apc") as host:
        rs = str(host.ipv4.ip)
        listener = tcp_listener(host, rs, 8080)
        conf = tmp_path / "keepalived.conf"
        conf.write_text(CHECK_CONF.format(rs=rs))
        log = tmp_path / "log"
        proc = start_logged(host, [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-f", str(conf),
                                   "--dataplane", "none", "--status-file", str(tmp_path / "status.json"),
                                   "-p", str(tmp_path / "p.pid"), "-c", str(tmp_path / "c.pid"),
                                   "-r", str(tmp_path / "r.pid")], log)
        try:
            pid_file = tmp_path / "c.pid"
            wait_until(lambda: (tmp_path / "status.json").exists() and pid_file.exists(), 15,
                       what=f"checker:\n{log.read_text()[-3000:]}")
            pid = int(pid_file.read_text())
            assert _policy(pid) == (os.SCHED_OTHER, 0)
            _stall(pid, 0.6)
            wait_until(lambda: _policy(pid) == (os.SCHED_RR, 1), 3.0, what="checker at SCHED_RR priority 1")
        finally:
            stop_group(proc)
            listener.kill()
