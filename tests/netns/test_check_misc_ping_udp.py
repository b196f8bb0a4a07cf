"""MISC_CHECK, PING_CHECK and UDP_CHECK against real processes, sockets and kernels.

Every check runs as `pykeepalived probe -f CONF --json` inside the checker's
namespace of a two-host lab (checker 192.0.2.1 / 2001:db8::1, server
192.0.2.2 / 2001:db8::2): one attempt of each configured checker, results in
config order. The lab's namespaces, and with them every process started
inside, are deleted even when a test fails.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab.netns import Netns, pid_alive
from pykeepalived.lab.topology import Host, Lan, unique_prefix
from tests.scripts import script as script_file

from .vrrp_helpers import needs_root

pytestmark = [
    pytest.mark.netns,
    needs_root,
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables"),
]

PYTHON = sys.executable
SERVER4, SERVER6 = "192.0.2.2", "2001:db8::2"
HEADER = "global_defs {\n  router_id checker\n%s}\n"
ECHO_PORT, SILENT_PORT, CLOSED_PORT = 5000, 5001, 5002


@dataclass
class Lab:
    lan: Lan
    checker: Host
    server: Host
    workdir: Path


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Two hosts; a world-writable work directory for configs, scripts and what scripts write (run as nobody)."""
    workdir = Path(tempfile.mkdtemp(prefix="pyka-chk-"))
    workdir.chmod(0o1777)
    try:
        with Lan(unique_prefix("chk")) as lan:
            checker, server = lan.add_host("chk", 1), lan.add_host("srv", 2)
            # many ICMP errors in a row to one peer must not be rate limited away
            server.netns.sysctl("net.ipv4.icmp_ratelimit", "0")
            server.netns.sysctl("net.ipv6.icmp.ratelimit", "0")
            yield Lab(lan, checker, server, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_probes(lab: Lab, body: str, global_defs: str = "", timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """One attempt of every checker in `body` (virtual_server blocks), inside the checker's namespace."""
    conf = lab.workdir / "keepalived.conf"
    conf.write_text(HEADER % global_defs + textwrap.dedent(body))
    proc = lab.checker.netns.run([PYTHON, "-m", "pykeepalived", "probe", "-f", str(conf), "--json"],
                                 check=False, timeout_s=timeout_s)
    assert proc.returncode in (0, 4), proc.stderr
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results


def service(address: str, port: int, checkers: str, protocol: str = "TCP", rs_port: int | None = None,
            weight: int = 1) -> str:
    """A virtual server on `address` with one real server (the lab's server, same family) carrying `checkers`."""
    real = SERVER6 if ":" in address else SERVER4
    return f"""
virtual_server {address} {port} {{
  protocol {protocol}
  lb_algo rr
  lb_kind NAT
  delay_loop 5
  real_server {real} {rs_port or port} {{
    weight {weight}
{textwrap.indent(textwrap.dedent(checkers).strip(), "    ")}
  }}
}}
"""


def summary(results: list[dict[str, Any]]) -> list[tuple[bool, int | None]]:
    return [(r["ok"], r["weight_offset"]) for r in results]


def live_pids(ns: Netns) -> list[int]:
    return [p for p in ns.pids() if pid_alive(p)]


def script(lab: Lab, name: str, body: str) -> Path:
    path = lab.workdir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body).lstrip())
    path.chmod(0o755)
    return path


def misc(path: Path | str, extra: str = "") -> str:
    return f'MISC_CHECK {{\n  misc_path "{path}"\n{extra}}}\n'


# --------------------------------------------------------------------------- MISC_CHECK
def test_misc_check_exit_status_and_misc_dynamic(lab: Lab) -> None:
    ok, bad, seven = (script(lab, f"exit{n}.sh", f"echo chatter; echo more >&2; exit {n}\n") for n in (0, 1, 7))
    body = (service("192.0.2.100", 80, misc(ok)) + service("192.0.2.101", 80, misc(bad))
            + service("192.0.2.102", 80, misc(seven, "  misc_dynamic\n"), weight=3)
            + service("192.0.2.103", 80, misc(seven)) + service("192.0.2.104", 80, misc(ok, "  misc_dynamic\n")))
    results = run_probes(lab, body, "  script_user root\n  enable_script_security\n")
    # exit 7 with misc_dynamic: weight 7 - 2 = 5, so the offset on configured weight 3 is +2
    assert summary(results) == [(True, 0), (False, 0), (True, 2), (False, 0), (True, 0)]
    assert results[1]["reason"] == "failed (exited with status 1)"
    assert max(r["elapsed_s"] for r in results) < 2.0


def test_misc_check_hanging_script_and_its_children_are_killed_at_misc_timeout(lab: Lab) -> None:
    hangs = script(lab, "hang.sh", "sleep 1001 &\nsleep 1001\n")
    stubborn = script(lab, "stubborn.sh", "trap '' TERM\nsleep 1002 &\nsleep 1002\n")
    body = (service("192.0.2.100", 80, misc(hangs, "  misc_timeout 1\n"))
            + service("192.0.2.101", 80, misc(stubborn, "  misc_timeout 1\n")))
    results = run_probes(lab, body, "  script_user root\n  enable_script_security\n")
    assert summary(results) == [(False, 0), (False, 0)]
    assert [r["reason"] for r in results] == ["timed out after 1s", "timed out after 1s"]
    # SIGTERM at misc_timeout ends the plain script; the one ignoring SIGTERM is killed 2 s later
    assert 0.9 <= results[0]["elapsed_s"] < 1.8
    assert 2.9 <= results[1]["elapsed_s"] < 3.8
    assert live_pids(lab.checker.netns) == []
    leftovers = subprocess.run(["pgrep", "-f", "sleep 100[12]"], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == ""


def test_misc_check_runs_as_the_configured_user(lab: Lab) -> None:
    who = {name: lab.workdir / f"{name}.id" for name in ("own", "global", "root")}
    probe = script(lab, "whoami.sh", 'id -u > "$1"; id -g >> "$1"; id -G >> "$1"\n')
    body = (service("192.0.2.100", 80, misc(f"{probe} {who['own']}", "  user nobody\n"))
            + service("192.0.2.101", 80, misc(f"{probe} {who['global']}"))
            + service("192.0.2.102", 80, misc(f"{probe} {who['root']}", "  user root\n")))
    results = run_probes(lab, body, "  script_user nobody nogroup\n  enable_script_security\n")
    assert summary(results) == [(True, 0)] * 3
    nobody = ["65534", "65534", "65534"]  # uid, gid and the only group: never root's group 0
    assert who["own"].read_text().split() == nobody
    assert who["global"].read_text().split() == nobody
    assert who["root"].read_text().split()[:2] == ["0", "0"]


def test_misc_check_arguments_reach_the_program_literally(lab: Lab) -> None:
    out, pwned = lab.workdir / "args.out", lab.workdir / "pwned"
    args = script(lab, "args.sh", f"printf '%s\\n' \"$@\" > {out}\n")
    words = f"'a  b' ';' '$(touch {pwned})' \\\"it's\\\" '`id`' '>{pwned}' '*'"
    results = run_probes(lab, service("192.0.2.100", 80, misc(f"{args} {words}")),
                         "  script_user root\n  enable_script_security\n")
    assert summary(results) == [(True, 0)]
    assert out.read_text().splitlines() == ["a  b", ";", f"$(touch {pwned})", "it's", "`id`", f">{pwned}", "*"]
    assert not pwned.exists()


# --------------------------------------------------------------------------- PING_CHECK
PING = "PING_CHECK {\n  connect_timeout 1\n}\n"
PINGS = service("192.0.2.100", 80, PING) + service("2001:db8::100", 80, PING)


def test_ping_check_ipv4_and_ipv6_follow_the_link(lab: Lab) -> None:
    up = run_probes(lab, PINGS)
    assert [r["ok"] for r in up] == [True, True], up
    assert max(r["elapsed_s"] for r in up) < 0.5

    # Linux drops global IPv6 addresses on link down unless told otherwise
    lab.server.netns.sysctl("net.ipv6.conf.eth0.keep_addr_on_down", "1")
    lab.lan.set_link(lab.server, False)
    down = run_probes(lab, PINGS)
    assert [(r["ok"], r["reason"]) for r in down] == [(False, "no echo reply (timed out)")] * 2
    assert all(0.9 <= r["elapsed_s"] < 1.5 for r in down)

    lab.lan.set_link(lab.server, True)
    back = run_probes(lab, PINGS)
    assert [r["ok"] for r in back] == [True, True], back


def test_ping_check_fails_when_the_server_drops_or_rejects_echo(lab: Lab) -> None:
    nft = lab.server.netns
    nft.run(["nft", "add table inet guard"])
    nft.run(["nft", "add chain inet guard in { type filter hook input priority 0 ; policy accept ; }"])
    nft.run(["nft", "add rule inet guard in icmp type echo-request drop"])
    nft.run(["nft", "add rule inet guard in icmpv6 type echo-request drop"])
    dropped = run_probes(lab, PINGS)
    assert [(r["ok"], r["reason"]) for r in dropped] == [(False, "no echo reply (timed out)")] * 2
    assert closed_port_still_answers(lab)

    nft.run(["nft", "flush chain inet guard in"])
    nft.run(["nft", "add rule inet guard in icmp type echo-request reject with icmp type admin-prohibited"])
    nft.run(["nft", "add rule inet guard in icmpv6 type echo-request reject with icmpv6 type admin-prohibited"])
    rejected = run_probes(lab, PINGS)
    # an error quoting our echo ends the attempt before connect_timeout
    assert [r["ok"] for r in rejected] == [False, False]
    assert rejected[0]["reason"] == "administratively filtered (ICMP type 3 code 13)"
    assert rejected[1]["reason"] == "administratively prohibited (ICMPv6 type 1 code 1)"
    assert max(r["elapsed_s"] for r in rejected) < 0.5


def closed_port_still_answers(lab: Lab) -> bool:
    """The drop rule is the only reason pings fail: UDP to a closed port still gets its ICMP error."""
    results = run_probes(lab, service("192.0.2.100", CLOSED_PORT, "UDP_CHECK {\n  connect_timeout 2\n}\n", "UDP"))
    return [r["ok"] for r in results] == [False]


def test_ping_check_over_the_unprivileged_datagram_socket(lab: Lab) -> None:
    ns = lab.checker.netns
    ns.sysctl("net.ipv4.ping_group_range", "0 2147483647")  # per namespace: the lab's own
    proc = ns.run([PYTHON, script_file("ping_dgram.py"), SERVER4, SERVER6], timeout_s=20)
    assert json.loads(proc.stdout) == [[True, ""], [True, ""]]


@contextmanager
def udp_server(host: Host) -> Iterator[None]:
    """A UDP echo service (replies "OK:" + data) and a silent one in the host's namespace."""
    proc = host.netns.popen([PYTHON, script_file("udp_servers.py"), str(ECHO_PORT), str(SILENT_PORT)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with proc:
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready and proc.stdout.readline().strip() == b"READY"
            yield
        finally:
            proc.kill()


def udp(extra: str = "", port: int = ECHO_PORT, timeout: int = 1) -> str:
    return f"UDP_CHECK {{\n  connect_port {port}\n  connect_timeout {timeout}\n{extra}}}\n"


UDP_CASES = [
    # (checker, ok)
    (udp('  payload 68656c6c6f\n  require_reply "4f 4b 3a 68 65"\n'), True),  # "OK:he" prefix of "OK:hello"
    (udp('  require_reply "4f4b3a 6X 6X"\n'), True),  # default payload "keepalived check - ...": X nibbles
    (udp("  require_reply 4f4b3a78\n"), False),  # "OK:x" does not match "OK:k"
    (udp("  require_reply\n"), True),
    (udp("  require_reply 4f\n  max_reply_length 10\n"), False),  # 35-byte reply too long
    (udp("  require_reply 4f\n  min_reply_length 36\n"), False),  # too short
    (udp(), True),
    (udp("  require_reply\n", SILENT_PORT), False),  # nothing came back within connect_timeout
    (udp("", SILENT_PORT), True),  # silence is success without require_reply
    (udp("", CLOSED_PORT, 3), False),  # ICMP port unreachable
    (udp("  require_reply\n", CLOSED_PORT, 3), False),
]


@pytest.mark.parametrize("vip", ["192.0.2.100", "2001:db8::100"])
def test_udp_check_replies_silence_and_port_unreachable(lab: Lab, vip: str) -> None:
    body = service(vip, ECHO_PORT, "".join(checker for checker, _ in UDP_CASES), "UDP")
    with udp_server(lab.server):
        results = run_probes(lab, body)
    assert [r["ok"] for r in results] == [ok for _, ok in UDP_CASES], results
    by_reason = [r["reason"] for r in results]
    assert by_reason[2] == "reply data mismatch (35 bytes)"  # "OK:" + the 32-byte default payload
    assert by_reason[7] == "no reply (timed out)"
    unreachable = results[-2:]
    assert all("port unreachable" in r["reason"] for r in unreachable), unreachable
    assert all(r["elapsed_s"] < 0.5 for r in unreachable)
    silent = results[7:9]
    assert all(0.9 <= r["elapsed_s"] < 1.5 for r in silent)
