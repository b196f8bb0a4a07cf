"""enable_script_security enforced as keepalived 2.2.7 does, by the real daemon in a namespace.

Every script would leave a marker file if it ran. Unsafe track scripts (world-
writable, owned by an unprivileged user the test creates, under a world-
writable directory) make the daemon refuse to start, naming the script and
why; an unsafe notify or MISC_CHECK script leaves the daemon running but never
runs; safe scripts run. `-t` gives keepalived 2.2.7's verdict on the same files.

Scripts live in a directory the test makes (root's, 0755) under /var/tmp,
which is root's and sticky: keepalived accepts a sticky root directory on the
path, as it accepts /tmp.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.oracle import KEEPALIVED, keepalived_verdict, our_verdict

from .daemon_process import DaemonProcess
from .vrrp_helpers import needs_root

pytestmark = [
    pytest.mark.netns,
    needs_root,
    pytest.mark.skipif(shutil.which("useradd") is None, reason="needs useradd"),
]

SECURE = "  enable_script_security\n  script_user root\n"


@dataclass
class Box:
    netns: str
    root: Path          # root's 0755 directory for configs and safe scripts
    markers: Path       # where scripts leave markers (sticky, anyone may write)
    user: str           # an unprivileged user made for the test

    def script(self, name: str, mode: int = 0o755, where: Path | None = None, owner: str | None = None,
               body: str = "") -> Path:
        path = (where or self.root) / name
        marker = self.markers / f"{name}.ran"
        # the marker appears whole (written aside, then renamed): a test that sees it may read it at once
        path.write_text(f"#!/bin/sh\n{body or f'id -u > {marker}.$$ && mv {marker}.$$ {marker}'}\n")
        path.chmod(mode)
        if owner:
            shutil.chown(path, owner)
        return path

    def ran(self, name: str) -> bool:
        return (self.markers / f"{name}.ran").exists()


@pytest.fixture
def box() -> Iterator[Box]:
    netns = f"pkss-{uuid.uuid4().hex[:8]}"
    user = f"pkss{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="pkss-", dir="/var/tmp"))
    root.chmod(0o755)
    markers = root / "markers"
    markers.mkdir()
    markers.chmod(0o1777)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    made_user = False
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
        for dev in ("lo", "eth0", "eth1"):
            subprocess.run(["ip", "-n", netns, "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", "192.0.2.1/24", "dev", "eth0"], check=True)
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        made_user = True
        yield Box(netns, root, markers, user)
    finally:
        subprocess.run(["ip", "netns", "pids", netns], capture_output=True, check=False)
        _kill_netns_pids(netns)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        if made_user:
            subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _kill_netns_pids(netns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def vrrp_conf(box: Box, track: dict[str, Path], global_extra: str = SECURE, instance_extra: str = "",
              script_extra: str = "") -> Path:
    scripts = "".join(f'vrrp_script {name} {{\n  script "{path}"\n  interval 1\n{script_extra}}}\n'
                      for name, path in track.items())
    tracks = "".join(f"    {name}\n" for name in track)
    text = (f"global_defs {{\n  router_id ss\n{global_extra}}}\n{scripts}"
            "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            "  advert_int 1\n  virtual_ipaddress {\n    192.0.2.200/24\n  }\n"
            f"  track_script {{\n{tracks}  }}\n{instance_extra}}}\n")
    path = box.root / f"vrrp-{uuid.uuid4().hex[:6]}.conf"
    path.write_text(text)
    return path


def misc_conf(box: Box, scripts: list[Path], global_extra: str = SECURE) -> Path:
    servers = "".join(f'  real_server 192.0.2.{10 + i} 80 {{\n    MISC_CHECK {{\n      misc_path "{p}"\n'
                      "      misc_timeout 2\n    }\n  }\n" for i, p in enumerate(scripts))
    text = (f"global_defs {{\n  router_id ss\n{global_extra}}}\n"
            "virtual_server 192.0.2.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
            f"{servers}}}\n")
    path = box.root / f"misc-{uuid.uuid4().hex[:6]}.conf"
    path.write_text(text)
    return path


def start_daemon(box: Box, conf: Path, *flags: str) -> DaemonProcess:
    """`pykeepalived -n` in the box's namespace with files of its own (several may run at once)."""
    tag = uuid.uuid4().hex[:6]
    return DaemonProcess(box.netns, [*flags, "-n", "-l", "-G", "-f", str(conf), "-p", str(box.root / f"{tag}.pid"),
                                     "-r", str(box.root / f"{tag}.vrrp.pid"), "-c", str(box.root / f"{tag}.check.pid"),
                                     "--status-file", str(box.root / f"{tag}.status")],
                         box.root / f"daemon-{tag}.log")


def wait_for(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(predicate())  # type: ignore[operator]


def unsafe_track_scripts(box: Box) -> dict[str, Path]:
    """The three unsafe cases: world-writable, a user's own file, under a world-writable directory."""
    open_dir = box.root / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    return {
        "world_writable": box.script("world_writable", 0o777),
        "user_owned": box.script("user_owned", 0o755, owner=box.user),
        "open_dir": box.script("open_dir", 0o755, where=open_dir),
    }


# --------------------------------------------------------------------------- track scripts
@pytest.mark.parametrize("case", ["world_writable", "user_owned", "open_dir"])
def test_unsafe_track_script_never_runs_and_the_log_says_why(box: Box, case: str) -> None:
    path = unsafe_track_scripts(box)[case]
    daemon = start_daemon(box, vrrp_conf(box, {"chk": path}), "-P")
    try:
        # today's code starts and runs the script as root within a second or two
        rc = daemon.wait_exit(20)
        assert not box.ran(case), f"{case} ran as uid {(box.markers / f'{case}.ran').read_text().strip()}"
        assert rc not in (None, 0), daemon.log()
        why = {"world_writable": f"{path} is writable by everyone",
               "user_owned": f"{path} is owned by uid",
               "open_dir": f"{path.parent} is writable by everyone"}[case]
        assert "Unsafe permissions" in daemon.log() and why in daemon.log(), daemon.log()
    finally:
        daemon.stop()
    assert not box.ran(case)


def test_safe_track_script_runs_and_its_own_user_is_used(box: Box) -> None:
    safe = box.script("safe")
    as_nobody = box.script("as_nobody", 0o777)  # run as nobody: not vetted, like keepalived
    daemon = start_daemon(box, vrrp_conf(box, {"chk": safe}), "-P")
    other = start_daemon(box, vrrp_conf(box, {"chk2": as_nobody}, script_extra="  user nobody\n"), "-P")
    try:
        assert wait_for(lambda: box.ran("safe"), 20), daemon.log()
        assert (box.markers / "safe.ran").read_text().split() == ["0"]
        # the vrrp_script's own `user` is the user it runs as (today it ran as root)
        assert wait_for(lambda: box.ran("as_nobody") and (box.markers / "as_nobody.ran").read_text().strip(), 20), \
            other.log()
        assert (box.markers / "as_nobody.ran").read_text().split() == ["65534"]
        assert daemon.running() and other.running()
    finally:
        daemon.stop()
        other.stop()


def test_unsafe_notify_script_never_runs_while_the_daemon_does(box: Box) -> None:
    states = box.markers / "states"
    safe = box.script("notify_safe", body=f'echo "$3" >> {states}')
    track = box.script("track")
    unsafe = box.script("notify_unsafe", 0o777)
    conf = vrrp_conf(box, {"chk": track},
                     instance_extra=f'  notify_master "{unsafe}"\n  notify "{safe}"\n')
    daemon = start_daemon(box, conf, "-P")
    try:
        # alone on its link the instance becomes MASTER within ~4 s: notify_master is due then
        assert wait_for(lambda: states.exists() and "MASTER" in states.read_text(), 25), daemon.log()
        time.sleep(1.0)
        assert not box.ran("notify_unsafe")
        assert f"Unsafe permissions for script '{unsafe}'" in daemon.log(), daemon.log()
    finally:
        daemon.stop()
    assert not box.ran("notify_unsafe")


def test_notify_scripts_run_without_script_security_as_keepalived_runs_them(box: Box) -> None:
    """SECURITY VIOLATION fails `-t` (keepalived exits 6) but keepalived's daemon logs it and runs the scripts."""
    states = box.markers / "states"
    notify = box.script("notify_plain", body=f'echo "$3" >> {states}')
    text = ("global_defs {\n  router_id ss\n}\n"
            "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n"
            f'  advert_int 1\n  virtual_ipaddress {{\n    192.0.2.200/24\n  }}\n  notify "{notify}"\n}}\n')
    conf = box.root / "no-security.conf"
    conf.write_text(text)
    ours, theirs = our_verdict(box.netns, str(conf)), keepalived_verdict(box.netns, str(conf))
    assert not ours.accepted and not theirs.accepted, (ours.output, theirs.output)
    daemon = start_daemon(box, conf, "-P")
    try:
        # today's daemon refuses to start ("configuration error(s); not starting")
        assert wait_for(lambda: states.exists() and "MASTER" in states.read_text(), 25), daemon.log()
        assert "SECURITY VIOLATION" in daemon.log(), daemon.log()
        assert daemon.running()
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- MISC_CHECK
def test_unsafe_misc_check_never_runs(box: Box) -> None:
    safe = box.script("misc_safe")
    unsafe = box.script("misc_unsafe", 0o755, owner=box.user)
    daemon = start_daemon(box, misc_conf(box, [unsafe, safe]), "-C", "--dataplane", "none")
    try:
        assert wait_for(lambda: box.ran("misc_safe"), 25), daemon.log()
        time.sleep(2.0)
        assert not box.ran("misc_unsafe")
        assert f"Unsafe permissions for script '{unsafe}' ({unsafe} is owned by uid" in daemon.log(), daemon.log()
        assert daemon.running()
    finally:
        daemon.stop()
    assert not box.ran("misc_unsafe")


# --------------------------------------------------------------------------- -t, against keepalived
@pytest.mark.keepalived
@pytest.mark.skipif(not shutil.which(KEEPALIVED), reason="keepalived 2.2.7 is not installed")
def test_config_test_verdicts_match_keepalived(box: Box) -> None:
    unsafe = unsafe_track_scripts(box)
    safe = box.script("safe")
    cases = {name: vrrp_conf(box, {"chk": path}) for name, path in unsafe.items()}
    cases["safe"] = vrrp_conf(box, {"chk": safe})
    cases["not_executable"] = vrrp_conf(box, {"chk": box.script("noexec", 0o644)})
    cases["insecure_without_security"] = vrrp_conf(box, {"chk": unsafe["world_writable"]}, global_extra="")
    cases["misc_unsafe"] = misc_conf(box, [unsafe["user_owned"]])
    cases["misc_safe"] = misc_conf(box, [safe])
    expected = {"world_writable": False, "user_owned": False, "open_dir": False, "safe": True,
                "not_executable": True, "insecure_without_security": False, "misc_unsafe": True, "misc_safe": True}
    for name, conf in cases.items():
        theirs = keepalived_verdict(box.netns, str(conf))
        ours = our_verdict(box.netns, str(conf))
        assert theirs.accepted is expected[name], f"{name}: keepalived said {theirs.output}"
        assert ours.accepted == theirs.accepted, f"{name}: keepalived said {theirs.output!r}, we said {ours.output!r}"
        if name in unsafe:
            assert "Disabling track script chk due to insecure" in theirs.output
            assert "Unsafe permissions for script" in ours.output and "disabling it" in ours.output
        if name == "insecure_without_security":
            assert "SECURITY VIOLATION" in theirs.output and "There are insecure scripts." in theirs.output
            assert "SECURITY VIOLATION" in ours.output and "There are insecure scripts." in ours.output


# --------------------------------------------------------------------------- the default user
@pytest.fixture
def keepalived_script_user() -> Iterator[int]:
    """The user keepalived defaults to, made for this test only (skipped if the machine has one already)."""
    if subprocess.run(["id", "keepalived_script"], capture_output=True, check=False).returncode == 0:
        pytest.skip("keepalived_script exists on this machine; not touching it")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "keepalived_script"],
                   check=True)
    try:
        out = subprocess.run(["id", "-u", "keepalived_script"], capture_output=True, text=True, check=True)
        yield int(out.stdout)
    finally:
        subprocess.run(["userdel", "-r", "keepalived_script"], capture_output=True, check=False)


def test_scripts_run_as_keepalived_script_by_default(box: Box, keepalived_script_user: int) -> None:
    # as keepalived_script (not root) even a world-writable script is not vetted, as keepalived does
    default = box.script("default_user", 0o777)
    daemon = start_daemon(box, vrrp_conf(box, {"chk": default}, global_extra="  enable_script_security\n"), "-P")
    try:
        assert wait_for(lambda: box.ran("default_user")
                        and (box.markers / "default_user.ran").read_text().strip(), 20), daemon.log()
        assert (box.markers / "default_user.ran").read_text().split() == [str(keepalived_script_user)]
    finally:
        daemon.stop()
