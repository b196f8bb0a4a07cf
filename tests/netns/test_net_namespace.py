"""net_namespace, -s and instance: the real daemon, started from one namespace, runs in another.

Each test builds a LAN: router r1 (namespace X, interface eth0) and a
watcher w, plus a launcher namespace L with nothing but `lo`, from which the
daemon is started (`ip netns exec L`): never from the machine's own
namespace, so that a daemon that ignored net_namespace could only ever put
its VIP in L (and fails there, since L has no eth0). The VIP must appear in
X and nowhere else, adverts must reach w, the pid files must have
keepalived 2.2.7's names (/run/keepalived/X/...), and the processes must be
in X. One test runs keepalived 2.2.7 itself on the same config.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.netns import Netns
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP = "192.0.2.150"
VRID = 61
PID_DIR = Path("/run/keepalived")


@dataclass
class Site:
    lan: Lan
    r1: Host  # its namespace is the daemon's net_namespace
    w: Host  # a peer on the LAN that sees the adverts
    launcher: Netns  # where the daemon is started from: only `lo`
    workdir: Path

    @property
    def x(self) -> str:
        return self.r1.netns.name

    def conf(self, namespace: str | None, *, instance: str | None = None, checker: bool = False) -> Path:
        lines = []
        if namespace:
            lines.append(f"net_namespace {namespace}")
        if instance:
            lines.append(f"instance {instance}")
        lines.append(f"""
vrrp_instance VI_NS {{
    state BACKUP
    interface eth0
    virtual_router_id {VRID}
    priority 150
    advert_int 1
    virtual_ipaddress {{
        {VIP}/32 dev eth0
    }}
}}""")
        if checker:
            lines.append("""
virtual_server 192.0.2.11 8080 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.0.2.60 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}""")
        path = self.workdir / f"ns-{len(list(self.workdir.glob('ns-*.conf')))}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    prefix = unique_prefix("netns")
    with Lan(prefix) as lan:
        r1 = lan.add_host("r1", 11)
        w = lan.add_host("w", 12)
        launcher = Netns(f"{prefix}-l")
        launcher.create()
        try:
            yield Site(lan, r1, w, launcher, tmp_path)
        finally:
            launcher.delete()
            _remove_pid_dir(r1.netns.name)


def _remove_pid_dir(namespace: str) -> None:
    """What a daemon killed mid-test may leave: /run/keepalived/NAMESPACE and its pid files."""
    folder = PID_DIR / namespace
    if folder.is_dir():
        for f in folder.iterdir():
            f.unlink(missing_ok=True)
        folder.rmdir()
    try:
        PID_DIR.rmdir()  # only if empty: someone else's files stay
    except OSError:
        pass


def start(site: Site, argv: list[str], name: str = "daemon") -> DaemonProcess:
    return DaemonProcess(site.launcher.name, ["-n", "-l", "-G", "-D", *argv], site.workdir / f"{name}.log")


def vip_holders(site: Site) -> set[str]:
    """Every namespace of this test (and the machine's own) where the VIP is configured."""
    found = set()
    for ns in (site.r1.netns, site.w.netns, site.launcher, site.lan.switch):
        if any(a.get("local") == VIP for link in ns.ip_json("addr", "show") for a in link.get("addr_info", [])):
            found.add(ns.name)
    root = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    if f" {VIP}/" in root:
        found.add("<root>")
    return found


def netns_inode(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def pids_in(folder: Path) -> dict[str, int]:
    return {f.name: int(f.read_text().strip()) for f in sorted(folder.glob("*.pid"))}


def adverts_seen_by(host: Host, count: int = 2, timeout_s: float = 8.0) -> str:
    """tcpdump on the watcher: `count` VRRP adverts from r1's address, as text."""
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump needed")
    proc = host.netns.run(["timeout", str(timeout_s), "tcpdump", "-i", host.ifname, "-n", "-l", "-c", str(count),
                           "ip proto 112"], check=False, timeout_s=timeout_s + 5)
    return proc.stdout


def test_daemon_runs_in_net_namespace_with_keepalived_pid_files(site: Site) -> None:
    """net_namespace X from a launcher namespace: VIP, adverts, processes and pid files all in/for X."""
    conf = site.conf(site.x, checker=True)
    daemon = start(site, ["-f", str(conf), "--dataplane", "none"])
    try:
        daemon.wait_log("(VI_NS) Entering MASTER STATE", 15.0)
        assert vip_holders(site) == {site.x}
        out = adverts_seen_by(site.w)
        assert f"192.0.2.11 > 224.0.0.18: VRRPv2, Advertisement, vrid {VRID}" in out, out
        folder = PID_DIR / site.x
        wait_until(lambda: len(pids_in(folder)) == 3 if folder.is_dir() else False, 10.0, what="three pid files")
        pids = pids_in(folder)
        assert set(pids) == {"keepalived.pid", "vrrp.pid", "checkers.pid"}
        assert pids["keepalived.pid"] == daemon.pid
        x_ns = netns_inode(str(site.r1.netns.path))
        for name, pid in pids.items():
            assert netns_inode(f"/proc/{pid}/ns/net") == x_ns, f"{name}: pid {pid} is not in {site.x}"
        assert (folder.stat().st_mode & 0o777) == 0o755
        assert "Changing syslog ident to Keepalived_" + site.x in daemon.log()
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.log()
    assert vip_holders(site) == set()
    assert not (PID_DIR / site.x).exists(), "pid files and their directory are removed at exit"


def test_s_overrides_net_namespace(site: Site) -> None:
    """-s X wins over the config's net_namespace (which names a namespace that does not exist)."""
    missing = f"{site.x}-missing"
    conf = site.conf(missing)
    daemon = start(site, ["-f", str(conf), "-s", site.x])
    try:
        daemon.wait_log("(VI_NS) Entering MASTER STATE", 15.0)
        assert f"Overriding config net_namespace '{missing}' with command line namespace '{site.x}'" in daemon.log()
        assert vip_holders(site) == {site.x}
        assert set(pids_in(PID_DIR / site.x)) == {"keepalived.pid", "vrrp.pid"}
    finally:
        daemon.stop()
    assert vip_holders(site) == set()


def test_instance_names_pid_files(site: Site) -> None:
    """`instance NAME` with net_namespace: /run/keepalived/X/keepalived_NAME.pid and vrrp_NAME.pid."""
    conf = site.conf(site.x, instance="blue")
    daemon = start(site, ["-f", str(conf)])
    try:
        daemon.wait_log("(VI_NS) Entering BACKUP STATE", 15.0)
        folder = PID_DIR / site.x
        wait_until(lambda: len(pids_in(folder)) == 2 if folder.is_dir() else False, 10.0, what="two pid files")
        assert set(pids_in(folder)) == {"keepalived_blue.pid", "vrrp_blue.pid"}
        assert f"Changing syslog ident to Keepalived_{site.x}_blue" in daemon.log()
    finally:
        daemon.stop()


def test_missing_namespace_exits_as_keepalived(site: Site) -> None:
    """A namespace that does not exist is not created: two log lines and exit status 0, as keepalived 2.2.7."""
    missing = f"{site.x}-none"
    conf = site.conf(missing)
    daemon = start(site, ["-f", str(conf)])
    assert daemon.wait_exit(20.0) == 0, daemon.log()
    log = daemon.log()
    assert f"Failed to open /run/netns/{missing}" in log and f"Unable to set network namespace {missing} - exiting" \
        in log, log
    assert "Traceback" not in log
    assert not Path(f"/run/netns/{missing}").exists()
    assert not (PID_DIR / missing).exists()
    assert vip_holders(site) == set()
    if HAVE_KEEPALIVED:
        ka = subprocess.run(site.launcher.argv(["keepalived", "-n", "-l", "-G", "-f", str(conf)]),
                            capture_output=True, text=True, timeout=20)
        assert ka.returncode == 0
        assert f"Unable to set network namespace {missing} - exiting" in ka.stdout + ka.stderr


def test_config_test_checks_interfaces_inside_the_namespace(site: Site) -> None:
    """-t from a namespace without eth0: interfaces are looked up in net_namespace (or -s), as keepalived does."""
    conf = site.conf(site.x)
    ours = subprocess.run(site.launcher.argv([sys.executable, "-m", "pykeepalived", "-t", "-f", str(conf)]),
                          capture_output=True, text=True, timeout=30)
    assert ours.returncode == 0, ours.stderr
    plain = site.conf(None)
    with_s = subprocess.run(site.launcher.argv([sys.executable, "-m", "pykeepalived", "-t", "-s", site.x, "-f",
                                                str(plain)]), capture_output=True, text=True, timeout=30)
    assert with_s.returncode == 0, with_s.stderr
    without = subprocess.run(site.launcher.argv([sys.executable, "-m", "pykeepalived", "-t", "-f", str(plain)]),
                             capture_output=True, text=True, timeout=30)
    assert without.returncode != 0 and "eth0" in without.stderr  # the launcher has no eth0
    missing = site.conf(f"{site.x}-none")
    gone = subprocess.run(site.launcher.argv([sys.executable, "-m", "pykeepalived", "-t", "-f", str(missing)]),
                          capture_output=True, text=True, timeout=30)
    assert gone.returncode == 0 and f"Failed to open /run/netns/{site.x}-none" in gone.stderr, gone.stderr
    if HAVE_KEEPALIVED:
        for path, want in ((conf, 0), (missing, 0)):
            ka = subprocess.run(site.launcher.argv(["keepalived", "-t", "-f", str(path)]), capture_output=True,
                                text=True, timeout=30)
            assert ka.returncode == want, ka.stderr
        ka = subprocess.run(site.launcher.argv(["keepalived", "-t", "-f", str(plain)]), capture_output=True,
                            text=True, timeout=30)
        assert ka.returncode != 0


@pytest.mark.skipif(not HAVE_KEEPALIVED, reason="keepalived not installed")
def test_same_placement_and_pid_files_as_keepalived(site: Site) -> None:
    """keepalived 2.2.7 and pykeepalived on one config, one after the other: same VIP holder, same pid files."""
    conf = site.conf(site.x)
    folder = PID_DIR / site.x
    seen: dict[str, tuple[set[str], set[str]]] = {}
    for kind in ("keepalived", "pykeepalived"):
        if kind == "keepalived":
            log = (site.workdir / "ka.log").open("wb")
            proc = subprocess.Popen(site.launcher.argv(["keepalived", "-n", "-l", "-D", "-G", "-f", str(conf)]),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_until(lambda: vip_holders(site) != set(), 15.0, what="keepalived's VIP")
                wait_until(lambda: folder.is_dir() and len(pids_in(folder)) == 2, 5.0, what="keepalived's pid files")
                seen[kind] = (vip_holders(site), set(pids_in(folder)))
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                log.close()
        else:
            daemon = start(site, ["-f", str(conf)], name="py")
            try:
                daemon.wait_log("(VI_NS) Entering MASTER STATE", 15.0)
                wait_until(lambda: folder.is_dir() and len(pids_in(folder)) == 2, 5.0, what="our pid files")
                seen[kind] = (vip_holders(site), set(pids_in(folder)))
            finally:
                daemon.stop()
        wait_until(lambda: vip_holders(site) == set() and not folder.exists(), 10.0, what=f"{kind} cleaned up")
        time.sleep(0.5)
    assert seen["keepalived"] == ({site.x}, {"keepalived.pid", "vrrp.pid"})
    assert seen["pykeepalived"] == seen["keepalived"]


def test_net_namespace_ipvs_elsewhere_is_refused_at_start(site: Site) -> None:
    """net_namespace_ipvs naming another namespace than the daemon's: a clear refusal, not a silent local table."""
    conf = site.conf(None, checker=True)
    conf.write_text(f"net_namespace_ipvs {site.w.netns.name}\n" + conf.read_text())
    daemon = DaemonProcess(site.x, ["-n", "-l", "-G", "-f", str(conf), "--dataplane", "none"],
                           site.workdir / "ipvs.log")  # started inside X itself
    try:
        assert daemon.wait_exit(20.0) == 3, daemon.log()
    finally:
        daemon.stop()
    assert f"net_namespace_ipvs: the data plane in namespace {site.w.netns.name}" in daemon.log()
    assert "Traceback" not in daemon.log()
    assert vip_holders(site) == set()
    same = site.conf(site.x, checker=True)  # net_namespace_ipvs naming the daemon's own namespace is what we do
    same.write_text(f"net_namespace_ipvs {site.x}\n" + same.read_text())
    daemon = start(site, ["-f", str(same), "--dataplane", "none"], name="same")
    try:
        daemon.wait_log("(VI_NS) Entering BACKUP STATE", 15.0)
    finally:
        daemon.stop()
