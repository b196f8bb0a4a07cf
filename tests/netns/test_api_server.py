"""The HTTP API of a real daemon in a lab: who may talk to it, its errors, and that no flood of slow
clients delays VRRP.

r1 runs pykeepalived (the parent, so the API is on) as VRRP master; r2 runs keepalived 2.2.7 (or
pykeepalived) as backup; c is the client. The API listens on a unix socket and on r1's address with a
bearer token.
"""

from __future__ import annotations

import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pykeepalived.lab import Lan, VrrpSettings, unique_prefix
from pykeepalived.lab.peers import KeepalivedPeer, PyKeepalivedPeer, render_keepalived_conf
from pykeepalived.lab.topology import Host

from .daemon_process import DaemonProcess
from .vrrp_helpers import HAVE_KEEPALIVED, VIP4, needs_root

pytestmark = [pytest.mark.netns, needs_root]

FLOOD = Path(__file__).with_name("api_flood.py")
PORT = 9650
TOKEN = "lab-token-" + "x" * 24
ADVERT_S = 0.5


@dataclass
class ApiLab:
    lan: Lan
    r1: Host
    c: Host
    daemon: DaemonProcess
    sock: Path
    url: str
    work: Path
    backup: KeepalivedPeer

    def curl(self, path: str, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        """(status, headers, body) of a request from c to r1's TCP API."""
        auth = ["-H", f"Authorization: Bearer {token}"] if token is not None else []
        proc = self.c.netns.run(["curl", "-s", "-S", "-m", "10", "-D", "-", *auth, *args, self.url + path],
                                check=False)
        head, _, body = proc.stdout.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1]) if head.startswith("HTTP/") else 0
        return status, head, body


def _unix_curl(sock: Path, path: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run([*prefix, "curl", "-s", "-S", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                           "--unix-socket", str(sock), f"http://pykeepalived{path}"],
                          capture_output=True, text=True, timeout=20, check=False)


def _settings(priority: int) -> list[VrrpSettings]:
    return [VrrpSettings(vrid=51, priority=priority, vips=[VIP4], version=3, advert_int_s=ADVERT_S)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiLab]:
    work = tmp_path_factory.mktemp("api")
    sock_dir = Path(f"/run/pykeepalived-test-{uuid.uuid4().hex[:8]}")  # 0755: a non-root user may reach the socket
    sock_dir.mkdir(mode=0o755)
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with Lan(unique_prefix("api")) as lan:
        r1, r2, c = lan.add_host("r1", 11), lan.add_host("r2", 12), lan.add_host("c", 50)
        conf = work / "r1.conf"
        conf.write_text(render_keepalived_conf(r1, _settings(150)))
        backup = (KeepalivedPeer if HAVE_KEEPALIVED else PyKeepalivedPeer)(r2, _settings(100), work)
        sock = sock_dir / "api.sock"
        daemon = DaemonProcess(r1.netns.name, [
            "-n", "-l", "-D", "-G", "-f", str(conf), "-p", str(work / "r1.pid"), "-r", str(work / "r1-vrrp.pid"),
            "-c", str(work / "r1-check.pid"), "--api", f"unix:{sock}", "--api", f"{r1.ipv4.ip}:{PORT}",
            "--api-token-file", str(token_file)], work / "r1.log")
        try:
            daemon.wait_log("API listening on http://", 15)
            daemon.wait_log("Entering MASTER STATE", 15)
            backup.start()
            yield ApiLab(lan, r1, c, daemon, sock, f"http://{r1.ipv4.ip}:{PORT}", work, backup)
        finally:
            backup.close()
            daemon.stop()
            print(daemon.log()[-4000:])
            shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture
def unprivileged_user() -> Iterator[str]:
    name = f"pka{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


def test_unix_socket_is_root_only(lab: ApiLab, unprivileged_user: str) -> None:
    assert lab.sock.stat().st_mode & 0o777 == 0o600
    assert _unix_curl(lab.sock, "/api/v1/state").stdout == "200"
    refused = subprocess.run(["runuser", "-u", unprivileged_user, "--", sys.executable, "-c",
                              f"import socket\nsocket.socket(socket.AF_UNIX).connect({str(lab.sock)!r})\n"],
                             capture_output=True, text=True, timeout=20, check=False)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr, refused
    assert _unix_curl(lab.sock, "/api/v1/state", unprivileged_user).stdout == "000"
    lab.sock.chmod(0o666)  # even if someone opens the file up, the peer's uid (SO_PEERCRED) decides
    try:
        assert _unix_curl(lab.sock, "/api/v1/state", unprivileged_user).stdout == "403"
        assert _unix_curl(lab.sock, "/", unprivileged_user).stdout == "403"
    finally:
        lab.sock.chmod(0o600)


def test_tcp_needs_the_bearer_token(lab: ApiLab) -> None:
    for path in ("/api/v1/state", "/metrics", "/api/v1/stream", "/nowhere"):
        status, head, body = lab.curl(path, token=None)
        assert status == 401 and 'WWW-Authenticate: Bearer realm="pykeepalived"' in head, (path, head)
        assert json.loads(body)["ok"] is False
        assert lab.curl(path, token=TOKEN[:-1] + "y")[0] == 401
    status, _, body = lab.curl("/api/v1/state")
    assert status == 200 and json.loads(body)["schema"] == 1
    status, head, page = lab.curl("/", token=None)  # the page's HTML carries no data and asks for the token
    assert status == 200 and "text/html" in head
    status, head, events = lab.curl("/api/v1/stream", "-N", "-m", "2")  # curl gives up after 2 s: status 0 is fine
    assert "Content-Type: text/event-stream" in head and events.startswith("data: {"), (head, events[:200])
    assert json.loads(events.split("\n", 1)[0][len("data: "):])["schema"] == 1
    status, head, text = lab.curl("/metrics")
    assert status == 200 and "text/plain; version=0.0.4" in head
    assert "keepalived_up" in {family.name for family in text_string_to_metric_families(text)}


def test_http_errors(lab: ApiLab) -> None:
    status, _, body = lab.curl("/api/v1/nothing")
    assert status == 404 and json.loads(body) == {"ok": False, "message": "Not Found"}
    status, head, _ = lab.curl("/metrics", "-X", "POST")
    assert status == 405 and "Allow: GET,HEAD" in head
    big = lab.work / "big.json"
    big.write_text("{" + " " * 200_000 + "}")
    status, _, body = lab.curl("/api/v1/state", "-X", "POST", "-H", "Content-Type: application/json",
                               "--data-binary", f"@{big}")
    assert status == 413, body


def test_a_slow_client_is_dropped(lab: ApiLab) -> None:
    script = "\n".join([
        "import socket",
        "import sys",
        "import time",
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])))",
        "s.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n')",
        "start = time.monotonic()",
        "s.settimeout(30)",
        "print(s.recv(100) == b'' and round(time.monotonic() - start, 1))",
    ]) + "\n"
    out = lab.c.netns.run([sys.executable, "-c", script, str(lab.r1.ipv4.ip), str(PORT)], check=False).stdout
    assert out.strip() not in ("", "False") and float(out) < 10, out


def _adverts(pcap_text: str, source: str) -> list[float]:
    times = []
    for line in pcap_text.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[1] == "IP" and fields[2] == source:
            times.append(float(fields[0]))
    return times


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_thousand_slow_clients_do_not_delay_adverts(lab: ApiLab) -> None:
    pcap = lab.work / "adverts.txt"
    with open(pcap, "wb") as out:
        tcpdump = lab.r1.netns.popen(["tcpdump", "-i", lab.r1.ifname, "-n", "-tt", "-l", "ip proto 112"],
                                     stdout=out, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        start = time.time()
        flood = lab.c.netns.run([sys.executable, str(FLOOD), str(lab.r1.ipv4.ip), str(PORT), TOKEN, "1000", "12"],
                                check=False, timeout_s=90)
        end = time.time()
        time.sleep(1.0)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(10)
    captured = pcap.read_text()
    result = json.loads(flood.stdout)
    print("flood:", result)
    times = [t for t in _adverts(captured, str(lab.r1.ipv4.ip)) if start <= t <= end]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"{len(times)} adverts in {end - start:.1f} s; gaps median {statistics.median(gaps):.3f} max {max(gaps):.3f}")
    assert len(times) >= (end - start) / ADVERT_S * 0.8, (len(times), end - start)
    assert max(gaps) < 3 * ADVERT_S, gaps  # generous, yet under the backup's master-down interval (3 x + skew)
    assert abs(statistics.median(gaps) - ADVERT_S) < 0.1, gaps
    assert result["closed"] + result["busy"] >= 400, result  # the slow ones were dropped or turned away
    assert result["held"] == 0, result
    assert "Entering MASTER STATE" not in lab.daemon.log().split("Entering MASTER STATE", 1)[1]
    assert set(lab.backup.states().values()) == {"BACKUP"}, lab.backup.log()[-3000:]  # it never took over
    status, _, _ = lab.curl("/api/v1/state")  # and it still answers
    assert status == 200


def test_stop_removes_the_socket_and_a_live_socket_is_not_taken_over(lab: ApiLab) -> None:
    other = lab.work / "other.conf"
    other.write_text(render_keepalived_conf(lab.c, _settings(50)))
    second = DaemonProcess(lab.c.netns.name, [
        "-n", "-l", "-D", "-G", "-f", str(other), "-p", str(lab.work / "c.pid"), "-r", str(lab.work / "c-vrrp.pid"),
        "-c", str(lab.work / "c-check.pid"), "--api", f"unix:{lab.sock}"], lab.work / "c.log")
    try:
        assert second.wait_exit(20) not in (None, 0), second.log()
        assert "is in use by another process" in second.log(), second.log()
        assert lab.sock.exists()
    finally:
        second.stop()
    lab.daemon.stop()
    assert not lab.sock.exists(), "the socket file outlived the daemon"


def test_tls_and_a_tcp_api_without_a_token_refused(tmp_path: Path) -> None:
    """With a certificate and key the TCP API speaks HTTPS only; without a token file the daemon does not start."""
    cert, key, token_file = tmp_path / "api.crt", tmp_path / "api.key", tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lab",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    with Lan(unique_prefix("apit")) as lan:
        r1, c = lan.add_host("r1", 11), lan.add_host("c", 50)
        conf = tmp_path / "r1.conf"
        conf.write_text(render_keepalived_conf(r1, _settings(150)))
        base = ["-n", "-l", "-G", "-f", str(conf), "-p", str(tmp_path / "r1.pid"), "-r", str(tmp_path / "v.pid"),
                "-c", str(tmp_path / "c.pid"), "--api", f"{r1.ipv4.ip}:{PORT}"]
        refused = DaemonProcess(r1.netns.name, base, tmp_path / "refused.log")
        try:
            assert refused.wait_exit(20) not in (None, 0)
            assert "an API on TCP must be authenticated" in refused.log() and "not starting" in refused.log()
        finally:
            refused.stop()
        daemon = DaemonProcess(r1.netns.name, [*base, "--api-token-file", str(token_file), "--api-tls-cert",
                                               str(cert), "--api-tls-key", str(key)], tmp_path / "tls.log")
        try:
            daemon.wait_log(f"API listening on https://{r1.ipv4.ip}:{PORT}", 15)
            url = f"https://{r1.ipv4.ip}:{PORT}/api/v1/state"
            ok = c.netns.run(["curl", "-s", "-k", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                              f"Authorization: Bearer {TOKEN}", url], check=False)
            assert ok.stdout == "200", ok
            plain = c.netns.run(["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                 url.replace("https:", "http:")], check=False)
            assert plain.stdout != "200", plain
        finally:
            daemon.stop()
