"""vrrp_notify_fifo_script: the daemon starts the FIFO's reader itself, as keepalived 2.2.7 does.

The reader script gets the FIFO's path as its last argument, copies every
line it reads to a file, and must not outlive the daemon. keepalived 2.2.7
and pykeepalived run the same configuration and must give the same lines.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import needs_root, skip_unless_available

pytestmark = [pytest.mark.netns, needs_root]

# A checker with one real server (nothing listens: it goes down, a line on the LVS FIFO).
VIRTUAL_SERVER = ("virtual_server 192.0.2.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
                  "  real_server 192.0.2.1 1 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n"
                  "  }\n}\n")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkff")


def reader_running(path: str) -> bool:
    return subprocess.run(["pgrep", "-f", path], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_fifo_script_started_and_fed(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    out = box.root / "lines.out"
    script = box.root / "reader.sh"
    script.write_text(f'#!/bin/sh\necho "ARGS $*" >> {out}\n'
                      f'while read -r line; do echo "$line" >> {out}; done < "$2"\n')
    script.chmod(0o755)
    fifo = box.root / "notify.fifo"
    conf = box.conf(
        "global_defs {\n  router_id ff\n  enable_script_security\n  script_user root\n"
        f"  vrrp_notify_fifo {fifo}\n  vrrp_notify_fifo_script \"{script} first\"\n}}\n"
        + vi_1("MASTER"))
    with box.running(kind, conf, "-P") as log:
        assert wait_for(lambda: out.exists() and "MASTER" in out.read_text(), 10) is not None, log()
        lines = out.read_text().splitlines()
        assert lines[0] == f"ARGS first {fifo}"
        assert 'INSTANCE "VI_1" MASTER 100' in lines
    assert wait_for(lambda: not reader_running(str(script)), 5) is not None, "the FIFO reader outlived the daemon"


def test_lvs_fifo_script_started_by_the_checker(box: Box) -> None:
    out = box.root / "lvs.out"
    script = box.root / "lvs-reader.sh"
    script.write_text(f'#!/bin/sh\necho "ARGS $*" >> {out}\n'
                      f'while read -r line; do echo "$line" >> {out}; done < "$1"\n')
    script.chmod(0o755)
    fifo = box.root / "lvs.fifo"
    conf = box.conf(
        "global_defs {\n  router_id ff\n  enable_script_security\n  script_user root\n"
        f"  lvs_notify_fifo {fifo}\n  lvs_notify_fifo_script {script}\n}}\n"
        + VIRTUAL_SERVER)
    daemon = box.start(conf, "-C", "--dataplane", "none")
    try:
        assert wait_for(lambda: out.exists() and "RS " in out.read_text(), 15) is not None, daemon.log()
        assert out.read_text().splitlines()[0] == f"ARGS {fifo}"
    finally:
        daemon.stop()
    assert wait_for(lambda: not reader_running(str(script)), 5) is not None, "the FIFO reader outlived the daemon"


def test_global_and_lvs_fifo_the_same_file_gets_each_line_once(box: Box) -> None:
    out = box.root / "both.out"
    script = box.root / "both-reader.sh"
    script.write_text(f'#!/bin/sh\nwhile read -r line; do echo "$line" >> {out}; done < "$1"\n')
    script.chmod(0o755)
    fifo = box.root / "both.fifo"
    conf = box.conf(
        "global_defs {\n  router_id ff\n  enable_script_security\n  script_user root\n"
        f"  notify_fifo {fifo}\n  notify_fifo_script {script}\n  lvs_notify_fifo {fifo}\n}}\n"
        + VIRTUAL_SERVER)
    daemon = box.start(conf, "-C", "--dataplane", "none")
    try:
        assert wait_for(lambda: out.exists() and "RS " in out.read_text(), 15) is not None, daemon.log()
        time.sleep(1)
        rs_lines = [line for line in out.read_text().splitlines() if line.startswith("RS ")]
        assert len(rs_lines) == 1, out.read_text()
        assert reader_count(str(script)) == 1  # one reader: the global FIFO's script
    finally:
        daemon.stop()


def reader_count(path: str) -> int:
    out = subprocess.run(["pgrep", "-f", path], capture_output=True, text=True, check=False).stdout
    return len(out.split())


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_global_and_vrrp_fifos_both_get_the_lines(box: Box, kind: str) -> None:
    skip_unless_available(kind)
    outs = {}
    for tag in ("global", "vrrp"):
        out = outs[tag] = box.root / f"{tag}.out"
        script = box.root / f"{tag}-reader.sh"
        script.write_text(f'#!/bin/sh\nwhile read -r line; do echo "$line" >> {out}; done < "$1"\n')
        script.chmod(0o755)
    conf = box.conf(
        "global_defs {\n  router_id ff\n  enable_script_security\n  script_user root\n"
        f"  notify_fifo {box.root / 'global.fifo'}\n  notify_fifo_script {box.root / 'global-reader.sh'}\n"
        f"  vrrp_notify_fifo {box.root / 'vrrp.fifo'}\n  vrrp_notify_fifo_script {box.root / 'vrrp-reader.sh'}\n}}\n"
        + vi_1("MASTER"))
    with box.running(kind, conf, "-P") as log:
        for out in outs.values():
            assert wait_for(lambda: out.exists() and "MASTER" in out.read_text(), 10) is not None, log()
            assert 'INSTANCE "VI_1" MASTER 100' in out.read_text().splitlines()
