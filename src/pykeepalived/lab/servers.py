"""Real servers for lab hosts: nginx (HTTP and HTTPS), OpenSMTPD, dnsmasq, and servers that never answer.

Health checkers and the data plane are only believable against the programs
people really put behind a load balancer, so the lab runs those programs,
not imitations, inside a host's namespace:

- `NginxServer`: one nginx process serving a page that names the server (so
  a client of a virtual server can tell which real server answered), on any
  addresses and ports, optionally with TLS; a switch makes it answer 500 and
  the page can be changed (an HTTP_GET digest then fails) without a restart.
- `self_signed`: a throw-away certificate and key made by openssl.
- `opensmtpd` and `DnsmasqServer`: an SMTP server and an authoritative DNS
  server for one zone, whose names can be changed with a reload.
- `silent_server`: accepts TCP connections or receives UDP datagrams and
  never answers - the server that makes a checker wait for its timeout.
- `tcp_banner`: greets every connection with one line and hangs up (an SMTP
  server that refuses service with 554).

Every program writes its config, pid, logs and spool into a directory of the
caller's, never into /etc, /var or /run of the machine; `kill()` ends it with
every process it forked; `stop_servers` cleans up a list of them without
raising, for a test's `finally`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, Self

from .checkers import PlainServer
from .netns import LabError, pid_alive
from .peers import wait_until
from .topology import Host

NGINX = "/usr/sbin/nginx"
SMTPD = "/usr/sbin/smtpd"
DNSMASQ = "/usr/sbin/dnsmasq"
WILDCARDS = ("*", "0.0.0.0", "::")

# --------------------------------------------------------------------------- helpers


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def listening(host: Host, address: str, port: int, *, udp: bool = False) -> bool:
    """True if something in `host` listens on `address`:`port` (any address for a wildcard), as `ss` shows it."""
    out = host.netns.run(["ss", "-Hlun" if udp else "-Hltn"]).stdout
    if address in WILDCARDS:
        return f":{port} " in out
    return f"{_bracket(address)}:{port} " in out


def _process_group(pgid: int) -> list[int]:
    """Every live process of process group `pgid` (what a program forked keeps its group)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


class Killable(Protocol):
    def kill(self) -> None: ...


def stop_servers(servers: Iterable[Killable]) -> None:
    """Cleanup for tests: kills every server, never raises (a failure to stop one must not keep the others)."""
    for server in servers:
        try:
            server.kill()
        except (LabError, OSError, subprocess.TimeoutExpired):
            pass


class ServerProgram:
    """A real server program in a host's namespace, its output in a log file.

    It runs in a process group of its own (`Netns.popen` gives it a session),
    so that `kill` ends it with every helper it forked: OpenSMTPD is six
    processes, and one left behind would hold the port the next start needs.
    `start` waits until every `(address, port, udp)` of `listens` is open and
    fails at once, with the program's output, if it exits instead.
    """

    def __init__(self, name: str, host: Host, argv: list[str], log: Path,
                 listens: Sequence[tuple[str, int, bool]] = ()) -> None:
        self.name, self.host, self.argv, self.log = name, host, argv, log
        self.listens = list(listens)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> Self:
        if self.running():
            raise LabError(f"{self.name} in {self.host.name} is already running")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            proc = self.host.netns.popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        self.proc = proc

        def ready() -> bool:
            if proc.poll() is not None:
                return True
            return all(listening(self.host, a, p, udp=u) for a, p, u in self.listens)

        wait_until(ready, timeout_s, what=f"{self.name} listening in {self.host.name}:\n{self.output()[-2000:]}")
        if proc.poll() is not None:
            self.proc = None
            raise LabError(f"{self.name} in {self.host.name} exited with {proc.returncode}:\n{self.output()[-2000:]}")
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise LabError(f"{self.name} in {self.host.name} is not running")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group, then wait until every member is gone; safe to call twice."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        members = _process_group(pgid)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        wait_until(lambda: not any(pid_alive(p) for p in members) and not _process_group(pgid), 5.0,
                   what=f"{self.name} gone from {self.host.name}")
        self.proc = None

    def restart(self, timeout_s: float = 10.0) -> Self:
        self.kill()
        return self.start(timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --------------------------------------------------------------------------- certificates


def openssl(*args: str) -> None:
    """Run `openssl ARGS`; a failure raises `LabError` with openssl's complaint."""
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise LabError(f"openssl {' '.join(args)}: {proc.stderr.strip()[-1000:]}")


def self_signed(directory: Path, name: str, cn: str, *, days: int = 1) -> tuple[Path, Path]:
    """`directory/NAME.crt` and `directory/NAME.key`: a P-256 certificate for `cn` that is its own CA.

    An EC key because it is made in milliseconds; one day because nothing
    should trust it past the test run. Returns (certificate, key).
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
            "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert))
    return cert, key


# --------------------------------------------------------------------------- nginx

ACCESS_LOG_FORMAT = "$server_name|$ssl_server_name|$http_host|$request|$http_user_agent|$status|$remote_addr"

NGINX_CONF = """\
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format probe '{log_format}';
    access_log {dir}/access.log probe;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type text/plain;
    keepalive_timeout 65;  # long enough for a kept-alive connection to outlive a failover
{tls}
    server {{
{listens}
        server_name {server_name};
        root {dir}/www;
        if (-f {dir}/www/fail) {{ return 500 "{name} failing\\n"; }}
        location = /whoami {{ return 200 "{name} client=$remote_addr server=$server_addr:$server_port\\n"; }}
{locations}
        location / {{ try_files /page.txt =404; }}
    }}
{extra_http}
}}
"""


class NginxServer(ServerProgram):
    """One nginx process serving a page that names the server, on every address x port given.

    `master_process off` makes it a single process that we start and kill
    ourselves (no master re-spawning workers, no daemonizing). Every path
    answers the page (`page.txt`, by default "NAME\\n"), except `/whoami`,
    which says which server answered, to which client, on which of its
    addresses (NAT or direct routing shows there), and the caller's
    `locations` (extra `location` blocks of the main server) and `extra_http`
    (whole extra `server` blocks; they inherit the certificate).

    `fail(True)` makes every request of the main server answer 500 (a file
    whose presence nginx tests per request), `set_page` changes the page
    (and so its MD5 digest); neither needs a restart. `tls_ports` listen
    with TLS and need `cert` and `key`. The access log records
    `ACCESS_LOG_FORMAT`, read back by `access_log()`.
    """

    def __init__(self, host: Host, directory: Path, *, addresses: Sequence[str] | None = None,
                 ports: Sequence[int] = (80,), tls_ports: Sequence[int] = (), cert: Path | None = None,
                 key: Path | None = None, name: str | None = None, page: str | None = None,
                 server_name: str = "", locations: str = "", extra_http: str = "") -> None:
        if tls_ports and (cert is None or key is None):
            raise LabError("nginx with tls_ports needs a cert and a key")
        self.dir = directory
        self.server_label = name or host.name
        self.addresses = list(addresses) if addresses is not None else [str(host.ipv4.ip)]
        self.ports, self.tls_ports = list(ports), list(tls_ports)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "www").mkdir(exist_ok=True)
        self.conf_path = directory / "nginx.conf"
        listens = [f"        listen {_bracket(a)}:{p}{' ssl' if p in self.tls_ports else ''} default_server;"
                   for p in [*self.ports, *self.tls_ports] for a in self.addresses]
        tls = f"    ssl_certificate {cert};\n    ssl_certificate_key {key};" if cert and key else ""
        self.conf_path.write_text(NGINX_CONF.format(
            dir=directory, log_format=ACCESS_LOG_FORMAT, tls=tls, listens="\n".join(listens),
            server_name=server_name or self.server_label, name=self.server_label, locations=locations,
            extra_http=extra_http))
        self.set_page(page if page is not None else f"{self.server_label}\n")
        self.fail(False)
        argv = [NGINX, "-p", str(directory), "-e", str(directory / "nginx-error.log"), "-c", str(self.conf_path),
                "-g", "daemon off;"]
        super().__init__(f"nginx {self.server_label}", host, argv, directory / "nginx.out",
                         [(a, p, False) for a in self.addresses for p in [*self.ports, *self.tls_ports]])

    def set_page(self, text: str) -> None:
        """What every path answers from now on (written whole, so no request sees half a page)."""
        tmp = self.dir / "www" / ".page.txt"
        tmp.write_text(text)
        tmp.rename(self.dir / "www" / "page.txt")

    def page(self) -> str:
        return (self.dir / "www" / "page.txt").read_text()

    def fail(self, failing: bool) -> None:
        """Make every request of the main server answer 500 (True) or serve normally again (False)."""
        flag = self.dir / "www" / "fail"
        if failing:
            flag.write_text("500\n")
        else:
            flag.unlink(missing_ok=True)

    def access_log(self) -> list[list[str]]:
        """One list per request: the fields of `ACCESS_LOG_FORMAT`, in order."""
        path = self.dir / "access.log"
        return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.log, self.dir / "nginx-error.log") if p.exists())


# --------------------------------------------------------------------------- OpenSMTPD


def opensmtpd(host: Host, directory: Path, *, address: str | None = None, port: int = 25,
              mailboxes: Sequence[str] = ()) -> ServerProgram:
    """OpenSMTPD accepting mail for anyone (and dropping it into an mbox) on `address`:`port` (not started).

    Without `mailboxes` it refuses each recipient at RCPT (there is no such
    user), enough for an SMTP health check; the addresses in `mailboxes` are
    accepted and delivered to root's mbox (a virtual table), for alert mails:
    `directory`/mail/root, as /var/mail is bind-mounted there too.

    OpenSMTPD keeps its queue in /var/spool/smtpd and its control socket in
    /run, and has no options to move them; it runs under `unshare --mount`
    with the caller's directory bind-mounted over both (and over
    /etc/resolv.conf, so its reverse lookups fail at once instead of
    reaching for the machine's resolver). The machine's own directories are
    never touched and a left-over socket never stops the next start.
    """
    addr = address or str(host.ipv4.ip)
    spool, run = directory / "spool", directory / "run"
    spool.mkdir(parents=True, exist_ok=True)
    run.mkdir(exist_ok=True)
    resolv = directory / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    conf = directory / "smtpd.conf"
    if mailboxes:
        (directory / "vusers").write_text("".join(f"{m} root\n" for m in mailboxes))
        conf.write_text(f'table vusers file:{directory / "vusers"}\nlisten on {addr} port {port}\n'
                        'action "drop" mbox virtual <vusers>\nmatch from any for any action "drop"\n')
    else:
        conf.write_text(f'listen on {addr} port {port}\naction "drop" mbox\nmatch from any for any action "drop"\n')
    mail = directory / "mail"  # the mboxes (Debian's /var/mail is a directory of its own, not in /var/spool)
    mail.mkdir(exist_ok=True)
    script = (f"mount --bind {spool} /var/spool && mount --bind {run} /run && mount --bind {resolv} /etc/resolv.conf"
              f" && mount --bind {mail} /var/mail && exec {SMTPD} -d -f {conf}")
    return ServerProgram("smtpd", host, ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         directory / "smtpd.log", [(addr, port, False)])


# --------------------------------------------------------------------------- dnsmasq


class DnsmasqServer(ServerProgram):
    """dnsmasq as the authoritative server of one zone, on `address`:`port` (UDP and TCP).

    No upstream, no /etc/hosts: it answers only for `zone`, NXDOMAIN for a
    name of the zone it does not know, REFUSED outside it. The names come
    from a hosts file in `directory`, so `set_records` changes them with a
    SIGHUP (no restart, no moment of refused queries). Queries are logged
    ("auth[A] NAME from CLIENT").
    """

    def __init__(self, host: Host, directory: Path, *, address: str | None = None, port: int = 53,
                 zone: str = "example.test", records: Mapping[str, str] | None = None) -> None:
        addr = address or str(host.ipv4.ip)
        directory.mkdir(parents=True, exist_ok=True)
        self.hosts_path = directory / "dnsmasq.hosts"
        self._write_records(records if records is not None else {f"www.{zone}": "192.0.2.80"})
        # --user=root: it re-reads the hosts file after dropping privileges, and the caller's directory
        # (a pytest tmp_path) is usually root's alone
        argv = [DNSMASQ, "-k", "--user=root", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--log-facility=-",
                "--log-queries", f"--pid-file={directory / 'dnsmasq.pid'}", f"--listen-address={addr}",
                "--bind-interfaces", f"--port={port}", f"--auth-server=ns.{zone},{addr}", f"--auth-zone={zone}",
                f"--addn-hosts={self.hosts_path}"]
        super().__init__("dnsmasq", host, argv, directory / "dnsmasq.log", [(addr, port, True)])

    def _write_records(self, records: Mapping[str, str]) -> None:
        tmp = self.hosts_path.with_name(".dnsmasq.hosts")
        tmp.write_text("".join(f"{address} {name}\n" for name, address in records.items()))
        tmp.rename(self.hosts_path)

    def set_records(self, records: Mapping[str, str]) -> None:
        """Serve exactly these name -> address records from now on (a running server re-reads them)."""
        self._write_records(records)
        if self.running():
            before = self.output().count(f"read {self.hosts_path}")
            os.kill(self.pid, signal.SIGHUP)
            wait_until(lambda: self.output().count(f"read {self.hosts_path}") > before, 5.0,
                       what=f"dnsmasq in {self.host.name} re-reading {self.hosts_path}")


# --------------------------------------------------------------------------- servers that do not answer

SILENT = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
if sys.argv[3] == "udp":
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        s.recv(65535)
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4096)
held = []
while True:
    held.append(s.accept()[0])
"""

BANNER = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4096)
banner = sys.argv[3].encode() + b"\r\n"
while True:
    c, _ = s.accept()
    try:
        c.sendall(banner)
    except OSError:
        pass
    c.close()
"""


def silent_server(host: Host, address: str, port: int, protocol: str = "tcp", *, wait_s: float = 5.0) -> PlainServer:
    """A server that never answers: TCP connections are accepted and held open, UDP datagrams read and dropped.

    The kernel completes the handshake (a connect succeeds at once), so a
    checker has to notice the silence itself, at its timeout.
    """
    if protocol not in ("tcp", "udp"):
        raise LabError(f"silent_server: protocol must be tcp or udp, not {protocol!r}")
    return PlainServer(host, SILENT, address, str(port), protocol).start(wait_port=port, wait_s=wait_s)


def tcp_banner(host: Host, address: str, port: int, banner: str, *, wait_s: float = 5.0) -> PlainServer:
    """Greets every TCP connection with the line `banner` (CRLF added) and closes it: e.g. an SMTP 554 refusal."""
    return PlainServer(host, BANNER, address, str(port), banner).start(wait_port=port, wait_s=wait_s)
