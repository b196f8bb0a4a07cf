"""Files the daemon writes and the notify FIFOs it opens, attacked by a local user (issue 12 items 2, 3, 4, 6, 7).

An unprivileged user made for the test plants symlinks and files of their own
in a world-writable directory the dumps and pid files are configured into;
the real daemon runs in a namespace of the test's. Afterwards the targets of the
links are untouched and every path holds a root-owned file of ours with the
mode we chose (dumps and status 0600, pid files 0644 like keepalived's).

The kernel's fs.protected_symlinks / fs.protected_regular stop root from
following a user's link, or opening a user's file with O_CREAT, in a *sticky*
world-writable directory when they are on. The shared directory is therefore
tested both sticky (1777, like /tmp: there the old code followed the links when
the sysctls are off, and failed with EACCES when they are on, leaving no dump)
and non-sticky (0777, which those sysctls never cover: the old code followed the
links whatever the sysctls say). The sysctls are left as they are.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .daemon_process import DaemonProcess
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

PRECIOUS = "root's own file\n"
INTRUDER_DATA = "intruder data\n"
START_TIMEOUT_S = 15.0


@pytest.fixture
def intruder() -> Iterator[pwd.struct_passwd]:
    """An unprivileged user of the test's own, removed afterwards."""
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("needs useradd and runuser")
    name = f"pkf{uuid.uuid4().hex[:10]}"
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


def _as(user: pwd.struct_passwd, *argv: str) -> None:
    subprocess.run(["runuser", "-u", user.pw_name, "--", *argv], check=True, timeout=10)


def _shared_dir(mode: int) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pyka-shared-", dir="/tmp"))
    try:
        path.chmod(mode)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=[0o1777, 0o777], ids=["sticky", "not-sticky"])
def shared(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A world-writable directory like /tmp (or without its sticky bit)."""
    yield from _shared_dir(request.param)


@pytest.fixture
def sticky_shared() -> Iterator[Path]:
    yield from _shared_dir(0o1777)


def _settle(condition: Callable[[], bool], timeout_s: float) -> None:
    """Wait for `condition` without failing: the assertions after it say what is wrong."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _is_ours(path: Path, mode: int) -> str | None:
    """None if `path` is a regular root-owned file with exactly `mode`; else what it is."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return f"{path} is missing"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file (mode {st.st_mode:o})"
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) != mode:
        return f"{path} is uid {st.st_uid} mode {stat.S_IMODE(st.st_mode):04o}, not root {mode:04o}"
    return None


class Plant:
    """What the intruder left at a path: a symlink to a file of root's, or a 0666 file of theirs.

    The 0666 file is also kept as NAME.keep.
    """

    def __init__(self, user: pwd.struct_passwd, path: Path, kind: str, victims: Path) -> None:
        self.path, self.kind = path, kind
        self.victim = victims / path.name
        self.victim.write_text(PRECIOUS)
        self.keep = path.with_name(path.name + ".keep")
        if kind == "link":
            _as(user, "ln", "-s", str(self.victim), str(path))
        else:
            _as(user, "sh", "-c", f"printf '{INTRUDER_DATA.strip()}\\n' > {path} && chmod 0666 {path} "
                                  f"&& ln {path} {self.keep}")
        self.inode = path.lstat().st_ino

    def problems(self, mode: int) -> list[str]:
        """Empty if the plant was neither written through nor reused, and the path now holds our file."""
        found = [p for p in [_is_ours(self.path, mode)] if p]
        if self.victim.read_text() != PRECIOUS:
            found.append(f"{self.path}: the link's target {self.victim} was written through")
        if self.kind == "file" and (self.keep.read_text() != INTRUDER_DATA or self.path.lstat().st_ino == self.inode):
            found.append(f"{self.path}: the intruder's file was written into")
        return found


# the planted kinds differ between the two directories so that each file meets both a link and a foreign file
PLANTS = {0o1777: {"keepalived.stats": "link", "keepalived.json": "file", "keepalived.pid": "link", "vrrp.pid": "file"},
          0o777: {"keepalived.stats": "file", "keepalived.json": "link", "keepalived.pid": "file", "vrrp.pid": "link"}}


def test_vrrp_dumps_and_pid_files_replace_planted_links_and_files(
        router_netns: str, tmp_path: Path, intruder: pwd.struct_passwd, shared: Path) -> None:
    victims = tmp_path / "victims"
    victims.mkdir()
    plants = {name: Plant(intruder, shared / name, kind, victims)
              for name, kind in PLANTS[stat.S_IMODE(shared.stat().st_mode)].items()}
    stats, dump, pid_file, vrrp_pid = (shared / n for n in ("keepalived.stats", "keepalived.json",
                                                            "keepalived.pid", "vrrp.pid"))
    fifo = tmp_path / "vrrp.fifo"
    os.mkfifo(fifo, 0o600)
    fifo.chmod(0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    out = tmp_path / "notify.out"
    script = tmp_path / "notify.sh"
    script.write_text(f"#!/bin/sh\necho master > {out}\n")
    script.chmod(0o755)
    subprocess.run(["ip", "-n", router_netns, "addr", "add", "198.51.100.1/24", "dev", "eth0"], check=True)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"""global_defs {{
    router_id files
    vrrp_version 3
    stats_dump_file {stats}
    json_dump_file {dump}
    vrrp_notify_fifo {fifo}
    enable_script_security
    script_user root
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.1
    notify_master {script}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
}}
""")
    daemon = DaemonProcess(router_netns,
                           ["-P", "-n", "-l", "-G", "-f", str(conf), "-p", str(pid_file), "-r", str(vrrp_pid)],
                           tmp_path / "daemon.log")
    try:
        daemon.wait_log("Entering MASTER STATE", START_TIMEOUT_S)
        pid = daemon.pid
        # keepalived's (and our old) JSON temp name is predictable from the pid: plant a link there too
        json_temp = Plant(intruder, Path(f"{dump}.tmp{pid}"), "link", victims)
        os.kill(pid, signal.SIGUSR2)
        os.kill(pid, signal.SIGRTMIN + 2)
        _settle(lambda: not plants["keepalived.stats"].problems(0o600)
                and not plants["keepalived.json"].problems(0o600), 5.0)
        _settle(lambda: out.exists(), 5.0)

        modes = {"keepalived.stats": 0o600, "keepalived.json": 0o600, "keepalived.pid": 0o644, "vrrp.pid": 0o644}
        assert [p for name, plant in plants.items() for p in plant.problems(modes[name])] == []
        assert json_temp.victim.read_text() == PRECIOUS, "the link at the predictable temp name was followed"
        assert json_temp.path.is_symlink(), "the predictable temp name was used"
        assert [i["data"]["iname"] for i in json.loads(dump.read_text())] == ["VI_1"]
        assert "VRRP Instance: VI_1" in stats.read_text()
        assert pid_file.read_text() == vrrp_pid.read_text() == f"{pid}\n"
        # a notify script's file gets the daemon's umask, keepalived's 0177
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        lines: list[str] = []

        def master_line() -> bool:
            lines.extend(_read_lines(reader))
            return 'INSTANCE "VI_1" MASTER 150' in lines

        _settle(master_line, 3.0)
        assert 'INSTANCE "VI_1" MASTER 150' in lines
        assert "Traceback" not in daemon.log()
        daemon.stop()
        assert not pid_file.exists() and not vrrp_pid.exists(), "pid files left behind"
    finally:
        daemon.stop()
        os.close(reader)
        print(daemon.log()[-4000:])


def test_checker_refuses_foreign_fifos_and_writes_a_private_status_file(
        router_netns: str, tmp_path: Path, intruder: pwd.struct_passwd, sticky_shared: Path) -> None:
    theirs = sticky_shared / "notify.fifo"
    _as(intruder, "mkfifo", "-m", "0600", str(theirs))
    open_to_all = tmp_path / "lvs.fifo"
    os.mkfifo(open_to_all)
    open_to_all.chmod(0o666)
    readers = [os.open(p, os.O_RDONLY | os.O_NONBLOCK) for p in (theirs, open_to_all)]
    events = tmp_path / "events"
    script = tmp_path / "up.sh"
    script.write_text(f"#!/bin/sh\necho up > {events}\n")
    script.chmod(0o755)
    status = tmp_path / "run" / "pykeepalived" / "checker.json"
    pid_file, check_pid = tmp_path / "keepalived.pid", tmp_path / "checkers.pid"
    conf = tmp_path / "keepalived.conf"
    conf.write_text(f"""global_defs {{
    router_id files
    notify_fifo {theirs}
    lvs_notify_fifo {open_to_all}
    umask IWGRP|IWOTH
    enable_script_security
    script_user root
}}
virtual_server 192.0.2.200 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.10 80 {{
        alpha
        notify_up {script}
        MISC_CHECK {{
            misc_path /bin/true
        }}
    }}
}}
""")
    daemon = DaemonProcess(router_netns,
                           ["-C", "-n", "-l", "-G", "-f", str(conf), "-p", str(pid_file), "-c", str(check_pid),
                            "--dataplane", "none", "--status-file", str(status)], tmp_path / "daemon.log")
    try:
        _settle(lambda: events.exists() and status.exists(), START_TIMEOUT_S)
        assert events.exists(), daemon.log()
        log = daemon.log()
        assert f"notify_fifo {theirs}: is owned by uid {intruder.pw_uid}, not root; refusing it" in log
        assert f"notify_fifo {open_to_all}: is writable by others (mode 0666); refusing it" in log
        # RS ... UP went to neither FIFO
        assert [_read_lines(fd) for fd in readers] == [[], []]
        assert _is_ours(status, 0o600) is None, _is_ours(status, 0o600)
        assert stat.S_IMODE(status.parent.stat().st_mode) == 0o755
        assert json.loads(status.read_text())["pid"] == daemon.pid
        for path in (pid_file, check_pid):
            assert _is_ours(path, 0o644) is None, _is_ours(path, 0o644)
        # global_defs umask IWGRP|IWOTH (0022) replaces keepalived's 0177 for the scripts
        assert stat.S_IMODE(events.stat().st_mode) == 0o644
        assert "Traceback" not in log
    finally:
        daemon.stop()
        for fd in readers:
            os.close(fd)
        print(daemon.log()[-4000:])


def _read_lines(fd: int) -> list[str]:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return []
    return [line for line in data.decode().split("\n") if line]
