"""Every checker kind in the real `pykeepalived -C` daemon: a real server fails, comes back, answers wrong, goes silent.

One lab for the whole module: the checker host `lb` and, for each network
kind, two real servers on hosts of their own (`http1`/`http2`, ...) running
the real program (nginx, nginx with TLS, OpenSMTPD, dnsmasq, a UDP echo;
PING_CHECK needs only the hosts, MISC_CHECK only a script and a state file
per server). One daemon checks them all, one virtual server per kind, with
delay_loop 1, retry 2, delay_before_retry 0.3, connect_timeout 1 (MISC:
misc_timeout 1).

Each test takes one kind and breaks its first real server while the second
stays healthy, in three ways: the server killed (PING: its link down; MISC:
exit 1), a wrong answer where the kind has one (HTTP 500, a changed page
under SSL_GET's digest, a 554 greeting on the SMTP port, NXDOMAIN), and
silence past connect_timeout (an nft rule in the server's namespace dropping
everything from the checker; MISC: a script that hangs). Each time the log
must show "failed after 3 attempt(s)" and exactly one "Removing service"
for that server, the desired table must then hold only the healthy one, and
once the server is repaired one "Adding service" must bring it back. The
healthy server and the other kinds' virtual servers never get a decision.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, Decision, PlainServer, stop_all, udp_echo
from pykeepalived.lab.servers import (
    DNSMASQ,
    NGINX,
    SMTPD,
    DnsmasqServer,
    Killable,
    NginxServer,
    ServerProgram,
    opensmtpd,
    self_signed,
    stop_servers,
    tcp_banner,
)
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [
    pytest.mark.netns,
    pytest.mark.slow,
    needs_root,
    pytest.mark.skipif(any(not os.access(p, os.X_OK) for p in (NGINX, SMTPD, DNSMASQ))
                       or any(shutil.which(t) is None for t in ("openssl", "nft", "unshare", "ss")),
                       reason="needs nginx, OpenSMTPD, dnsmasq, openssl, nft, unshare and ss"),
]

DELAY_LOOP, RETRY, DELAY_BEFORE_RETRY, CONNECT_TIMEOUT = 1.0, 2, 0.3, 1.0
TIMING = f"connect_timeout {CONNECT_TIMEOUT:g}\n retry {RETRY}\n delay_before_retry {DELAY_BEFORE_RETRY:g}"
SLACK_S = 1.0  # scheduling, Python, reading the log file
# a failure that answers at once: at most one delay_loop until the next attempt, then the retries
QUICK_S = DELAY_LOOP + RETRY * DELAY_BEFORE_RETRY + SLACK_S
# silence: every attempt waits its whole timeout
SILENT_S = DELAY_LOOP + (RETRY + 1) * CONNECT_TIMEOUT + RETRY * DELAY_BEFORE_RETRY + SLACK_S
# at least two whole timeouts (the attempt under way when the silence began may still succeed or fail early)
WAITED_S = RETRY * CONNECT_TIMEOUT
# one success after the repair: the attempt under way may still wait out its timeout, then one delay_loop; the
# half second more is for a TLS handshake on a loaded CI machine (SSL_GET came back after 3.02 s once)
BACK_S = DELAY_LOOP + CONNECT_TIMEOUT + SLACK_S + 0.5
DNS_NAME = "www.example.test"
UDP_PAYLOAD = "6b65657061"  # "keepa"


@dataclass
class Fault:
    """One way to break the first real server of a kind, and to repair it.

    `reason` must appear in the daemon's "failed after 3 attempt(s): REASON";
    `within_s` bounds the time from `apply` to the removal, `at_least_s`
    shows that a silence was waited out rather than noticed at once.
    """

    apply: Callable[[], None]
    repair: Callable[[], None]
    reason: str
    within_s: float
    at_least_s: float = 0.0


@dataclass
class Kind:
    """One checker kind: its virtual server in the daemon's config and the faults its tests apply."""

    checker: str
    vs: str  # keepalived's name of the virtual server, "[10.0.0.1]:tcp:80"
    real_servers: list[str]  # "[ip]:tcp:port", the first one is broken
    config: str
    faults: dict[str, Fault] = field(default_factory=dict)

    def destination(self, i: int) -> str:
        """The desired table's name of real server `i`: "[ip]:port"."""
        address, _protocol, port = self.real_servers[i].rsplit(":", 2)
        return f"{address}:{port}"


@dataclass
class KindsLab:
    lan: Lan
    tmp: Path
    lb: Host
    kinds: dict[str, Kind] = field(default_factory=dict)
    servers: list[Killable] = field(default_factory=list)
    plain: list[PlainServer] = field(default_factory=list)
    daemon: CheckerDaemon | None = None

    @property
    def checker(self) -> CheckerDaemon:
        assert self.daemon is not None
        return self.daemon

    def rs_host(self, role: str, number: int) -> Host:
        host = self.lan.add_host(role, number)
        # a burst of ICMP errors (port unreachable) to the checker must not be rate limited away
        host.netns.sysctl("net.ipv4.icmp_ratelimit", "0")
        return host

    def close(self) -> None:
        daemons = [self.daemon] if self.daemon is not None else []
        if self.daemon is not None:
            print(f"===== checker log =====\n{self.daemon.log()[-6000:]}")
        stop_all(self.plain, daemons)
        stop_servers(self.servers)


def silence(host: Host, checker: Host, reason: str) -> Fault:
    """An nft rule in the server's namespace that drops everything from the checker (TCP SYN, UDP, ICMP echo)."""
    def drop() -> None:
        host.netns.run(["nft", f"add table inet silence; add chain inet silence in {{ type filter hook input "
                               f"priority 0; }}; add rule inet silence in ip saddr {checker.ipv4.ip} drop"])

    def lift() -> None:
        host.netns.run(["nft", "delete table inet silence"])

    return Fault(drop, lift, reason, SILENT_S, WAITED_S)


def restart(server: ServerProgram) -> Callable[[], None]:
    def start() -> None:
        server.start()

    return start


def vs_block(address: str, port: int, protocol: str, real_servers: str) -> str:
    return f"""
virtual_server {address} {port} {{
    delay_loop {DELAY_LOOP:g}
    lb_algo rr
    lb_kind NAT
    protocol {protocol}
{real_servers}
}}
"""


def rs_block(ip: str, port: int, checker: str) -> str:
    return f"""
    real_server {ip} {port} {{
        weight 1
        {checker}
    }}"""


# --------------------------------------------------------------------------- the kinds
def http_kind(lab: KindsLab, n: int, tls: bool, cert: tuple[Path, Path]) -> Kind:
    """HTTP_GET: status 200 wanted, the fault is nginx's 500 switch. SSL_GET: each server's page digest, then a
    changed page."""
    name = "ssl" if tls else "http"
    port = 443 if tls else 80
    hosts = [lab.rs_host(f"{name}{i}", 10 * n + i) for i in (1, 2)]
    nginx = [NginxServer(h, lab.tmp / h.name, ports=[] if tls else [80], tls_ports=[443] if tls else [],
                         cert=cert[0], key=cert[1]) for h in hosts]
    lab.servers.extend(nginx)
    for server in nginx:
        server.start()
    blocks = ""
    for h, server in zip(hosts, nginx, strict=True):
        want = (f"digest {hashlib.md5(server.page().encode()).hexdigest()}" if tls else "status_code 200")
        kw = "SSL_GET" if tls else "HTTP_GET"
        blocks += rs_block(str(h.ipv4.ip), port, f"{kw} {{\n url {{\n path /\n {want}\n }}\n {TIMING}\n }}")
    vs_ip = f"10.0.0.{n}"
    kind = Kind("SSL_GET" if tls else "HTTP_GET", f"[{vs_ip}]:tcp:{port}",
                [f"[{h.ipv4.ip}]:tcp:{port}" for h in hosts], vs_block(vs_ip, port, "TCP", blocks))
    first = nginx[0]
    kind.faults["killed"] = Fault(first.kill, restart(first), "ECONNREFUSED", QUICK_S)
    if tls:
        page = first.page()
        kind.faults["wrong"] = Fault(lambda: first.set_page("changed\n"), lambda: first.set_page(page),
                                     "MD5 digest error", QUICK_S)
    else:
        kind.faults["wrong"] = Fault(lambda: first.fail(True), lambda: first.fail(False), "got 500, expected 200",
                                     QUICK_S)
    kind.faults["silent"] = silence(hosts[0], lab.lb, "timeout connecting" if tls else "connection timed out")
    return kind


def smtp_kind(lab: KindsLab, n: int) -> Kind:
    """SMTP_CHECK against OpenSMTPD; the wrong answer is a 554 greeting from the server's own address and port."""
    hosts = [lab.rs_host(f"smtp{i}", 10 * n + i) for i in (1, 2)]
    smtpd = [opensmtpd(h, lab.tmp / h.name) for h in hosts]
    lab.servers.extend(smtpd)
    for server in smtpd:
        server.start()
    blocks = "".join(rs_block(str(h.ipv4.ip), 25, f"SMTP_CHECK {{\n {TIMING}\n }}") for h in hosts)
    vs_ip = f"10.0.0.{n}"
    kind = Kind("SMTP_CHECK", f"[{vs_ip}]:tcp:25", [f"[{h.ipv4.ip}]:tcp:25" for h in hosts],
                vs_block(vs_ip, 25, "TCP", blocks))
    first, ip = smtpd[0], str(hosts[0].ipv4.ip)
    banner: list[PlainServer] = []

    def refuse_service() -> None:
        first.kill()
        banner.append(tcp_banner(hosts[0], ip, 25, "554 5.3.2 no SMTP service here"))
        lab.plain.append(banner[-1])

    def serve_again() -> None:
        banner.pop().kill()
        first.start()

    kind.faults["killed"] = Fault(first.kill, restart(first), "ECONNREFUSED", QUICK_S)
    # between the kill and the banner an attempt may be refused; the last of the three sees the 554
    kind.faults["wrong"] = Fault(refuse_service, serve_again, "bad greeting banner", QUICK_S)
    kind.faults["silent"] = silence(hosts[0], lab.lb, "connection timed out")
    return kind


def dns_kind(lab: KindsLab, n: int) -> Kind:
    """DNS_CHECK against dnsmasq, authoritative for example.test; the wrong answer: the name removed (NXDOMAIN)."""
    hosts = [lab.rs_host(f"dns{i}", 10 * n + i) for i in (1, 2)]
    records = {DNS_NAME: "192.0.2.80"}
    dns = [DnsmasqServer(h, lab.tmp / h.name, zone="example.test", records=records) for h in hosts]
    lab.servers.extend(dns)
    for server in dns:
        server.start()
    check = f"DNS_CHECK {{\n type A\n name {DNS_NAME}\n {TIMING}\n }}"
    blocks = "".join(rs_block(str(h.ipv4.ip), 53, check) for h in hosts)
    vs_ip = f"10.0.0.{n}"
    kind = Kind("DNS_CHECK", f"[{vs_ip}]:udp:53", [f"[{h.ipv4.ip}]:udp:53" for h in hosts],
                vs_block(vs_ip, 53, "UDP", blocks))
    first = dns[0]
    kind.faults["killed"] = Fault(first.kill, restart(first), "query failed: Connection refused", QUICK_S)
    kind.faults["wrong"] = Fault(lambda: first.set_records({}), lambda: first.set_records(records), "NXDOMAIN",
                                 QUICK_S)
    kind.faults["silent"] = silence(hosts[0], lab.lb, "no reply within 1 s")
    return kind


def udp_kind(lab: KindsLab, n: int) -> Kind:
    """UDP_CHECK with require_reply against an echo; killed means ICMP port unreachable."""
    hosts = [lab.rs_host(f"udp{i}", 10 * n + i) for i in (1, 2)]
    port = 5000
    echoes = [udp_echo(h, str(h.ipv4.ip), port) for h in hosts]
    lab.plain.extend(echoes)
    check = f"UDP_CHECK {{\n payload {UDP_PAYLOAD}\n require_reply {UDP_PAYLOAD}\n {TIMING}\n }}"
    blocks = "".join(rs_block(str(h.ipv4.ip), port, check) for h in hosts)
    vs_ip = f"10.0.0.{n}"
    kind = Kind("UDP_CHECK", f"[{vs_ip}]:udp:{port}", [f"[{h.ipv4.ip}]:udp:{port}" for h in hosts],
                vs_block(vs_ip, port, "UDP", blocks))

    def kill_echo() -> None:
        echoes[0].kill()

    def echo_again() -> None:
        echoes[0] = udp_echo(hosts[0], str(hosts[0].ipv4.ip), port)
        lab.plain.append(echoes[0])

    kind.faults["killed"] = Fault(kill_echo, echo_again, "port unreachable", QUICK_S)
    kind.faults["silent"] = silence(hosts[0], lab.lb, "no reply (timed out)")
    return kind


def ping_kind(lab: KindsLab, n: int) -> Kind:
    """PING_CHECK: the server's link down (its eth0), then its echo requests dropped."""
    hosts = [lab.rs_host(f"ping{i}", 10 * n + i) for i in (1, 2)]
    blocks = "".join(rs_block(str(h.ipv4.ip), 80, f"PING_CHECK {{\n {TIMING}\n }}") for h in hosts)
    vs_ip = f"10.0.0.{n}"
    kind = Kind("PING_CHECK", f"[{vs_ip}]:tcp:80", [f"[{h.ipv4.ip}]:tcp:80" for h in hosts],
                vs_block(vs_ip, 80, "TCP", blocks))
    down, up = (lambda: lab.lan.set_link(hosts[0], False)), (lambda: lab.lan.set_link(hosts[0], True))
    kind.faults["killed"] = Fault(down, up, "no echo reply (timed out)", SILENT_S, WAITED_S)
    kind.faults["silent"] = silence(hosts[0], lab.lb, "no echo reply (timed out)")
    return kind


MISC_SCRIPT = """#!/bin/sh
case "$(cat "$1")" in
    ok) exit 0 ;;
    hang) exec sleep 30 ;;
    *) exit 1 ;;
esac
"""


def misc_kind(lab: KindsLab, n: int) -> Kind:
    """MISC_CHECK: a script whose exit status a state file per server sets ("ok", "fail", "hang")."""
    script = lab.tmp / "misc.sh"
    script.write_text(MISC_SCRIPT)
    script.chmod(0o755)
    states = [lab.tmp / f"misc{i}.state" for i in (1, 2)]
    for state in states:
        state.write_text("ok\n")
    ips = [f"192.0.2.{200 + i}" for i in (1, 2)]  # no host: MISC_CHECK sends nothing to the server
    blocks = "".join(rs_block(ip, 80, f'MISC_CHECK {{\n misc_path "{script} {state}"\n misc_timeout '
                                      f'{CONNECT_TIMEOUT:g}\n retry {RETRY}\n delay_before_retry '
                                      f'{DELAY_BEFORE_RETRY:g}\n }}') for ip, state in zip(ips, states, strict=True))
    vs_ip = f"10.0.0.{n}"
    kind = Kind("MISC_CHECK", f"[{vs_ip}]:tcp:80", [f"[{ip}]:tcp:80" for ip in ips],
                vs_block(vs_ip, 80, "TCP", blocks))

    def set_state(word: str) -> Callable[[], None]:
        def write() -> None:  # whole, so that the script never reads half a word
            tmp = states[0].with_name(".misc.state")
            tmp.write_text(f"{word}\n")
            tmp.rename(states[0])

        return write

    kind.faults["killed"] = Fault(set_state("fail"), set_state("ok"), "exited with status 1", QUICK_S)
    kind.faults["silent"] = Fault(set_state("hang"), set_state("ok"), "timed out after 1s", SILENT_S, WAITED_S)
    return kind


KINDS = ["HTTP_GET", "SSL_GET", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "MISC_CHECK"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindsLab]:
    tmp = tmp_path_factory.mktemp("kinds")
    with Lan(unique_prefix("kinds")) as lan:
        lab = KindsLab(lan, tmp, lan.add_host("lb", 1))
        try:
            cert = self_signed(tmp / "certs", "rs", "rs.example")
            builders: list[Callable[[int], Kind]] = [
                lambda n: http_kind(lab, n, False, cert), lambda n: http_kind(lab, n, True, cert),
                lambda n: smtp_kind(lab, n), lambda n: dns_kind(lab, n), lambda n: udp_kind(lab, n),
                lambda n: ping_kind(lab, n), lambda n: misc_kind(lab, n)]
            for n, build in enumerate(builders, start=1):
                kind = build(n)
                lab.kinds[kind.checker] = kind
            conf = ("global_defs {\n router_id lb\n enable_script_security\n script_user root\n}\n"
                    + "".join(k.config for k in lab.kinds.values()))
            lab.daemon = CheckerDaemon(lab.lb, tmp, conf)
            lab.daemon.start()
            daemon = lab.daemon
            # keepalived starts the retry count used up (the first attempt decides at once): the faults must
            # come after every checker's first success, when retry + 1 failures are needed
            wait_until(lambda: daemon.status_path.exists() and all_checked_once(daemon), 10,
                       what=f"every checker's first success:\n{daemon.log()[-3000:]}")
            assert all(len(daemon.destinations(k.vs)) == 2 for k in lab.kinds.values())
            yield lab
        finally:
            lab.close()


def all_checked_once(daemon: CheckerDaemon) -> bool:
    """Every checker has run and its last attempt succeeded (SIGUSR1 asks for a fresh status file: the daemon
    rewrites it by itself only when the table changes)."""
    os.kill(daemon.pid, signal.SIGUSR1)
    checkers = [c for svc in daemon.status()["services"] for rs in svc["real_servers"] for c in rs["checkers"]]
    return all(c["attempts"] >= 1 and c["last_ok"] for c in checkers)


# --------------------------------------------------------------------------- the test
def decisions(daemon: CheckerDaemon, kind: Kind) -> list[Decision]:
    return [d for d in daemon.decisions() if d.virtual_server == kind.vs]


def failures(daemon: CheckerDaemon, kind: Kind) -> list[str]:
    """The reasons of the daemon's "KIND on service RS failed after N attempt(s): REASON" lines for server 0."""
    pattern = re.compile(rf"{kind.checker} on service {re.escape(kind.real_servers[0])} failed after (\d+) "
                         r"attempt\(s\): (.*)$")
    return [f"{m.group(1)} {m.group(2)}" for line in daemon.log().splitlines() if (m := pattern.search(line))]


def table(daemon: CheckerDaemon, kind: Kind) -> set[str]:
    return {name for name, (_, alive) in daemon.destinations(kind.vs).items() if alive}


@pytest.mark.parametrize("checker", KINDS)
def test_failing_server_is_removed_once_and_added_back(lab: KindsLab, checker: str) -> None:
    kind, daemon = lab.kinds[checker], lab.checker
    both = {kind.destination(0), kind.destination(1)}
    others = {k.vs: len(decisions(daemon, k)) for k in lab.kinds.values() if k is not kind}
    assert decisions(daemon, kind) == [], "no decision before the first fault"
    assert table(daemon, kind) == both
    timings = []
    for name, fault in kind.faults.items():
        before, failed_before = len(decisions(daemon, kind)), len(failures(daemon, kind))
        start = time.monotonic()
        try:
            fault.apply()
            wait_until(lambda: len(decisions(daemon, kind)) > before, fault.within_s + 5,
                       what=f"{checker} removal after '{name}':\n{daemon.log()[-3000:]}")
            took = time.monotonic() - start
            wait_until(lambda: table(daemon, kind) == {kind.destination(1)}, 3,
                       what=f"{checker}: only the healthy server in the table after '{name}'")
        finally:
            fault.repair()
        repaired = time.monotonic()
        wait_until(lambda: len(decisions(daemon, kind)) > before + 1, BACK_S + 5,
                   what=f"{checker} back after '{name}':\n{daemon.log()[-3000:]}")
        back = time.monotonic() - repaired
        wait_until(lambda: table(daemon, kind) == both, 3, what=f"{checker}: both servers in the table again")
        timings.append(f"{name}: removed after {took:.2f} s, back after {back:.2f} s")
        print(f"{checker} {timings[-1]}")

        new = [d.key() for d in decisions(daemon, kind)[before:]]
        assert new == [(False, kind.real_servers[0], kind.vs), (True, kind.real_servers[0], kind.vs)], name
        reasons = failures(daemon, kind)[failed_before:]
        assert len(reasons) == 1 and reasons[0].startswith("3 "), (name, reasons)
        assert fault.reason in reasons[0], (name, reasons)
        assert fault.at_least_s <= took <= fault.within_s, (name, took)
        assert back <= BACK_S, (name, back)
    print(f"{checker}: " + "; ".join(timings))
    # the healthy server never moved, nor did the other kinds' servers
    assert all(d.real_server == kind.real_servers[0] for d in decisions(daemon, kind))
    assert {k.vs: len(decisions(daemon, k)) for k in lab.kinds.values() if k is not kind} == others
