"""global_defs pykeepalived_syn_probe between two lab hosts: every verdict a connect gives, IPv4 and IPv6.

One checker host `lb` (pykeepalived -C) and one real-server host `srv`.
TCP_CHECKs go out as SYN probes through the checker's raw sockets; the test
makes each answer a connect can get and reads the verdicts and reasons: a
listener (up, and up again after it went away and came back), a closed port
(a reset: ECONNREFUSED), a port whose SYNs are dropped (connection timed out,
after the SYN was sent again at 1 s as the kernel does), a port that answers
with an ICMP host unreachable (EHOSTUNREACH, before connect_timeout), and the
same over IPv6; in one process and with the probes in worker processes. A
neighbour that never answers ARP or ND fails with EHOSTUNREACH after about
3 s, as a connect does, not at connect_timeout. And a route change that
moves the checker's IPv4 source address: the SYNs come from the new address
at once (the raw socket's route news), no check fails.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, PlainServer, stop_all, tcp_listener
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

OPEN, CLOSED, DROPPED, UNREACHABLE = 8000, 8001, 8002, 8003
TIMEOUT_S = 1.5  # connect_timeout: SYNs at 0 and 1 s


def checked(router_id: str, timers: tuple[float, int, float], *services: tuple[str, list[tuple[str, int]]],
            syn_probe_keyword: bool = False) -> str:
    """A checker config: each (VIP, [(real server, port)...]) a NAT service of TCP_CHECKs with these timers.

    `timers`: connect_timeout, retry, delay_before_retry; `syn_probe_keyword`: the bare keyword written out (on,
    as the default is).
    """
    connect_timeout, retry, delay_before_retry = timers
    check = (f"    TCP_CHECK {{\n      connect_timeout {connect_timeout:g}\n      retry {retry}\n"
             f"      delay_before_retry {delay_before_retry:g}\n    }}\n")
    keyword = "  pykeepalived_syn_probe\n" if syn_probe_keyword else ""
    text = f"global_defs {{\n  router_id {router_id}\n  checker_log_all_failures\n{keyword}}}\n"
    for vip, servers in services:
        text += (f"virtual_server {vip} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
                 + "".join(f"  real_server {addr} {port} {{\n{check}  }}\n" for addr, port in servers) + "}\n")
    return text


def config(v4: str, v6: str) -> str:
    return checked("synp", (TIMEOUT_S, 1, 0.5),
                   ("192.0.2.200", [(v4, port) for port in (OPEN, CLOSED, DROPPED, UNREACHABLE)]),
                   ("2001:db8::200", [(v6, OPEN), (v6, CLOSED)]), syn_probe_keyword=True)


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[Host, Host]]:
    with Lan(unique_prefix("synp")) as lan:
        yield lan.add_host("lb", 1), lan.add_host("srv", 20)


def verdicts(daemon: CheckerDaemon) -> dict[str, bool]:
    """`[addr]:port` -> alive, over every virtual server of the daemon's desired table."""
    if not daemon.status_path.exists():
        return {}
    return {f"[{d['address']}]:{d['port']}": d["alive"]
            for svc in daemon.status()["table"]["services"] for d in svc["destinations"]}


def dropped_syns(srv: Host) -> int:
    out = srv.netns.run(["nft", "list", "chain", "inet", "synp", "in"]).stdout
    found = re.search(rf"dport {DROPPED} counter packets (\d+)", out)
    assert found, out
    return int(found.group(1))


@pytest.mark.parametrize("workers", [(), ("--checker-workers", "2")], ids=["one-process", "workers"])
def test_syn_probes_give_the_verdicts_and_reasons_of_a_connect(hosts: tuple[Host, Host], tmp_path: Path,
                                                               workers: tuple[str, ...]) -> None:
    lb, srv = hosts
    v4, v6 = str(srv.ipv4.ip), str(srv.ipv6.ip)
    srv.netns.run(["nft", "add table inet synp; add chain inet synp in { type filter hook input priority 0; }; "
                   f"add rule inet synp in tcp dport {DROPPED} counter drop; "
                   f"add rule inet synp in tcp dport {UNREACHABLE} reject with icmpx type host-unreachable"])
    servers: list[PlainServer] = []
    daemon = CheckerDaemon(lb, tmp_path, config(v4, v6))
    daemon.command = lambda: CheckerDaemon.command(daemon) + list(workers)  # type: ignore[method-assign]
    try:
        servers.append(tcp_listener(srv, v4, OPEN))
        servers.append(tcp_listener(srv, v6, OPEN))
        daemon.start()
        # a server that fails its check leaves the table: only the listeners stay
        want = {f"[{v4}]:{OPEN}": True, f"[{v6}]:{OPEN}": True}
        wait_until(lambda: verdicts(daemon) == want and "connection timed out" in daemon.log(), 20.0,
                   what=f"the verdicts, got {verdicts(daemon)}:\n{daemon.log()[-3000:]}")
        log = daemon.log()
        assert "pykeepalived_syn_probe:" not in log, log[-3000:]  # no fallback to connect()
        assert "Traceback" not in log, log[-3000:]
        raw = lb.netns.run(["cat", "/proc/net/raw", "/proc/net/raw6"]).stdout
        assert raw.count(":0006 ") >= 2, raw  # one raw TCP socket per family
        for port, reason in ((CLOSED, "ECONNREFUSED: Connection refused"), (UNREACHABLE, "EHOSTUNREACH"),
                             (DROPPED, "connection timed out")):
            assert re.search(rf"\[{re.escape(v4)}\]:tcp:{port} failed .*: {reason}", log), (port, log[-3000:])
        assert re.search(rf"\[{re.escape(v6)}\]:tcp:{CLOSED} failed .*: ECONNREFUSED", log), log[-3000:]
        # the SYN to the dropping port went again at 1 s: two per timed-out attempt
        time.sleep(0.2)
        timeouts = sum(f":{DROPPED}" in line and "connection timed out" in line for line in daemon.log().splitlines())
        syns = dropped_syns(srv)
        assert timeouts >= 1 and 2 * timeouts <= syns <= 2 * timeouts + 2, (timeouts, syns)
        # the listener goes away, then comes back
        servers[0].kill()
        wait_until(lambda: f"[{v4}]:{OPEN}" not in verdicts(daemon), 10.0,
                   what=f"the stopped listener down:\n{daemon.log()[-3000:]}")
        servers[0] = tcp_listener(srv, v4, OPEN)
        wait_until(lambda: verdicts(daemon).get(f"[{v4}]:{OPEN}") is True, 10.0,
                   what=f"the listener up again:\n{daemon.log()[-3000:]}")
        assert daemon.alive() and "Traceback" not in daemon.log()
    finally:
        stop_all(servers, [daemon])
        try:
            srv.netns.run(["nft", "delete", "table", "inet", "synp"], check=False)
        except (OSError, subprocess.SubprocessError):
            pass


def syns_from(srv: Host, source: str) -> int:
    out = srv.netns.run(["nft", "list", "chain", "inet", "synp_src", "in"]).stdout
    found = re.search(rf"ip saddr {re.escape(source)} .*counter packets (\d+)", out)
    assert found, out
    return int(found.group(1))


def test_a_route_change_moves_the_source_of_the_syns_without_a_failed_check(hosts: tuple[Host, Host],
                                                                           tmp_path: Path) -> None:
    """Before the route news, the first SYN after the change carried the old address's checksum and was dropped."""
    lb, srv = hosts
    v4 = str(srv.ipv4.ip)
    second = str(lb.ipv4.network.network_address + 77)  # another address of lb's, on the same segment
    conf = checked("synp_src", (3, 0, 1), ("192.0.2.201", [(v4, OPEN)]))
    srv.netns.run(["nft", "add table inet synp_src; add chain inet synp_src in { type filter hook input priority 0; }; "
                   f"add rule inet synp_src in ip saddr {second} tcp dport {OPEN} tcp flags syn counter"])
    server = tcp_listener(srv, v4, OPEN)
    daemon = CheckerDaemon(lb, tmp_path, conf)
    try:
        daemon.start()
        wait_until(lambda: verdicts(daemon) == {f"[{v4}]:{OPEN}": True}, 20.0,
                   what=f"the listener up:\n{daemon.log()[-3000:]}")
        time.sleep(1.5)  # a check or two from the first address: its source is known
        lb.netns.run(["ip", "addr", "add", f"{second}/{lb.ipv4.network.prefixlen}", "dev", lb.ifname])
        lb.netns.run(["ip", "route", "add", f"{v4}/32", "dev", lb.ifname, "src", second])
        wait_until(lambda: syns_from(srv, second) >= 3, 10.0,
                   what=f"three SYNs from {second}:\n{daemon.log()[-3000:]}")
        log = daemon.log()
        assert f":tcp:{OPEN} failed" not in log, log[-3000:]
        assert verdicts(daemon) == {f"[{v4}]:{OPEN}": True}
        assert "pykeepalived_syn_probe:" not in log and "Traceback" not in log, log[-3000:]
    finally:
        stop_all([server], [daemon])
        for command in (["ip", "route", "del", f"{v4}/32", "dev", lb.ifname],
                        ["ip", "addr", "del", f"{second}/{lb.ipv4.network.prefixlen}", "dev", lb.ifname]):
            lb.netns.run(command, check=False)
        srv.netns.run(["nft", "delete", "table", "inet", "synp_src"], check=False)


def test_a_neighbour_that_never_answers_fails_with_host_unreachable_as_a_connect_does(hosts: tuple[Host, Host],
                                                                                      tmp_path: Path) -> None:
    """The kernel's neighbour code gives up after about 3 s and reports it as an ICMP error the raw socket hears."""
    lb, _srv = hosts
    nobody4 = str(lb.ipv4.network.network_address + 88)
    nobody6 = str(lb.ipv6.network.network_address + 88)
    conf = checked("synp_arp", (8, 0, 1), ("192.0.2.202", [(nobody4, OPEN)]), ("2001:db8::202", [(nobody6, OPEN)]))
    daemon = CheckerDaemon(lb, tmp_path, conf)
    try:
        daemon.start()
        wanted = [rf"\[{re.escape(addr)}\]:tcp:{OPEN} failed .*: EHOSTUNREACH" for addr in (nobody4, nobody6)]
        wait_until(lambda: all(re.search(w, daemon.log()) for w in wanted), 12.0,
                   what=f"EHOSTUNREACH for both:\n{daemon.log()[-3000:]}")
        log = daemon.log()
        assert "connection timed out" not in log, log[-3000:]  # well before connect_timeout (8 s)
        assert "pykeepalived_syn_probe:" not in log and "Traceback" not in log, log[-3000:]
    finally:
        stop_all([], [daemon])
