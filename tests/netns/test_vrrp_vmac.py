"""use_vmac / vmac_xmit_base against keepalived 2.2.7: the macvlan, its MAC and settings, who sends what.

keepalived 2.2.7 (observed in the lab): a private-mode macvlan vrrp.VRID with
MAC 00:00:5e:00:01:VRID carries the VIPs; arp_ignore=1, accept_local=1,
rp_filter=0, promote_secondaries=1 on it, arp_ignore=1 and arp_filter=1 on
the base interface; no IPv6 on an IPv4 instance's VMAC; adverts and GARPs
leave from the virtual MAC, or the adverts from the base interface with
vmac_xmit_base; the macvlan goes when keepalived stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pykeepalived.lab import VrrpPeer, VrrpSettings, wait_until
from pykeepalived.lab.topology import Host

from .vrrp_capture import capture, fields, needs_tshark
from .vrrp_helpers import VIP4, VIP6, Lab, lab_fixture, needs_root

pytestmark = [pytest.mark.netns, needs_root, pytest.mark.keepalived, needs_tshark]

VRID = 51
VMAC = "00:00:5e:00:01:33"
VMAC_IF = f"vrrp.{VRID}"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_fixture(tmp_path, "vm")


def _settings(priority: int, extra: list[str]) -> list[VrrpSettings]:
    return [VrrpSettings(vrid=VRID, priority=priority, vips=[VIP4], version=3, advert_int_s=0.2, extra=extra)]


def _on_vmac(host: Host, vip: IPv4Address | IPv6Address = VIP4.ip) -> bool:
    links = host.netns.ip_json("link", "show")
    return any(link.get("ifname") == VMAC_IF for link in links) and vip in host.addresses(VMAC_IF)


def _has_vmac(host: Host) -> bool:
    return any(link.get("ifname") == VMAC_IF for link in host.netns.ip_json("link", "show"))


def _sole_vmac_holder(holder: Host, other: Host) -> bool:
    return _on_vmac(holder) and not _on_vmac(other)


def _conf(host: Host, ifname: str, key: str) -> str:
    return host.netns.run(["cat", f"/proc/sys/net/ipv4/conf/{ifname}/{key}"]).stdout.strip()


def _vmac_link(host: Host) -> dict[str, object]:
    link = host.netns.ip_json("-d", "link", "show", "dev", VMAC_IF)[0]
    info = link["linkinfo"]
    return {"kind": info["info_kind"], "mode": info["info_data"]["mode"], "address": link["address"],
            "base": link.get("link")}


def _check_vmac_as_keepalived(host: Host) -> None:
    assert _vmac_link(host) == {"kind": "macvlan", "mode": "private", "address": VMAC, "base": host.ifname}
    assert {k: _conf(host, VMAC_IF, k) for k in ("arp_ignore", "accept_local", "rp_filter", "promote_secondaries")} \
        == {"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"}
    assert {k: _conf(host, host.ifname, k) for k in ("arp_ignore", "arp_filter")} == \
        {"arp_ignore": "1", "arp_filter": "1"}
    assert not any(isinstance(a, IPv6Address) for a in host.addresses(VMAC_IF)), "IPv6 on an IPv4 VMAC"


def _peer(lab: Lab, kind: str, host: Host, priority: int, extra: list[str]) -> VrrpPeer:
    return lab.peer(kind, host, _settings(priority, extra))


@pytest.mark.parametrize("xmit_base", [False, True], ids=["vmac", "vmac_xmit_base"])
def test_vmac_with_keepalived_peer(lab: Lab, tmp_path: Path, xmit_base: bool) -> None:
    extra = ["use_vmac", *(["vmac_xmit_base"] if xmit_base else [])]
    base_before = {k: _conf(lab.r1, lab.r1.ifname, k) for k in ("arp_ignore", "arp_filter")}
    ours = _peer(lab, "py", lab.r1, 150, extra)
    theirs = _peer(lab, "ka", lab.r2, 100, extra)
    pcap = tmp_path / "lan.pcap"
    with capture(lab.c, pcap, "ip proto 112 or arp"):
        theirs.start()
        ours.start()
        wait_until(lambda: _sole_vmac_holder(lab.r1, lab.r2), 8.0, what="our VIP on our VMAC only")
        _check_vmac_as_keepalived(lab.r1)
        lab.c.netns.ip("neigh", "flush", "dev", lab.c.ifname)
        assert lab.c.ping(VIP4.ip), "the VIP on the VMAC does not answer"
        assert theirs.states() == {"VI_1": "BACKUP"}, theirs.log()[-2000:]
    r1 = str(lab.r1.ipv4.ip)
    adverts = fields(pcap, f"vrrp && ip.src == {r1}", ["eth.src", "vrrp.prio"])
    assert adverts and {src for src, _ in adverts} == {lab.r1.mac() if xmit_base else VMAC}, adverts
    gratuitous = f"arp.opcode == 1 && arp.src.proto_ipv4 == {VIP4.ip} && arp.dst.proto_ipv4 == {VIP4.ip}"
    garps = fields(pcap, gratuitous, ["eth.src", "arp.src.hw_mac"])
    assert garps and set(map(tuple, garps)) == {(VMAC, VMAC)}, garps
    replies = fields(pcap, f"arp.opcode == 2 && arp.src.proto_ipv4 == {VIP4.ip}", ["eth.src", "arp.src.hw_mac"])
    assert replies and set(map(tuple, replies)) == {(VMAC, VMAC)}, replies

    # clean stop: keepalived takes over on its own VMAC, ours is gone and the base interface is as before
    ours.stop()
    wait_until(lambda: _sole_vmac_holder(lab.r2, lab.r1), 5.0, what="keepalived's VIP on its VMAC")
    assert not _has_vmac(lab.r1), "our VMAC outlived the daemon"
    assert {k: _conf(lab.r1, lab.r1.ifname, k) for k in ("arp_ignore", "arp_filter")} == base_before
    # (c's entry for the VIP may name r1's eth0: r1's kernel asked for c's address from there, VIP as sender)
    lab.c.netns.ip("neigh", "flush", "dev", lab.c.ifname)
    assert lab.c.ping(VIP4.ip, count=1, wait_s=2.0), "the VIP does not answer after the failover"

    # back again: we preempt
    ours.start()
    wait_until(lambda: _sole_vmac_holder(lab.r1, lab.r2), 8.0, what="our VIP back on our VMAC")
    lab.c.netns.ip("neigh", "flush", "dev", lab.c.ifname)
    assert lab.c.ping(VIP4.ip)

    # killed: the VMAC stays with the VIP (as a dead machine's would be unplugged: remove it), keepalived
    # takes over, and a new daemon replaces the leftover VMAC
    ours.kill()
    lab.r1.netns.ip("link", "del", VMAC_IF)
    wait_until(lambda: _sole_vmac_holder(lab.r2, lab.r1), 5.0, what="keepalived's VIP after our death")
    ours.start()
    wait_until(lambda: _sole_vmac_holder(lab.r1, lab.r2), 8.0, what="our VIP back after a restart")


def test_vmac_leftover_is_replaced(lab: Lab) -> None:
    """A VMAC left by a killed daemon (VIP still on it) is remade at start: a backup never keeps the VIP."""
    ours = _peer(lab, "py", lab.r1, 100, ["use_vmac"])
    other = _peer(lab, "ka", lab.r2, 150, ["use_vmac"])
    other.start()
    wait_until(lambda: _on_vmac(lab.r2), 5.0, what="keepalived master")
    lab.r1.netns.ip("link", "add", "link", lab.r1.ifname, "name", VMAC_IF, "type", "macvlan", "mode", "bridge")
    lab.r1.netns.ip("addr", "add", str(VIP4), "dev", VMAC_IF)
    ours.start()
    wait_until(lambda: _has_vmac(lab.r1) and not _on_vmac(lab.r1), 5.0, what="leftover VIP gone")
    assert _vmac_link(lab.r1)["mode"] == "private"
    wait_until(lambda: _sole_vmac_holder(lab.r2, lab.r1), 2.0, what="keepalived sole holder")


def test_ipv6_vmac_with_keepalived_peer(lab: Lab, tmp_path: Path) -> None:
    """IPv6: MAC 00:00:5e:00:02:VRID, no EUI-64 address, the base interface's link-local (deprecated) on
    the VMAC, adverts from it with the virtual MAC; keepalived takes over when we stop."""
    vmac6 = "00:00:5e:00:02:33"
    settings = [VrrpSettings(vrid=VRID, priority=150, vips=[VIP6], version=3, advert_int_s=0.2, extra=["use_vmac"])]
    ours = lab.peer("py", lab.r1, settings)
    theirs = lab.peer("ka", lab.r2, [VrrpSettings(vrid=VRID, priority=100, vips=[VIP6], version=3, advert_int_s=0.2,
                                                  extra=["use_vmac"])])
    pcap = tmp_path / "lan6.pcap"
    with capture(lab.c, pcap, "ip6 proto 112"):
        theirs.start()
        ours.start()
        wait_until(lambda: _on_vmac(lab.r1, VIP6.ip) and not _on_vmac(lab.r2, VIP6.ip), 8.0, what="our IPv6 VIP")
        link = lab.r1.netns.ip_json("-d", "link", "show", "dev", VMAC_IF)[0]
        assert (link["linkinfo"]["info_data"]["mode"], link["address"]) == ("private", vmac6)
        addresses = lab.r1.netns.ip_json("addr", "show", "dev", VMAC_IF)[0]["addr_info"]
        link_local = [a for a in addresses if a["local"].startswith("fe80:")]
        assert [(a["local"], a.get("preferred_life_time")) for a in link_local] == [(str(lab.r1.link_local()), 0)]
        assert lab.r1.netns.run(["cat", f"/proc/sys/net/ipv6/conf/{VMAC_IF}/addr_gen_mode"]).stdout.strip() == "1"
        assert theirs.states() == {"VI_1": "BACKUP"}
    adverts = fields(pcap, f"vrrp && ipv6.src == {lab.r1.link_local()}", ["eth.src"])
    assert adverts and {row[0] for row in adverts} == {vmac6}, adverts
    ours.stop()
    wait_until(lambda: _on_vmac(lab.r2, VIP6.ip) and not _has_vmac(lab.r1), 5.0, what="keepalived takes over")


@pytest.mark.parametrize("prefix", ["vm", "averyverylongprefix"])
def test_vmac_prefix_names_as_keepalived(lab: Lab, prefix: str) -> None:
    """global_defs vmac_prefix: the VMAC is PREFIX.VRID, the prefix cut to fit 15 characters."""
    names: dict[str, list[str]] = {}
    for kind in ("ka", "py"):
        peer = lab.peer(kind, lab.r1, [VrrpSettings(vrid=251, priority=150, vips=[VIP4], version=3,
                                                    advert_int_s=0.2, extra=["use_vmac"])],
                        extra_global=f"vmac_prefix {prefix}")
        peer.start()
        wait_until(lambda: any(VIP4.ip in lab.r1.addresses(name) for name in _macvlans(lab.r1)), 5.0,
                   what="VIP on a VMAC")
        names[kind] = _macvlans(lab.r1)
        peer.stop()
    assert names["ka"] == [f"{prefix[:11]}.251"]
    assert names["py"] == names["ka"]


def _macvlans(host: Host) -> list[str]:
    return [link["ifname"] for link in host.netns.ip_json("-d", "link", "show", "type", "macvlan")]
