"""The parent's side of a reload and the systemd notify protocol, with the real daemon (parent + children).

One router namespace runs pykeepalived (VRRP child and checker child, data
plane `none`) with $NOTIFY_SOCKET pointing at a datagram socket this test
binds, as systemd does for a Type=notify unit. The tests check what the
parent says to systemd (READY=1 once both children are up, RELOADING=1 with
MONOTONIC_USEC= and READY=1 around a reload, STOPPING=1, WATCHDOG=1 only while
every child's loop turns) and what a reload does at the parent's level:
`pykeepalived reload` exits 1 with FILE:LINE lines for a broken file and the
children are left alone; a good file is checked, its snapshot swapped in at
the children's fd number (each child reports the digest it read) and the
children's own outcomes are reported truthfully.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.topology import Host

from .test_process_lifecycle import processes_naming
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP = "192.0.2.210"


def _conf(priority: int = 100, broken: bool = False) -> str:
    bad = "    priority NOT_A_NUMBER\n" if broken else ""
    return f"""global_defs {{
    router_id parent_reload
}}

vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 78
    priority {priority}
{bad}    advert_int 1
    virtual_ipaddress {{
        {VIP}/32 dev eth0
    }}
}}

virtual_server 192.0.2.1 80 {{
    delay_loop 2
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.2 80 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


class NotifyListener:
    """The systemd side of sd_notify: a bound datagram socket, every message kept with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def poll(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append((time.monotonic(), fields))
            self.sock.settimeout(0.0)  # drain what is queued, then back to waiting
            continue

    def wait_for(self, pred: Callable[[dict[str, str]], bool], timeout_s: float, after: int = 0) -> int:
        """The index of the first message from index `after` on that matches; AssertionError on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.sock.settimeout(0.1)
            self.poll()
            for i, (_, msg) in enumerate(self.messages[after:], after):
                if pred(msg):
                    return i
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching notify message in {timeout_s} s; got {self.messages[after:]}")

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


class Daemon:
    def __init__(self, host: Host, directory: Path) -> None:
        self.host = host
        self.dir = directory
        self.conf = directory / "keepalived.conf"
        self.log_path = directory / "daemon.log"
        self.pid_file, self.vrrp_pid_file, self.checkers_pid_file = (
            directory / f"{n}.pid" for n in ("keepalived", "vrrp", "checkers"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-D", "-f", str(self.conf),
                "-p", str(self.pid_file), "-r", str(self.vrrp_pid_file), "-c", str(self.checkers_pid_file),
                "--status-file", str(self.dir / "status.json"), "--dataplane", "none"]
        with open(self.log_path, "ab") as log:
            self.proc = self.host.netns.popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child_pid(self, pid_file: Path) -> int | None:
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def reload(self, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pykeepalived", "reload", "-p", str(self.pid_file),
                               "--timeout", str(timeout_s)], capture_output=True, text=True, timeout=timeout_s + 30)

    def result(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.dir / "keepalived.reload.json").read_text())
        return data

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        for pid in processes_naming(str(self.conf)):
            try:
                os.kill(pid, signal.SIGCONT)
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
def router() -> Iterator[Host]:
    lan = Lan(unique_prefix("prl"))
    try:
        yield lan.add_host("r1", 11)
    finally:
        lan.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def daemon(router: Host, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(router, tmp_path)
    d.conf.write_text(_conf())
    try:
        yield d
    finally:
        print(f"===== daemon log =====\n{d.log()[-8000:]}")
        d.stop()


def _child_outcomes_in_log(log: str, since: int) -> dict[str, str]:
    """What each child itself logged about its last reload (daemon/child_reload.py's lines)."""
    text = log[since:]
    found = {}
    for name, what in (("VRRP", "VRRP"), ("Healthcheck", "checker")):
        if f"{what} reload refused" in text:
            found[name] = "refused"
        elif re.search(rf"{what} reload finished", text):
            found[name] = "reloaded"
    return found


def test_notify_ready_reload_broken_reload_and_stop(daemon: Daemon, router: Host, notify: NotifyListener) -> None:
    daemon.start({"NOTIFY_SOCKET": str(notify.path)})
    ready = notify.wait_for(lambda m: m.get("READY") == "1", 40.0)
    assert "running" in notify.messages[ready][1].get("STATUS", ""), notify.messages[ready]
    wait_until(lambda: any(str(a) == VIP for a in router.addresses()), 20.0, what="the VIP on the master")
    vrrp, checker = daemon.child_pid(daemon.vrrp_pid_file), daemon.child_pid(daemon.checkers_pid_file)
    assert vrrp and checker

    # a good file: checked, swapped in, forwarded, each child's report collected and told truthfully
    daemon.conf.write_text(_conf(priority=120))
    mark = len(daemon.log())
    done = daemon.reload()
    reloading = notify.wait_for(lambda m: m.get("RELOADING") == "1", 10.0, after=ready + 1)
    assert int(notify.messages[reloading][1]["MONOTONIC_USEC"]) > 0
    notify.wait_for(lambda m: m.get("READY") == "1", 10.0, after=reloading + 1)
    result = daemon.result()
    children = result["children"]
    assert isinstance(children, dict) and set(children) == {"VRRP", "Healthcheck"}, result
    digests = result["child_digests"]
    assert isinstance(digests, dict) and result["offered"], result
    # each child read the snapshot the parent swapped in at its --config-fd number
    assert digests == {"VRRP": result["offered"], "Healthcheck": result["offered"]}, result
    # the parent reports what each child itself said (NEEDS THE CHILDREN'S RELOAD for "reloaded": with the
    # VrrpService/CheckService.reload stubs both refuse, and then the outcome must be a failure, exit 1)
    wait_until(lambda: len(_child_outcomes_in_log(daemon.log(), mark)) == 2, 10.0, what="both children's log lines")
    assert children == _child_outcomes_in_log(daemon.log(), mark), (children, done.stdout, done.stderr)
    all_took = set(children.values()) == {"reloaded"}
    assert done.returncode == (0 if all_took else 1), (done.returncode, done.stdout, done.stderr)
    assert result["ok"] is all_took
    assert (result["digest"] == result["offered"]) is all_took  # refused everywhere: the old snapshot is put back
    assert daemon.child_pid(daemon.vrrp_pid_file) == vrrp and daemon.child_pid(daemon.checkers_pid_file) == checker

    # a broken file: refused by the parent, FILE:LINE lines, children untouched (same pids, no SIGHUP, same VIP)
    daemon.conf.write_text(_conf(priority=130, broken=True))
    before_addresses = {str(a) for a in router.addresses()}
    hups = daemon.log().count("Reloading VRRP configuration")
    n = len(notify.messages)
    bad = daemon.reload()
    assert bad.returncode == 1, (bad.returncode, bad.stdout, bad.stderr)
    lines = [line for line in bad.stderr.splitlines() if line.startswith(f"{daemon.conf}:")]
    assert lines and all(re.match(rf"{re.escape(str(daemon.conf))}:\d+: ", line) for line in lines), bad.stderr
    assert any("NOT_A_NUMBER" in line or "priority" in line for line in lines), bad.stderr
    assert f"{daemon.conf}:" in daemon.log()[mark:]  # the parent logged them too
    time.sleep(1.0)
    assert daemon.log().count("Reloading VRRP configuration") == hups  # no child was asked
    assert daemon.child_pid(daemon.vrrp_pid_file) == vrrp and daemon.child_pid(daemon.checkers_pid_file) == checker
    assert {str(a) for a in router.addresses()} == before_addresses
    assert daemon.result()["ok"] is False and daemon.result()["offered"] == ""
    after = notify.wait_for(lambda m: m.get("RELOADING") == "1", 10.0, after=n)
    status = notify.messages[notify.wait_for(lambda m: m.get("READY") == "1", 10.0, after=after)][1]
    assert "FAILED" in status.get("STATUS", ""), status

    n = len(notify.messages)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    notify.wait_for(lambda m: m.get("STOPPING") == "1", 20.0, after=n)
    assert daemon.proc.wait(20) == 0
    assert not (daemon.dir / "keepalived.reload.json").exists()


def test_reload_command_without_a_daemon(tmp_path: Path) -> None:
    """No pid file, or one naming a process that is not pykeepalived: exit 7 with a clear line."""
    pid_file = tmp_path / "keepalived.pid"
    run = [sys.executable, "-m", "pykeepalived", "reload", "-p", str(pid_file), "--timeout", "2"]
    got = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert got.returncode == 7 and "no pid file" in got.stderr, got
    pid_file.write_text(f"{os.getpid()}\n")  # pytest: alive, not a pykeepalived daemon
    got = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert got.returncode == 7 and "not a pykeepalived daemon" in got.stderr, got


def test_watchdog_keepalives_stop_while_a_child_is_stopped(daemon: Daemon, notify: NotifyListener) -> None:
    daemon.start({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"})
    notify.wait_for(lambda m: m.get("READY") == "1", 40.0)
    first = notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 10.0)
    notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 5.0, after=first + 1)  # keeps coming
    vrrp = daemon.child_pid(daemon.vrrp_pid_file)
    assert vrrp
    os.kill(vrrp, signal.SIGSTOP)
    try:
        time.sleep(4.5)  # stale after 3 s (3 missed alive reports); keepalives every 1 s
        notify.sock.settimeout(0.1)
        notify.poll()
        stopped_at = time.monotonic()
        time.sleep(4.0)
        notify.poll()
        late = [m for t, m in notify.messages if t > stopped_at and m.get("WATCHDOG") == "1"]
        assert late == [], late
        assert "withholding the systemd watchdog" in daemon.log()
    finally:
        os.kill(vrrp, signal.SIGCONT)
    n = len(notify.messages)
    notify.wait_for(lambda m: m.get("WATCHDOG") == "1", 10.0, after=n)  # back once the child runs again

    # a parent that does not answer: `pykeepalived reload` gives up with its own status, not a hang
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        late = daemon.reload(timeout_s=2.0)
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert late.returncode == 124 and "no outcome" in late.stderr, late


def _vrrp_only(extra_global: str = "") -> str:
    """The VRRP instance alone (the checker child is not needed), with `extra_global` in global_defs."""
    text = _conf()
    text = text.replace("    router_id parent_reload\n", f"    router_id parent_reload\n{extra_global}")
    return text[:text.index("virtual_server")]


def _alive(pid: int | None) -> bool:
    return pid is not None and Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_reload_starts_and_stops_children_and_acts_on_the_reload_keywords(daemon: Daemon,
                                                                          notify: NotifyListener) -> None:
    check_log, marker, timer = (daemon.dir / n for n in ("check.log", "conf.reload", "reload.time"))
    keywords = (f"    reload_check_config {check_log}\n    reload_file {marker}\n"
                f"    reload_time_file {timer}\n")
    daemon.conf.write_text(_vrrp_only(keywords))
    daemon.start({"NOTIFY_SOCKET": str(notify.path)})
    notify.wait_for(lambda m: m.get("READY") == "1", 40.0)
    assert daemon.child_pid(daemon.checkers_pid_file) is None
    vrrp = daemon.child_pid(daemon.vrrp_pid_file)

    # a virtual_server appears: the checker child starts (keepalived's parent does the same)
    daemon.conf.write_text(_vrrp_only(keywords) + _conf()[_conf().index("virtual_server"):])
    marker.write_text("updating\n")  # keepalived: truncated when the reload starts reading, removed after
    done = daemon.reload()
    result = daemon.result()
    assert result["children"] == {"VRRP": result["children"]["VRRP"], "Healthcheck": "started"}, result  # type: ignore[index]
    wait_until(lambda: _alive(daemon.child_pid(daemon.checkers_pid_file)), 20.0, what="the checker child")
    checker = daemon.child_pid(daemon.checkers_pid_file)
    assert not marker.exists()
    assert check_log.read_text().strip().endswith("configuration OK"), check_log.read_text()
    assert done.returncode == (0 if result["ok"] else 1), (done, result)
    assert daemon.child_pid(daemon.vrrp_pid_file) == vrrp

    # it goes again: the checker child is stopped for good (not respawned)
    daemon.conf.write_text(_vrrp_only(keywords))
    daemon.reload()
    assert daemon.result()["children"]["Healthcheck"] == "stopped", daemon.result()  # type: ignore[index]
    wait_until(lambda: not _alive(checker), 15.0, what="the checker child gone")
    time.sleep(2.0)
    assert daemon.child_pid(daemon.checkers_pid_file) is None and "Starting Healthcheck child" not in \
        daemon.log()[daemon.log().rindex("does not need it"):]

    # a broken file: its errors go to reload_check_config's file too
    daemon.conf.write_text(_vrrp_only(keywords).replace("priority 100", "priority NOT_A_NUMBER"))
    assert daemon.reload().returncode == 1
    assert "NOT_A_NUMBER" in check_log.read_text() and "1 configuration error(s)" in check_log.read_text()
    generation = daemon.result()["generation"]

    # what keepalived refuses to change live (here the instance name): refused, said, nothing else done
    daemon.conf.write_text("instance other\n" + _vrrp_only(keywords))
    refused = daemon.reload()
    assert refused.returncode == 1 and "Cannot change instance name at a reload" in refused.stderr, refused
    assert "Cannot change instance name at a reload" in daemon.log()
    assert daemon.child_pid(daemon.vrrp_pid_file) == vrrp
    generation = daemon.result()["generation"]

    # reload_time_file: a reload at the time written in it, and the file removed after
    daemon.conf.write_text(_vrrp_only(keywords))
    timer.write_text(time.strftime("%H:%M:%S", time.localtime(time.time() + 3)) + "\n")
    wait_until(lambda: daemon.result()["generation"] == generation + 1, 15.0,  # type: ignore[operator]
               what=f"the timed reload:\n{daemon.log()[-2000:]}")
    assert not timer.exists()
    assert "Scheduling reload for" in daemon.log()
