"""A throw-away copy of this machine's root, for installing a package or booting systemd on it.

An overlay filesystem over / (lower: /, upper: a directory of the test) is
mounted only inside a private mount namespace that `unshare` makes for one
command, which then runs chrooted into it. Everything the command writes
(dpkg's database, /usr, /etc) lands in the upper directory; the real root
never changes, and the mounts end with the namespace, so a failing test
leaves nothing mounted. Removing the directory removes the copy.

`boot()` runs systemd as PID 1 of new PID, mount, UTS, IPC, network and
cgroup namespaces over the same overlay (a cgroup2 hierarchy of its own is
mounted; systemd 252 runs in "unified" mode there), with a target that
starts nothing, so that a test can start one unit and talk to it with
`systemctl` through nsenter.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

MOUNT_ROOT = r"""
set -e
base=$1; shift
root=$base/root
mount -t overlay overlay -o lowerdir=/,upperdir=$base/upper,workdir=$base/work "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
"""

RUN = MOUNT_ROOT + r"""
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /bin/sh -c "$1"
"""

BOOT = MOUNT_ROOT + r"""
mount -t sysfs sysfs "$root/sys"
mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
cd "$root"
exec chroot "$root" /usr/lib/systemd/systemd --unit=pykeepalived-test.target --log-target=journal \
    --show-status=no </dev/null
"""

# a target that pulls in nothing: the machine's own services (nginx, frr...) stay off
TEST_TARGET = """[Unit]
Description=pykeepalived test: nothing but what the test starts
"""


class FreshRoot:
    """The overlay's directories; `run` executes a shell command as root in the copy."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.upper = base / "upper"
        for sub in ("upper", "work", "root"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.systemd: subprocess.Popen[bytes] | None = None
        self.pid1: int | None = None

    def path(self, inside: str) -> Path:
        """Where a file written in the copy appears: its upper directory (files of / itself do not)."""
        parent, name = os.path.split("/" + inside.lstrip("/"))
        return self.upper / os.path.realpath(parent).lstrip("/") / name  # /lib is /usr/lib on merged-/usr

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", RUN, "sh",
                               str(self.base), command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def write(self, inside: str, text: str) -> None:
        """Put a file into the copy (the overlay is not mounted between commands: the upper dir is the copy's)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    # --- systemd as PID 1 ---

    def boot(self, timeout: float = 60) -> None:
        """Start systemd in its own namespaces; returns once `systemctl is-system-running` answers."""
        self.write("/etc/systemd/system/pykeepalived-test.target", TEST_TARGET)
        log = open(self.base / "systemd.log", "wb")
        self.systemd = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--uts", "--ipc", "--net",
             "--cgroup", "sh", "-c", BOOT, "sh", str(self.base)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.systemd.poll() is not None:
                raise RuntimeError(f"systemd ended at start: {self.log_tail()}")
            self.pid1 = self._find_pid1()
            if self.pid1 is not None:
                state = self.systemctl("is-system-running").stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.3)
        raise RuntimeError(f"systemd did not come up in {timeout} s: {self.log_tail()}")

    def _find_pid1(self) -> int | None:
        """systemd's pid as seen from here: the child of unshare (--fork)."""
        assert self.systemd is not None
        found = subprocess.run(["pgrep", "-P", str(self.systemd.pid), "-x", "systemd"],
                               capture_output=True, text=True, check=False).stdout.split()
        return int(found[0]) if found else None

    def enter(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run argv inside the booted container (its namespaces and root)."""
        assert self.pid1 is not None
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-m", "-p", "-u", "-i", "-n", "-C", "-r", "-w",
                               "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", *argv],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.enter(["systemctl", "--no-pager", *args], timeout=timeout)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.base / "systemd.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def shutdown(self) -> None:
        """End the container: SIGKILL to its PID 1 ends every process of its PID namespace."""
        if self.systemd is None:
            return
        pid1 = self.pid1 or self._find_pid1()
        if pid1 is not None:
            try:
                os.kill(pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.systemd.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.systemd.pid, signal.SIGKILL)
            self.systemd.wait(timeout=20)
        self.systemd = None

    def remove(self) -> None:
        self.shutdown()
        shutil.rmtree(self.base, ignore_errors=True)


def can_overlay_root() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("unshare", "chroot", "dpkg", "nsenter"))
