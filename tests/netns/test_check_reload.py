"""Reload of the checker alone (-C, nftables data plane): only the difference is applied, nothing else moves.

A client keeps one TCP connection open through the NAT virtual service for
the whole test and uses it after each reload; the real servers are echo
servers in namespaces of their own, routed back through the load balancer.
SIGHUP with the same file (three times) changes no rule (the ruleset's
handles stay) and no real server's state; then a real server is added, one
is removed, a checker's parameter changes, and a broken file is refused
with everything left as it was. The real servers that were UP never get a
decision line: no re-check from DOWN, no flap.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, PlainServer, stop_all

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

VIP = "203.0.113.10"

ECHO = r"""
import socket
import sys
import threading

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 80))
s.listen(128)
def serve(c):
    with c:
        f = c.makefile("rwb")
        for line in f:
            f.write(sys.argv[1].encode() + b" " + line)
            f.flush()


while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

CLIENT = r"""
import socket
import sys

c = socket.create_connection((sys.argv[1], 80), timeout=3)
f = c.makefile("rwb")
for line in sys.stdin:
    try:
        f.write(line.encode())
        f.flush()
        reply = f.readline().decode().strip()
    except OSError as exc:
        reply = "ERROR " + str(exc)
    print(reply or "ERROR closed", flush=True)
"""


class WorkerDaemon(CheckerDaemon):
    """The checker with its probes in worker processes (`--checker-workers N`)."""

    def __init__(self, *args: Any, workers: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workers = workers

    def command(self) -> list[str]:
        return [*super().command(), "--checker-workers", str(self.workers)]


class ReloadLab:
    def __init__(self, public: Lan, private: Lan, workdir: Path) -> None:
        self.client = public.add_host("c", 100)
        self.lb = public.add_host("lb", 2)
        private.attach(self.lb, "eth1", 8)
        self.rs = [private.add_host(f"rs{i}", i) for i in (1, 2, 3)]
        self.lb.netns.sysctl("net.ipv4.ip_forward", "1")
        self.lb.netns.ip("addr", "add", f"{VIP}/32", "dev", "eth0")
        for rs in self.rs:
            rs.netns.ip("route", "add", "default", "via", "10.11.12.8")
        self.servers = [PlainServer(rs, ECHO, str(rs.ipv4.ip)).start(wait_port=80) for rs in self.rs]
        self.workdir = workdir
        self.daemon: CheckerDaemon | None = None
        self.clients: list[subprocess.Popen[str]] = []

    def ip(self, i: int) -> str:
        return str(self.rs[i].ipv4.ip)

    def start(self, conf: str, workers: int | None = None) -> CheckerDaemon:
        self.daemon = (WorkerDaemon(self.lb, self.workdir, conf, name="reload", workers=workers) if workers
                       else CheckerDaemon(self.lb, self.workdir, conf, name="reload"))
        self.daemon.start()
        return self.daemon

    def connect(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(self.client.netns.argv([sys.executable, "-c", CLIENT, VIP]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.clients.append(proc)
        return proc

    def ping(self, word: str, proc: subprocess.Popen[str] | None = None) -> str:
        """One line through a long-lived connection (the first by default); the reply names the real server."""
        proc = proc or self.clients[0]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(word + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def close(self) -> None:
        for proc in self.clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        stop_all(self.servers, [self.daemon] if self.daemon else [])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[ReloadLab]:
    prefix = unique_prefix("rld")
    with Lan(prefix, ipv4_net="203.0.113.0/24", ipv6_net="2001:db8:203::/64") as public, \
            Lan(f"{prefix}-p", ipv4_net="10.11.12.0/24", ipv6_net="2001:db8:10::/64") as private:
        lab = ReloadLab(public, private, tmp_path)
        try:
            yield lab
        finally:
            lab.close()


def rs_block(ip: str, check: str = "connect_timeout 1", port: int = 80, extra: str = "") -> str:
    return f"""
    real_server {ip} {port} {{
        weight 1
        {extra}
        TCP_CHECK {{
            {check}
        }}
    }}"""


def conf(*servers: str, broken: bool = False, glob: str = "", more: str = "") -> str:
    return f"""
global_defs {{
    router_id lb
    {glob}
}}
{more}
virtual_server {VIP} 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
{''.join(servers)}
{'    no_such_block {' if broken else ''}
}}
"""


def handles(lab: ReloadLab) -> list[tuple[str, Any]]:
    """Every object of the ruleset with its kernel handle: a rule re-made gets a new one."""
    out = lab.lb.netns.run(["nft", "-j", "list", "ruleset"]).stdout
    items = json.loads(out)["nftables"]
    return sorted((kind, json.dumps(obj.get("handle"))) + ((obj.get("name") or obj.get("chain") or "",))
                  for item in items for kind, obj in item.items() if kind != "metainfo")


def reload(lab: ReloadLab, d: CheckerDaemon, new_conf: str | None, *, refused: bool = False) -> None:
    if new_conf is not None:
        d.conf_path.write_text(new_conf)
    word = "refused" if refused else "finished"
    before = d.log().count(f"checker reload {word}")
    os.kill(d.pid, signal.SIGHUP)
    wait_until(lambda: d.log().count(f"checker reload {word}") > before, 10,
               what=f"reload {word}:\n{d.log()[-3000:]}")


def decisions_since(d: CheckerDaemon, mark: int) -> str:
    return "\n".join(line for line in d.log()[mark:].splitlines()
                     if "Adding service" in line or "Removing service" in line or "failed after" in line
                     or "succeeded" in line)


def test_reload_applies_only_the_difference_and_keeps_the_connection(lab: ReloadLab) -> None:
    d = lab.start(conf(rs_block(lab.ip(0)), rs_block(lab.ip(1))))
    rs1, rs2, rs3 = (f"[{lab.ip(i)}]:80" for i in range(3))
    wait_until(lambda: set(d.destinations()) == {rs1, rs2} and d.status()["applied"], 10,
               what=f"both servers in the table:\n{d.log()[-2000:]}")
    lab.connect()
    first = lab.ping("hello")
    assert first.endswith(" hello"), first
    held = first.split()[0]  # the real server the long-lived connection goes to
    other = lab.ip(1) if held == lab.ip(0) else lab.ip(0)
    to_other = lab.connect()  # rr: the next connection goes to the other server, which a reload removes
    assert lab.ping("hi", to_other) == f"{other} hi"
    mark = len(d.log())

    # the same file, three times: no rule re-made, no state change, the connection works
    ruleset = handles(lab)
    for _ in range(3):
        reload(lab, d, None)
    assert "no virtual server, real server or checker changed" in d.log()
    assert handles(lab) == ruleset
    assert lab.ping("same") == f"{held} same"

    # a real server added: in the table as at boot (no alpha: at once), the others untouched
    reload(lab, d, conf(rs_block(lab.ip(0)), rs_block(lab.ip(1)), rs_block(lab.ip(2))))
    wait_until(lambda: set(d.destinations()) == {rs1, rs2, rs3}, 5, what="rs3 added")
    assert f"Adding service {rs3.replace(']:', ']:tcp:')} to VS [{VIP}]:tcp:80" in d.log()
    assert lab.ping("added") == f"{held} added"

    # the server the connection does not use removed: it leaves the table, the connection stays
    keep = [lab.ip(2), held]
    reload(lab, d, conf(*(rs_block(ip) for ip in sorted(keep))))
    gone = f"[{other}]:80"
    wait_until(lambda: gone not in d.destinations(), 5, what="removed server gone")
    assert f"Removing service [{other}]:tcp:80 from VS [{VIP}]:tcp:80" in d.log()
    assert lab.ping("removed") == f"{held} removed"
    assert lab.ping("still", to_other) == f"{other} still"  # its conntrack entry and NAT mapping live on

    # a checker's parameter changed: takes effect at its next check, the server stays up
    changed = conf(*(rs_block(ip, "connect_timeout 2" if ip == held else "connect_timeout 1") for ip in sorted(keep)))
    reload(lab, d, changed)
    assert "new settings, taking effect at its next check" in d.log()
    ruleset = handles(lab)
    table = d.destinations()

    # a broken file: refused, everything as it was
    reload(lab, d, conf(*(rs_block(ip) for ip in sorted(keep)), broken=True), refused=True)
    assert handles(lab) == ruleset
    assert d.destinations() == table
    assert lab.ping("after") == f"{held} after"
    time.sleep(1.5)  # a few more checks: the servers that were UP stay UP without a decision
    assert d.alive()
    assert decisions_since(d, mark).count("Adding service") == 1  # rs3, and nothing else
    assert "failed after" not in decisions_since(d, mark)
    assert all(all(c["verdict"] == "up" for c in s["checkers"]) for s in d.status()["services"][0]["real_servers"])


def test_reload_with_worker_processes_keeps_verdicts_and_runs_the_new_config(lab: ReloadLab) -> None:
    """Workers restart with the new plan and the state the checker process kept; alpha, new and removed services."""
    rs1, rs2, rs3 = (lab.ip(i) for i in range(3))
    # rs2 on port 81: nobody listens, so it is DOWN
    d = lab.start(conf(rs_block(rs1), rs_block(rs2, "connect_timeout 1\n retry 0", port=81)), workers=2)
    wait_until(lambda: set(d.destinations()) == {f"[{rs1}]:80"} and "failed after" in d.log()
               and d.log().count("Checker worker") >= 2, 10, what=f"rs1 in, rs2 out:\n{d.log()[-2000:]}")
    mark = len(d.log())
    second = f"""
virtual_server {VIP} 8080 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
{rs_block(rs1)}
}}
"""
    reload(lab, d, conf(rs_block(rs1), rs_block(rs2, "connect_timeout 1\n retry 0", port=81),
                        rs_block(rs3, extra="alpha"), glob="lvs_flush", more=second))
    log = d.log()[mark:]
    assert "global_defs lvs_flush changed: the checker needs a restart" in log
    assert f"Adding Virtual Server [{VIP}]:tcp:8080" in log
    assert f"Adding service [{rs3}]:tcp:80" not in log  # alpha: DOWN until its first check passes
    main = f"[{VIP}]:tcp:80"
    wait_until(lambda: f"[{rs3}]:80" in d.destinations(main), 5, what="rs3 in after its first check")
    wait_until(lambda: d.destinations(f"[{VIP}]:tcp:8080") == {f"[{rs1}]:80": (1, True)}, 5,
               what="the new service's table")
    assert d.log()[mark:].count("Checker worker 0/2 runs") == 1  # restarted once, with the new plan
    time.sleep(2.5)  # several checks of each: the kept verdicts hold, nothing flaps or is re-confirmed
    later = decisions_since(d, mark)
    assert f"[{rs2}]" not in later and f"[{rs1}]:tcp:80 to VS [{VIP}]:tcp:80" not in later, later
    assert d.alive()

    reload(lab, d, conf(rs_block(rs1), rs_block(rs3, extra="alpha")))
    assert f"Removing Virtual Server [{VIP}]:tcp:8080" in d.log()
    wait_until(lambda: [s["name"] for s in d.status()["table"]["services"]] == [f"[{VIP}]:tcp:80"], 5,
               what="the second service gone")
    assert set(d.destinations(main)) == {f"[{rs1}]:80", f"[{rs3}]:80"}  # rs3 was UP: it stays, no re-check
    assert d.alive()
