"""use_vmac_addr and vmac_addr_prefix against keepalived 2.2.7: the same VMACs, addresses and settings.

One config runs on r1, first under keepalived 2.2.7, then under pykeepalived:
an IPv4 instance on eth0 with use_vmac_addr, a VIP on eth0 (stays there), a
VIP on a second interface xa (gets an IPv4 VMAC there) and an IPv6 eVIP on
eth0 (the other family: an IPv6 VMAC on eth0, carrying eth0's link-local
address). keepalived 2.2.7 made va.VRID on xa and va6.VRID on eth0 (the
first name was taken); the kernel objects of both daemons must be equal, and
both must remove them on stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_helpers import VIP4, VIP6, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived]

VRID = 52
OTHER = "198.51.100.100/24"
IPV4_KEYS = ("arp_ignore", "arp_filter", "accept_local", "rp_filter", "promote_secondaries")
IPV6_KEYS = ("disable_ipv6", "addr_gen_mode")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "va")


def _config(host: Host) -> str:
    return f"""global_defs {{
    router_id {host.name}
    vmac_addr_prefix va
}}
vrrp_instance VI_1 {{
    state MASTER
    interface {host.ifname}
    virtual_router_id {VRID}
    priority 150
    advert_int 0.2
    version 3
    use_vmac_addr
    virtual_ipaddress {{
        {VIP4} dev {host.ifname}
        {OTHER} dev xa
    }}
    virtual_ipaddress_excluded {{
        {VIP6}
    }}
}}
"""


def _peer(lab: Lab, kind: str) -> VrrpPeer:
    peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=VRID, priority=150, vips=[VIP4])])
    text = _config(lab.r1)
    if kind == "py":
        text = text.replace("global_defs {", f"global_defs {{\n    json_dump_file {lab.workdir / 'py.json'}")
    peer.conf_path.write_text(text)  # type: ignore[attr-defined]
    return peer


def _sysctl(host: Host, family: int, ifname: str, key: str) -> str:
    path = f"/proc/sys/net/ipv{family}/conf/{ifname}/{key}"
    return host.netns.run(["cat", path], check=False).stdout.strip()


def _kernel(host: Host) -> dict[str, Any]:
    """Every macvlan with its mode, MAC, base, addresses and settings, and the bases' ARP settings."""
    out: dict[str, Any] = {}
    for link in host.netns.ip_json("-d", "link", "show"):
        info = link.get("linkinfo") or {}
        if info.get("info_kind") != "macvlan":
            continue
        name = link["ifname"]
        addresses = sorted(
            (a["local"], a["prefixlen"], a.get("preferred_life_time") == 0)
            for entry in host.netns.ip_json("addr", "show", "dev", name) for a in entry.get("addr_info", []))
        out[name] = {"mode": info["info_data"]["mode"], "mac": link["address"], "base": link.get("link"),
                     "up": "UP" in link.get("flags", []), "addresses": addresses,
                     "ipv4": {k: _sysctl(host, 4, name, k) for k in IPV4_KEYS},
                     "ipv6": {k: _sysctl(host, 6, name, k) for k in IPV6_KEYS}}
    for base in (host.ifname, "xa"):
        out[base] = {k: _sysctl(host, 4, base, k) for k in ("arp_ignore", "arp_filter")}
        out[f"{base} VIPs"] = sorted(str(a) for a in host.addresses(base) if str(a) in (str(VIP4.ip), "198.51.100.100"))
    return out


def _run(lab: Lab, kind: str) -> dict[str, Any]:
    peer = _peer(lab, kind)
    peer.start()
    wait_until(lambda: peer.states().get("VI_1") == "MASTER", 5.0, what=f"{kind} master")
    wait_until(lambda: VIP6.ip in lab.r1.all_addresses() and VIP4.ip in lab.r1.all_addresses(), 5.0,
               what=f"{kind}: every address in place")
    seen = _kernel(lab.r1)
    peer.stop()
    left = [n for n, v in _kernel(lab.r1).items() if isinstance(v, dict) and "mode" in v]
    assert not left, f"{kind} left VMACs behind: {left}"
    return seen


def test_vmac_addr_as_keepalived(lab: Lab) -> None:
    lab.r1.netns.ip("link", "add", "xa", "type", "veth", "peer", "name", "xb")
    for ifname in ("xa", "xb"):
        lab.r1.netns.ip("link", "set", ifname, "up")
    lab.r1.netns.ip("addr", "add", "198.51.100.1/24", "dev", "xa")
    wait_until(lambda: any(a.is_link_local for a in lab.r1.addresses(lab.r1.ifname) if a.version == 6), 5.0,
               what="eth0's link-local address")
    before = {b: {k: _sysctl(lab.r1, 4, b, k) for k in ("arp_ignore", "arp_filter")} for b in (lab.r1.ifname, "xa")}
    theirs = _run(lab, "ka")
    assert {"va.52", "va6.52"} <= set(theirs), theirs  # what keepalived 2.2.7 makes, checked once
    assert theirs["va.52"]["base"] == "xa" and theirs["va6.52"]["base"] == lab.r1.ifname
    for b in before:  # keepalived leaves the base interfaces' ARP settings: put them back for our run
        for k, v in before[b].items():
            lab.r1.netns.run(["sh", "-c", f"echo {v} > /proc/sys/net/ipv4/conf/{b}/{k}"])
    ours = _run(lab, "py")
    assert ours == theirs
    after = {b: {k: _sysctl(lab.r1, 4, b, k) for k in ("arp_ignore", "arp_filter")} for b in (lab.r1.ifname, "xa")}
    assert after == before, "the base interfaces' settings were not put back"
