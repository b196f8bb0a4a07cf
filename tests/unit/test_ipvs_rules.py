"""The desired table as IPVS services and destinations, by keepalived 2.2.7's rules, and the edits between tables."""

from __future__ import annotations

import socket

from pykeepalived.lvs.ipvs_rules import (
    F_ONEPACKET, F_PERSISTENT, V4_ALL_ONES, Change, DestKey, ServiceKey, changes, ipvs_table,
)
from pykeepalived.lvs.model import Destination, GroupEntry, VirtualService

TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP


def rs(i: int, port: int | None = 80, method: str = "NAT", weight: int = 1, **kw: object) -> Destination:
    return Destination(f"10.11.12.{i}", port, weight, method=method, **kw)  # type: ignore[arg-type]


def vs(name: str = "web", *dests: Destination, **kw: object) -> VirtualService:
    fields: dict[str, object] = {"kind": "address", "address": "203.0.113.10", "port": 80, "protocol": "TCP",
                                 "scheduler": "rr"}
    fields.update(kw)
    return VirtualService(name, destinations=tuple(dests) or (rs(1), rs(2)), **fields)  # type: ignore[arg-type]


def only(table: dict[ServiceKey, object]) -> object:
    assert len(table) == 1
    return next(iter(table.values()))


def test_an_address_service_with_nat_servers() -> None:
    svc = only(ipvs_table([vs("web", rs(1), rs(2, port=None, weight=3))]))
    assert svc.spec.key == ServiceKey(4, 0, TCP, "203.0.113.10", 80)  # type: ignore[attr-defined]
    assert (svc.spec.scheduler, svc.spec.flags, svc.spec.timeout, svc.spec.netmask) == ("rr", 0, 0, V4_ALL_ONES)  # type: ignore[attr-defined]
    dests = svc.dests  # type: ignore[attr-defined]
    assert sorted(dests) == [DestKey("10.11.12.1", 80), DestKey("10.11.12.2", 80)]  # no port: the service's
    assert dests[DestKey("10.11.12.2", 80)].weight == 3 and dests[DestKey("10.11.12.2", 80)].fwd == 0


def test_keepalived_defaults_udp_wlc_and_forced_persistence() -> None:
    svc = only(ipvs_table([vs("u", protocol=None, scheduler="", port=0)]))
    assert svc.spec.key.protocol == UDP and svc.spec.scheduler == "wlc"  # type: ignore[attr-defined]
    assert svc.spec.flags & F_PERSISTENT and svc.spec.timeout == 360  # type: ignore[attr-defined]
    gran = only(ipvs_table([vs("g", persistence_granularity="255.255.255.0")]))
    assert (gran.spec.timeout, gran.spec.netmask) == (360, 0xFFFFFF00)  # type: ignore[attr-defined]
    plain = only(ipvs_table([vs("p", persistence_timeout_s=50)]))
    assert (plain.spec.timeout, plain.spec.netmask) == (50, V4_ALL_ONES)  # type: ignore[attr-defined]


def test_scheduler_flags_follow_their_scheduler_and_ops_skips_tcp() -> None:
    def flags(**kw: object) -> int:
        return only(ipvs_table([vs("f", **kw)])).spec.flags  # type: ignore[attr-defined,no-any-return]

    assert flags(scheduler="sh", sched_flags=("sh-port", "sh-fallback")) == 0x18
    assert flags(scheduler="mh", sched_flags=("sh-port",)) == 0
    assert flags(scheduler="rr", sched_flags=("flag-2",)) == 0x10
    assert flags(sched_flags=("ops",)) == 0
    assert flags(protocol="UDP", sched_flags=("ops",)) == F_ONEPACKET


def test_fwmark_dr_servers_have_no_port_and_nat_ones_keep_theirs() -> None:
    dr = only(ipvs_table([vs("m", rs(1, method="DR"), kind="fwmark", fwmark=80, address=None, port=None,
                             protocol=None, family=4)]))
    assert dr.spec.key == ServiceKey(4, 80, 0, "", 0)  # type: ignore[attr-defined]
    assert list(dr.dests) == [DestKey("10.11.12.1", 0)] and dr.dests[DestKey("10.11.12.1", 0)].fwd == 3  # type: ignore[attr-defined]
    nat = only(ipvs_table([vs("n", rs(1, port=8080), rs(2, port=None), kind="fwmark", fwmark=80, address=None,
                              port=None, protocol=None)]))
    assert sorted(nat.dests) == [DestKey("10.11.12.1", 8080), DestKey("10.11.12.2", 0)]  # type: ignore[attr-defined]


def test_a_group_expands_and_ignores_granularity() -> None:
    svc = vs("g", rs(1, method="DR"), kind="group", address=None, port=None, group="G",
             persistence_timeout_s=30, persistence_granularity="255.255.255.0",
             group_entries=(GroupEntry("range", "203.0.113.20", "203.0.113.22", port=443),
                            GroupEntry("address", "203.0.113.30"), GroupEntry("fwmark", fwmark=7, family=6)))
    table = ipvs_table([svc])
    assert sorted(table) == [ServiceKey(4, 0, TCP, "203.0.113.20", 443), ServiceKey(4, 0, TCP, "203.0.113.21", 443),
                             ServiceKey(4, 0, TCP, "203.0.113.22", 443), ServiceKey(4, 0, TCP, "203.0.113.30", 0),
                             ServiceKey(6, 7, 0, "", 0)]
    assert {s.spec.netmask for k, s in table.items() if k.family == 4} == {V4_ALL_ONES}
    assert table[ServiceKey(4, 0, TCP, "203.0.113.30", 0)].spec.timeout == 30
    assert list(table[ServiceKey(4, 0, TCP, "203.0.113.21", 443)].dests) == [DestKey("10.11.12.1", 443)]
    assert table[ServiceKey(6, 7, 0, "", 0)].dests == {}  # an IPv4 DR server cannot serve an IPv6 service


def test_tcp_and_udp_services_sharing_a_groups_fwmark_share_its_service() -> None:
    group = (GroupEntry("fwmark", fwmark=9),)
    tcp = vs("t", rs(1), kind="group", address=None, port=None, group="G", group_entries=group)
    udp = vs("u", rs(2, port=53), kind="group", address=None, port=None, group="G", group_entries=group, protocol="UDP")
    svc = only(ipvs_table([tcp, udp]))
    assert sorted(svc.dests) == [DestKey("10.11.12.1", 80), DestKey("10.11.12.2", 53)]  # type: ignore[attr-defined]
    assert svc.owners == ("t", "u")  # type: ignore[attr-defined]


def test_tunnel_options_reach_the_destination() -> None:
    tun = rs(1, method="TUN", tunnel={"type": "gue", "port": 6080, "checksum": "csum"})
    dest = only(ipvs_table([vs("t", tun)])).dests[DestKey("10.11.12.1", 80)]  # type: ignore[attr-defined]
    assert (dest.fwd, dest.tun_type, dest.tun_port, dest.tun_flags) == (2, 1, 6080, 1)
    plain = only(ipvs_table([vs("t", rs(1, method="TUN"))])).dests[DestKey("10.11.12.1", 80)]  # type: ignore[attr-defined]
    assert (plain.tun_type, plain.tun_port, plain.tun_flags) == (0, 0, 0)


def test_changes_remove_first_edit_in_place_and_add_last() -> None:
    old = ipvs_table([vs("a", rs(1), rs(2)), vs("b", port=81)])
    new = ipvs_table([vs("a", rs(1, weight=5), rs(3), scheduler="wlc")])
    got = [(c.op, c.service.key.port, c.dest.key.address if c.dest else None) for c in changes(old, new)]
    assert got == [("delete", 81, None), ("delete", 80, "10.11.12.2"), ("edit", 80, None),
                   ("edit", 80, "10.11.12.1"), ("add", 80, "10.11.12.3")]
    assert changes(new, new) == []
    fresh = changes({}, new)
    assert [c.op for c in fresh] == ["add"] * 3 and isinstance(fresh[0], Change) and fresh[0].dest is None
