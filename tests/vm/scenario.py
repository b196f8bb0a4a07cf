"""One scripted checker scenario, run the same way under keepalived and under pykeepalived.

A `lb` namespace runs the checker daemon; real servers are real programs in
`rs1`/`rs2`: TCP listeners, nginx (HTTP_GET with status_code and digest), and
a MISC_CHECK script whose exit code a state file sets. Every few seconds one
step changes them (kill, come back, wrong status, wrong digest, hang past
connect_timeout, script failing), several services at once. What is compared
is each real server's sequence of up/down decisions, read from the "Adding /
Removing service" lines both daemons log.

keepalived's checker exits on a kernel without IPVS, so it runs inside the
qemu guest (tests/vm/guest.py); pykeepalived runs the same scenario on the
host. Run by hand:
    python -m tests.vm.scenario --daemon pykeepalived --workdir /tmp/x
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pykeepalived.lab import Lan, unique_prefix, wait_until
from pykeepalived.lab.checkers import CheckerDaemon, PlainServer, parse_decisions, stop_all, tcp_listener
from pykeepalived.lab.topology import Host

STEP_S = 6.0  # every state lasts at least this long: longer than any checker's removal bound below
SETTLE_S = 8.0
START_WAIT_S = 60.0  # Python runs 20-30 times slower in the emulated guest
TCP_PORT = 9000
VS_TCP = "192.0.2.200 9000"
VS_HTTP = "192.0.2.200 80"
VS_MISC = "192.0.2.200 7000"


NGINX_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {address}:80;
        root {dir}/www;
        location / {{
            if (-f {dir}/www/fail) {{ return 500; }}
        }}
    }}
}}
"""

PAGE = "pykeepalived scenario page\n"


class Nginx:
    def __init__(self, host: Host, workdir: Path) -> None:
        self.host = host
        self.dir = workdir / f"nginx-{host.name}"
        (self.dir / "www").mkdir(parents=True, exist_ok=True)
        (self.dir / "www" / "index.html").write_text(PAGE)
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(dir=self.dir, address=host.ipv4.ip))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = self.host.netns.popen(["nginx", "-c", str(self.conf), "-g", "daemon off;"])
        wait_until(lambda: ":80 " in self.host.netns.run(["ss", "-Hlnt"]).stdout, START_WAIT_S,
                   what="nginx listening")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.host.netns.run(["kill", "-9", "--", f"-{self.proc.pid}"], check=False)
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def set_status(self, failing: bool) -> None:
        fail = self.dir / "www" / "fail"
        if failing:
            fail.write_text("")
        else:
            fail.unlink(missing_ok=True)

    def set_page(self, text: str) -> None:
        (self.dir / "www" / "index.html").write_text(text)


@dataclass
class World:
    lan: Lan
    workdir: Path
    lb: Host
    rs: list[Host]
    tcp: list[PlainServer | None]
    nginx: list[Nginx]

    def ip(self, i: int) -> str:
        return str(self.rs[i].ipv4.ip)

    def misc_state(self, i: int, code: int) -> None:
        (self.workdir / f"misc{i}.state").write_text(f"{code}\n")

    def drop_syn(self, i: int, on: bool) -> None:
        ns = self.rs[i].netns
        if on:
            ns.run(["nft", f"add table inet scen; add chain inet scen in {{ type filter hook input priority 0; }}; "
                           f"add rule inet scen in tcp dport {TCP_PORT} drop"])
        else:
            ns.run(["nft", "delete table inet scen"], check=False)

    def tcp_kill(self, i: int) -> None:
        server = self.tcp[i]
        if server is not None:
            server.kill()
        self.tcp[i] = None

    def tcp_start(self, i: int) -> None:
        self.tcp[i] = tcp_listener(self.rs[i], self.ip(i), TCP_PORT, wait_s=START_WAIT_S)


def config(world: World, digest: str) -> str:
    rs_tcp = "".join(f"""
    real_server {world.ip(i)} {TCP_PORT} {{
        TCP_CHECK {{
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }}
    }}""" for i in range(2))
    rs_http = "".join(f"""
    real_server {world.ip(i)} 80 {{
        {"inhibit_on_failure" if i == 1 else ""}
        HTTP_GET {{
            url {{
                path /index.html
                digest {digest}
                status_code 200
            }}
            connect_timeout 1
            retry 2
            delay_before_retry 0.5
        }}
    }}""" for i in range(2))
    rs_misc = "".join(f"""
    real_server {world.ip(i)} 7000 {{
        MISC_CHECK {{
            misc_path "{world.workdir}/misc.sh {world.workdir}/misc{i}.state"
            misc_timeout 2
            retry 1
            delay_before_retry 0.5
        }}
    }}""" for i in range(2))
    return f"""
global_defs {{
    router_id scenario
    enable_script_security
    script_user root
}}
virtual_server {VS_TCP} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    sorry_server 192.0.2.99 9000
{rs_tcp}
}}
virtual_server {VS_HTTP} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
{rs_http}
}}
virtual_server {VS_MISC} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha
{rs_misc}
}}
"""


def steps(world: World) -> list[tuple[str, Callable[[], None]]]:
    """The scripted events: each runs STEP_S after the previous one.

    Within one virtual server only one real server changes per step, so that no
    decision depends on which of two checkers happens to run first: keepalived
    itself would go either way (an HTTP server coming back needs two rounds).
    """
    return [
        ("tcp rs1 killed; http rs1 answers 500; misc rs2 fails", lambda: (
            world.tcp_kill(0), world.nginx[0].set_status(True), world.misc_state(1, 1))),
        ("tcp rs1 back; http rs1 200 again; misc rs2 ok", lambda: (
            world.tcp_start(0), world.nginx[0].set_status(False), world.misc_state(1, 0))),
        ("tcp rs2 hangs past connect_timeout; http rs2 wrong digest; misc rs1 fails", lambda: (
            world.drop_syn(1, True), world.nginx[1].set_page("changed\n"), world.misc_state(0, 1))),
        ("tcp rs2 answers again; http rs2 right page; misc rs1 ok", lambda: (
            world.drop_syn(1, False), world.nginx[1].set_page(PAGE), world.misc_state(0, 0))),
        ("nginx rs1 killed", lambda: world.nginx[0].kill()),
        ("nginx rs1 back", lambda: world.nginx[0].start()),
    ]


QUORUM = re.compile(r"(?P<what>Gained quorum|Lost quorum|Starting with quorum down|Adding sorry server|"
                    r"Removing sorry server|Enabling sorry server|Disabling sorry server)\b.* (?:for|to|from) VS "
                    r"(?P<vs>\S+)\s*$")


def decision_sequences(log: str) -> dict[str, list[str]]:
    """Per real server its up/down decisions, and per virtual server its quorum and sorry-server events."""
    sequences: dict[str, list[str]] = {}
    for d in parse_decisions(log):
        sequences.setdefault(f"{d.virtual_server} {d.real_server}", []).append("up" if d.up else "down")
    for line in log.splitlines():
        m = QUORUM.search(line)
        if m is not None:
            sequences.setdefault(f"{m.group('vs')} quorum", []).append(m.group("what"))
    return sequences


def run(daemon_kind: str, workdir: Path) -> dict[str, list[str]]:
    """Run the scenario under one daemon; returns each real server's decision sequence ("up"/"down")."""
    import hashlib

    workdir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(PAGE.encode()).hexdigest()
    misc = workdir / "misc.sh"
    misc.write_text("#!/bin/sh\nexit $(cat \"$1\")\n")
    misc.chmod(0o755)
    with Lan(unique_prefix("scn")) as lan:
        world = World(lan, workdir, lan.add_host("lb", 1), [lan.add_host(f"rs{i}", 11 + i) for i in range(2)],
                      [None, None], [])
        daemon: CheckerDaemon | None = None
        try:
            for i in range(2):
                world.misc_state(i, 0)
                world.tcp_start(i)
                nginx = Nginx(world.rs[i], workdir)
                nginx.start()
                world.nginx.append(nginx)
            daemon = CheckerDaemon(world.lb, workdir, config(world, digest), kind=daemon_kind)
            daemon.start()
            time.sleep(SETTLE_S)
            for text, act in steps(world):
                print(f"{time.strftime('%H:%M:%S')} step: {text}", flush=True)
                act()
                time.sleep(STEP_S)
        finally:
            servers = [s for s in world.tcp if s is not None]
            stop_all(servers, [daemon] if daemon is not None else [])
            for nginx in world.nginx:
                nginx.kill()
        log = daemon.log() if daemon is not None else ""
    (workdir / f"{daemon_kind}.log").write_text(log)
    sequences = decision_sequences(log)
    (workdir / f"{daemon_kind}.decisions.json").write_text(json.dumps(sequences, indent=1))
    return sequences


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--daemon", choices=("keepalived", "pykeepalived"), required=True)
    p.add_argument("--workdir", type=Path, required=True)
    args = p.parse_args()
    if args.daemon == "keepalived" and shutil.which("keepalived") is None:
        print("keepalived is not installed", file=sys.stderr)
        return 2
    print(json.dumps(run(args.daemon, args.workdir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
