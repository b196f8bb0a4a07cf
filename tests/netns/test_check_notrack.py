"""global_defs pykeepalived_checker_notrack: the checks leave no conntrack entry, NAT through the VIP still works.

One checker host `lb` (pykeepalived -C on the nftables data plane, a NAT
virtual server 192.0.2.200:80 -> srv:8000 with TCP_CHECK and HTTP_GET real
servers) and one real-server host `srv`. With the keyword the table untracks
what the checker's marked sockets send and the replies they get, so after a
few rounds of checks conntrack in `lb` holds no entry to a real server's
port; without it, it holds the checks' entries (the test sees the
difference). Either way the checks pass and a connection that `lb` itself
opens to the VIP is DNATed to the real server: tracked, with its reply
un-NATed, because its socket carries no mark. The same with
pykeepalived_syn_probe: the TCP_CHECK's SYN probes are untracked too (their
raw socket and reserved ports carry the mark).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, PlainServer, stop_all, tcp_listener
from pykeepalived.lab.topology import Host
from tests.scripts import script

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root,
              pytest.mark.skipif(shutil.which("conntrack") is None, reason="needs conntrack(8)")]

VIP = "192.0.2.200"
TCP_PORT, HTTP_PORT = 8000, 8001


def config(srv: str, notrack: bool, syn_probe: bool = False) -> str:
    timers = "      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n"
    keyword = ("  pykeepalived_checker_notrack\n" if notrack else "") \
        + f"  pykeepalived_syn_probe {'on' if syn_probe else 'off'}\n"
    return (f"global_defs {{\n  router_id notrack\n  pykeepalived_dataplane nftables\n{keyword}}}\n"
            f"virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
            f"  real_server {srv} {TCP_PORT} {{\n    TCP_CHECK {{\n{timers}    }}\n  }}\n"
            f"  real_server {srv} {HTTP_PORT} {{\n    HTTP_GET {{\n      url {{\n        path /\n"
            f"        status_code 200\n      }}\n{timers}    }}\n  }}\n}}\n")


def http_server(host: Host, address: str) -> PlainServer:
    """tests/scripts/http_ok_server.py on `host` (PlainServer runs `python -c TEXT`: the file's text)."""
    text = Path(script("http_ok_server.py")).read_text()
    return PlainServer(host, text, address, str(HTTP_PORT)).start(wait_port=HTTP_PORT)


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Host, Host]]:
    with Lan(unique_prefix("ntrk")) as lan:
        yield lan.add_host("lb", 1), lan.add_host("srv", 20)


def conntrack(host: Host, *args: str) -> list[str]:
    proc = host.netns.run(["conntrack", "-L", *args], check=False)
    return [line for line in proc.stdout.splitlines() if line.startswith(("tcp", "udp"))]


@pytest.mark.parametrize(("notrack", "syn_probe"), [(True, False), (False, False), (True, True), (False, True)],
                         ids=["notrack", "tracked", "notrack-syn-probe", "tracked-syn-probe"])
def test_checks_leave_no_conntrack_entry_and_nat_through_the_vip_from_the_router_still_works(
        hosts: tuple[Host, Host], tmp_path: Path, notrack: bool, syn_probe: bool) -> None:
    lb, srv = hosts
    addr = str(srv.ipv4.ip)
    servers: list[PlainServer] = []
    daemon = CheckerDaemon(lb, tmp_path, config(addr, notrack, syn_probe))
    try:
        servers.append(tcp_listener(srv, addr, TCP_PORT))
        servers.append(http_server(srv, addr))
        daemon.start()
        wait_until(lambda: len(daemon.destinations()) == 2 and all(a for _, a in daemon.destinations().values()),
                   15.0, what=f"both real servers up:\n{daemon.log()[-3000:]}")
        lb.netns.run(["conntrack", "-F"], check=False)  # what the start-up left (before the table was there)
        time.sleep(3.0)  # three rounds of checks
        assert "pykeepalived_syn_probe:" not in daemon.log()  # the SYN probes ran (no fall back to connect)
        assert all(alive for _, alive in daemon.destinations().values())
        checks = conntrack(lb, "-p", "tcp", "--orig-dst", addr)
        if notrack:
            assert checks == [], "\n".join(checks)
        else:
            assert any(f"dport={TCP_PORT}" in line for line in checks), "\n".join(checks)
            assert any(f"dport={HTTP_PORT}" in line for line in checks), "\n".join(checks)
        # this host's own connection through the VIP: DNATed to a real server, the reply un-NATed on the way back
        proc = lb.netns.run([sys.executable, script("connect_peer.py"), VIP, "80"], timeout_s=10.0)
        assert proc.stdout.strip() == VIP
        via_vip = conntrack(lb, "-p", "tcp", "--orig-dst", VIP)
        assert any(f"src={addr}" in line and "dport=80" in line for line in via_vip), "\n".join(via_vip)
        assert daemon.alive()
    finally:
        stop_all(servers, [daemon])
        try:
            lb.netns.run(["nft", "delete", "table", "ip", "pykeepalived_lvs"], check=False)
        except (OSError, subprocess.SubprocessError):
            pass
