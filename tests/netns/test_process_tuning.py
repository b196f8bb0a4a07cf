"""global_defs process settings, read back from /proc of the running daemon's processes.

Names (process_name, vrrp_process_name, checker_process_name: /proc/PID/comm,
what `ps -e` shows), SCHED_RR with its priority and RLIMIT_RTTIME, nice,
mlockall (VmLck) and CPU affinity, on every thread of the process. The VRRP
side is compared with keepalived 2.2.7 run on the same file (its checker
needs IPVS, which this kernel lacks).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpSettings, wait_until
from pykeepalived.lab.checkers import tcp_listener
from pykeepalived.lab.peers import KeepalivedPeer
from pykeepalived.lab.topology import Host

from .router_fixtures import CHECKED_SERVER, lone_router, start_logged, stop_group
from .vrrp_helpers import Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root]

VRRP_CONF = """
global_defs {{
    router_id r1
    process_name kad_parent
    vrrp_process_name kad_vrrp
    vrrp_rt_priority 10
    vrrp_rlimit_rttime 400000
    vrrp_no_swap
    vrrp_cpu_affinity {cpu}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 81
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.181/24
    }}
}}
"""


@dataclass(frozen=True)
class ProcView:
    comm: str
    policy: int
    rt_priority: int
    nice: int
    locked_kb: int
    cpus: set[str]  # Cpus_allowed_list of every thread
    rttime: tuple[str, str]  # soft, hard from /proc/PID/limits


def read_proc(pid: int) -> ProcView:
    base = Path(f"/proc/{pid}")
    stat = (base / "stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # field 3 onwards
    status = (base / "status").read_text()
    locked = int(re.search(r"^VmLck:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    cpus = set()
    for task in (base / "task").iterdir():
        match = re.search(r"^Cpus_allowed_list:\s+(\S+)", (task / "status").read_text(), re.M)
        assert match
        cpus.add(match.group(1))
    limits = re.search(r"^Max realtime timeout\s+(\S+)\s+(\S+)", (base / "limits").read_text(), re.M)
    assert limits
    return ProcView(comm=(base / "comm").read_text().strip(), policy=int(fields[38]), rt_priority=int(fields[37]),
                    nice=int(fields[16]), locked_kb=locked, cpus=cpus, rttime=(limits.group(1), limits.group(2)))


@pytest.fixture
def host() -> Iterator[Host]:
    with lone_router("tun") as host:
        yield host


def _pid(path: Path, log: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", 15, what=f"{path}:\n{log.read_text()[-3000:]}")
    return int(path.read_text())


def _vrrp_views(host: Host, tmp_path: Path, kind: str) -> tuple[ProcView, ProcView]:
    """(parent, VRRP process) of `kind` run on VRRP_CONF."""
    work = tmp_path / kind
    work.mkdir()
    conf = work / "keepalived.conf"
    conf.write_text(VRRP_CONF.format(cpu=1))
    log = work / "log"
    flags = ["-n", "-l", "-D", "-G", "-f", str(conf), "-p", str(work / "p.pid"), "-r", str(work / "r.pid"),
             "-c", str(work / "c.pid")]
    argv = ["keepalived", *flags] if kind == "ka" else [sys.executable, "-m", "pykeepalived", *flags]
    proc = start_logged(host, argv, log)
    try:
        parent, vrrp = _pid(work / "p.pid", log), _pid(work / "r.pid", log)
        wait_until(lambda: "Entering BACKUP STATE" in log.read_text(), 15, what=f"BACKUP:\n{log.read_text()}")
        return read_proc(parent), read_proc(vrrp)
    finally:
        stop_group(proc)


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_vrrp_process_settings(host: Host, tmp_path: Path, kind: str) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two CPUs")
    parent, vrrp = _vrrp_views(host, tmp_path, kind)
    assert parent.comm == "kad_parent"
    assert vrrp.comm == "kad_vrrp"
    assert (vrrp.policy, vrrp.rt_priority) == (2, 10)  # SCHED_RR
    assert vrrp.rttime == ("200000", "400000")  # soft limit: half, keepalived's SIGXCPU warning
    assert vrrp.locked_kb > 0
    assert vrrp.cpus == {"1"}
    assert parent.policy == 0 and parent.cpus != {"1"}  # the parent keeps its own


CHECK_CONF = """
global_defs {{
    router_id lb
    checker_process_name kad_check
    checker_priority 7
    checker_no_swap
    checker_cpu_affinity 0
}}
""" + CHECKED_SERVER


def test_checker_process_settings(host: Host, tmp_path: Path) -> None:
    rs = str(host.ipv4.ip)
    listener = tcp_listener(host, rs, 8080)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CHECK_CONF.format(rs=rs))
    log = tmp_path / "log"
    proc = start_logged(host, [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-f", str(conf), "--dataplane",
                               "none", "--status-file", str(tmp_path / "status.json"), "-p", str(tmp_path / "p.pid"),
                               "-c", str(tmp_path / "c.pid"), "-r", str(tmp_path / "r.pid")], log)
    try:
        checker = _pid(tmp_path / "c.pid", log)
        wait_until(lambda: (tmp_path / "status.json").exists(), 15, what=f"status:\n{log.read_text()[-3000:]}")
        view = read_proc(checker)
        assert view.comm == "kad_check"
        assert (view.policy, view.nice) == (0, 7)
        assert view.locked_kb > 0
        assert view.cpus == {"0"}
    finally:
        stop_group(proc)
        listener.kill()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "tns")


@pytest.mark.parametrize("kind", ["py", pytest.param("ka", marks=pytest.mark.keepalived)])
def test_scripts_run_at_the_nice_value_the_daemon_started_with(lab: Lab, tmp_path: Path, kind: str) -> None:
    """vrrp_priority is the VRRP process's own: keepalived resets it before running a notify script."""
    out = tmp_path / f"{kind}.nice"
    script = tmp_path / f"{kind}-notify.sh"
    script.write_text(f"#!/bin/sh\ncut -d' ' -f19 /proc/$$/stat > {out}\n")
    script.chmod(0o755)
    settings = [VrrpSettings(vrid=83, priority=100, vips=[ip_interface("192.0.2.183/24")],
                             extra=[f"notify_backup {script}"])]
    peer = lab.peer(kind, lab.r1, settings, extra_global="enable_script_security\nscript_user root\nvrrp_priority 10")
    peer.start()
    wait_until(lambda: out.exists() and out.read_text().strip() != "", 5, what=f"the script's output:\n{peer.log()}")
    assert out.read_text().strip() == "0"
    assert isinstance(peer, KeepalivedPeer)
    assert read_proc(int(peer.vrrp_pid_path.read_text())).nice == 10
