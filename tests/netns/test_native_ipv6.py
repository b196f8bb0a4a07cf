"""native_ipv6 against keepalived 2.2.7: the same configuration interoperates over IPv6 (VRRPv3).

keepalived 2.2.7's native_ipv6 only sets the instance's family to IPv6 and
its version to 3 while the file is read (vrrp_parser.c); nothing else reads
it. Since VRRPv3 needs a VIP and every VIP must then be IPv6 (an IPv4 one is
a configuration error, as is native_ipv6 after one), the family is IPv6 at run
time either way: this pins that pykeepalived (r1, priority 150) and
keepalived (r2, 100) agree on one master with native_ipv6 in both configs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpPeer, VrrpSettings
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP6, Lab, lab_fixture, needs_root, wait_sole_holder

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

VRID = 55


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "n6")


def _config(host: Host, priority: int) -> str:
    return f"""global_defs {{
    router_id {host.name}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {host.ifname}
    virtual_router_id {VRID}
    priority {priority}
    advert_int 0.2
    native_ipv6
    virtual_ipaddress {{
        {VIP6} dev {host.ifname}
    }}
}}
"""


def _peer(lab: Lab, kind: str, host: Host, priority: int) -> VrrpPeer:
    peer = lab.peer(kind, host, [VrrpSettings(vrid=VRID, priority=priority, vips=[VIP6], version=3)])
    peer.conf_path.write_text(_config(host, priority))  # type: ignore[attr-defined]
    return peer


def test_native_ipv6_instance_with_keepalived_peer(lab: Lab) -> None:
    theirs = _peer(lab, "ka", lab.r2, 100)
    ours = _peer(lab, "py", lab.r1, 150)
    theirs.start()
    ours.start()
    wait_sole_holder(ours, [theirs], VIP6, 5.0, 1.0)
    assert theirs.states() == {"VI_1": "BACKUP"}, theirs.log()[-2000:]
    ours.stop()
    wait_sole_holder(theirs, [ours], VIP6, 5.0, 0.5)
