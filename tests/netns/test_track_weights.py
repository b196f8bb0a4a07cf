"""Tracker corners against keepalived 2.2.7: weight reverse, track_file's init_file, values, weight 0 reverse.

The same configuration runs under keepalived 2.2.7 and under pykeepalived, each
in a namespace of its own; the priorities in the adverts (tcpdump on the veth
peer) and which VIPs are held must be the same.
- VI_1 (priority 100): track_file with `init_file 7` (the file does not
  exist: created with 7, +7) and a succeeding vrrp_script `weight 10 reverse`
  (-10 while it succeeds): 97.
- VI_2: a track_file holding "0x10" (C's strtol: 16), weight 2 reverse: -32: 68.
- VI_3: a track_file `weight 0 reverse` holding 0: FAULT (no VIP) until the
  file says something else.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .tracking_box import Box, make_box, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root,
              pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")]


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pktw")


def conf(root: Path) -> str:
    def inst(name: str, vrid: int, track: str) -> str:
        return (f"vrrp_instance {name} {{\n  state MASTER\n  interface eth0\n  virtual_router_id {vrid}\n"
                f"  priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    192.0.2.{vrid}/24\n  }}\n{track}}}\n")

    return (
        "global_defs {\n  router_id tw\n  enable_script_security\n  script_user root\n}\n"
        f'track_file TF_INIT {{\n  file "{root}/init.val"\n  weight 1\n  init_file 7\n}}\n'
        f'track_file TF_HEX {{\n  file "{root}/hex.val"\n  weight 2 reverse\n}}\n'
        f'track_file TF_ZERO {{\n  file "{root}/zero.val"\n  weight 0 reverse\n}}\n'
        'vrrp_script SC_OK {\n  script "/bin/true"\n  interval 1\n  weight 10 reverse\n}\n'
        + inst("VI_1", 61, "  track_file {\n    TF_INIT\n  }\n  track_script {\n    SC_OK\n  }\n")
        + inst("VI_2", 62, "  track_file {\n    TF_HEX\n  }\n")
        + inst("VI_3", 63, "  track_file {\n    TF_ZERO\n  }\n")
    )


def advert_priorities(box: Box, seconds: float = 3.5) -> dict[int, int]:
    """vrid -> the priority last advertised, from tcpdump on eth1."""
    out = subprocess.run(["ip", "netns", "exec", box.netns, "timeout", str(seconds), "tcpdump", "-l", "-n", "-i",
                          "eth1", "vrrp"], capture_output=True, text=True, check=False).stdout
    return {int(v): int(p) for v, p in re.findall(r"vrid (\d+), prio (\d+)", out)}


def run(box: Box, kind: str) -> tuple[dict[int, int], bool, bool, str]:
    (box.root / "hex.val").write_text("0x10\n")
    (box.root / "zero.val").write_text("0\n")
    (box.root / "init.val").unlink(missing_ok=True)
    text = conf(box.root)
    with box.running(kind, box.conf(text), "-P") as log:
        try:
            assert wait_for(lambda: "192.0.2.62" in box.ip("addr", "show", "eth0"), 15) is not None, log()
            time.sleep(2.5)  # scripts ran, files read
            prios = advert_priorities(box)
            vi3_held_in_fault = "192.0.2.63" in box.ip("addr", "show", "eth0")
            (box.root / "zero.val").write_text("3\n")
            vi3_up = wait_for(lambda: "192.0.2.63" in box.ip("addr", "show", "eth0"), 10) is not None
            init_text = (box.root / "init.val").read_text()
            return prios, vi3_held_in_fault, vi3_up, init_text
        finally:
            print(log()[-3000:])


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_weights_and_track_file_corners(box: Box, kind: str) -> None:
    prios, vi3_in_fault_holds, vi3_up, init_text = run(box, kind)
    assert init_text == "7\n"
    assert prios.get(61) == 97, prios
    assert prios.get(62) == 68, prios
    assert 63 not in prios or vi3_up
    assert not vi3_in_fault_holds
    assert vi3_up


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_track_file_created_replaced_and_removed(box: Box, kind: str) -> None:
    """A track file that appears, is replaced by a rename and disappears moves the priority as keepalived's."""
    path = box.root / "late.val"
    text = ("vrrp_track_file TF {\n" f'  file "{path}"\n  weight 1\n}}\n'
            "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            "  advert_int 1\n  virtual_ipaddress {\n    192.0.2.201/24\n  }\n  track_file {\n    TF\n  }\n}\n")
    with box.running(kind, box.conf(text), "-P") as log:
        def changes() -> list[tuple[int, int]]:
            return [(int(a), int(b)) for a, b in
                    re.findall(r"\(VI_1\) Changing effective priority from (\d+) to (\d+)", log())]

        assert wait_for(lambda: "Entering BACKUP STATE" in log(), 10) is not None, log()
        path.write_text("5\n")
        assert wait_for(lambda: len(changes()) >= 1, 5) is not None, log()
        fresh = box.root / "late.new"
        fresh.write_text("10\n")
        fresh.rename(path)
        assert wait_for(lambda: len(changes()) >= 2, 5) is not None, log()
        path.unlink()
        assert wait_for(lambda: len(changes()) >= 3, 5) is not None, log()
        assert changes() == [(100, 105), (105, 110), (110, 100)], log()
