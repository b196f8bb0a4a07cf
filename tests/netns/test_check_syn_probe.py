"""global_defs pykeepalived_syn_probe between two lab hosts: every verdict a connect gives, IPv4 and IPv6.

One checker host `lb` (pykeepalived -C) and one real-server host `srv`.
TCP_CHECKs go out as SYN probes through the checker's raw sockets; the test
makes each answer a connect can get and reads the verdicts and reasons: a
listener (up, and up again after it went away and came back), a closed port
(a reset: ECONNREFUSED), a port whose SYNs are dropped (connection timed out,
after the SYN was sent again at 1 s as the kernel does), a port that answers
with an ICMP host unreachable (EHOSTUNREACH, before connect_timeout), and the
same over IPv6; in one process and with the probes in worker processes.
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


def config(v4: str, v6: str) -> str:
    timers = f"      connect_timeout {TIMEOUT_S:g}\n      retry 1\n      delay_before_retry 0.5\n"

    def rs(addr: str, port: int) -> str:
        return f"  real_server {addr} {port} {{\n    TCP_CHECK {{\n{timers}    }}\n  }}\n"

    head = "  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    return ("global_defs {\n  router_id synp\n  checker_log_all_failures\n  pykeepalived_syn_probe\n}\n"
            f"virtual_server 192.0.2.200 80 {{\n{head}"
            + "".join(rs(v4, port) for port in (OPEN, CLOSED, DROPPED, UNREACHABLE)) + "}\n"
            f"virtual_server 2001:db8::200 80 {{\n{head}" + rs(v6, OPEN) + rs(v6, CLOSED) + "}\n")


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
