"""BFD sessions between pykeepalived and keepalived 2.2.7, and what they drive (track_bfd, BFD_CHECK).

Two hosts on a lab segment: keepalived 2.2.7 (ka, 192.0.2.11) and pykeepalived
(py, 192.0.2.12), each with a bfd_instance naming the other. The session comes
Up on both sides; pykeepalived's VRRP instance tracking it with weight 0 goes
to FAULT when keepalived is killed and leaves it when keepalived is back; one
tracking it with a weight loses that weight meanwhile; a real server followed
by BFD_CHECK leaves the pool and comes back. The BFD child takes global_defs
bfd_process_name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix

from .daemon_process import DaemonProcess
from .tracking_box import KEEPALIVED
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

KA_IP, PY_IP = "192.0.2.11", "192.0.2.12"
TIMERS = "min_rx 100\n    min_tx 100\n    idle_tx 1000\n    multiplier 5"


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}\n--- log ---\n{log()[-6000:]}")
        time.sleep(0.1)


class KeepalivedBfd:
    """keepalived 2.2.7 with one bfd_instance towards pykeepalived, in the ka namespace."""

    def __init__(self, netns: str, root: Path) -> None:
        self.netns, self.root = netns, root
        self.conf = root / "ka.conf"
        self.conf.write_text(f"global_defs {{\n  router_id ka\n}}\nbfd_instance to_py {{\n    neighbor_ip {PY_IP}\n"
                             f"    source_ip {KA_IP}\n    {TIMERS}\n}}\n")
        self.log_path = root / "keepalived.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """keepalived -n with pid files of this start's own (a killed one's children may not be reaped yet)."""
        self.starts += 1
        pid = str(self.root / f"ka{self.starts}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, KEEPALIVED, "-n", "-l", "-D", "-f", str(self.conf),
                 "-p", f"{pid}.pid", "-r", f"{pid}.vrrp.pid", "-c", f"{pid}.check.pid", "-b", f"{pid}.bfd.pid"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole process group: a dead machine sends no last packet."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


PY_CONF = f"""global_defs {{
  router_id py
  json_dump_file {{json}}
  bfd_process_name pyk_bfd
}}
bfd_instance to_ka {{
    neighbor_ip {KA_IP}
    source_ip {PY_IP}
    {TIMERS}
}}
vrrp_instance VI_FAULT {{
    state BACKUP
    interface eth0
    virtual_router_id 71
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.201/32
    }}
    track_bfd {{
        to_ka
    }}
}}
vrrp_instance VI_WEIGHT {{
    state BACKUP
    interface eth0
    virtual_router_id 72
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.0.2.202/32
    }}
    track_bfd {{
        to_ka weight 20
    }}
}}
virtual_server {PY_IP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {KA_IP} 80 {{
        BFD_CHECK {{
            name to_ka
        }}
    }}
}}
"""


class Lab:
    def __init__(self, lan: Lan, root: Path) -> None:
        self.lan, self.root = lan, root
        self.ka_host = lan.add_host("ka", 11)
        self.py_host = lan.add_host("py", 12)
        self.ka = KeepalivedBfd(self.ka_host.netns.name, root)
        self.json = root / "py.json"
        self.conf = root / "py.conf"
        self.conf.write_text(PY_CONF.replace("{json}", str(self.json)))
        self.status = root / "py.status"
        self.py: DaemonProcess | None = None

    def start_py(self, *flags: str) -> DaemonProcess:
        self.py = DaemonProcess(self.py_host.netns.name, [
            *flags, "-n", "-l", "-G", "-f", str(self.conf), "-p", str(self.root / "py.pid"),
            "-r", str(self.root / "py.vrrp.pid"), "-c", str(self.root / "py.check.pid"),
            "--status-file", str(self.status), "--dataplane", "none"], self.root / "py.log")
        return self.py

    def logs(self) -> str:
        return f"{self.py.log() if self.py else ''}\n--- keepalived ---\n{self.ka.log()}"

    def instances(self) -> dict[str, dict[str, object]]:
        """VRRP state and priority from pykeepalived's JSON dump (SIGRTMIN+2, forwarded to its VRRP child)."""
        assert self.py is not None
        self.json.unlink(missing_ok=True)
        os.kill(self.py.pid, signal.SIGRTMIN + 2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                return {i["data"]["iname"]: i["data"] for i in json.loads(self.json.read_text())}
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        raise AssertionError(f"no JSON dump\n{self.logs()}")

    def process_names(self) -> set[str]:
        pids = subprocess.run(["ip", "netns", "pids", self.py_host.netns.name], capture_output=True, text=True,
                              check=True).stdout.split()
        names = set()
        for pid in pids:
            try:
                names.add(Path(f"/proc/{pid}/comm").read_text().strip())
            except OSError:
                pass
        return names

    def real_server_alive(self) -> bool | None:
        try:
            status = json.loads(self.status.read_text())
        except (FileNotFoundError, ValueError):
            return None
        for service in status.get("services", []):
            for rs in service.get("real_servers", []):
                if KA_IP in str(rs.get("name", "")):
                    return bool(rs.get("alive"))
        return None


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lan(unique_prefix("bfd")) as lan:
        lab = Lab(lan, tmp_path)
        try:
            yield lab
        finally:
            if lab.py is not None:
                lab.py.stop()
            lab.ka.kill()


FAULT, MASTER = 3, 2  # keepalived's state numbers in the JSON dump


def test_bfd_session_with_keepalived_drives_vrrp_and_checker(lab: Lab) -> None:
    lab.ka.start()
    py = lab.start_py()
    logs = lab.logs
    # both ends see the session Up
    wait_for("keepalived's session Up", lambda: "(to_py) Entering Up state" in lab.ka.log(), 20, logs)
    py.wait_log("(to_ka) Entering Up state", 20)
    assert "pyk_bfd" in lab.process_names(), "global_defs bfd_process_name names the BFD child"
    wait_for("the tracked instances leave FAULT, the weighted one at 120",
             lambda: (lambda d: d["VI_FAULT"]["state"] == MASTER and d["VI_WEIGHT"]["effective_priority"] == 120)(
                 lab.instances()), 15, logs)
    wait_for("the BFD_CHECK real server is alive", lambda: lab.real_server_alive() is True, 10, logs)

    # keepalived dies: the session expires (5 x 100 ms), the instance goes to FAULT, the weight goes
    lab.ka.kill()
    py.wait_log("Tracked BFD instance to_ka is DOWN", 10)
    wait_for("VI_FAULT in FAULT, VI_WEIGHT at 100",
             lambda: (lambda d: d["VI_FAULT"]["state"] == FAULT and d["VI_WEIGHT"]["effective_priority"] == 100)(
                 lab.instances()), 10, logs)
    wait_for("the BFD_CHECK real server is out", lambda: lab.real_server_alive() is False, 10, logs)
    assert "BFD check of [to_ka] RS(" in py.log()

    # keepalived is back: Up again, and everything follows
    lab.ka.start()
    wait_for("the tracked instances leave FAULT again",
             lambda: (lambda d: d["VI_FAULT"]["state"] != FAULT and d["VI_WEIGHT"]["effective_priority"] == 120)(
                 lab.instances()), 20, logs)
    wait_for("the BFD_CHECK real server is back", lambda: lab.real_server_alive() is True, 10, logs)
    assert py.running()


def test_vrrp_alone_runs_the_sessions_itself(lab: Lab) -> None:
    """-P: keepalived keeps its BFD child; ours has no parent, so the VRRP process runs the sessions."""
    lab.ka.start()
    py = lab.start_py("-P")
    py.wait_log("(to_ka) Entering Up state", 20)
    wait_for("VI_FAULT leaves FAULT", lambda: lab.instances()["VI_FAULT"]["state"] != FAULT, 15, lab.logs)
    lab.ka.kill()
    wait_for("VI_FAULT in FAULT", lambda: lab.instances()["VI_FAULT"]["state"] == FAULT, 10, lab.logs)
