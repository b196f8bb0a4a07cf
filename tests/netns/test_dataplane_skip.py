"""A virtual server the nftables data plane cannot build does not stop the others (keepalived runs them all).

Three NAT services on one router: two plain TCP ones and a UDP one with
one-packet scheduling (`ops`), which nftables cannot express (conntrack pins
every flow). keepalived accepts the config and IPVS builds all three; we run
the two we can build, and the log names the one left out. `-t` accepts the
config with a warning; `--strict-dataplane` refuses it, at `-t` and at start.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.netns import Netns
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root,
              pytest.mark.skipif(not shutil.which("nft"), reason="needs nft")]

VIPS = ("203.0.113.10", "203.0.113.11", "203.0.113.12")
SERVERS = ("10.11.12.1", "10.11.12.2")

CONF = """\
global_defs {{
  router_id skip_test
}}
virtual_server {v0} 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server {s0} 80 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
  real_server {s1} 80 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
}}
virtual_server {v1} 80 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server {s1} 80 {{
    TCP_CHECK {{
      connect_timeout 1
    }}
  }}
}}
virtual_server {v2} 53 {{
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol UDP
  ops
  real_server {s0} 53 {{
  }}
}}
"""
OPS_LINE = 31  # the line of `virtual_server {v2} 53 {` above

# each real server answers every TCP connection on port 80 with its own address (and outlives resets)
ANSWER = """\
import socket
import sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 80))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    try:  # the checker's TCP_CHECK may have reset the connection before the answer goes out
        conn.sendall(sys.argv[1].encode() + b"\\n")
    except OSError:
        pass
    conn.close()
"""
ASK = """\
import socket
import sys
with socket.create_connection((sys.argv[1], 80), timeout=2) as s:
    print(s.recv(100).decode().strip())
"""


@pytest.fixture
def network() -> Iterator[tuple[Host, Host]]:
    """client -- public LAN -- router -- private LAN -- two real servers answering on port 80."""
    prefix = unique_prefix("skip")
    public = Lan(f"{prefix}-pub", ipv4_net="203.0.113.0/24", ipv6_net="2001:db8:203::/64")
    private: Lan | None = None
    answering = []
    try:
        private = Lan(f"{prefix}-prv", ipv4_net="10.11.12.0/24", ipv6_net="2001:db8:10::/64")
        client, router = public.add_host("c", 100), public.add_host("r", 2)
        private.attach(router, "eth1", 9)
        router.netns.sysctl("net.ipv4.ip_forward", "1")
        for vip in VIPS:
            router.netns.ip("addr", "add", f"{vip}/32", "dev", "eth0")
        for number, address in enumerate(SERVERS, start=1):
            real = private.add_host(f"s{number}", number)
            real.netns.ip("route", "add", "default", "via", "10.11.12.9")
            answering.append(real.netns.popen([sys.executable, "-c", ANSWER, address]))
        yield client, router
    finally:
        for proc in answering:
            proc.kill()
            proc.wait(timeout=5)
        if private is not None:
            private.close()
        public.close()


def ask(client: Netns, vip: str) -> str:
    proc = client.run([sys.executable, "-c", ASK, vip], check=False, timeout_s=10)
    return proc.stdout.strip() if proc.returncode == 0 else f"failed: {proc.stderr.strip()[-200:]}"


def daemon_argv(tmp_path: Path, conf: Path, *extra: str) -> list[str]:
    return ["-C", "-n", "-l", "--dataplane", "nftables", "-f", str(conf), "-p", str(tmp_path / "parent.pid"),
            "-c", str(tmp_path / "checkers.pid"), "--status-file", str(tmp_path / "status.json"), *extra]


def test_the_services_nftables_can_build_forward_and_the_log_names_the_one_skipped(
        network: tuple[Host, Host], tmp_path: Path) -> None:
    client, router = network
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(v0=VIPS[0], v1=VIPS[1], v2=VIPS[2], s0=SERVERS[0], s1=SERVERS[1]))
    test = router.netns.run([sys.executable, "-m", "pykeepalived", "-t", "--dataplane", "nftables",
                             "-f", str(conf)], check=False)
    assert test.returncode == 0, test.stderr
    assert f"{conf}:{OPS_LINE}: warning: virtual server [{VIPS[2]}]:udp:53: one-packet scheduling" in test.stderr

    daemon = DaemonProcess(router.netns.name, daemon_argv(tmp_path, conf), tmp_path / "daemon.log")
    try:
        daemon.wait_log(f"virtual server [{VIPS[2]}]:udp:53 is not built", timeout_s=20)
        assert f"{conf}:{OPS_LINE}:" in daemon.log()
        answers: dict[str, set[str]] = {VIPS[0]: set(), VIPS[1]: set()}
        for _ in range(100):  # until both checkers have said up and the table is applied
            for vip in answers:
                answers[vip].add(ask(client.netns, vip))
            if set(SERVERS) <= answers[VIPS[0]] and SERVERS[1] in answers[VIPS[1]]:
                break
        assert set(SERVERS) <= answers[VIPS[0]], (answers, daemon.log())
        assert SERVERS[1] in answers[VIPS[1]], (answers, daemon.log())
        rules = router.netns.run(["nft", "list", "ruleset"]).stdout
        assert VIPS[0] in rules and VIPS[1] in rules and VIPS[2] not in rules
        assert daemon.running()
    finally:
        daemon.stop()


def test_strict_dataplane_refuses_the_config(network: tuple[Host, Host], tmp_path: Path) -> None:
    _, router = network
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(v0=VIPS[0], v1=VIPS[1], v2=VIPS[2], s0=SERVERS[0], s1=SERVERS[1]))
    test = router.netns.run([sys.executable, "-m", "pykeepalived", "-t", "--dataplane", "nftables",
                             "--strict-dataplane", "-f", str(conf)], check=False)
    assert test.returncode == 5 and f"{conf}:{OPS_LINE}: virtual server" in test.stderr, test.stderr  # -t: errors
    daemon = DaemonProcess(router.netns.name, daemon_argv(tmp_path, conf, "--strict-dataplane"),
                           tmp_path / "strict.log")
    try:
        assert daemon.wait_exit(20) == 1, daemon.log()
        assert "one-packet scheduling" in daemon.log() and "not starting" in daemon.log()
    finally:
        daemon.stop()
