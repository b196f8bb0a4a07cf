"""The IPVS backend against the kernel's IPVS, in the qemu guest (this machine's kernel has none).

One guest run takes the backend through a sequence of tables (NAT, DR with a
fwmark and persistence granularity, IPv6 with sh-port and thresholds, TUN
with gue options, a group's range and fwmark; then a scheduler change, a
removed and a quiesced server, removed services; a scheduler the kernel does
not know; a restarted daemon adopting what is there; a clean stop) and
checks `ipvsadm -Sn` after each step.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.vm.guest import GuestImage, run_in_guest
from tests.vm.shares import REPO, share_for

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

FIRST = sorted([
    "-A -t 203.0.113.10:80 -s rr",
    "-a -t 203.0.113.10:80 -r 10.11.12.1:80 -m -w 1",
    "-a -t 203.0.113.10:80 -r 10.11.12.2:80 -m -w 2",
    "-A -t 203.0.113.20:25 -s lc",
    "-a -t 203.0.113.20:25 -r 10.11.12.1:25 -m -w 1",
    "-A -t 203.0.113.21:25 -s lc",
    "-a -t 203.0.113.21:25 -r 10.11.12.1:25 -m -w 1",
    "-A -u 203.0.113.12:53 -s mh -o",
    "-a -u 203.0.113.12:53 -r 10.11.12.5:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
    "-A -t [2001:db8::10]:443 -s sh -p 60 -M 64 -b sh-port",
    "-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -m -w 1",
    "-A -f 7 -s lc",
    "-a -f 7 -r 10.11.12.1:25 -m -w 1",
    "-A -f 80 -s wlc -p 30 -M 255.255.255.0",
    "-a -f 80 -r 10.11.12.1:0 -g -w 1",
    "-a -f 80 -r 10.11.12.3:0 -g -w 1",
])
SECOND = sorted([
    "-A -t 203.0.113.10:80 -s wlc",
    "-a -t 203.0.113.10:80 -r 10.11.12.2:80 -m -w 0",
    "-a -t 203.0.113.10:80 -r 10.11.12.3:80 -m -w 5",
    "-A -t [2001:db8::10]:443 -s sh -p 60 -M 64 -b sh-port",
    "-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -m -w 1",
    "-A -f 80 -s wlc -p 30 -M 255.255.255.0",
    "-a -f 80 -r 10.11.12.1:0 -g -w 1",
    "-a -f 80 -r 10.11.12.3:0 -g -w 1",
])


def test_the_backend_builds_edits_adopts_and_removes_ipvs_services(guest_image: GuestImage, tmp_path: Path) -> None:
    script = (f"modprobe ip_vs && cd {REPO} && PYTHONPATH={REPO} "
              f"{sys.executable} -m tests.vm.ipvs_backend_script > {tmp_path}/out.json")
    result = run_in_guest(script, share=share_for(tmp_path), timeout_s=300, image=guest_image)
    assert result.returncode == 0, result.output[-4000:]
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["has_ipvs"] is True
    assert got["first"] == FIRST
    assert got["second"] == SECOND
    # rr -> wlc is one edit; one server deleted, one quiesced (edit), one added; the TUN service and the
    # group's three services deleted (their destinations go with them)
    assert got["second_commands"] == 1 + 3 + 4
    assert got["raced"] == ["-A -u 203.0.113.12:53 -s mh -o",
                            "-a -u 203.0.113.12:53 -r 10.11.12.5:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum"]
    assert got["counts"]["web"] == {"[10.11.12.2]:80": [0, 0], "[10.11.12.3]:80": [0, 0]}
    assert "no-such-scheduler" in got["broken"] or "203.0.113.13" in got["broken"]
    assert [line for line in got["after_broken"] if "203.0.113.13" not in line] == SECOND
    assert got["adopted"] == sorted([  # the restarted daemon's table, the v6 service untouched
        "-A -t 203.0.113.10:80 -s rr",
        "-a -t 203.0.113.10:80 -r 10.11.12.1:80 -m -w 1",
        "-a -t 203.0.113.10:80 -r 10.11.12.2:80 -m -w 2",
        "-A -t [2001:db8::10]:443 -s sh -p 60 -M 64 -b sh-port",
        "-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -m -w 1",
        "-A -f 80 -s wlc -p 30 -M 255.255.255.0",
        "-a -f 80 -r 10.11.12.1:0 -g -w 1",
        "-a -f 80 -r 10.11.12.3:0 -g -w 1",
    ])
    # a clean stop removes the restarted daemon's services; the first daemon's v6 service is not its own
    assert got["closed"] == ["-A -t [2001:db8::10]:443 -s sh -p 60 -M 64 -b sh-port",
                             "-a -t [2001:db8::10]:443 -r [2001:db8:1::1]:443 -m -w 1"]
    # lvs_flush removed that v6 service at start; lvs_flush_on_stop removed everything, a stranger's too;
    # lvs_timeouts changed tcp and udp, kept tcpfin, and the old values came back at stop
    assert got["flushed_at_start"] == sorted(["-A -t 203.0.113.10:80 -s rr",
                                              "-a -t 203.0.113.10:80 -r 10.11.12.1:80 -m -w 1",
                                              "-a -t 203.0.113.10:80 -r 10.11.12.2:80 -m -w 2"])
    assert got["flushed_at_stop"] == []
    assert got["timeouts_set"] == "Timeout (tcp tcpfin udp): 7200 120 30"
    assert got["timeouts_after"] == got["timeouts_before"] == "Timeout (tcp tcpfin udp): 900 120 300"
