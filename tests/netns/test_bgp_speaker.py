"""pykeepalived_bgp against a real FRR bgpd upstream: announce while served, withdraw when not, and at a stop.

Three hosts on a lab segment: the upstream (bgpd 8.4 listening for the
balancer, its received routes read with vtysh), the balancer (pykeepalived
with a pykeepalived_bgp block, which runs its own `bgpd -Z -p 0`) and a real
server (a TCP listener the checker connects to). The VIP is announced once
the checker has the real server and the data plane has the table; the real
server's death withdraws it, its return announces it again; a reload to a
table the data plane cannot apply (a DR real server without a route)
withdraws it until a reload it can apply; a killed checker
takes its bgpd with it (the upstream loses the route) and its successor
announces again; a clean stop withdraws and leaves no bgpd behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

BGPD = "/usr/lib/frr/bgpd"
VIP = "203.0.113.50"
UP_IP, LB_IP, RS_IP = "192.0.2.11", "192.0.2.12", "192.0.2.13"

UPSTREAM_CONF = f"""router bgp 65000
 bgp router-id {UP_IP}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor LB peer-group
 neighbor LB remote-as 65001
 neighbor LB timers 1 3
 bgp listen range 192.0.2.0/24 peer-group LB
 address-family ipv4 unicast
  neighbor LB route-map NOTHING out
 exit-address-family
exit
route-map NOTHING deny 10
exit
"""

LB_CONF = f"""global_defs {{
    router_id lb
}}
pykeepalived_bgp {{
    local_as 65001
    neighbor {UP_IP} {{
        remote_as 65000
        source_ip {LB_IP}
    }}
    announce {VIP}
    community 65001:7
    med 5
}}
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo mh
    lb_kind DR
    protocol TCP
    real_server {RS_IP} 80 {{
        TCP_CHECK {{
            connect_timeout 1
            retry 0
        }}
    }}
}}
"""

UNROUTABLE_VS = """virtual_server 203.0.113.51 80 {
    lb_algo mh
    lb_kind DR
    protocol TCP
    real_server 10.99.0.1 80 {
    }
}
"""

pytestmark.append(pytest.mark.skipif(not os.access(BGPD, os.X_OK), reason="FRR's bgpd is not installed"))


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float, log: Callable[[], str]) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}\n--- log ---\n{log()[-6000:]}")
        time.sleep(0.05)
    return time.monotonic() - start


class Upstream:
    """bgpd without zebra, listening: what it has received is what the test reads."""

    def __init__(self, host: Host, root: Path) -> None:
        self.host = host
        self.dir = Path(tempfile.mkdtemp(prefix="up-", dir=root))
        (self.dir / "bgpd.conf").write_text(UPSTREAM_CONF)
        self.proc = host.netns.popen([BGPD, "-Z", "-u", "root", "-g", "frrvty", "-f", str(self.dir / "bgpd.conf"),
                                      "-i", str(self.dir / "bgpd.pid"), "-z", str(self.dir / "zserv.api"),
                                      "--vty_socket", str(self.dir), "-P", "0",
                                      "--log", f"file:{self.dir / 'bgpd.log'}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def routes(self) -> dict[str, list[dict[str, object]]]:
        out = self.host.netns.run(["vtysh", "--vty_socket", str(self.dir), "-d", "bgpd", "-c",
                                   "show bgp ipv4 unicast json"], check=False, timeout_s=10).stdout
        try:
            return dict(json.loads(out).get("routes", {}))
        except ValueError:
            return {}

    def has_vip(self) -> bool:
        return f"{VIP}/32" in self.routes()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(f"/var/tmp/frr/bgpd.{self.proc.pid}", ignore_errors=True)


class Lab:
    def __init__(self, lan: Lan, root: Path) -> None:
        self.root = root
        self.up_host = lan.add_host("up", 11)
        self.lb_host = lan.add_host("lb", 12)
        self.rs_host = lan.add_host("rs", 13)
        self.upstream = Upstream(self.up_host, root)
        self.conf = root / "lb.conf"
        self.conf.write_text(LB_CONF)
        self.status = root / "lb.status"
        self.server: subprocess.Popen[bytes] | None = None
        self.lb: DaemonProcess | None = None

    def start_server(self) -> None:
        self.server = self.rs_host.netns.popen(
            ["python3", "-m", "http.server", "--bind", RS_IP, "80"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(5)

    def start_lb(self) -> DaemonProcess:
        self.lb = DaemonProcess(self.lb_host.netns.name, [
            "-n", "-l", "-f", str(self.conf), "-p", str(self.root / "lb.pid"), "-r", str(self.root / "lb.vrrp.pid"),
            "-c", str(self.root / "lb.check.pid"), "--status-file", str(self.status), "--dataplane", "nftables"],
            self.root / "lb.log")
        return self.lb

    def bgp_status_file(self) -> dict[str, object]:
        try:
            return dict(json.loads(self.status.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def bgp_status(self) -> dict[str, object]:
        return dict(self.bgp_status_file().get("bgp") or {})  # type: ignore[call-overload]

    def bgpd_pids(self) -> list[int]:
        pids = subprocess.run(["ip", "netns", "pids", self.lb_host.netns.name], capture_output=True, text=True,
                              check=False).stdout.split()
        out = []
        for pid in pids:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "bgpd":
                    out.append(int(pid))
            except OSError:
                pass
        return out

    def log(self) -> str:
        up = (self.upstream.dir / "bgpd.log")
        return (self.lb.log() if self.lb else "") + "\n--- upstream ---\n" + (
            up.read_text(errors="replace")[-2000:] if up.exists() else "")

    def close(self) -> None:
        if self.lb is not None:
            self.lb.stop()
        for pid in self.bgpd_pids():  # only if the daemon failed to end its own
            os.kill(pid, signal.SIGKILL)
            shutil.rmtree(f"/var/tmp/frr/bgpd.{pid}", ignore_errors=True)
        self.stop_server()
        self.upstream.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lan(unique_prefix("bgp")) as lan:
        lab = Lab(lan, tmp_path)
        try:
            yield lab
        finally:
            lab.close()


def test_announced_while_served_withdrawn_when_not(lab: Lab) -> None:
    lab.start_server()
    lb = lab.start_lb()
    wait_for("the upstream has the VIP from the balancer", lab.upstream.has_vip, 20, lab.log)
    route = lab.upstream.routes()[f"{VIP}/32"][0]
    assert route.get("nexthops", [{}])[0].get("ip") == LB_IP  # type: ignore[union-attr]
    assert route.get("metric") == 5, route
    assert lab.bgp_status().get("announced") == [f"{VIP}/32"]
    shown = subprocess.run([sys.executable, "-m", "pykeepalived", "status", "--status-file", str(lab.status)],
                           capture_output=True, text=True, check=False).stdout
    assert f"announcing {VIP}/32" in shown, shown
    bgpd_log = (lab.root / "lb.status.bgp" / "bgpd.log").read_text()
    assert "Unknown command" not in bgpd_log and "No such command" not in bgpd_log, bgpd_log  # bgpd.conf as a whole

    # the only real server dies: quorum lost, the VIP is withdrawn; it comes back, so does the VIP
    lab.stop_server()
    wait_for("the VIP withdrawn after the real server died", lambda: not lab.upstream.has_vip(), 15, lab.log)
    assert "pykeepalived_bgp: withdrew" in lb.log()
    lab.start_server()
    wait_for("the VIP announced again", lab.upstream.has_vip, 15, lab.log)

    # a data plane that cannot apply the table withdraws (a DR real server with no route: the apply fails);
    # a reload back to a table it can apply announces again
    lab.conf.write_text(LB_CONF + UNROUTABLE_VS)
    os.kill(lb.pid, signal.SIGHUP)
    wait_for("the VIP withdrawn while the data plane fails", lambda: not lab.upstream.has_vip(), 15, lab.log)
    wait_for("the status file says why", lambda: "no route" in str(lab.bgp_status_file().get("dataplane_error")), 5,
             lab.log)
    lab.conf.write_text(LB_CONF)
    os.kill(lb.pid, signal.SIGHUP)
    wait_for("the VIP announced once the table applies", lab.upstream.has_vip, 15, lab.log)

    # a killed checker takes its bgpd with it; its successor announces again
    checker = int((lab.root / "lb.check.pid").read_text())
    old_bgpd = lab.bgpd_pids()
    assert len(old_bgpd) == 1, old_bgpd
    os.kill(checker, signal.SIGKILL)
    wait_for("the killed checker's bgpd is gone", lambda: old_bgpd[0] not in lab.bgpd_pids(), 5, lab.log)
    wait_for("the new checker announces again", lambda: lab.upstream.has_vip() and bool(lab.bgpd_pids()), 30,
             lab.log)
    assert not Path(f"/var/tmp/frr/bgpd.{old_bgpd[0]}").exists(), "the successor removes FRR's crash directory"

    # a clean stop withdraws and ends bgpd
    pid = lab.bgpd_pids()[0]
    lb.stop()
    assert lb.wait_exit(10) is not None
    wait_for("the VIP withdrawn at the stop", lambda: not lab.upstream.has_vip(), 5, lab.log)
    assert lab.bgpd_pids() == []
    assert not Path(f"/var/tmp/frr/bgpd.{pid}").exists()
