"""Stateless NAT (lvs/nft_stateless.py), without a kernel: which services qualify, the layout, the ICMP sums.

The lab half (traffic, failover, PMTU) is tests/netns/test_fast_paths.py.
"""

from __future__ import annotations

import ipaddress
import json
import random
import struct
from typing import Any

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.lvs import sched
from pykeepalived.lvs.model import Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft_layout import build_all
from pykeepalived.lvs.nft_rules import BuildContext, Ruleset
from pykeepalived.lvs.nft_stateless import (ICMP_IN_CHAIN, ICMP_OUT_CHAIN, PORTS_MAP, REPLIES_MAP, SOURCES_MAP,
                                            choose, compensation, words_of)
from pykeepalived.lvs.plan import configured_services

VIP = "203.0.113.10"


def rs(i: int, port: int = 80, weight: int = 1, alive: bool = True) -> Destination:
    return Destination(f"10.11.12.{i}", port, weight, alive=alive)


def vs(name: str = "web", *dests: Destination, **kw: Any) -> VirtualService:
    fields: dict[str, Any] = {"kind": "address", "address": VIP, "port": 80, "protocol": "TCP",
                              "scheduler": "mh", "stateless": True}
    fields.update(kw)
    return VirtualService(name, destinations=tuple(dests) or (rs(1), rs(2), rs(3)), **fields)


def rules_of(ruleset: Ruleset, chain: str) -> list[list[dict[str, Any]]]:
    return [json.loads(r) for r in ruleset.rules[chain]]


def build_ip(*services: VirtualService) -> tuple[Ruleset, BuildContext]:
    ctx = BuildContext()
    return build_all(list(services), ctx)["ip"], ctx


# --------------------------------------------------------------------------- the checksum compensation
def ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def icmp_checksum_ok(message: bytes) -> bool:
    return ones_sum(message) == 0xFFFF


def frag_needed(inner_src: str, inner_dst: str, sport: int, dport: int, rng: random.Random) -> bytearray:
    """An ICMP fragmentation-needed message quoting a TCP segment, checksum filled in."""
    inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1500, rng.randrange(65536), 0x4000, rng.randrange(1, 64), 6,
                        rng.randrange(65536), ipaddress.IPv4Address(inner_src).packed,
                        ipaddress.IPv4Address(inner_dst).packed)
    inner += struct.pack("!HHI", sport, dport, rng.randrange(2**32))
    message = bytearray(struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + inner)
    struct.pack_into("!H", message, 2, ~ones_sum(bytes(message)) & 0xFFFF)
    return message


def test_the_spare_word_keeps_the_icmp_checksum_right_when_the_inner_header_is_rewritten() -> None:
    rng = random.Random(18)
    for _ in range(2000):
        client = str(ipaddress.IPv4Address(rng.randrange(2**32)))
        server = str(ipaddress.IPv4Address(rng.randrange(2**32)))
        vip = str(ipaddress.IPv4Address(rng.randrange(2**32)))
        cport, sport, vport = (rng.randrange(1, 65536) for _ in range(3))
        # a request's error (client -> server:sport) gets the VIP and its port, as sl_icmp_out writes it
        message = frag_needed(client, server, cport, sport, rng)
        assert icmp_checksum_ok(bytes(message))
        struct.pack_into("!H", message, 4, compensation(words_of(server) + [sport], words_of(vip) + [vport]))
        message[24:28] = ipaddress.IPv4Address(vip).packed
        struct.pack_into("!H", message, 30, vport)
        assert icmp_checksum_ok(bytes(message))
        assert struct.unpack_from("!H", message, 6)[0] == 1400  # the MTU is untouched


def test_an_unchanged_header_needs_no_compensation() -> None:
    assert compensation(words_of(VIP) + [80], words_of(VIP) + [80]) == 0


# --------------------------------------------------------------------------- which services
def test_a_hash_scheduled_service_that_asks_is_stateless_and_others_say_why_not() -> None:
    services = [
        vs("mh"), vs("sh", rs(4), rs(5), scheduler="sh", port=81),
        vs("rr", rs(6), scheduler="rr", port=82),
        vs("persist", rs(7), persistence_timeout_s=60, port=83),
        vs("six", Destination("2001:db8:10::1", 80, 1), address="2001:db8::10"),
        vs("ftp", rs(8, 21), port=21),
        vs("plain", rs(9), stateless=False, port=84),
        vs("mark", rs(10), kind="fwmark", fwmark=5, address=None, port=None),
    ]
    chosen, refused = choose(services)
    assert chosen == {"mh", "sh", "six"}
    assert set(refused) == {"rr", "persist", "ftp", "mark"}
    assert "scheduler rr" in refused["rr"]
    assert "FTP" in refused["ftp"] and "persistence" in refused["persist"]


def test_a_real_server_shared_with_another_nat_service_keeps_both_on_conntrack() -> None:
    _, refused = choose([vs("a"), vs("b", rs(1), scheduler="rr", port=81, stateless=False)])
    assert "10.11.12.1:80" in refused["a"] and "b" in refused["a"]
    # another port of the same server is another endpoint
    chosen, refused = choose([vs("a"), vs("b", rs(1, 8080), scheduler="rr", port=81, stateless=False)])
    assert chosen == {"a"} and not refused
    # a fwmark service's servers answer from any port: the address alone collides
    _, refused = choose([vs("a"), vs("m", Destination("10.11.12.2", None, 1), kind="fwmark", fwmark=1,
                                     address=None, port=None, stateless=False)])
    assert "a" in refused


def test_a_group_of_several_addresses_cannot_name_one_vip_on_the_way_back() -> None:
    group = (GroupEntry("address", address=VIP, port=80), GroupEntry("address", address="203.0.113.12", port=80))
    _, refused = choose([vs("g", kind="group", group="G", group_entries=group, address=None)])
    assert "one address and port" in refused["g"]


def test_the_keyword_reaches_the_desired_table() -> None:
    text = ("virtual_server 203.0.113.10 80 {\n lb_algo mh\n lb_kind NAT\n protocol TCP\n"
            " pykeepalived_stateless\n real_server 10.11.12.1 80 {\n }\n}\n"
            "virtual_server 203.0.113.10 81 {\n lb_algo mh\n pykeepalived_stateless off\n"
            " real_server 10.11.12.1 81 {\n }\n}\n")
    services = [svc for _, svc in configured_services(read_config_text(text).config)]
    assert [svc.stateless for svc in services] == [True, False]


# --------------------------------------------------------------------------- the layout
def test_requests_are_untracked_and_rewritten_by_the_same_table_as_the_conntrack_chain() -> None:
    ruleset, ctx = build_ip(vs())
    assert json.loads(next(iter(ruleset.elements[PORTS_MAP].values()))) == {"goto": {"target": "vs-web-sl"}}
    forward = rules_of(ruleset, "vs-web-sl")
    assert forward[0] == [{"notrack": None}]
    stateless_map = forward[1][0]["mangle"]["value"]["map"]
    assert forward[1][0]["mangle"]["key"] == {"payload": {"protocol": "ip", "field": "daddr"}}
    # the conntrack chain (the router's own clients) hashes alike and holds the same slots
    dnat = rules_of(ruleset, "vs-web")[0][-1]["dnat"]["addr"]["map"]
    assert stateless_map["key"] == dnat["key"]
    slots = ruleset.slot_maps[dnat["data"].removeprefix("@")]  # a named slot map (nft_rules: slot maps)
    assert stateless_map["data"].startswith("@")  # a slot map of its own (addresses only), rewritten by slot
    assert [a for _, a in ruleset.slot_pairs(stateless_map["data"])] == [json.loads(t)["concat"][0]
                                                                          for t in slots.data]
    assert not ctx.fallbacks


def test_with_a_server_down_the_conntrack_chain_keeps_the_stateless_table_and_a_refused_service_maglevs() -> None:
    servers = [rs(i) for i in range(1, 41)]
    servers[5] = rs(6, alive=False)

    def addresses(ruleset: Ruleset) -> tuple[list[str], list[str]]:
        stateless = rules_of(ruleset, "vs-web-sl")[1][0]["mangle"]["value"]["map"]["data"]
        dnat = rules_of(ruleset, "vs-web")[0][-1]["dnat"]["addr"]["map"]["data"]
        return ([a for _, a in ruleset.slot_pairs(stateless)],
                [json.loads(t)["concat"][0] for t in ruleset.slot_maps[dnat.removeprefix("@")].data])

    by_stateless, by_conntrack = addresses(build_ip(vs("web", *servers))[0])
    assert by_stateless == by_conntrack and "10.11.12.6" not in by_conntrack
    # another NAT service on the same servers refuses it (nft_stateless.choose): the conntrack chain's own Maglev
    other = VirtualService("other", kind="address", address="203.0.113.11", port=80, protocol="TCP", scheduler="mh",
                           destinations=tuple(servers))
    ruleset, ctx = build_ip(vs("web", *servers), other)
    assert "web" in ctx.fallbacks
    dnat = rules_of(ruleset, "vs-web")[0][-1]["dnat"]["addr"]["map"]["data"]
    alive = [d for d in servers if d.alive]
    maglev = sched.maglev_table([d.name for d in alive], [1] * 39, 4093)
    assert [json.loads(t)["concat"][0] for t in ruleset.slot_maps[dnat.removeprefix("@")].data] == [
        alive[i].address for i in maglev]


def test_replies_get_the_vip_after_routing_and_are_untracked_unless_for_the_router() -> None:
    ruleset, _ = build_ip(vs("web", rs(1, 8080), rs(2, 8080)))
    keys = {json.dumps(json.loads(k)["concat"]) for k in ruleset.elements[REPLIES_MAP]}
    assert keys == {json.dumps(["10.11.12.1", "tcp", 8080]), json.dumps(["10.11.12.2", "tcp", 8080])}
    assert set(ruleset.elements[SOURCES_MAP]) == set(ruleset.elements[REPLIES_MAP])
    back = rules_of(ruleset, "vs-web-slr")
    assert back == [[{"mangle": {"key": {"payload": {"protocol": "tcp", "field": "sport"}}, "value": 80}}],
                    [{"mangle": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "value": VIP}}]]
    untrack = rules_of(ruleset, "sl_untrack")[0]
    assert untrack[0]["match"]["op"] == "!=" and untrack[0]["match"]["right"] == "local"
    assert ruleset.chains["sl_prerouting"]["prio"] == -300 and ruleset.chains["sl_postrouting"]["hook"] == "postrouting"
    # the request's port: one server port for all, a constant
    assert rules_of(ruleset, "vs-web-sl")[1] == [
        {"mangle": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "value": 8080}}]


def test_servers_on_different_ports_get_their_port_by_the_same_hash() -> None:
    ruleset, _ = build_ip(vs("web", rs(1, 8080), rs(2, 8081)))
    port_rule, addr_rule = rules_of(ruleset, "vs-web-sl")[1:3]
    ports = port_rule[0]["mangle"]["value"]["map"]
    addrs = addr_rule[0]["mangle"]["value"]["map"]
    assert ports["key"] == addrs["key"]
    by_port = {8080: "10.11.12.1", 8081: "10.11.12.2"}
    assert [by_port[p] for _, p in ports["data"]["set"]] == [a for _, a in ruleset.slot_pairs(addrs["data"])]


def test_errors_about_a_reply_go_to_the_server_the_request_hash_gives() -> None:
    ruleset, _ = build_ip(vs("web", rs(1, 8080), rs(2, 8080), rs(3, 8080)))
    match = rules_of(ruleset, ICMP_IN_CHAIN)[0]
    assert match[-1] == {"goto": {"target": "vs-web-sli"}}
    pick_rule, by_address = rules_of(ruleset, "vs-web-sli")[1:]
    pick = pick_rule[0]["mangle"]["value"]["map"]
    # the client is the inner destination: the bytes `ip saddr` hashes in the request
    assert pick["key"]["jhash"]["expr"] == {"payload": {"base": "th", "offset": 192, "len": 32}}
    forward = rules_of(ruleset, "vs-web-sl")[2][0]["mangle"]["value"]["map"]
    assert pick["key"]["jhash"]["mod"] == forward["key"]["jhash"]["mod"]
    assert pick["key"]["jhash"]["seed"] == forward["key"]["jhash"]["seed"]
    assert pick["data"] == forward["data"]  # the requests' own slots: data, not verdicts
    assert by_address == [{"vmap": {"key": {"payload": {"protocol": "ip", "field": "daddr"}},
                                    "data": "@vs-web-sli-servers"}}]
    chains = {json.loads(k): json.loads(v)["goto"]["target"] for k, v in ruleset.elements["vs-web-sli-servers"].items()}
    assert sorted(chains) == ["10.11.12.1", "10.11.12.2", "10.11.12.3"]
    for address, target in chains.items():
        chain = rules_of(ruleset, target)[0]
        outer = next(s["mangle"]["value"] for s in chain if s["mangle"]["key"].get("payload", {}).get("field"))
        assert outer == address
        inner = chain[-1]["mangle"]  # last: dh hashes the inner source
        assert inner["key"]["payload"]["offset"] == 160 and inner["value"] == int(ipaddress.IPv4Address(address))


def test_servers_sharing_an_address_pick_their_error_chain_by_slot() -> None:
    """Two servers on one address (two ports): the address cannot name the chain, so the slots do (verdicts)."""
    ruleset, _ = build_ip(vs("web", rs(1, 8080), rs(1, 8081), rs(2, 8080)))
    pick = rules_of(ruleset, "vs-web-sli")[1][0]["vmap"]
    targets = {verdict["goto"]["target"] for _, verdict in ruleset.slot_pairs(pick["data"])}
    assert targets == {"vs-web-sli-1", "vs-web-sli-2", "vs-web-sli-3"}
    assert "vs-web-sli-servers" not in ruleset.sets


def test_a_server_going_down_changes_the_tables_slots_and_no_chain() -> None:
    from pykeepalived.lvs.nft_diff import diff
    ctx = BuildContext()
    servers = [rs(i) for i in range(1, 41)]  # 4,093 slots with one down too: the conntrack chain's rule stays
    before = build_all([vs("web", *servers)], ctx)
    servers[1] = rs(2, alive=False)
    after = build_all([vs("web", *servers)], ctx)
    assert set(after["ip"].chains) == set(before["ip"].chains)  # its error chain stays, unused
    early: list[Any] = []
    commands = diff(before["ip"], after["ip"], early)
    assert not any("chain" in verb or "rule" in verb for cmd in commands for verb in cmd.values())
    assert early  # the slots, written by the element writer
    # and none of them a verdict: the kernel validates the whole table at a commit that changes one (slow)
    verdict_maps = {name for name, spec in after["ip"].sets.items() if spec.get("map") == "verdict"}
    assert not {name for name in verdict_maps if after["ip"].elements.get(name) != before["ip"].elements.get(name)}
    assert not [name for name, slots in after["ip"].slot_maps.items() if slots.data_type == "verdict"]


def test_errors_about_a_request_get_the_vip_in_their_inner_header() -> None:
    ruleset, _ = build_ip(vs("web", rs(1, 8080)))
    from_server, about = rules_of(ruleset, ICMP_OUT_CHAIN)
    assert from_server[-1] == {"mangle": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "value": VIP}}
    values = {(s["mangle"]["key"]["payload"]["offset"], s["mangle"]["value"]) for s in about if "mangle" in s}
    spare = compensation(words_of("10.11.12.1") + [8080], words_of(VIP) + [80])
    assert values == {(32, spare), (192, int(ipaddress.IPv4Address(VIP))), (240, 80)}
    assert about[-1] == {"accept": None}


@pytest.mark.parametrize(("scheduler", "flags", "fields"), [
    ("sh", (), [("ip", "saddr")]),
    ("mh", ("mh-port",), [("ip", "saddr"), ("th", "sport")]),
    ("dh", (), [("ip", "daddr")]),
])
def test_each_hash_scheduler_hashes_the_same_fields_in_both_directions(scheduler: str, flags: tuple[str, ...],
                                                                     fields: list[tuple[str, str]]) -> None:
    ruleset, _ = build_ip(vs("web", scheduler=scheduler, sched_flags=flags))
    forward = rules_of(ruleset, "vs-web-sl")[1][0]["mangle"]["value"]["map"]["key"]["jhash"]["expr"]
    parts = forward["concat"] if "concat" in forward else [forward]
    assert [(p["payload"]["protocol"], p["payload"]["field"]) for p in parts] == fields
    inner = rules_of(ruleset, "vs-web-sli")[1][0]["mangle"]["value"]["map"]["key"]["jhash"]["expr"]
    inner_parts = inner["concat"] if "concat" in inner else [inner]
    where = {("ip", "saddr"): 192, ("th", "sport"): 240, ("ip", "daddr"): 160}
    assert [p["payload"]["offset"] for p in inner_parts] == [where[f] for f in fields]


def test_without_servers_the_requests_reach_the_router_untouched_but_untracked() -> None:
    ruleset, _ = build_ip(vs("web", rs(1, alive=False)))
    assert rules_of(ruleset, "vs-web-sl") == [[{"notrack": None}]]
    assert rules_of(ruleset, "vs-web-sli") == [[{"notrack": None}]]
    assert ruleset.elements[REPLIES_MAP]  # a quiesced server's last packets still leave as the VIP


def test_a_refused_service_builds_as_before() -> None:
    plain, _ = build_ip(vs("web", stateless=False))
    refused, ctx = build_ip(vs("web", scheduler="rr"))
    assert "sl_prerouting" not in plain.chains and "sl_prerouting" not in refused.chains
    assert "rr" in ctx.fallbacks["web"]


def icmp6_checksum(src: bytes, dst: bytes, message: bytes) -> int:
    pseudo = src + dst + struct.pack("!I3xB", len(message), 58)
    return ones_sum(pseudo + message)


def packet_too_big(inner_src: str, inner_dst: str, sport: int, dport: int, rng: random.Random) -> bytearray:
    inner = struct.pack("!IHBB16s16s", 0x60000000 | rng.randrange(1 << 20), 1440, 6, rng.randrange(1, 64),
                        ipaddress.IPv6Address(inner_src).packed, ipaddress.IPv6Address(inner_dst).packed)
    return bytearray(struct.pack("!BBHI", 2, 0, 0, 1400) + inner + struct.pack("!HHI", sport, dport, 7))


def random_v6(rng: random.Random) -> str:
    return str(ipaddress.IPv6Address(rng.randrange(2**128)))


def test_icmpv6_errors_are_rewritten_with_a_stand_in_address_that_keeps_the_checksum_right() -> None:
    """What the kernel does to the rules' statements, step by step: a checksum-updating set, then raw writes."""
    from pykeepalived.lvs.nft_stateless import _ones_add, _with_sum
    rng = random.Random(6)
    for _ in range(500):
        remote, client, vip, server = (random_v6(rng) for _ in range(4))
        cport, vport, port = (rng.randrange(1, 65536) for _ in range(3))
        # a hop's packet-too-big for the VIP about a reply (VIP:vport -> client:cport), to the server
        message = packet_too_big(vip, client, vport, cport, rng)
        src, dst = ipaddress.IPv6Address(remote).packed, ipaddress.IPv6Address(vip).packed
        struct.pack_into("!H", message, 2, ~icmp6_checksum(src, dst, bytes(message)) & 0xFFFF)
        change = _ones_add(ones_sum(ipaddress.IPv6Address(server).packed + struct.pack("!H", port)),
                           ~ones_sum(ipaddress.IPv6Address(vip).packed + struct.pack("!H", vport)) & 0xFFFF)
        stand_in = ipaddress.IPv6Address(_with_sum(server, change)).packed
        # `ip6 daddr set STAND_IN`: nftables updates the checksum for the pseudo-header's change
        struct.pack_into("!H", message, 2, ~icmp6_checksum(src, stand_in, bytes(message[:2]) + b"\0\0"
                                                          + bytes(message[4:])) & 0xFFFF)
        assert icmp6_checksum(src, stand_in, bytes(message)) == 0xFFFF
        # raw writes, no update: the outer destination, the quoted source and port
        dst = ipaddress.IPv6Address(server).packed
        message[16:32] = dst
        struct.pack_into("!H", message, 48, port)
        assert icmp6_checksum(src, dst, bytes(message)) == 0xFFFF


def test_an_icmpv6_error_about_a_request_gets_the_vip_inside_and_as_source_with_the_checksum_right() -> None:
    """The router's packet-too-big about client -> server:port becomes one from the VIP about client -> VIP:vport."""
    from pykeepalived.lvs.nft_stateless import _ones_add, _with_sum
    rng = random.Random(66)
    for _ in range(500):
        router, client, vip, server = (random_v6(rng) for _ in range(4))
        cport, vport, port = (rng.randrange(1, 65536) for _ in range(3))
        message = packet_too_big(client, server, cport, port, rng)
        src, dst = ipaddress.IPv6Address(router).packed, ipaddress.IPv6Address(client).packed
        struct.pack_into("!H", message, 2, ~icmp6_checksum(src, dst, bytes(message)) & 0xFFFF)
        change = _ones_add(ones_sum(ipaddress.IPv6Address(vip).packed + struct.pack("!H", vport)),
                           ~ones_sum(ipaddress.IPv6Address(server).packed + struct.pack("!H", port)) & 0xFFFF)
        stand_in = ipaddress.IPv6Address(_with_sum(vip, change)).packed
        # `ip6 saddr set STAND_IN` (checksum updated), then raw: outer source, quoted destination and port
        struct.pack_into("!H", message, 2, ~icmp6_checksum(stand_in, dst, bytes(message[:2]) + b"\0\0"
                                                          + bytes(message[4:])) & 0xFFFF)
        src = ipaddress.IPv6Address(vip).packed
        message[32:48] = src
        struct.pack_into("!H", message, 50, vport)
        assert icmp6_checksum(src, dst, bytes(message)) == 0xFFFF


class FakeNft:
    """Libnftables' stand-in: takes every batch, lists no table."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def run(self, commands: list[dict[str, Any]], elements: Any = (), undo: Any = ()) -> dict[str, Any]:
        self.batches.append(commands)
        return {}

    def table_handles(self, name: str) -> dict[str, int]:
        return {}


def test_the_backend_says_once_why_a_service_keeps_its_state(caplog: pytest.LogCaptureFixture) -> None:
    from pykeepalived.lvs.model import DesiredTable
    from pykeepalived.lvs.nft import NftablesBackend
    backend = NftablesBackend(FakeNft())  # type: ignore[arg-type]
    backend.ctx.device_for = lambda address: "eth1"  # no route lookup (stateless NAT may take ingress)
    table = DesiredTable((vs("web", scheduler="rr"), vs("fast", rs(4), rs(5), port=81)))
    with caplog.at_level("WARNING", logger="pykeepalived.lvs"):
        backend.apply_now(table)
        backend.apply_now(table)
    said = [r.getMessage() for r in caplog.records if "keeps per-flow state" in r.getMessage()]
    assert said == ["nftables: virtual server web keeps per-flow state despite pykeepalived_stateless: "
                    "scheduler rr needs state per connection; stateless NAT needs a hashing one (sh, dh, mh, lblc, "
                    "lblcr)"]
