"""The runtime API on the NAT lab: drain, undrain, weight, maintenance and resume, through `pykeepalived ctl`.

Both routers run with `--api unix:... --api-runtime`. The client holds one
keep-alive HTTP connection through the VIP while its real server is
drained: the connection keeps being served by that server, new
connections go only to the others, and undrain brings it back. Maintenance
of the master's instance moves the VIPs to the backup at once (priority 0)
and keeps them there; resume gives them back (router1 preempts at 150).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, wait_until
from pykeepalived.lab.lvs_lab import PUBLIC_INSTANCE, ROUTER_SPECS, VIP, LvsLab, render_router_conf

from .api_labs import runtime_api_lab
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VS = f"TCP {VIP}:80"
HOLDER = r"""
import http.client
import sys

conn = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
for _ in sys.stdin:
    conn.request("GET", "/")
    print(conn.getresponse().read().decode().strip(), flush=True)
"""


def ctl(lab: LvsLab, router: str, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.ctl(router, *args)


def state(lab: LvsLab, router: str) -> dict[str, Any]:
    done = ctl(lab, router, "state")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    with runtime_api_lab("rtapi", tmp_path_factory.mktemp("rtapi")) as lab:
        yield lab


def _answers(lab: LvsLab, count: int) -> list[str]:
    return [lab.client_get(f"http://{VIP}/").strip() for _ in range(count)]


def test_drain_keeps_the_open_connection_and_sends_new_ones_elsewhere(lab: LvsLab) -> None:
    holder = subprocess.Popen(lab.client.netns.argv([sys.executable, "-c", HOLDER, str(VIP)]), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()
        held = holder.stdout.readline().strip()
        rs = f"{lab.real_server(held).address}:80"

        done = ctl(lab, "router1", "drain", VS, rs)
        assert done.returncode == 0, done.stderr
        assert "drained" in done.stdout
        answers = _answers(lab, 6)
        assert held not in answers and len(set(answers)) == 2, answers

        holder.stdin.write("again\n")  # the connection opened before the drain still reaches its server
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == held

        events = [e for e in state(lab, "router1")["events"] if e["kind"] == "runtime"]
        assert any(f"drain {rs}" in e["text"] and "uid 0" in e["text"] for e in events), events

        done = ctl(lab, "router1", "undrain", VS, rs)
        assert done.returncode == 0, done.stderr
        assert held in _answers(lab, 6)
    finally:
        holder.kill()
        holder.communicate(timeout=10)  # reaps it and closes the pipes
        ctl(lab, "router1", "undrain", VS, "10.11.12.1:80")


def test_ctl_exit_statuses(lab: LvsLab, tmp_path: Path) -> None:
    unknown = ctl(lab, "router1", "drain", VS, "10.11.12.99:80")
    assert unknown.returncode == 4 and "no real server" in unknown.stderr, unknown
    assert ctl(lab, "router1", "maintenance", "NO_SUCH").returncode == 4
    bad = ctl(lab, "router1", "weight", VS, "10.11.12.1:80", "70000")
    assert bad.returncode == 2 and "out of range" in bad.stderr and "Traceback" not in bad.stderr
    gone = subprocess.run([sys.executable, "-m", "pykeepalived", "ctl", "--api", f"unix:{tmp_path}/none.sock",
                           "state"], capture_output=True, text=True, timeout=30, check=False)
    assert gone.returncode == 3 and "not running" in gone.stderr and "Traceback" not in gone.stderr
    assert ctl(lab, "router1", "out", VS).returncode == 0  # no server takes a new connection
    with pytest.raises(LabError):
        lab.client_get(f"http://{VIP}/", timeout_s=1.0)
    back = ctl(lab, "router1", "in", VS)
    assert back.returncode == 0 and "put back in" in back.stdout
    assert len(set(_answers(lab, 3))) == 3
    weight = ctl(lab, "router1", "weight", VS, "10.11.12.1:80", "3")
    assert weight.returncode == 0 and "weight set to 3" in weight.stdout, weight
    assert ctl(lab, "router1", "undrain", VS, "10.11.12.1:80").returncode == 0


def _reload(lab: LvsLab, router: str) -> None:
    r = lab.router(router)
    done = subprocess.run([sys.executable, "-m", "pykeepalived", "reload", "-f", str(r.conf_path),
                           "-p", str(r.pid_files[0]), "--timeout", "30"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_maintenance_moves_the_vips_to_the_peer_and_resume_brings_them_back(lab: LvsLab) -> None:
    assert lab.wait_for_master() == "router1"
    try:
        started = time.monotonic()
        done = ctl(lab, "router1", "maintenance", PUBLIC_INSTANCE)
        assert done.returncode == 0, done.stderr
        assert "sync group" in done.stdout  # RH_EXT and RH_INT move together
        lab.wait_for_master(timeout_s=5.0, name="router2")
        assert time.monotonic() - started < 3.0  # priority 0: no master-down timer to wait for
        time.sleep(3.0)  # several adverts at a lower priority than ours: still held
        assert lab.which_router_is_master() == "router2"
        _reload(lab, "router1")  # maintenance is kept on instances the configuration still has
        time.sleep(3.0)
        assert lab.which_router_is_master() == "router2"
        log = lab.router("router1").log()
        assert "Entering BACKUP STATE" in log and "received lower priority" not in log
    finally:
        resumed = ctl(lab, "router1", "resume", PUBLIC_INSTANCE)
    assert resumed.returncode == 0, resumed.stderr
    lab.wait_for_master(timeout_s=10.0, name="router1")


@pytest.mark.slow
def test_a_drain_outlives_a_failed_check_a_checker_crash_and_a_reload(lab: LvsLab) -> None:
    router = lab.router("router1")
    addresses = {rs.name: rs.address for rs in lab.real_servers}
    vs_key = f"[{VIP}]:tcp:80"
    original = router.conf_path.read_text()
    try:
        for rs in ("rs2", "rs3"):
            assert ctl(lab, "router1", "drain", VS, f"{addresses[rs]}:80").returncode == 0
        assert set(_answers(lab, 4)) == {"rs1"}

        lab.stop_real_server("rs2")  # its check fails, it leaves the table; back healthy, it is still drained
        wait_until(lambda: lab.alive_counts("router1")[vs_key] == 2, 15.0, what="rs2 seen down")
        lab.start_real_server("rs2")
        wait_until(lambda: lab.alive_counts("router1")[vs_key] == 3, 15.0, what="rs2 seen up")
        assert set(_answers(lab, 4)) == {"rs1"}

        checker_pid = int(router.pid_files[2].read_text())
        os.kill(checker_pid, signal.SIGKILL)  # the respawned checker gets the drains again from the parent
        wait_until(lambda: router.log().count("runtime API (replay)") >= 2, 20.0, what="the drains given again")
        assert set(_answers(lab, 4)) == {"rs1"}

        router.conf_path.write_text(render_router_conf(lab.kind, ROUTER_SPECS[0],
                                                       [addresses["rs1"], addresses["rs2"]]))
        _reload(lab, "router1")  # rs3 is gone from the config: its drain is dropped; rs2's is kept
        assert "real server 10.11.12.3:80 of TCP 203.0.113.10:80 is gone after the reload" in router.log()
        assert set(_answers(lab, 4)) == {"rs1"}
    finally:
        router.conf_path.write_text(original)
        _reload(lab, "router1")
        ctl(lab, "router1", "undrain", VS, f"{addresses['rs2']}:80")
    assert set(_answers(lab, 6)) == {"rs1", "rs2", "rs3"}
