"""A one-namespace host for the tracking tests: eth0 (192.0.2.1/24) on a veth whose peer eth1 is there too.

The daemon under test (ours or keepalived 2.2.7) runs in the namespace with
files of its own in a root-owned directory under /var/tmp; everything is
removed after the test, even when it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .daemon_process import DaemonProcess

KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"


@dataclass
class Box:
    netns: str
    root: Path

    def ip(self, *args: str) -> str:
        return subprocess.run(["ip", "-n", self.netns, *args], capture_output=True, text=True, check=True).stdout

    def conf(self, text: str) -> Path:
        path = self.root / f"conf-{uuid.uuid4().hex[:6]}.conf"
        path.write_text(text)
        return path

    def start(self, conf: Path, *flags: str) -> DaemonProcess:
        """pykeepalived -n in the namespace, logging to the console (captured in a file)."""
        tag = uuid.uuid4().hex[:6]
        return DaemonProcess(self.netns, [*flags, "-n", "-l", "-G", "-f", str(conf),
                                          "-p", str(self.root / f"{tag}.pid"),
                                          "-r", str(self.root / f"{tag}.vrrp.pid"),
                                          "-c", str(self.root / f"{tag}.check.pid"),
                                          "--status-file", str(self.root / f"{tag}.status")],
                             self.root / f"daemon-{tag}.log")

    def start_keepalived(self, conf: Path, *flags: str) -> subprocess.Popen[bytes]:
        """keepalived 2.2.7 -n -l in the namespace; its output in root/keepalived.log."""
        tag = uuid.uuid4().hex[:6]
        with open(self.root / "keepalived.log", "ab") as log:
            return subprocess.Popen(["ip", "netns", "exec", self.netns, KEEPALIVED, *flags, "-n", "-l", "-D",
                                     "-f", str(conf), "-p", str(self.root / f"{tag}.ka.pid"),
                                     "-r", str(self.root / f"{tag}.ka.vrrp.pid"),
                                     "-c", str(self.root / f"{tag}.ka.check.pid")],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def keepalived_log(self) -> str:
        path = self.root / "keepalived.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @contextmanager
    def running(self, kind: str, conf: Path, *flags: str) -> Iterator[Callable[[], str]]:
        """keepalived 2.2.7 (`kind` "ka") or pykeepalived (any other) on `conf` while the block runs.

        Yields the daemon's log reader; the daemon is stopped when the block ends, even
        on failure (keepalived: SIGTERM and a wait; ours: DaemonProcess.stop). The tests
        that run one configuration under both daemons each wrote this start and stop.
        """
        if kind == "ka":
            proc = self.start_keepalived(conf, *flags)
            try:
                yield self.keepalived_log
            finally:
                proc.terminate()
                proc.wait(10)
        else:
            daemon = self.start(conf, *flags)
            try:
                yield daemon.log
            finally:
                daemon.stop()


def vi_1(state: str, interface: str = "eth0", vip: str = "192.0.2.201/24") -> str:
    """`vrrp_instance VI_1` (vrid 51, priority 100, advert_int 1, one VIP) as configuration text.

    The instance the one-box tests run beside the keyword they test; written once so
    that each test's configuration shows only what it is about.
    """
    return (f"vrrp_instance VI_1 {{\n  state {state}\n  interface {interface}\n  virtual_router_id 51\n"
            f"  priority 100\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n")


def kill_netns_pids(netns: str) -> None:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def make_box(tag: str) -> Iterator[Box]:
    netns = f"{tag}-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/var/tmp"))
    root.chmod(0o755)
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
        for dev in ("lo", "eth0", "eth1"):
            subprocess.run(["ip", "-n", netns, "link", "set", dev, "up"], check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", "192.0.2.1/24", "dev", "eth0"], check=True)
        yield Box(netns, root)
    finally:
        kill_netns_pids(netns)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        shutil.rmtree(root, ignore_errors=True)


def wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> float | None:
    """Seconds until `predicate()` held, or None if it did not within `timeout_s`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(step_s)
    return None
