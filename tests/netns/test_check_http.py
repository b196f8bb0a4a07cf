"""HTTP_GET and SSL_GET against a real nginx in a namespace, through `pykeepalived probe`.

Each test builds a Lan with a checker host (`chk`, 192.0.2.10) and a real
server (`srv`, 192.0.2.20) running nginx (`lab.servers.NginxServer`) with a
config written into tmp_path: pid, logs and temp directories all there,
`master_process off` so that it is one process we start and kill, never
touching /etc or /var. nginx
serves a healthy page, a 500, a page that echoes the SNI name and Host it
saw, a second server block for the virtualhost www.example, and on 8443 a
server that demands a client certificate. The probe runs inside `chk` with
`pykeepalived probe -f CONF --json`: one attempt of every checker.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, PlainServer
from pykeepalived.lab.servers import NginxServer, openssl, self_signed, silent_server, stop_servers
from pykeepalived.lab.topology import Host

from .vrrp_helpers import needs_root

pytestmark = [
    pytest.mark.netns,
    needs_root,
    pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None,
                       reason="needs nginx and openssl"),
]

SLACK_S = 0.5  # what a timed-out probe may take beyond its connect_timeout
HEALTHY = b"healthy\n"

# What the real server answers besides its page ("default block"): the main server's extra locations, a
# second server block for the virtualhost www.example, and on 8443 one that demands a client certificate.
LOCATIONS = """
        location = /ok { return 200 "healthy\\n"; }
        location = /fail { return 500 "sick\\n"; }
        location = /echo { return 200 "sni=$ssl_server_name host=$http_host\\n"; }
"""
EXTRA_SERVERS = """
    server {{
        listen {ip}:80;
        listen {ip}:443 ssl;
        server_name www.example;
        location / {{ return 200 "www block\\n"; }}
    }}
    server {{
        listen {ip}:8443 ssl;
        server_name client.example;
        ssl_verify_client on;
        ssl_client_certificate {certs}/client.crt;
        location / {{ return 200 "client accepted\\n"; }}
    }}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's certificate, an unrelated one (a wrong CA), and a client certificate with an encrypted key."""
    directory = tmp_path_factory.mktemp("certs")
    self_signed(directory, "rs", "rs.example")
    self_signed(directory, "other", "other.example")
    self_signed(directory, "client", "checker.example")
    openssl("pkey", "-in", str(directory / "client.key"), "-aes256", "-passout", "pass:s3cret",
            "-out", str(directory / "client-enc.key"))
    return directory


@dataclass
class Lab:
    lan: Lan
    tmp: Path
    certs: Path
    chk: Host
    srv: Host
    nginx: NginxServer
    extra: list[PlainServer] = field(default_factory=list)
    runs: int = 0

    @property
    def rs(self) -> str:
        return str(self.srv.ipv4.ip)

    def start_nginx(self) -> None:
        self.nginx.start()

    def kill_nginx(self) -> None:
        self.nginx.kill()

    def nginx_output(self) -> str:
        return self.nginx.output()

    def access_log(self) -> list[list[str]]:
        return self.nginx.access_log()

    def probe(self, conf: str) -> list[dict[str, Any]]:
        """Every checker of `conf` once, from the checker host, in config order."""
        self.runs += 1
        path = self.tmp / f"keepalived-{self.runs}.conf"
        path.write_text(conf)
        proc = self.chk.netns.run([sys.executable, "-m", "pykeepalived", "probe", "-f", str(path), "--json"],
                                  check=False, timeout_s=60.0)
        assert proc.returncode in (0, 4), f"probe exit {proc.returncode}:\n{proc.stderr}"
        results: list[dict[str, Any]] = json.loads(proc.stdout)
        print(describe(results))
        return results

    def genhash(self, url: str) -> str:
        proc = self.chk.netns.run([sys.executable, "-m", "pykeepalived", "genhash", "--url", url], timeout_s=30.0)
        return proc.stdout.strip()

    def close(self) -> None:
        print(f"===== nginx =====\n{self.nginx_output()[-3000:]}")
        stop_servers([self.nginx, *self.extra])


@pytest.fixture
def lab(tmp_path: Path, certs: Path) -> Iterator[Lab]:
    with Lan(unique_prefix("http")) as lan:
        srv = lan.add_host("srv", 20)
        ip = str(srv.ipv4.ip)
        nginx = NginxServer(srv, tmp_path / "nginx", addresses=[ip, str(srv.ipv6.ip)], ports=[80], tls_ports=[443],
                            cert=certs / "rs.crt", key=certs / "rs.key", server_name="default.example",
                            page="default block\n", locations=LOCATIONS,
                            extra_http=EXTRA_SERVERS.format(ip=ip, certs=certs))
        lab = Lab(lan, tmp_path, certs, lan.add_host("chk", 10), srv, nginx)
        try:
            lab.start_nginx()
            yield lab
        finally:
            lab.close()
            assert not lab.nginx.running()


def describe(results: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['virtual_server']} {r['checker']} ok={r['ok']} {r['reason']!r} {r['elapsed_s']}s"
                     for r in results)


def config(*checkers: tuple[int, str], ssl: str = "", rs: str = "", vs: str = "", address: str = "192.0.2.20") -> str:
    """One virtual server per checker (10.0.0.N:80, or fd00::N for an IPv6 real server: keepalived refuses mixed
    families), each with one real server on srv at the given port."""
    blocks = [ssl]
    for n, (port, checker) in enumerate(checkers, start=1):
        vs_address = f"fd00::{n}" if ":" in address else f"10.0.0.{n}"
        blocks.append(f"""
virtual_server {vs_address} 80 {{
    lb_algo rr
    lb_kind NAT
    protocol TCP
    {vs}
    real_server {address} {port} {{
        {rs}
        {checker}
    }}
}}""")
    return "\n".join(blocks)


def http_get(*urls: str, kind: str = "HTTP_GET", extra: str = "", timeout: float = 2) -> str:
    body = "\n".join(f"url {{\n{u}\n}}" for u in urls)
    return f"{kind} {{\n connect_timeout {timeout:g}\n{extra}\n{body}\n}}"


def verdicts(results: list[dict[str, Any]]) -> list[bool]:
    return [bool(r["ok"]) for r in results]


def reasons(results: list[dict[str, Any]]) -> list[str]:
    return [str(r["reason"]) for r in results]


# --------------------------------------------------------------------------- HTTP_GET
def test_status_digest_and_regex(lab: Lab) -> None:
    digest = lab.genhash(f"http://{lab.rs}/ok")
    assert digest == hashlib.md5(HEALTHY).hexdigest()
    wrong = "0" * 32
    checks = [
        http_get("path /ok\nstatus_code 200"),
        http_get(f"path /ok\ndigest {digest}"),
        http_get("path /ok"),  # default 200-299
        http_get("path /fail"),
        http_get("path /fail\nstatus_code 200-299 500"),
        http_get(f"path /ok\ndigest {wrong}"),
        http_get('path /ok\nregex "heal+thy"'),
        http_get('path /ok\nregex "sick"'),
        http_get('path /ok\nregex "sick"\nregex_no_match'),
        http_get('path /ok\nregex "healthy"\nregex_no_match'),
        http_get("path /ok", "path /fail", "path /ok"),
    ]
    results = lab.probe(config(*((80, c) for c in checks)))
    assert verdicts(results) == [True, True, True, False, True, False, True, False, True, False, False]
    where = f"[{lab.rs}]:tcp:80"
    got = reasons(results)
    assert got[3] == f"HTTP status code error to {where} url(1) /fail: got 500, expected 200-299"
    assert got[5] == f"MD5 digest error to {where} url(1) /ok: expected {wrong}, got {digest}"
    assert got[7] == f"regex error to {where} url(1) /ok: 'sick' did not match"
    assert got[9] == f"regex error to {where} url(1) /ok: 'healthy' matched (regex_no_match)"
    assert got[10] == f"HTTP status code error to {where} url(2) /fail: got 500, expected 200-299"
    # what nginx saw: keepalived's request, Host with the port; the last checker stopped at its failing url
    log = lab.access_log()
    assert all(entry[3].endswith(" HTTP/1.0") and entry[4] == "KeepAliveClient" for entry in log)
    assert f"{lab.rs}:80" in {entry[2] for entry in log}
    assert len([e for e in log if e[3].startswith("GET ")]) == 1 + len(checks) + 1  # genhash, one each, + url(2)


def test_virtualhost_reaches_its_server_block(lab: Lab) -> None:
    www = 'regex "www block"'
    results = lab.probe(config(
        (80, http_get(f"path /\n{www}")),
        (80, http_get(f"path /\n{www}", extra="virtualhost www.example")),
        (80, http_get(f"path /\n{www}\nvirtualhost www.example", extra="virtualhost default.example")),
        (80, http_get(f"path /\n{www}", extra="http_protocol 1.1\nvirtualhost www.example")),
    ))
    assert verdicts(results) == [False, True, True, True]
    assert verdicts(lab.probe(config((80, http_get(f"path /\n{www}")), rs="virtualhost www.example"))) == [True]
    assert verdicts(lab.probe(config((80, http_get(f"path /\n{www}")), vs="virtualhost www.example"))) == [True]
    ipv6 = lab.probe(config((80, http_get('path /\nregex "default block"')), address=str(lab.srv.ipv6.ip)))
    assert verdicts(ipv6) == [True]
    log = lab.access_log()
    # the url's virtualhost won over the checker's; without one, keepalived's address:port
    assert {entry[2] for entry in log} == {f"{lab.rs}:80", "www.example", f"[{lab.srv.ipv6.ip}]:80"}
    assert sorted(e[3] for e in log) == ["GET / HTTP/1.0"] * 6 + ["GET / HTTP/1.1"]


def test_refused_when_nginx_is_killed(lab: Lab) -> None:
    conf = config((80, http_get("path /ok")))
    assert verdicts(lab.probe(conf)) == [True]
    lab.kill_nginx()
    results = lab.probe(conf)
    assert verdicts(results) == [False]
    assert results[0]["reason"] == f"cannot connect to [{lab.rs}]:tcp:80 url(1) /ok: ECONNREFUSED: Connection refused"
    assert results[0]["elapsed_s"] < SLACK_S
    lab.start_nginx()
    assert verdicts(lab.probe(conf)) == [True]


def test_silent_server_fails_within_connect_timeout(lab: Lab) -> None:
    lab.extra.append(silent_server(lab.srv, lab.rs, 8081))
    results = lab.probe(config((8081, http_get("path /", timeout=1)),
                               (8081, http_get("path /", kind="SSL_GET", timeout=1.5))))
    assert verdicts(results) == [False, False]
    where = f"[{lab.rs}]:tcp:8081 url(1) /"
    assert reasons(results) == [f"timeout reading the answer from {where}",
                                f"timeout connecting to {where} (TLS handshake included)"]
    assert 1.0 <= results[0]["elapsed_s"] < 1.0 + SLACK_S
    assert 1.5 <= results[1]["elapsed_s"] < 1.5 + SLACK_S


# --------------------------------------------------------------------------- SSL_GET
def ssl_block(**files: str) -> str:
    return "SSL {\n" + "\n".join(f"    {k} {v}" for k, v in files.items()) + "\n}\n"


def test_ssl_get_verifies_only_with_a_ca(lab: Lab) -> None:
    digest = hashlib.md5(HEALTHY).hexdigest()
    checks = [(443, http_get(f"path /ok\ndigest {digest}", kind="SSL_GET")),
              (443, http_get("path /fail", kind="SSL_GET"))]
    assert verdicts(lab.probe(config(*checks))) == [True, False]  # no SSL block: nothing verified
    right = lab.probe(config(*checks, ssl=ssl_block(ca=str(lab.certs / "rs.crt"))))
    assert verdicts(right) == [True, False]
    wrong = lab.probe(config(*checks, ssl=ssl_block(ca=str(lab.certs / "other.crt"))))
    assert verdicts(wrong) == [False, False]
    assert "CERTIFICATE_VERIFY_FAILED" in wrong[0]["reason"] and wrong[0]["reason"].startswith("cannot connect to")


def test_sni_is_sent_with_enable_sni(lab: Lab) -> None:
    echo = 'path /echo\nregex "sni=%s host=%s\\n"'
    results = lab.probe(config(
        (443, http_get(echo % ("", "rs.example"), kind="SSL_GET", extra="virtualhost rs.example")),
        (443, http_get(echo % ("rs.example", "rs.example"), kind="SSL_GET",
                       extra="enable_sni\nvirtualhost rs.example")),
        (443, http_get(echo % ("u.example", "u.example") + "\nvirtualhost u.example", kind="SSL_GET",
                       extra="enable_sni\nvirtualhost rs.example")),
        (443, http_get(echo % ("other.example", "rs.example"), kind="SSL_GET",
                       extra="sni_name other.example\nvirtualhost rs.example")),
        (443, http_get(echo % ("", f"{lab.rs}:443"), kind="SSL_GET", extra="enable_sni")),  # no name: no SNI
    ))
    assert verdicts(results) == [True] * 5, describe(results)
    sent = sorted(entry[1] for entry in lab.access_log())  # the probes run concurrently: any order
    assert sent == ["-", "-", "other.example", "rs.example", "u.example"]


def test_client_certificate_with_encrypted_key(lab: Lab) -> None:
    check = (8443, http_get('path /\nregex "client accepted"', kind="SSL_GET"))
    without = lab.probe(config(check))
    assert verdicts(without) == [False]
    assert without[0]["reason"].startswith(f"HTTP status code error to [{lab.rs}]:tcp:8443 url(1) /: got 400")
    client = ssl_block(certificate=str(lab.certs / "client.crt"), key=str(lab.certs / "client-enc.key"),
                       password="s3cret")
    assert verdicts(lab.probe(config(check, ssl=client))) == [True]
    bad_password = client.replace("s3cret", "wrong")
    results = lab.probe(config(check, ssl=bad_password))
    assert verdicts(results) == [False] and "cannot set up TLS" in results[0]["reason"]


# --------------------------------------------------------------------------- OpenSSL only when needed
def _openssl_mapped(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libssl" in maps or "libcrypto" in maps


def _checkers(daemon: CheckerDaemon) -> list[dict[str, Any]]:
    if not daemon.status_path.exists():
        return []
    return [c for s in daemon.status()["services"] for r in s["real_servers"] for c in r["checkers"]]


def test_a_reload_to_ssl_get_lets_openssl_into_a_checker_started_without(lab: Lab) -> None:
    """host/openssl_guard.py: a checker with HTTP_GET only runs without OpenSSL; a reload that adds an SSL_GET
    loads it, and the TLS check passes (asyncio was imported before ssl could be)."""
    lab.chk.netns.sysctl("net.ipv4.ip_forward", "1")  # NAT virtual servers want forwarding
    plain = config((80, http_get("path /ok\nstatus_code 200")), vs="delay_loop 1")
    daemon = CheckerDaemon(lab.chk, lab.tmp, plain, name="tls-reload")
    daemon.start()
    try:
        wait_until(lambda: any(c["last_ok"] for c in _checkers(daemon)), 20.0,
                   what=f"the HTTP_GET passing:\n{daemon.log()[-3000:]}")
        assert not _openssl_mapped(daemon.pid)
        daemon.conf_path.write_text(config((443, http_get("path /ok\nstatus_code 200", kind="SSL_GET")),
                                           vs="delay_loop 1"))
        os.kill(daemon.pid, signal.SIGHUP)
        wait_until(lambda: any(c["kind"] == "SSL_GET" and c["last_ok"] for c in _checkers(daemon)), 20.0,
                   what=f"the SSL_GET passing after the reload:\n{daemon.log()[-3000:]}")
        assert _openssl_mapped(daemon.pid)
        assert daemon.alive()
    finally:
        daemon.stop()
