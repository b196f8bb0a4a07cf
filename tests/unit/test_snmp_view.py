"""The MIB view, the session logic, traps and settings of the SNMP subagent (pure parts, no snmpd)."""

from __future__ import annotations

from pykeepalived.config import read_config_text
from pykeepalived.snmp.agentx import (Framer, Get, GetBulk, GetNext, Open, Other, Packet, PduType, Register,
                                      Response, ResponseError, SearchRange, ValueType, VarBind, decode, encode)
from pykeepalived.snmp.mib import build_view
from pykeepalived.snmp.rows import InterfaceFacts
from pykeepalived.snmp.session import Session
from pykeepalived.snmp.settings import DEFAULT_SOCKET, SnmpSettings, parse_socket, snmp_settings
from pykeepalived.snmp.traps import check_traps, state_traps
from pykeepalived.snmp.view import MibView

from .snmp_sample import sample

K = (1, 3, 6, 1, 4, 1, 9586, 100, 5)
V3 = (1, 3, 6, 1, 2, 1, 207)
ALL = SnmpSettings(vrrp=True, checker=True, rfcv2=True, rfcv3=True, traps=True)
FACTS = {"eth0": InterfaceFacts(4, b"\x02\x00\x00\x00\x00\x01", b"\x0a\x00\x00\x01", None)}


def rows() -> dict[tuple[int, ...], VarBind]:
    view = build_view(sample(), ALL, FACTS, now=1010.0)
    return dict(zip(view.names, view.rows))


def value(oid: tuple[int, ...]) -> object:
    return rows()[oid].value


def test_vrrp_instance_table_as_keepalived_numbers_it() -> None:
    r = rows()
    assert r[K + (2, 3, 1, 2, 1)].value == b"VI_1" and r[K + (2, 3, 1, 2, 2)].value == b"VI_3"
    assert r[K + (2, 3, 1, 3, 1)] == VarBind(ValueType.GAUGE32, K + (2, 3, 1, 3, 1), 51)
    assert value(K + (2, 3, 1, 4, 1)) == 2 and value(K + (2, 3, 1, 4, 2)) == 1  # master(2), backup(1)
    assert value(K + (2, 3, 1, 7, 1)) == 150 and value(K + (2, 3, 1, 8, 1)) == 140
    assert value(K + (2, 3, 1, 9, 1)) == 1 and value(K + (2, 3, 1, 9, 2)) == 2  # VIPs set only on the master
    assert value(K + (2, 3, 1, 12, 1)) == 1 and value(K + (2, 3, 1, 12, 2)) == 100  # v2: s, v3: cs
    assert value(K + (2, 3, 1, 13, 2)) == 2 and value(K + (2, 3, 1, 18, 1)) == b"G1"
    assert value(K + (2, 3, 1, 30, 2)) == 3
    assert value(K + (1, 2, 0)) == b"lvs1"
    assert value(K + (2, 1, 1, 2, 1)) == b"G1" and value(K + (2, 2, 1, 2, 1, 2)) == b"VI_3"


def test_vrrp_address_table() -> None:
    assert value(K + (2, 6, 1, 3, 1, 1)) == bytes([192, 0, 2, 10]) and value(K + (2, 6, 1, 5, 1, 1)) == 24
    assert value(K + (2, 6, 1, 8, 1, 2)) == b"eth1"  # the VIP's own dev
    assert value(K + (2, 6, 1, 11, 1, 3)) == 2  # the excluded VIP is not advertised
    assert value(K + (2, 6, 1, 10, 2, 1)) == 2  # unset on the backup


def test_virtual_and_real_server_tables() -> None:
    r = rows()
    assert value(K + (3, 3, 1, 2, 1)) == 2 and value(K + (3, 3, 1, 2, 2)) == 1  # ip(2), fwmark(1)
    assert value(K + (3, 3, 1, 6, 1)) == bytes([192, 0, 2, 10]) and value(K + (3, 3, 1, 7, 1)) == 80
    assert K + (3, 3, 1, 6, 2) not in r and value(K + (3, 3, 1, 4, 2)) == 7  # fwmark VS: no address, a mark
    assert value(K + (3, 3, 1, 9, 1)) == 4 and value(K + (3, 3, 1, 10, 2)) == 2  # wlc, DR
    assert value(K + (3, 3, 1, 20, 1)) == 2 and value(K + (3, 3, 1, 21, 1)) == 1  # total, up
    assert value(K + (3, 3, 1, 23, 2)) == 2 and value(K + (3, 3, 1, 14, 2)) == 300
    assert value(K + (3, 4, 1, 4, 1, 2)) == bytes([10, 11, 12, 3]) and value(K + (3, 4, 1, 6, 1, 2)) == 2
    assert value(K + (3, 4, 1, 15, 1, 1)) == 3
    # realServerWeight: a server that is down shows its weight, as keepalived 2.2.7 does (seen side by side in
    # the qemu guest, tests/vm/test_snmp_compare.py), not the data plane's 0
    assert value(K + (3, 4, 1, 7, 1, 2)) == 2 and value(K + (3, 4, 1, 7, 1, 1)) == 1


def test_vrrpv3_rows_by_ifindex_vrid_type_as_debians_keepalived() -> None:
    r = rows()
    index = (4, 52, 1)
    entry = V3 + (1, 1, 1, 1)
    assert value(entry + (3,) + index) == bytes([10, 0, 0, 2])  # the master's address (we are backup)
    assert value(entry + (4,) + index) == bytes([10, 0, 0, 1]) and value(entry + (6,) + index) == 2
    assert value(entry + (8,) + index) == 1 and value(entry + (9,) + index) == 100
    assert r[entry + (12,) + index] == VarBind(ValueType.TIME_TICKS, entry + (12,) + index, 2000)  # 20 s since INIT
    # VI_1 speaks VRRPv2 and still has a row: Debian builds keepalived to answer VRRPv3-MIB for v2 instances
    assert value(entry + (3, 4, 51, 1)) == bytes([10, 0, 0, 1])  # MASTER: our primary address
    assert value(V3 + (1, 1, 2, 1, 2, 4, 51, 1, 192, 0, 2, 11)) == 1  # the associated addresses, keepalived's index
    assert value(V3 + (1, 2, 5, 1, 13, 4, 52, 1)) == 1000  # refresh rate, ms
    assert value(V3 + (1, 2, 1, 0)) == 6  # checksum errors of both instances


def test_a_missing_interface_or_part_leaves_rows_out_without_failing() -> None:
    doc = sample()
    del doc["checker"]
    doc["vrrp"]["instances"][0]["vips"] = ["not an address"]
    doc["vrrp"]["instances"].append({"name": 5})
    view = build_view(doc, ALL, {}, now=0.0)
    assert not any(name[:len(V3 + (1, 1))] == V3 + (1, 1) for name in view.names)
    assert not any(name[:len(K) + 1] == K + (3,) for name in view.names)


def test_get_getnext_and_bulk_walk_in_oid_order() -> None:
    view = MibView([VarBind(ValueType.INTEGER, (1, 3, 2), 2), VarBind(ValueType.INTEGER, (1, 3, 1), 1),
                    VarBind(ValueType.INTEGER, (1, 4), 3)], roots=[(1, 3)])
    assert view.get((1, 3, 1)).value == 1
    assert view.get((1, 3, 9)).type == ValueType.NO_SUCH_INSTANCE and view.get((2,)).type == ValueType.NO_SUCH_OBJECT
    assert view.next(SearchRange((1, 3, 1))).name == (1, 3, 2)
    assert view.next(SearchRange((1, 3, 1), include=True)).name == (1, 3, 1)
    assert view.next(SearchRange((1, 3, 2), end=(1, 4))).type == ValueType.END_OF_MIB_VIEW
    assert view.next(SearchRange((1, 4))) == VarBind(ValueType.END_OF_MIB_VIEW, (1, 4))
    bulk = view.bulk(1, 3, [SearchRange((1,)), SearchRange((1, 3))])
    assert [vb.name for vb in bulk] == [(1, 3, 1), (1, 3, 1), (1, 3, 2), (1, 4)]
    assert bulk[-1].type == ValueType.INTEGER and len(view.bulk(0, 10, [SearchRange((1, 4))])) == 1


def test_session_opens_registers_answers_and_refuses_sets() -> None:
    session = Session([K + (2,), V3])
    opening = decode(session.opening())
    assert isinstance(opening.body, Open)
    out = session.receive(encode(Packet(Response(), 77, 0, opening.packet_id)), lambda: MibView([]))
    registers = [decode(b) for b in out]
    assert [p.body.subtree for p in registers if isinstance(p.body, Register)] == [K + (2,), V3]
    assert all(p.session_id == 77 for p in registers) and session.ready
    for p in registers:
        session.receive(encode(Packet(Response(), 77, 0, p.packet_id)), lambda: MibView([]))
    assert session.registered == 2
    view = build_view(sample(), ALL, FACTS, 0.0)
    calls = []

    def provider() -> MibView:
        calls.append(1)
        return view

    asks = (encode(Packet(Get((SearchRange(K + (2, 3, 1, 2, 1)),)), 77, 5, 100))
            + encode(Packet(GetNext((SearchRange(K + (2, 3, 1, 2, 1)),)), 77, 6, 101))
            + encode(Packet(GetBulk(0, 2, (SearchRange(K + (3, 4)),)), 77, 7, 102))
            + encode(Packet(Other(b""), 77, 8, 103, type=PduType.TEST_SET))
            + encode(Packet(Other(b""), 77, 8, 104, type=PduType.CLEANUP_SET)))
    answers = [decode(b) for b in session.receive(asks, provider)]
    assert len(calls) == 1 and len(answers) == 4  # one view per batch; no answer to CleanupSet
    get, getnext, bulk, test_set = (a.body for a in answers)
    assert isinstance(get, Response) and get.varbinds[0].value == b"VI_1"
    assert isinstance(getnext, Response) and getnext.varbinds[0].value == b"VI_3"
    assert isinstance(bulk, Response) and len(bulk.varbinds) == 2
    assert isinstance(test_set, Response) and test_set.error == ResponseError.NOT_WRITABLE
    assert (answers[0].transaction_id, answers[0].packet_id) == (5, 100)
    other = decode(session.receive(encode(Packet(Get((SearchRange(K),), b"ctx"), 77, 9, 105)), provider)[0]).body
    assert isinstance(other, Response) and other.error == ResponseError.UNSUPPORTED_CONTEXT


def test_session_drops_garbage_and_closes_on_an_unreadable_stream() -> None:
    session = Session([V3])
    assert session.receive(b"\x01\x05\x10\x00" + b"\x00" * 12 + b"\x00\x00\x00\x04" + b"\xff" * 4,
                           lambda: MibView([])) == []
    assert session.framer.malformed == 1 and not session.closed
    session.receive(b"\x01\x05\x10\x00" + b"\x00" * 12 + b"\x7f\xff\xff\xff", lambda: MibView([]))
    assert session.closed and session.problems


def test_a_refused_open_closes_the_session() -> None:
    session = Session([V3])
    pid = decode(session.opening()).packet_id
    session.receive(encode(Packet(Response(error=ResponseError.OPEN_FAILED), 0, 0, pid)), lambda: MibView([]))
    assert session.closed and "OPEN_FAILED" in session.problems[0]


def test_state_change_traps() -> None:
    old, new = sample(), sample()
    new["vrrp"]["instances"][1]["state"] = "MASTER"
    new["vrrp"]["sync_groups"][0]["state"] = "BACKUP"
    traps = state_traps(old, new, ALL, FACTS)
    assert [t.name for t in traps] == ["vrrpSyncGroupStateChange", "vrrpInstanceStateChange", "vrrpv3NewMaster"]
    vi1 = sample()
    vi1["vrrp"]["instances"][0]["state"] = "BACKUP"
    assert "vrrpTrapNewMaster" in [t.name for t in state_traps(vi1, sample(), ALL, FACTS)]  # VRRP-MIB: v2 only
    instance = traps[1].varbinds
    assert instance[0].value == K + (2, 10, 0, 2) and instance[1].value == b"VI_3" and instance[2].value == 2
    assert instance[-1].value == b"lvs1"
    new_master = traps[2].varbinds
    assert new_master[0].value == V3 + (0, 1) and new_master[1].value == bytes([10, 0, 0, 1])
    assert new_master[2].value == 3  # masterNoResponse: the down timer
    assert state_traps(old, new, SnmpSettings(vrrp=True), FACTS) == []  # enable_traps off
    assert state_traps({}, new, ALL, FACTS) == []  # the first document is no change


def test_vrrp_mib_rfc_2787_rows_for_version_2_ipv4_instances() -> None:
    r = rows()
    oper = (1, 3, 6, 1, 2, 1, 68, 1, 3, 1)
    assert value(oper + (3, 4, 51)) == 3 and value(oper + (5, 4, 51)) == 150 and value(oper + (6, 4, 51)) == 2
    assert r[oper + (7, 4, 51)] == VarBind(ValueType.IP_ADDRESS, oper + (7, 4, 51), bytes(4))  # master: none heard
    assert value(oper + (11, 4, 51)) == 1 and not any(n[:len(oper)] == oper and n[-1] == 52 for n in r)  # VI_3: v3
    assert value((1, 3, 6, 1, 2, 1, 68, 1, 4, 1, 2, 4, 51, 192, 0, 2, 10)) == 1
    assert value((1, 3, 6, 1, 2, 1, 68, 2, 4, 1, 1, 4, 51)) == 2  # became master twice


def test_settings_columns_come_from_the_configuration() -> None:
    config = read_config_text(
        "vrrp_instance VI_1 {\n interface eth0\n state MASTER\n virtual_router_id 51\n priority 150\n"
        " authentication {\n  auth_type PASS\n  auth_pass x\n }\n"
        " virtual_ipaddress {\n  192.0.2.10/24\n }\n}\n"
        "vrrp_instance VI_3 {\n interface eth0\n virtual_router_id 52\n version 3\n nopreempt\n"
        " unicast_peer {\n  10.0.0.9\n }\n virtual_ipaddress {\n  192.0.2.20/24\n }\n}\n").config
    view = build_view(sample(), ALL, FACTS, 1010.0, config)
    r = dict(zip(view.names, view.rows))
    entry = K + (2, 3, 1)
    assert r[entry + (5, 1)].value == 2 and r[entry + (5, 2)].value == 1  # initial state: MASTER, BACKUP
    assert r[entry + (14, 1)].value == 0 and r[entry + (15, 1)].value == 1 and r[entry + (15, 2)].value == 0
    assert r[entry + (19, 1)].value == 5  # garp_master_delay's default
    assert r[entry + (27, 1)].value == 0 and r[entry + (27, 2)].value == 1  # accept: 0 for v2, as keepalived
    assert r[entry + (35, 1)].value == bytes([224, 0, 0, 18]) and entry + (35, 2) not in r  # unicast: none
    assert r[V3 + (1, 1, 1, 1, 11, 4, 52, 1)].value == 1  # AcceptMode
    assert r[(1, 3, 6, 1, 2, 1, 68, 1, 3, 1, 9, 4, 51)].value == 2  # simpleTextPassword


def test_settings_follow_keepalived() -> None:
    g = read_config_text("global_defs {\n enable_snmp_keepalived\n enable_traps\n}\n").config.global_defs
    s = snmp_settings(g)
    assert s.enabled and s.vrrp and not s.checker and not s.rfcv3 and s.traps and s.socket == DEFAULT_SOCKET
    x = snmp_settings(read_config_text("").config.global_defs, snmp_flag=True, socket_flag="tcp:localhost:705")
    assert x.vrrp and x.checker and x.rfcv3 and x.rfcv2 and not x.traps
    assert parse_socket(x.socket) == ("tcp:localhost", 705)
    g = read_config_text("global_defs {\n enable_snmp_rfc\n snmp_socket unix:/run/agentx\n}\n").config.global_defs
    s = snmp_settings(g)
    assert s.rfcv3 and s.rfcv2 and not s.vrrp and parse_socket(s.socket) == ("unix", "/run/agentx")
    assert not snmp_settings(read_config_text("").config.global_defs).enabled


def test_snmp_keywords_are_no_longer_reported_as_not_acted_on() -> None:
    result = read_config_text("global_defs {\n enable_snmp_vrrp\n enable_snmp_checker\n enable_traps\n"
                              " snmp_socket /run/agentx\n}\n")
    assert not [d for d in result.diagnostics if "snmp" in d.message or "traps" in d.message]


def test_framer_counts_are_exposed() -> None:
    assert Framer().malformed == 0


def test_checker_traps() -> None:
    old, new = sample(), sample()
    new["checker"]["virtual_servers"][0]["real_servers"][1]["healthy"] = True
    new["checker"]["virtual_servers"][1]["quorum_up"] = True
    traps = check_traps(old, new, ALL)
    assert [t.name for t in traps] == ["realServerStateChange", "virtualServerQuorumStateChange"]
    rs = traps[0].varbinds
    assert rs[0].value == K + (3, 5, 0, 1)
    assert [vb.name[len(K):] for vb in rs[1:]] == [
        (3, 4, 1, 3, 1, 2), (3, 4, 1, 4, 1, 2), (3, 4, 1, 5, 1, 2), (3, 4, 1, 6, 1, 2),  # the real server
        (3, 3, 1, 2, 1), (3, 3, 1, 5, 1), (3, 3, 1, 6, 1), (3, 3, 1, 7, 1), (3, 3, 1, 8, 1),  # the virtual server
        (3, 3, 1, 21, 1), (3, 3, 1, 20, 1), (1, 2, 0)]
    assert rs[4].value == 1 and rs[-1].value == b"lvs1"  # alive(1) now
    quorum = traps[1].varbinds
    assert quorum[0].value == K + (3, 5, 0, 2) and quorum[2].value == 7  # fwmark 7
    assert check_traps(old, new, SnmpSettings(checker=True)) == []


def test_global_settings_as_keepalived_numbers_them() -> None:
    config = read_config_text("global_defs {\n smtp_server 192.0.2.25 2525\n notification_email {\n  a@x\n  b@x\n }\n"
                              " smtp_alert_vrrp off\n lvs_flush_onstop VS\n enable_traps\n}\n").config
    view = build_view(sample(), ALL, FACTS, 0.0, config)
    r = {name[len(K):]: row.value for name, row in zip(view.names, view.rows) if name[:len(K)] == K}
    assert r[(1, 3, 1, 0)] == 1 and r[(1, 3, 2, 0)] == bytes([192, 0, 2, 25]) and r[(1, 3, 6, 0)] == 2525
    assert r[(1, 3, 3, 0)] == 30 and r[(1, 3, 5, 1, 2, 2)] == b"b@x"
    assert (r[(1, 3, 8, 0)], r[(1, 3, 9, 0)]) == (3, 2)  # smtp_alert unset(3), smtp_alert_vrrp off(2)
    assert r[(1, 4, 0)] == 1 and r[(1, 11, 0)] == 3 and r[(1, 9, 0)] == 2  # traps, flushVS, no D-Bus


def test_scripts_are_shown_as_keepalived_quotes_them() -> None:
    from pykeepalived.config.model import Script
    from pykeepalived.snmp.mib_config import script_text

    assert script_text(Script(["/usr/bin/true", "a b", "c"])) == "'/usr/bin/true' 'a b' 'c'"
    assert script_text(Script([">/tmp/flag"])) == ">/tmp/flag" and script_text(None) is None


def test_checker_settings_columns_come_from_the_configuration() -> None:
    config = read_config_text(
        "virtual_server 192.0.2.10 80 {\n delay_loop 3\n alpha\n hysteresis 2\n connect_timeout 4\n"
        " quorum 5\n inhibit_on_failure\n lb_kind NAT\n real_server 10.11.12.2 80 {\n  delay_loop 7\n  lvs_method DR\n"
        "  TCP_CHECK {\n  }\n }\n real_server 10.11.12.3 80 {\n  weight 2\n  TCP_CHECK {\n  }\n }\n}\n").config
    r = {b.name: b.value for b in build_view(sample(), ALL, FACTS, 1010.0, config).rows}
    vs, rs = K + (3, 3, 1), K + (3, 4, 1)
    assert r[vs + (16, 1)] == 3 and r[vs + (64, 1)] == 3_000_000 and r[vs + (67, 1)] == 4_000_000  # delays, µs
    assert r[vs + (18, 1)] == 1 and r[vs + (19, 1)] == 2 and r[vs + (26, 1)] == 2  # alpha, no omega, hysteresis
    assert r[rs + (46, 1, 1)] == 7 and r[rs + (46, 1, 2)] == 3  # a real server's own delay_loop, else its VS's
    assert r[rs + (40, 1, 1)] == 2 and r[rs + (40, 1, 2)] == 1  # forwardingMethod: DR, NAT
    assert r[rs + (10, 1, 2)] == 2 and r[rs + (42, 1, 2)] == 1  # inhibit(2), alpha inherited
    assert vs + (16, 2) not in r  # the fwmark VS is not in this configuration: no settings row
