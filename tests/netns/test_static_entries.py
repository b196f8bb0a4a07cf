"""static_ipaddress / static_routes / static_rules: installed at start, kept whatever the state, gone at stop.

keepalived 2.2.7 and pykeepalived run the same configuration in the same
namespace one after the other; `ip addr`, `ip route` and `ip rule` must show
the same static entries while each runs (through its instance's move from
BACKUP to MASTER), and none once it stopped (keepalived 2.2.7 deletes them on
stop). A leftover static address from an earlier run is simply taken over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .tracking_box import Box, make_box, vi_1, wait_for
from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

CONF = """global_defs {
  router_id st
}
static_ipaddress {
  198.51.100.1/24 dev eth1
  203.0.113.5/32 dev eth0 scope link
}
static_routes {
  198.51.100.128/25 via 198.51.100.254 dev eth1
  10.9.0.0/16 dev eth0 table 100
}
static_rules {
  from 198.51.100.1 table 100 priority 1000
}
""" + vi_1("BACKUP")


@pytest.fixture
def box() -> Iterator[Box]:
    yield from make_box("pkst")


def statics(box: Box) -> list[str]:
    """The static entries as ip shows them (addresses without lifetimes), sorted."""
    lines = [" ".join(line.split()[1:4]) + " scope " + re.findall(r"scope (\S+)", line)[0]
             for line in box.ip("-o", "addr", "show").splitlines()
             if "198.51.100.1/" in line or "203.0.113.5/" in line]
    lines += [line.strip() for line in box.ip("route", "show", "table", "all").splitlines()
              if "198.51.100.128" in line or "10.9.0.0" in line]
    lines += [line.strip() for line in box.ip("rule", "show").splitlines() if "198.51.100.1" in line]
    return sorted(re.sub(r"\s+", " ", line) for line in lines)


def run(box: Box, kind: str) -> tuple[list[str], list[str], list[str]]:
    """(entries while BACKUP, while MASTER, after stop)."""
    conf = box.conf(CONF)
    with box.running(kind, conf, "-P") as log:
        assert wait_for(lambda: len(statics(box)) == 5, 10) is not None, (statics(box), log())
        backup = statics(box)
        assert "192.0.2.201" not in box.ip("addr", "show", "eth0")
        assert wait_for(lambda: "192.0.2.201" in box.ip("addr", "show", "eth0"), 10) is not None, log()
        master = statics(box)
    return backup, master, statics(box)


def test_static_entries_as_keepalived(box: Box) -> None:
    if not HAVE_KEEPALIVED:
        pytest.skip("keepalived not installed")
    ka = run(box, "ka")
    box.ip("addr", "add", "198.51.100.1/24", "dev", "eth1")  # a leftover: taken over, removed at stop
    py = run(box, "py")
    print(ka, py, sep="\n")
    assert ka[0] == ka[1] and len(ka[0]) == 5 and ka[2] == []
    assert py == ka
