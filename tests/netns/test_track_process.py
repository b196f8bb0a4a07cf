"""vrrp_track_process acted on by the real daemon: a process starting and stopping moves priority or FAULT.

The tracked processes are /bin/sleep started under a unique name (a link, so
that their comm is that name). keepalived 2.2.7 cannot do this inside a
network namespace (its proc connector listen is refused there), which the
last test shows; pykeepalived polls /proc and so works wherever it runs.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pktp")


class Sleeper:
    """/bin/sleep run as `name` (its comm), optionally with more arguments; killed at the end."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / name
        if not self.path.exists():
            self.path.symlink_to("/bin/sleep")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(self.path), "60", *args])
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs.clear()


def conf(name: str, path: Path) -> str:
    return f"""global_defs {{
  router_id tp
}}
vrrp_track_process TP_FAULT {{
  process {name}
}}
vrrp_track_process TP_WEIGHT {{
  process {name}
  weight 10
  quorum 2
}}
vrrp_track_process TP_ARGS {{
  process {path} 60 1
}}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  virtual_ipaddress {{
    192.0.2.201/24
  }}
  track_process {{
    TP_FAULT
  }}
}}
vrrp_instance VI_2 {{
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 100
  advert_int 1
  virtual_ipaddress {{
    192.0.2.202/24
  }}
  track_process {{
    TP_WEIGHT
    TP_ARGS weight -20
  }}
}}
"""


def test_process_start_and_stop_drive_fault_and_priority(box: Box) -> None:
    name = f"pktp{uuid.uuid4().hex[:8]}"
    sleeper = Sleeper(box.root, name)
    daemon = box.start(box.conf(conf(name, sleeper.path)), "-P")
    try:
        daemon.wait_log("(VI_1) Entering FAULT STATE", 10)  # no process at start: weight 0 faults
        daemon.wait_log("(VI_2) Changing effective priority from 100 to 80", 10)  # TP_ARGS down: -20
        first = sleeper.start()
        daemon.wait_log("Quorum gained for tracked process TP_FAULT", 5)
        daemon.wait_log("(VI_1) Entering BACKUP STATE", 5)
        second = sleeper.start("1")  # matches TP_ARGS (full command) and gives TP_WEIGHT its quorum of 2
        daemon.wait_log("Quorum gained for tracked process TP_ARGS", 5)
        daemon.wait_log("Quorum gained for tracked process TP_WEIGHT", 5)
        daemon.wait_log("(VI_2) Changing effective priority from 90 to 110", 5)  # one tracker at a time
        first.kill()
        first.wait()
        daemon.wait_log("Quorum lost for tracked process TP_WEIGHT", 5)
        daemon.wait_log("(VI_2) Changing effective priority from 110 to 100", 5)
        before = daemon.log().count("(VI_1) Entering FAULT STATE")
        second.kill()
        second.wait()
        delay = wait_for(lambda: daemon.log().count("(VI_1) Entering FAULT STATE") > before, 5)
        assert delay is not None, daemon.log()
        print(f"reaction to a process exit: {delay * 1000:.0f} ms")
        assert delay < 2.0
        daemon.wait_log("(VI_2) Changing effective priority from 100 to 80", 5)
    finally:
        sleeper.stop_all()
        daemon.stop()


def test_terminate_delay_rides_out_a_restart(box: Box) -> None:
    name = f"pktp{uuid.uuid4().hex[:8]}"
    sleeper = Sleeper(box.root, name)
    text = (f"vrrp_track_process TP {{\n  process {name}\n  terminate_delay 3\n}}\n"
            "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            "  virtual_ipaddress {\n    192.0.2.201/24\n  }\n  track_process {\n    TP\n  }\n}\n")
    first = sleeper.start()
    daemon = box.start(box.conf(text), "-P")
    try:
        daemon.wait_log("(VI_1) Entering BACKUP STATE", 10)
        first.kill()
        first.wait()
        sleeper.start()  # restarted within terminate_delay: nothing happens
        assert wait_for(lambda: "Quorum lost" in daemon.log(), 1.5) is None, daemon.log()
        sleeper.stop_all()
        daemon.wait_log("Quorum lost for tracked process TP", 6)
        daemon.wait_log("(VI_1) Entering FAULT STATE", 2)
    finally:
        sleeper.stop_all()
        daemon.stop()


@pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")
def test_keepalived_cannot_track_processes_in_a_namespace(box: Box) -> None:
    """Why we poll /proc: keepalived 2.2.7's proc connector is refused outside the initial namespace."""
    name = f"pktp{uuid.uuid4().hex[:8]}"
    sleeper = Sleeper(box.root, name)
    text = (f"vrrp_track_process TP {{\n  process {name}\n}}\n"
            "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            "  virtual_ipaddress {\n    192.0.2.201/24\n  }\n  track_process {\n    TP\n  }\n}\n")
    with box.running("ka", box.conf(text), "-P") as log:
        try:
            assert wait_for(lambda: "entering FAULT state" in log(), 10) is not None, log()
            assert "process event listen" in log()
            sleeper.start()
            assert wait_for(lambda: "Quorum gained" in log(), 2) is None, log()
        finally:
            sleeper.stop_all()
