"""global_defs startup_script / shutdown_script (+ their timeouts) as keepalived 2.2.7 runs them.

A marker script appends its first argument to a file, sleeps for its second
one, then appends "<arg>-done". The startup script must have finished before
the instance becomes master (its notify_master leaves the next marker), the
shutdown script runs after the daemon stopped its subsystems, and a startup
script past startup_script_timeout is stopped (with its process group) and
the daemon starts anyway. keepalived 2.2.7 runs the same configurations.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkss")


def marker_script(box: Box) -> tuple[Path, Path]:
    marks = box.root / "marks"
    script = box.root / "mark.sh"
    script.write_text(f'#!/bin/sh\necho "$1" >> {marks}\nif [ -n "$2" ]; then sleep "$2"; fi\n'
                      f'echo "$1-done" >> {marks}\n')
    script.chmod(0o755)
    return script, marks


def conf_text(script: Path, startup: str, extra: str = "") -> str:
    return ("global_defs {\n  router_id ss\n  enable_script_security\n  script_user root\n"
            f'  startup_script "{script} {startup}"\n  shutdown_script "{script} shutdown"\n{extra}}}\n'
            "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            f'  advert_int 1\n  notify_master "{script} master"\n'
            "  virtual_ipaddress {\n    192.0.2.201/24\n  }\n}\n")


def run_daemon(box: Box, kind: str, conf: Path, marks: Path, flags: tuple[str, ...]) -> list[str]:
    if kind == "ka":
        if not HAVE_KEEPALIVED:
            pytest.skip("keepalived not installed")
        proc = box.start_keepalived(conf, *flags)
        log = box.keepalived_log
    else:
        daemon = box.start(conf, *flags)
        log = daemon.log
    try:
        assert wait_for(lambda: marks.exists() and "master-done" in marks.read_text(), 20) is not None, log()
    finally:
        if kind == "ka":
            proc.terminate()
            proc.wait(20)
        else:
            daemon.stop(20)
    time.sleep(0.3)
    print(log()[-3000:])
    return marks.read_text().split()


@pytest.mark.parametrize(("kind", "flags"), [("ka", ("-P",)), ("py", ()), ("py", ("-P",))])
def test_startup_before_the_instances_and_shutdown_after(box: Box, kind: str, flags: tuple[str, ...]) -> None:
    script, marks = marker_script(box)
    lines = run_daemon(box, kind, box.conf(conf_text(script, "start 1")), marks, flags)
    assert lines == ["start", "start-done", "master", "master-done", "shutdown", "shutdown-done"]


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_startup_script_timeout_stops_it_and_the_daemon_starts(box: Box, kind: str) -> None:
    script, marks = marker_script(box)
    conf = box.conf(conf_text(script, "slow 30", "  startup_script_timeout 1\n"))
    lines = run_daemon(box, kind, conf, marks, ("-P",))
    assert lines[:1] == ["slow"] and "slow-done" not in lines
    assert lines[-2:] == ["shutdown", "shutdown-done"]
    left = subprocess.run(["pgrep", "-f", f"{script} slow"], capture_output=True, check=False)
    assert left.returncode != 0, "the timed-out startup script is still running"
