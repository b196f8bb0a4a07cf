"""Health-checker daemons and plain real servers for lab hosts.

`CheckerDaemon` runs either pykeepalived or keepalived as the checker on a
lab host, each on its own files, and reads back its decisions from the log
lines both write in the same words ("Adding service [10.0.0.1]:tcp:80 to VS
..."). Comparing the two daemons means comparing these decision lists.

The servers are real sockets in real processes inside a host's namespace: a
TCP listener that accepts and closes, one that accepts and never answers, and
a UDP echo. (HTTP, DNS and SMTP use nginx, dnsmasq and OpenSMTPD.)
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netns import LabError, pid_alive, signal_pid, wait_pids_gone
from .peers import wait_until
from .topology import Host

DECISION = re.compile(
    r"(?P<verb>Adding|Removing|Enabling|Disabling) service (?P<rs>\S+) (?:to|from|of) VS (?P<vs>.+?)\s*$")


@dataclass(frozen=True)
class Decision:
    """One up/down decision of a checker, as both daemons log it; `at` is seconds since start of the log."""

    up: bool
    real_server: str
    virtual_server: str
    at: float = 0.0

    def key(self) -> tuple[bool, str, str]:
        return (self.up, self.real_server, self.virtual_server)


def parse_decisions(log_text: str) -> list[Decision]:
    out = []
    for line in log_text.splitlines():
        m = DECISION.search(line)
        if m is None or m.group("rs").startswith("sorry"):
            continue
        up = m.group("verb") in ("Adding", "Enabling")
        out.append(Decision(up, m.group("rs"), m.group("vs")))
    return out


class CheckerDaemon:
    """pykeepalived -C (or keepalived -C) on one lab host, with its own config, log, pid and status files."""

    def __init__(self, host: Host, workdir: Path, config_text: str, *, kind: str = "pykeepalived",
                 name: str = "checker") -> None:
        self.host = host
        self.kind = kind
        self.dir = workdir / f"{name}-{host.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "keepalived.conf"
        self.conf_path.write_text(config_text)
        self.log_path = self.dir / "log"
        self.status_path = self.dir / "status.json"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        pid, cpid = str(self.dir / "main.pid"), str(self.dir / "check.pid")
        if self.kind == "keepalived":
            return ["keepalived", "-n", "-l", "-D", "-C", "-f", str(self.conf_path), "-p", pid, "-c", cpid,
                    "--no-syslog"]
        return [sys.executable, "-m", "pykeepalived", "-n", "-l", "-G", "-C", "-f", str(self.conf_path), "-p", pid,
                "-c", cpid, "--status-file", str(self.status_path)]

    def start(self) -> None:
        log = open(self.log_path, "ab")
        try:
            self._proc = self.host.netns.popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LabError(f"checker on {self.host.name} is not running")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def decisions(self) -> list[Decision]:
        return parse_decisions(self.log())

    def wait_decisions(self, count: int, timeout_s: float) -> list[Decision]:
        wait_until(lambda: len(self.decisions()) >= count, timeout_s,
                   what=f"{count} decisions in {self.log_path}:\n{self.log()[-3000:]}")
        return self.decisions()

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.status_path.read_text())
        return data

    def destinations(self, vs_name: str | None = None) -> dict[str, tuple[int, bool]]:
        """`[addr]:port` -> (weight, alive) of the desired table (first service, or the one named).

        Empty until the daemon has written its first status file, so that it can be polled from the start.
        """
        if not self.status_path.exists():
            return {}
        services = self.status()["table"]["services"]
        svc = next((s for s in services if vs_name is None or s["name"] == vs_name), None)
        if svc is None:
            return {}
        return {f"[{d['address']}]:{d['port']}": (d["weight"], d["alive"]) for d in svc["destinations"]}

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        code = self._proc.returncode
        self._proc = None
        return code


# --------------------------------------------------------------------------- plain servers
TCP_LISTENER = r"""
import socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4096)
mode = sys.argv[3]
held = []
while True:
    c, _ = s.accept()
    if mode == "hang":
        held.append(c)
    else:
        c.close()
"""

UDP_ECHO = r"""
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"""


class PlainServer:
    """A small real server process in a host's namespace (see the scripts above)."""

    def __init__(self, host: Host, script: str, *args: str) -> None:
        self.host = host
        self.args = args
        self.script = script
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_port: int | None = None, wait_s: float = 5.0) -> PlainServer:
        self._proc = self.host.netns.popen([sys.executable, "-c", self.script, *self.args])
        if wait_port is not None:
            wait_until(lambda: f":{wait_port} " in self.host.netns.run(["ss", "-Hlntu"]).stdout, wait_s,
                       what=f"listener on port {wait_port} in {self.host.name}")
        return self

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            signal_pid(self._proc.pid, signal.SIGKILL)
            self._proc.wait(5)
        self._proc = None

    def running(self) -> bool:
        return self._proc is not None and pid_alive(self._proc.pid)


def tcp_listener(host: Host, address: str, port: int, *, hang: bool = False, wait_s: float = 5.0) -> PlainServer:
    """`wait_s`: how long it may take to listen (Python starts 20-30 times slower in the emulated guest)."""
    server = PlainServer(host, TCP_LISTENER, address, str(port), "hang" if hang else "close")
    return server.start(wait_port=port, wait_s=wait_s)


def udp_echo(host: Host, address: str, port: int, *, wait_s: float = 5.0) -> PlainServer:
    return PlainServer(host, UDP_ECHO, address, str(port)).start(wait_port=port, wait_s=wait_s)


def stop_all(servers: list[PlainServer], daemons: list[CheckerDaemon]) -> None:
    """Cleanup for tests: never raises, leaves no process behind."""
    for server in servers:
        try:
            server.kill()
        except (LabError, OSError, subprocess.TimeoutExpired):
            pass
    pids = []
    for daemon in daemons:
        try:
            if daemon.alive():
                pids.append(daemon.pid)
            daemon.stop()
        except (LabError, OSError, subprocess.TimeoutExpired):
            pass
    wait_pids_gone(pids, 5.0)
