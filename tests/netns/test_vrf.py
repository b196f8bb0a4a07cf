"""`vrf NAME` as keepalived 2.2.7 runs it: never in effect.

keepalived 2.2.7 takes `vrf` only for a unicast instance without `interface`,
but its minimum-configuration check (chk_min_cfg) refuses any instance
without an interface before it has looked at the unicast peers ("Unknown
interface!": the VRRP process exits). With an interface, vrf is ignored
(a configuration error) and the instance runs on its interface as if vrf were
not there; pykeepalived refuses to start on that configuration error, as on
every other (a deliberate difference of the whole project, not of vrf).
Both cases run here under keepalived 2.2.7 and pykeepalived.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pykeepalived.lab import LabError, VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

VRID = 54


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vf")


def _config(host: Host, peer: Host, with_interface: bool) -> str:
    where = f"interface {host.ifname}" if with_interface else f"vrf {host.ifname}"
    vrf = f"    vrf {host.ifname}\n" if with_interface else ""
    return f"""global_defs {{
    router_id {host.name}
}}
vrrp_instance VI_1 {{
    state BACKUP
    {where}
{vrf}    virtual_router_id {VRID}
    priority 150
    advert_int 0.2
    version 3
    unicast_src_ip {host.ipv4.ip}
    unicast_peer {{
        {peer.ipv4.ip}
    }}
    virtual_ipaddress {{
        {VIP4} dev {host.ifname}
    }}
}}
"""


def _peer(lab: Lab, kind: str, with_interface: bool) -> VrrpPeer:
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=VRID, priority=150, vips=[VIP4])])
    peer.conf_path.write_text(_config(lab.r1, lab.r2, with_interface))  # type: ignore[attr-defined]
    return peer


def test_vrf_with_interface_is_ignored(lab: Lab) -> None:
    theirs = _peer(lab, "ka", True)
    theirs.start()
    wait_until(lambda: theirs.holds(VIP4.ip), 5.0, what="keepalived master on its interface")
    theirs.stop()
    ours = _peer(lab, "py", True)
    with pytest.raises(LabError, match="exited") as failure:
        ours.start()
    text = str(failure.value)
    assert "keepalived.conf:7: vrf: (VI_1) cannot specify VRF interface and interface - ignoring" in text
    assert "not acted on" not in text, text


@pytest.mark.parametrize("kind", ["ka", "py"])
def test_vrf_without_interface_does_not_start(lab: Lab, kind: str) -> None:
    peer = _peer(lab, kind, False)
    with pytest.raises(LabError, match="exited"):
        peer.start()
    assert not peer.holds(VIP4.ip)
