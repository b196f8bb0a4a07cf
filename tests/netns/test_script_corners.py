"""vrrp_script corners against keepalived 2.2.7: a timed-out script's whole process group goes, init_fail + rise.

- SC_SLOW starts a background child and sleeps; `timeout 1` fails it and must
  kill the child too (its process group), so runs never pile up; its
  instance (weight 0) never leaves FAULT/INIT and never holds its VIP.
- SC_INIT succeeds at once and has `init_fail` and `rise 3`: keepalived 2.2.7
  resets a script's initial state when an instance tracks it (vrrp_track.c
  alloc_track_script), so init_fail has no effect and the first success is
  enough: the instance leaves FAULT at once and is master one down timer
  (3.6 s) later, not three runs (2 s) later.
The same configuration runs under keepalived 2.2.7 and pykeepalived.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pksc")


def live(name: str) -> int:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False).stdout
    return len(out.split())


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_timeout_kills_the_group_and_init_fail_waits_for_rise(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    name = f"pksl{uuid.uuid4().hex[:8]}"
    (box.root / name).symlink_to("/bin/sleep")
    slow = box.root / "slow.sh"
    slow.write_text(f"#!/bin/sh\n{box.root / name} 300 &\n{box.root / name} 300\n")
    slow.chmod(0o755)

    def inst(iname: str, vrid: int, script: str) -> str:
        return (f"vrrp_instance {iname} {{\n  state MASTER\n  interface eth0\n  virtual_router_id {vrid}\n"
                f"  priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    192.0.2.{vrid}/24\n  }}\n"
                f"  track_script {{\n    {script}\n  }}\n}}\n")

    conf = box.conf(
        "global_defs {\n  router_id sc\n  enable_script_security\n  script_user root\n}\n"
        f'vrrp_script SC_SLOW {{\n  script "{slow}"\n  interval 1\n  timeout 1\n}}\n'
        'vrrp_script SC_INIT {\n  script "/bin/true"\n  interval 1\n  init_fail\n  rise 3\n}\n'
        + inst("VI_1", 61, "SC_SLOW") + inst("VI_2", 62, "SC_INIT"))
    with box.running(kind, conf, "-P") as log:
        def holds(vrid: int) -> bool:
            return f"192.0.2.{vrid}/" in box.ip("addr", "show", "eth0")

        started = "Startup complete" if kind == "ka" else "Starting VRRP child process"
        assert wait_for(lambda: started in log(), 10, step_s=0.01) is not None, log()
        start = time.monotonic()  # from the daemon's start, not the interpreter's
        assert wait_for(lambda: holds(62), 15) is not None, log()
        took = time.monotonic() - start
        print(f"{kind}: VI_2 up after {took:.2f} s")
        assert took < 5.0, log()  # keepalived 2.2.7: 3.6 s (one success, then the down timer); three runs: 5.6 s
        time.sleep(4)
        assert not holds(61), log()
        assert live(name) <= 2, f"{live(name)} sleeps alive: timed-out runs left children behind"
    assert wait_for(lambda: live(name) == 0, 5) is not None, "script processes outlived the daemon"
