"""global_defs random_seed: ${_RANDOM} gives the same values on every start, glibc's random() for that seed.

The VIPs' last octets are drawn with ${_RANDOM}; the daemon puts glibc's
srandom(seed)/random() values on the interface (config/glibc_random.py), as
keepalived's man page describes. keepalived 2.2.7 itself resets the seed at
the start of every read (init_data), so its values stay time-based: not
compared with it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pykeepalived.config.glibc_random import GlibcRandom
from pykeepalived.lab import wait_until
from pykeepalived.lab.topology import Host

from .router_fixtures import lone_router, start_logged, stop_group
from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, needs_root]

SEED = 20261202
CONF = f"""
global_defs {{
    random_seed {SEED}
}}
vrrp_instance VI_1 {{
    state MASTER
    interface eth0
    virtual_router_id 99
    priority 150
    version 3
    advert_int 0.1
    virtual_ipaddress {{
        192.0.2.${{_RANDOM 20 250}}/24
        192.0.2.${{_RANDOM 20 250}}/24
    }}
}}
"""


@pytest.fixture
def host() -> Iterator[Host]:
    with lone_router("rs") as host:
        yield host


def _vips(host: Host, tmp_path: Path, kind: str) -> set[IPv4Address]:
    work = tmp_path / kind
    work.mkdir()
    conf = work / "keepalived.conf"
    conf.write_text(CONF)
    flags = ["-n", "-l", "-G", "-f", str(conf), "-p", str(work / "p.pid"), "-r", str(work / "r.pid"),
             "-c", str(work / "c.pid")]
    argv = ["keepalived", *flags] if kind == "ka" else [sys.executable, "-m", "pykeepalived", *flags]
    before = host.addresses()
    proc = start_logged(host, argv, work / "log")
    try:
        wait_until(lambda: len(host.addresses() - before) >= 2, 10,
                   what=f"two VIPs:\n{(work / 'log').read_text()[-2000:]}")
        return {a for a in host.addresses() - before if isinstance(a, IPv4Address)}
    finally:
        stop_group(proc)
        wait_until(lambda: host.addresses() == before, 5, what="the VIPs removed")


def test_random_values_follow_the_seed(host: Host, tmp_path: Path) -> None:
    draw = GlibcRandom(SEED)
    expected = {IPv4Address(f"192.0.2.{draw.between(20, 250)}") for _ in range(2)}
    assert _vips(host, tmp_path, "py") == expected

