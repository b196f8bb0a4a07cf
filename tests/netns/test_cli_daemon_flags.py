"""keepalived's daemon flags that change what the processes do: -R (no respawn), -I and -V (keep on stop).

- Without -R the parent restarts a VRRP child that was killed; with -R the
  parent stops instead (keepalived: "child died, exiting"), with status 1.
- With -I the checker leaves its data plane's table (here nftables) in place
  when it stops, as keepalived leaves the IPVS table; without it the table goes.
- With -V the VRRP process leaves its VIPs on the interface when it stops;
  -d logs the configuration at start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Netns, unique_prefix, wait_until

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VRRP = """vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 62
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""

LVS = """virtual_server 192.0.2.10 80 {
    delay_loop 5
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 8080 {
        weight 1
    }
}
"""


@pytest.fixture
def ns() -> Iterator[Netns]:
    netns = Netns(unique_prefix("flags"))
    netns.create()
    try:
        netns.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        netns.ip("link", "set", "eth0", "up")
        netns.ip("link", "set", "eth1", "up")
        netns.ip("addr", "add", "192.0.2.1/24", "dev", "eth0")
        yield netns
    finally:
        netns.delete()


def start(ns: Netns, tmp_path: Path, conf_text: str, *flags: str) -> tuple[subprocess.Popen[bytes], Path]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(conf_text)
    argv = [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-f", str(conf),
            "-p", str(tmp_path / "k.pid"), "-r", str(tmp_path / "k_vrrp.pid"), "-c", str(tmp_path / "k_chk.pid"),
            "--status-file", str(tmp_path / "status.json"), *flags]
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        return ns.popen(argv, stdout=out), log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def child_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("respawn", [True, False], ids=["respawn", "dont-respawn"])
def test_dont_respawn(ns: Netns, tmp_path: Path, respawn: bool) -> None:
    proc, log = start(ns, tmp_path, VRRP, *([] if respawn else ["-R"]))
    try:
        vrrp_pid_file = tmp_path / "k_vrrp.pid"
        wait_until(lambda: child_pid(vrrp_pid_file) is not None, 20, what="the VRRP child's pid file")
        first = child_pid(vrrp_pid_file)
        assert first is not None and first != proc.pid
        os.kill(first, signal.SIGKILL)
        if respawn:
            wait_until(lambda: child_pid(vrrp_pid_file) not in (None, first), 20, what="a new VRRP child")
            assert proc.poll() is None
        else:
            assert proc.wait(20) == 1, log.read_text()
            assert "not restarting it (-R, --dont-respawn)" in log.read_text()
    finally:
        stop(proc)


def nft_tables(ns: Netns) -> str:
    return ns.run(["nft", "list", "tables"]).stdout


@pytest.mark.parametrize("keep", [True, False], ids=["dont-release-ipvs", "release"])
def test_dont_release_ipvs_keeps_the_table(ns: Netns, tmp_path: Path, keep: bool) -> None:
    proc, log = start(ns, tmp_path, LVS, "-C", "--dataplane", "nftables", *(["-I"] if keep else []))
    try:
        wait_until(lambda: "pykeepalived_lvs" in nft_tables(ns), 20, what="the nftables table")
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
        assert ("pykeepalived_lvs" in nft_tables(ns)) is keep, log.read_text()
    finally:
        stop(proc)
        ns.run(["nft", "delete", "table", "ip", "pykeepalived_lvs"], check=False)
        ns.run(["nft", "delete", "table", "ip6", "pykeepalived_lvs"], check=False)


@pytest.mark.parametrize("keep", [True, False], ids=["dont-release-vrrp", "release"])
def test_dont_release_vrrp_keeps_the_vips(ns: Netns, tmp_path: Path, keep: bool) -> None:
    proc, log = start(ns, tmp_path, VRRP.replace("state BACKUP", "state MASTER"), "-P",
                      *(["-V", "-d"] if keep else []))
    try:
        wait_until(lambda: "192.0.2.100" in ns.ip("-4", "addr", "show", "dev", "eth0"), 20, what="the VIP")
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
        assert ("192.0.2.100" in ns.ip("-4", "addr", "show", "dev", "eth0")) is keep, log.read_text()
        assert ('config:   "vrrp_instances": {' in log.read_text()) is keep  # -d: the configuration in the log
    finally:
        stop(proc)


@pytest.mark.parametrize("keep", [True, False], ids=["dont-release-vrrp", "release"])
def test_dont_release_vrrp_keeps_the_vmac_and_no_accept(ns: Netns, tmp_path: Path, keep: bool) -> None:
    """-V keeps what the VIPs need too: the VMAC they live on and the no_accept table guarding them."""
    conf = VRRP.replace("state BACKUP", "state MASTER").replace("advert_int 1",
                                                                 "advert_int 1\n    use_vmac\n    no_accept")
    proc, log = start(ns, tmp_path, conf, "-P", *(["-V"] if keep else []))
    try:
        def on_vmac() -> bool:
            return "192.0.2.100" in ns.run(["ip", "-4", "addr", "show", "dev", "vrrp.62"], check=False).stdout

        wait_until(on_vmac, 20, what="the VIP on the VMAC")
        assert "pykeepalived" in nft_tables(ns)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
        assert on_vmac() is keep, log.read_text()
        assert ("pykeepalived" in nft_tables(ns)) is keep, log.read_text()
    finally:
        stop(proc)
        ns.run(["ip", "link", "del", "vrrp.62"], check=False)
        ns.run(["nft", "delete", "table", "inet", "pykeepalived"], check=False)
