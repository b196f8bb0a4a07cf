"""Routers on LANs of their own, and a daemon a test starts there by hand: with a log file, stopped as a group.

The process-settings and dump tests (auto priority, process tuning,
data_use_instance, the dumps, netlink buffers, random_seed, rs_init_notifies)
each carried the same one-router fixture, the same start and the same stop,
and the gratuitous ARP tests the same two-LAN router; a fix to one (say, a
longer wait before SIGKILL) now reaches them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pykeepalived.lab import Lan, unique_prefix
from pykeepalived.lab.topology import Host

# A virtual server whose one real server, {rs}:8080, has a TCP_CHECK: the checker's configuration in the tests of
# checker-process settings. A str.format template (braces doubled) to append to one with a global_defs.
CHECKED_SERVER = """\
virtual_server 192.0.2.200 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server {rs} 8080 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


@contextmanager
def lone_router(tag: str) -> Iterator[Host]:
    """r1 (host number 11) alone on a Lan named unique_prefix(tag); the namespaces go at the end, even on failure."""
    with Lan(unique_prefix(tag)) as lan:
        yield lan.add_host("r1", 11)


@contextmanager
def router_on_two_lans(tag_a: str, tag_b: str) -> Iterator[tuple[Host, Host]]:
    """(r1, c2): r1 (11) on LAN A and, as eth1, on LAN B (198.51.100.0/24, 2001:db8:1::/64); c2 (50) on LAN B.

    Both Lans are named unique_prefix(tag) and removed at the end, even on failure.
    """
    with Lan(unique_prefix(tag_a)) as a, \
            Lan(unique_prefix(tag_b), ipv4_net="198.51.100.0/24", ipv6_net="2001:db8:1::/64") as b:
        r1 = a.add_host("r1", 11)
        b.attach(r1, "eth1", 11)
        yield r1, b.add_host("c2", 50)


def start_logged(host: Host, argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`argv` in the host's namespace (a process group of its own), stdout and stderr appended to `log`."""
    with open(log, "ab") as out:
        return host.netns.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (the daemon's clean stop takes its children), SIGKILL if it lasts past 10 s.

    The group, not the pid: a daemon killed alone would leave its VRRP and checker children running.
    """
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
