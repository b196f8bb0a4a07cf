"""The pure rules of use_vmac_addr (vrrp/vmac_addr.py) and use_ipvlan (config/ipvlan_words.py, ipvlan_settings)."""

from __future__ import annotations

from ipaddress import ip_interface
from itertools import islice

from pykeepalived.config.ipvlan_words import parse_words
from pykeepalived.config.model import GlobalDefs, IpAddressSpec, VrrpInstance
from pykeepalived.vrrp.ipvlan_settings import ipvlan_settings, ipvlan_source
from pykeepalived.vrrp.vmac_addr import AddressVmac, extra_vmac_interval, name_candidates, wanted


def test_names_as_create_vmac_name() -> None:
    assert list(islice(name_candidates("vrrp", 52, 4), 4)) == ["vrrp.52", "vrrp1.52", "vrrp2.52", "vrrp3.52"]
    assert list(islice(name_candidates("va", 52, 6), 4)) == ["va.52", "va6.52", "va1.52", "va2.52"]
    v6 = list(islice(name_candidates("p", 9, 6), 9))
    assert v6 == ["p.9", "p6.9", "p1.9", "p2.9", "p3.9", "p4.9", "p5.9", "p7.9", "p8.9"]
    assert all(len(n) <= 15 for n in islice(name_candidates("averyveryverylongprefix", 255, 4), 12))
    assert next(name_candidates("averyveryverylongprefix", 255, 4)) == "averyveryve.255"


def _spec(addr: str, device: str | None = None, use_vmac: bool = False) -> IpAddressSpec:
    return IpAddressSpec(address=ip_interface(addr), device=device, use_vmac=use_vmac)


def _wanted(spec: IpAddressSpec, vmac_addr: bool = True, vmac_ifname: str | None = None) -> AddressVmac | None:
    return wanted(spec, vmac_ifname=vmac_ifname, interface="eth0", family=4, vrid=52, use_vmac_addr=vmac_addr)


def test_which_addresses_get_a_vmac() -> None:
    assert _wanted(_spec("192.0.2.1/24")) is None  # own interface, own family
    assert _wanted(_spec("192.0.2.1/24", "eth0")) is None
    assert _wanted(_spec("198.51.100.1/24", "eth1")) == AddressVmac("eth1", 4, bytes.fromhex("00005e000134"))
    assert _wanted(_spec("2001:db8::1/64")) == AddressVmac("eth0", 6, bytes.fromhex("00005e000234"))
    assert _wanted(_spec("198.51.100.1/24", "eth1"), vmac_addr=False) is None
    assert _wanted(_spec("192.0.2.1/24", use_vmac=True), vmac_addr=False) == AddressVmac(
        "eth0", 4, bytes.fromhex("00005e000134"))
    assert _wanted(_spec("192.0.2.1/24", "vrrp.52"), vmac_ifname="vrrp.52") is None  # on the instance's VMAC


def test_garp_extra_if_stays_on_for_address_vmacs() -> None:
    inst = VrrpInstance(name="VI_1", interface="eth0", use_vmac_addr=True, garp_extra_if_s=3.0)
    assert extra_vmac_interval(inst, GlobalDefs(), (_spec("198.51.100.1/24", "eth1"),), None, 4, 52) == 3.0
    assert extra_vmac_interval(inst, GlobalDefs(), (_spec("192.0.2.1/24"),), None, 4, 52) == 0.0


def test_ipvlan_words_and_settings() -> None:
    words = parse_words(["ipv56", "192.0.2.56/24", "vepa"])
    assert (words.name, str(words.address), words.mode) == ("ipv56", "192.0.2.56/24", "vepa")
    inst = VrrpInstance(name="VI_1", interface="eth0", virtual_router_id=56, use_ipvlan=["192.0.2.56/24", "private"])
    s = ipvlan_settings(inst, GlobalDefs(vmac_prefix="vm"), 56)
    assert s is not None and (s.ifname, s.flags, str(s.address)) == ("vm.56", 1, "192.0.2.56/24")
    assert str(ipvlan_source(inst, s)) == "192.0.2.56"
    assert ipvlan_settings(VrrpInstance(name="VI_2", use_ipvlan=[]), GlobalDefs(), 1) is None  # no interface
