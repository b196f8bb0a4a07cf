"""SMTP_CHECK against OpenSMTPD and DNS_CHECK against dnsmasq, in namespaces, through `pykeepalived probe`.

Each test builds a Lan with a checker host (`chk`), a real server running the
real program, and a host of small fakes (a server that greets with 554, one
that accepts and says nothing, a UDP port that swallows queries). The probes
run inside `chk` with `pykeepalived probe -f CONF --json`, one attempt of
every checker of the config. Each test shows: success, the server killed ->
failure, the server back -> success, a wrong answer -> failure, and silence ->
failure at connect_timeout.

OpenSMTPD keeps its queue in /var/spool/smtpd and its control socket in /run;
we start it under `unshare --mount` with our tmp_path bind-mounted over both
(and over /etc/resolv.conf, so its reverse lookups fail at once instead of
reaching for the machine's resolver), so the machine's own directories are
never touched and a left-over socket never stops the next start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import PlainServer
from pykeepalived.lab.netns import pid_alive
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

SMTPD = "/usr/sbin/smtpd"
DNSMASQ = "/usr/sbin/dnsmasq"
pytestmark = [pytest.mark.netns, needs_root]

SLACK_S = 0.5  # what a timed-out probe may take beyond its connect_timeout

FAKES = r"""
import socket, sys, threading
ip = sys.argv[1]

def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(64)
    return s

def greet_554(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"554 5.3.2 no SMTP service here\r\n")
        c.close()

held = []
def hold(s):
    while True:
        held.append(s.accept()[0])

def swallow(u):
    while True:
        u.recv(65535)

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind((ip, 5353))
for target, arg in ((greet_554, listener(2554)), (hold, listener(2555)), (swallow, udp)):
    threading.Thread(target=target, args=(arg,), daemon=True).start()
threading.Event().wait()
"""


class Daemon:
    """A real server program in a namespace; `kill` ends it with every process it forked (its process group)."""

    def __init__(self, name: str, host: Host, argv: list[str], log: Path) -> None:
        self.name, self.host, self.argv, self.log = name, host, argv, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = self.host.netns.popen(self.argv, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # popen gave it a session (and group) of its own
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        wait_until(lambda: not any(pid_alive(p) for p in self.host.netns.pids()), 5.0,
                   what=f"{self.name} gone from {self.host.name}")
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_listening(host: Host, what: str, port: int, udp: bool = False) -> None:
    flags = "-Hlun" if udp else "-Hltn"
    wait_until(lambda: f"{host.ipv4.ip}:{port} " in host.netns.run(["ss", flags]).stdout, 10.0,
               what=f"{what} listening on {host.ipv4.ip}:{port}")


@dataclass
class Lab:
    lan: Lan
    tmp: Path
    chk: Host
    server: Host
    fake: Host
    daemons: list[Daemon]
    fakes: PlainServer | None = None

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
            try:
                daemon.kill()
            except Exception as exc:  # keep cleaning up the others
                print(f"kill {daemon.name}: {exc}")
        if self.fakes is not None:
            self.fakes.kill()


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
            lab.fakes = PlainServer(lab.fake, FAKES, str(lab.fake.ipv4.ip)).start(wait_port=2555)
            yield lab
        finally:
            lab.close()


def verdicts(results: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(r["real_server"], r["ok"]) for r in results]


def describe(results: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['real_server']} {r['checker']} ok={r['ok']} {r['reason']!r} {r['elapsed_s']}s"
                     for r in results)


# --------------------------------------------------------------------------- SMTP_CHECK against OpenSMTPD


def opensmtpd(lab: Lab) -> Daemon:
    spool, run = lab.tmp / "spool", lab.tmp / "run"
    spool.mkdir(exist_ok=True)
    run.mkdir(exist_ok=True)
    resolv = lab.tmp / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    conf = lab.tmp / "smtpd.conf"
    conf.write_text(f'listen on {lab.server.ipv4.ip} port 25\naction "drop" mbox\nmatch from any for any action "drop"\n')
    script = (f"mount --bind {spool} /var/spool && mount --bind {run} /run && mount --bind {resolv} /etc/resolv.conf"
              f" && exec {SMTPD} -d -f {conf}")
    daemon = Daemon("smtpd", lab.server, ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                    lab.tmp / "smtpd.log")
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
    wait_listening(lab.server, "smtpd", 25)
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
    wait_listening(lab.server, "smtpd", 25)
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:2] == [(up, True), (via_host, True)]


# --------------------------------------------------------------------------- DNS_CHECK against dnsmasq


def dnsmasq(lab: Lab) -> Daemon:
    ip = lab.server.ipv4.ip
    argv = [DNSMASQ, "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--log-facility=-", "--log-queries",
            f"--pid-file={lab.tmp / 'dnsmasq.pid'}", f"--listen-address={ip}", "--bind-interfaces", "--port=53",
            f"--auth-server=ns.example.test,{ip}", "--auth-zone=example.test",
            "--host-record=www.example.test,192.0.2.80"]
    daemon = Daemon("dnsmasq", lab.server, argv, lab.tmp / "dnsmasq.log")
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
    wait_listening(lab.server, "dnsmasq", 53, udp=True)
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
    wait_listening(lab.server, "dnsmasq", 53, udp=True)
    results = lab.probe(conf)
    print(describe(results))
    assert verdicts(results)[:4] == [(up, True), (up, True), (up, False), (up, False)]
