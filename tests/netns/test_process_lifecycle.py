"""The daemon's processes across crashes: children die with the parent, respawns keep the config, leftovers go.

One router namespace on a LAN runs the real daemon (parent, VRRP child,
checker child with two worker processes, data plane `none`); the tests kill
processes the way an operator or the OOM killer would and look at /proc, the
pid files, the interface's addresses and the log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP = "192.0.2.200"
EXCLUDED_VIP = "192.0.2.201"
ROUTE_DST = "198.51.100.0/24"
RULE_FROM = "192.0.2.202"


def _conf(instance: str = "VI_1", workers: bool = True) -> str:
    vs = """
virtual_server 192.0.2.1 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.1 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 192.0.2.2 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
""" if workers else ""
    return f"""
vrrp_instance {instance} {{
    state BACKUP
    interface eth0
    virtual_router_id 77
    priority 100
    advert_int 1
    virtual_ipaddress {{
        {VIP}/32 dev eth0
    }}
    virtual_ipaddress_excluded {{
        {EXCLUDED_VIP}/32 dev eth0
    }}
    virtual_routes {{
        {ROUTE_DST} via 192.0.2.254 dev eth0
    }}
    virtual_rules {{
        from {RULE_FROM} table 100 preference 1000
    }}
}}
{vs}"""


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_naming(marker: str) -> list[int]:
    """Live processes whose command line names `marker` (a config path): the daemon and all it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and f" {marker} " in f" {cmdline(int(entry.name))} ":
            try:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                found.append(int(entry.name))
    return found


class Daemon:
    """pykeepalived in the router namespace, with its files in `dir`."""

    def __init__(self, host: Host, directory: Path) -> None:
        self.host = host
        self.dir = directory
        self.conf = directory / "keepalived.conf"
        self.log_path = directory / "daemon.log"
        self.pid_file, self.vrrp_pid_file, self.checkers_pid_file = (
            directory / f"{n}.pid" for n in ("keepalived", "vrrp", "checkers"))
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-D", "-f", str(self.conf),
                "-p", str(self.pid_file), "-r", str(self.vrrp_pid_file), "-c", str(self.checkers_pid_file),
                "--status-file", str(self.dir / "status.json"), "--dataplane", "none", "--checker-workers", "2"]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = self.host.netns.popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child_pid(self, pid_file: Path) -> int | None:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if cmdline(pid) else None

    def workers(self) -> list[int]:
        return [p for p in processes_naming(str(self.conf)) if " --checker-worker " in cmdline(p)]

    def wait_entered(self, count: int, timeout_s: float = 15.0) -> None:
        wait_until(lambda: self.log().count("(VI_1) Entering BACKUP STATE") >= count, timeout_s,
                   what=f"VRRP entering BACKUP {count} time(s):\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for pid in processes_naming(str(self.conf)):  # whatever survived (today's orphans included)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(5)


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Host]:
    lan = Lan(unique_prefix("plc"))
    try:
        yield lan.add_host("r1", 11)
    finally:
        lan.close()


@pytest.fixture
def daemon(router: Host, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(router, tmp_path)
    d.conf.write_text(_conf())
    try:
        yield d
    finally:
        print(f"===== daemon log =====\n{d.log()[-6000:]}")
        d.stop()


def _addresses(host: Host) -> set[str]:
    return {str(a) for a in host.addresses()}


def test_respawned_children_run_the_config_the_daemon_started_with(daemon: Daemon) -> None:
    """Issue 12 item 11: after the file is broken, killed children come back with the config we started on."""
    daemon.start()
    daemon.wait_entered(1)
    wait_until(lambda: len(daemon.workers()) == 2, 15.0, what="two checker workers")
    checker = daemon.child_pid(daemon.checkers_pid_file)
    vrrp = daemon.child_pid(daemon.vrrp_pid_file)
    assert checker is not None and vrrp is not None

    daemon.conf.write_text("vrrp_instance VI_1 {\n    no_such_keyword\n    state NONSENSE\n")  # broken
    os.kill(vrrp, signal.SIGKILL)
    os.kill(checker, signal.SIGKILL)
    daemon.wait_entered(2)
    wait_until(lambda: (c := daemon.child_pid(daemon.checkers_pid_file)) is not None and c != checker
               and len(daemon.workers()) == 2, 15.0, what=f"a new checker and its workers:\n{daemon.log()[-3000:]}")
    text = daemon.log()
    assert "configuration error" not in text and "no_such_keyword" not in text
    assert daemon.proc is not None and daemon.proc.poll() is None
    for pid in (daemon.child_pid(daemon.checkers_pid_file), *daemon.workers()):
        assert pid is not None and "--config-fd" in cmdline(pid), pid and cmdline(pid)


def test_children_and_workers_die_with_the_parent(daemon: Daemon, router: Host) -> None:
    """Issue 12 item 10: SIGKILL of the parent leaves no VRRP child, checker or worker running, nor the VIPs."""
    daemon.conf.write_text(_conf().replace("state BACKUP", "state MASTER").replace("priority 100", "priority 200"))
    daemon.start()
    wait_until(lambda: VIP in _addresses(router), 15.0, what=f"the VIP:\n{daemon.log()[-3000:]}")
    wait_until(lambda: len(daemon.workers()) == 2, 15.0, what="two checker workers")
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.proc.wait(5)
    wait_until(lambda: not processes_naming(str(daemon.conf)), 5.0,
               what=f"no process left: {[cmdline(p) for p in processes_naming(str(daemon.conf))]}")
    # the VRRP child stopped cleanly (priority 0 advert, VIPs removed) rather than being killed
    assert VIP not in _addresses(router)
    assert "Stopping" in daemon.log()


def _orphan(daemon: Daemon) -> subprocess.Popen[bytes]:
    """A VRRP child as an older pykeepalived (or one whose parent was killed) would leave it: no parent of ours."""
    argv = [*daemon.argv(), "--vrrp", "--child"]
    with open(daemon.dir / "orphan.log", "ab") as log:
        return daemon.host.netns.popen(argv, stdout=log, stderr=subprocess.STDOUT)


def test_restarted_daemon_takes_over_from_an_orphaned_child(daemon: Daemon) -> None:
    """Issue 12 item 10: a live orphan holding the VRRP pid file is stopped and replaced, never respawned against."""
    orphan = _orphan(daemon)
    try:
        wait_until(lambda: daemon.child_pid(daemon.vrrp_pid_file) == orphan.pid, 15.0, what="the orphan's pid file")
        daemon.start()
        orphan.wait(15)
        daemon.wait_entered(1)
        vrrp = daemon.child_pid(daemon.vrrp_pid_file)
        assert vrrp is not None and vrrp != orphan.pid
        time.sleep(1.0)
        text = daemon.log()
        assert "already running" not in text
        assert "holds" in text and "to take over" in text
        assert daemon.proc is not None and daemon.proc.poll() is None
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(5)


def test_a_stale_pid_file_naming_a_stranger_is_replaced_not_respawned_against(daemon: Daemon) -> None:
    """Issue 12 item 10: a recycled pid in the VRRP pid file: no endless "already running", the stranger untouched."""
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        daemon.vrrp_pid_file.write_text(f"{stranger.pid}\n")
        daemon.start()
        daemon.wait_entered(1)
        time.sleep(1.0)
        text = daemon.log()
        assert "already running" not in text
        assert f"names pid {stranger.pid}" in text and "stale pid file" in text
        assert text.count("Starting VRRP child process, pid=") <= 2  # the parent's line and the child's own
        assert daemon.child_pid(daemon.vrrp_pid_file) not in (None, stranger.pid)
        assert stranger.poll() is None  # never signalled
    finally:
        stranger.kill()
        stranger.wait(5)


def test_vrrp_start_removes_leftover_vips_and_routes(daemon: Daemon, router: Host) -> None:
    """Issue 12 item 8: VIPs, excluded VIPs and tagged routes a killed VRRP process left are gone at start."""
    daemon.conf.write_text(_conf(workers=False))
    ns = router.netns
    ns.ip("addr", "add", f"{VIP}/32", "dev", "eth0")
    ns.ip("addr", "add", f"{EXCLUDED_VIP}/32", "dev", "eth0")
    ns.ip("route", "add", ROUTE_DST, "via", "192.0.2.254", "dev", "eth0", "proto", "18")
    ns.ip("rule", "add", "from", RULE_FROM, "table", "100", "preference", "1000", "proto", "18")
    daemon.start()
    daemon.wait_entered(1)
    assert VIP not in _addresses(router) and EXCLUDED_VIP not in _addresses(router)
    assert ROUTE_DST.split("/")[0] not in ns.ip("route", "show")
    assert RULE_FROM not in ns.ip("rule", "show")
    text = daemon.log()
    assert f"(VI_1) removed leftover address {VIP}" in text
    assert f"(VI_1) removed leftover address {EXCLUDED_VIP}" in text
    assert "(VI_1) removed leftover virtual route" in text
    assert "(VI_1) removed leftover virtual rule" in text
    # and a clean stop of the backup leaves none of them either
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(15)
    assert VIP not in _addresses(router) and EXCLUDED_VIP not in _addresses(router)


def test_a_pid_file_held_by_another_daemons_child_is_refused(tmp_path: Path) -> None:
    """Issue 12 item 10: a live pykeepalived child that another live parent keeps is never signalled; we give up."""
    import asyncio

    from pykeepalived.daemon.supervisor import Child, SupervisorFailed, hand_over

    fake = tmp_path / "pykeepalived"  # a parent that starts a "--child" holding the pid file, as another daemon would
    fake.write_text('#!/bin/sh\nif [ "$1" = parent ]; then "$0" --child -r "$2" & echo $! > "$2"; wait; '
                    'else sleep 60 & wait; fi\n')
    fake.chmod(0o755)
    pid_file = tmp_path / "vrrp.pid"
    other = subprocess.Popen(["/bin/sh", str(fake), "parent", str(pid_file)], start_new_session=True)
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit(), 5.0, what="the pid file")
        holder = int(pid_file.read_text())
        wait_until(lambda: "--child" in cmdline(holder), 5.0, what="the other daemon's child")
        with pytest.raises(SupervisorFailed, match=f"names pid {holder}.*not an orphaned VRRP child of ours"):
            asyncio.run(hand_over(Child("VRRP", [], str(pid_file))))
        assert cmdline(holder)  # still running: never signalled
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait(5)


def test_signals_forwarded_while_a_child_starts_do_not_kill_it(daemon: Daemon) -> None:
    """A respawned child gets SIGUSR1/SIGHUP forwarded before its handlers exist: held, not fatal.

    `pykeepalived status` sends SIGUSR1 at any time; with the respawn at once, a
    new child is often still starting when one arrives, and SIGUSR1's default
    action would kill it (seen under load in test_check_service.py).
    """
    daemon.start()
    daemon.wait_entered(1)
    wait_until(lambda: daemon.child_pid(daemon.checkers_pid_file) is not None, 15.0, what="the checker")
    checker = daemon.child_pid(daemon.checkers_pid_file)
    vrrp = daemon.child_pid(daemon.vrrp_pid_file)
    assert checker is not None and vrrp is not None and daemon.proc is not None
    offset = len(daemon.log())
    os.kill(checker, signal.SIGKILL)
    os.kill(vrrp, signal.SIGKILL)
    deadline = time.monotonic() + 3.0  # the respawned children start, under a hail of forwarded signals
    while time.monotonic() < deadline:
        for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR2, signal.SIGRTMIN + 2):
            os.kill(daemon.proc.pid, sig)
        time.sleep(0.02)
    wait_until(lambda: daemon.log().count("(VI_1) Entering BACKUP STATE") >= 2, 15.0, what="the VRRP child back")
    time.sleep(1.0)
    after = daemon.log()[offset:]
    assert "killed by SIG" not in after.replace("(killed by SIGKILL)", ""), after[-3000:]
    assert after.count("(killed by SIGKILL)") == 2, after[-3000:]
    assert daemon.child_pid(daemon.checkers_pid_file) not in (None, checker)
