"""SMTP_CHECK against OpenSMTPD and DNS_CHECK against dnsmasq, in namespaces, through `pykeepalived probe`.

Each test builds a Lan with a checker host (`chk`), a real server running the
real program, and a host of small fakes (a server that greets with 554, one
that accepts and says nothing, a UDP port that swallows queries). The probes
run inside `chk` with `pykeepalived probe -f CONF --json`, one attempt of
every checker of the config. Each test shows: success, the server killed ->
failure, the server back -> success, a wrong answer -> failure, and silence ->
failure at connect_timeout.

The programs and fakes are started by `pykeepalived.lab.servers` (OpenSMTPD
under `unshare --mount` with tmp_path bind-mounted over its spool and /run,
so the machine's own directories are never touched).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, servers, unique_prefix, wait_until
from pykeepalived.lab.checkers import PlainServer
from pykeepalived.lab.servers import (
    DNSMASQ,
    SMTPD,
    DnsmasqServer,
    ServerProgram,
    silent_server,
    stop_servers,
    tcp_banner,
)
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SLACK_S = 0.5  # what a timed-out probe may take beyond its connect_timeout

@dataclass
class Lab:
    lan: Lan
    tmp: Path
    chk: Host
    server: Host
    fake: Host
    daemons: list[ServerProgram]
    fakes: list[PlainServer] = field(default_factory=list)

    def probe(self, conf: str) -> list[dict[str, Any]]:
        """Every checker of `conf` once, from the checker host, in config order."""
        path = self.tmp / "keepalived.conf"
        path.write_text(conf)
        proc = self.chk.netns.run([sys.executable, "-m", "pykeepalived", "probe", "-f", str(path), "--json"],
                                  check=False, timeout_s=30.0)
        assert proc.returncode in (0, 4), f"probe exit {proc.returncode}:\n{proc.stderr}"
        results: list[dict[str, Any]] = json.loads(proc.stdout)
        return results

    def close(self) -> None:
        for daemon in self.daemons:
            print(f"===== {daemon.name} =====\n{daemon.output()[-3000:]}")
        stop_servers([*self.daemons, *self.fakes])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    for program in (SMTPD, DNSMASQ):
        if not os.access(program, os.X_OK):
            pytest.skip(f"{program} not installed")
    if shutil.which("unshare") is None or shutil.which("ss") is None:
        pytest.skip("needs unshare and ss")
    with Lan(unique_prefix("smtpdns")) as lan:
        lab = Lab(lan, tmp_path, lan.add_host("chk", 10), lan.add_host("srv", 20), lan.add_host("fake", 40), [])
        try:
            # the fakes: a server that greets with 554, one that accepts and says nothing, a port that swallows
            ip = str(lab.fake.ipv4.ip)
            lab.fakes.append(tcp_banner(lab.fake, ip, 2554, "554 5.3.2 no SMTP service here"))
            lab.fakes.append(silent_server(lab.fake, ip, 2555))
            lab.fakes.append(silent_server(lab.fake, ip, 5353, "udp"))
            yield lab
        finally:
            lab.close()


def verdicts(results: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(r["real_server"], r["ok"]) for r in results]


def describe(results: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['real_server']} {r['checker']} ok={r['ok']} {r['reason']!r} {r['elapsed_s']}s"
                     for r in results)


# --------------------------------------------------------------------------- SMTP_CHECK against OpenSMTPD


def opensmtpd(lab: Lab) -> ServerProgram:
    daemon = servers.opensmtpd(lab.server, lab.tmp / "smtpd", port=25)
    lab.daemons.append(daemon)
    return daemon


def smtp_conf(lab: Lab) -> str:
    srv, fake = lab.server.ipv4.ip, lab.fake.ipv4.ip
    return f"""
virtual_server 192.0.2.100 25 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {srv} 25 {{
        SMTP_CHECK {{
            connect_timeout 2
            helo_name probe.example.test
        }}
    }}
    real_server 192.0.2.99 25 {{
        SMTP_CHECK {{
            host {{
                connect_ip {srv}
            }}
        }}
    }}
    real_server {fake} 2554 {{
        SMTP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server {fake} 2555 {{
        SMTP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


def test_smtp_check_against_opensmtpd(lab: Lab) -> None:
    smtpd = opensmtpd(lab)
    smtpd.start()
    conf = smtp_conf(lab)
    srv, fake = lab.server.ipv4.ip, lab.fake.ipv4.ip
    up, greet554, silent = f"[{srv}]:tcp:25", f"[{fake}]:tcp:2554", f"[{fake}]:tcp:2555"
    via_host = "[192.0.2.99]:tcp:25"

    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results) == [(up, True), (via_host, True), (greet554, False), (silent, False)]
    assert results[2]["reason"] == "bad greeting banner: '554 5.3.2 no SMTP service here'"
    assert results[3]["reason"] == "timed out after 1 s waiting for greeting"
    assert 1.0 <= results[3]["elapsed_s"] < 1.0 + SLACK_S
    # OpenSMTPD saw the whole conversation, to its end: keepalived's QUIT
    wait_until(lambda: smtpd.output().count("reason=quit") >= 2, 5.0, what=f"QUIT in\n{smtpd.output()}")

    smtpd.kill()
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:2] == [(up, False), (via_host, False)]
    assert results[0]["reason"] == "ECONNREFUSED: Connection refused"
    assert results[0]["elapsed_s"] < SLACK_S

    smtpd.start()
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:2] == [(up, True), (via_host, True)]


# --------------------------------------------------------------------------- DNS_CHECK against dnsmasq


def dnsmasq(lab: Lab) -> DnsmasqServer:
    daemon = DnsmasqServer(lab.server, lab.tmp / "dnsmasq", zone="example.test",
                           records={"www.example.test": "192.0.2.80"})
    lab.daemons.append(daemon)
    return daemon


def dns_conf(lab: Lab) -> str:
    def check(name: str, qtype: str, timeout: int = 2, extra: str = "") -> str:
        return f"DNS_CHECK {{\n name {name}\n type {qtype}\n connect_timeout {timeout}\n {extra}\n }}\n"

    return f"""
virtual_server 192.0.2.101 53 {{
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server {lab.server.ipv4.ip} 53 {{
        {check("example.test", "SOA")}
        {check("www.example.test", "A", extra=f"bindto {lab.chk.ipv4.ip}")}
        {check("nope.example.test", "A")}
        {check("elsewhere.example.org", "A")}
    }}
    real_server {lab.fake.ipv4.ip} 5353 {{
        {check("example.test", "SOA", timeout=1)}
    }}
}}
"""


def test_dns_check_against_dnsmasq(lab: Lab) -> None:
    server = dnsmasq(lab)
    server.start()
    conf = dns_conf(lab)
    up, silent = f"[{lab.server.ipv4.ip}]:udp:53", f"[{lab.fake.ipv4.ip}]:udp:5353"

    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results) == [(up, True), (up, True), (up, False), (up, False), (silent, False)]
    assert [r["reason"] for r in results[2:]] == [
        "server answered NXDOMAIN (rcode 3)", "server answered REFUSED (rcode 5)", "no reply within 1 s"]
    assert 1.0 <= results[4]["elapsed_s"] < 1.0 + SLACK_S
    assert f"auth[A] www.example.test from {lab.chk.ipv4.ip}" in server.output()

    server.kill()
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:4] == [(up, False)] * 4
    assert {r["reason"] for r in results[:4]} == {"query failed: Connection refused"}  # ICMP port unreachable
    assert max(r["elapsed_s"] for r in results[:4]) < SLACK_S

    server.start()
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:4] == [(up, True), (up, True), (up, False), (up, False)]
