"""use_ipvlan against keepalived 2.2.7: the same ipvlan, or the same FAULT where the kernel has none.

keepalived 2.2.7 makes an L2 ipvlan (flags bridge/private/vepa) on the
instance's interface, adds the configured address to it and sends its
adverts from there; when the kernel cannot make one ("Unable to create ipvlan
interface") the instance stays in FAULT. The first test runs where the kernel
has no ipvlan support (this project's usual test kernel) and checks both
daemons fail alike; the second compares the kernel objects both daemons make
and runs only where ipvlan exists.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.netns import run_cmd
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

VRID = 56
NAME = "ipv56"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "iv")


def _kernel_has_ipvlan(host: Host) -> bool:
    probe = run_cmd(["ip", "-n", host.netns.name, "link", "add", "ivprobe", "link", host.ifname, "type", "ipvlan",
                     "mode", "l2"], check=False)
    if probe.returncode == 0:
        host.netns.ip("link", "del", "ivprobe")
        return True
    return False


def _address(host: Host) -> str:
    net = host.ipv4.network
    return f"{net.network_address + 56}/{net.prefixlen}"


def _config(host: Host) -> str:
    return f"""global_defs {{
    router_id {host.name}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {host.ifname}
    virtual_router_id {VRID}
    priority 150
    advert_int 0.2
    version 3
    use_ipvlan {NAME} {_address(host)} private
    virtual_ipaddress {{
        {VIP4} dev {host.ifname}
    }}
}}
"""


def _peer(lab: Lab, kind: str) -> VrrpPeer:
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=VRID, priority=150, vips=[VIP4])])
    peer.conf_path.write_text(_config(lab.r1))  # type: ignore[attr-defined]
    return peer


def _start(peer: VrrpPeer) -> None:
    try:
        peer.start()
    except LabError:
        pass  # keepalived logs no "Entering" line for an instance that starts in FAULT


def test_no_ipvlan_in_the_kernel_faults_as_keepalived(lab: Lab) -> None:
    if _kernel_has_ipvlan(lab.r1):
        pytest.skip("this kernel has ipvlan: test_ipvlan_as_keepalived covers it")
    for kind in ("ka", "py"):
        peer = _peer(lab, kind)
        _start(peer)
        time.sleep(1.5)  # a backup with no peer would be master after 0.8 s
        assert "Unable to create ipvlan interface ipv56" in peer.log(), peer.log()[-2000:]
        assert not peer.holds(VIP4.ip), f"{kind} took the VIP without its ipvlan"
        peer.close()


def _ipvlans(host: Host) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for link in host.netns.ip_json("-d", "link", "show"):
        info = link.get("linkinfo") or {}
        if info.get("info_kind") != "ipvlan":
            continue
        name = link["ifname"]
        addresses = sorted((a["local"], a["prefixlen"]) for entry in host.netns.ip_json("addr", "show", "dev", name)
                           for a in entry.get("addr_info", []) if a.get("family") == "inet")
        disable_ipv6 = host.netns.run(["cat", f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"]).stdout.strip()
        out[name] = {"data": info.get("info_data"), "base": link.get("link"), "up": "UP" in link.get("flags", []),
                     "addresses": addresses, "disable_ipv6": disable_ipv6}
    return out


def test_ipvlan_as_keepalived(lab: Lab) -> None:
    if not _kernel_has_ipvlan(lab.r1):
        pytest.skip("this kernel has no ipvlan")
    seen: dict[str, dict[str, Any]] = {}
    for kind in ("ka", "py"):
        peer = _peer(lab, kind)
        peer.start()
        wait_until(lambda: peer.holds(VIP4.ip), 5.0, what=f"{kind} master")  # noqa: B023
        seen[kind] = _ipvlans(lab.r1)
        peer.stop()
        assert not _ipvlans(lab.r1), f"{kind} left its ipvlan"
    assert NAME in seen["ka"], seen
    assert seen["py"] == seen["ka"]
