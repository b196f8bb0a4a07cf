"""A pick rule's new modulus in place (nft_modulus): found in the diff, patched in the kernel's bytes, without a kernel.

The kernel's side is built here from netlink attributes as the kernel dumps
them (tests/netns/test_nft_modulus.py checks the same against a kernel).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.lvs.nft_diff import InPlace, diff
from pykeepalived.lvs.nft_elements import Batch
from pykeepalived.lvs.nft_modulus import (KernelRule, ModulusChange, RuleDumpError, RuleReplace, SwapUnavailable,
                                          modulus_change, parse_rules, patched, rule_swaps, rules_request)
from pykeepalived.lvs.nft_rules import BuildContext, Ruleset, build


def nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size & 3)


def expr(name: str, *fields: tuple[int, bytes]) -> bytes:
    data = b"".join(nla(kind, value) for kind, value in fields)
    return nla(1 | 0x8000, nla(1, name.encode() + b"\0") + nla(2 | 0x8000, data))


def u32(value: int) -> bytes:
    return struct.pack(">I", value)


def numgen(modulus: int) -> bytes:
    return expr("numgen", (1, u32(1)), (2, u32(modulus)), (3, u32(0)), (4, u32(0)))  # dreg, modulus, type, offset


def lookup(set_name: str) -> bytes:
    return expr("lookup", (1, set_name.encode() + b"\0"), (2, u32(1)), (3, u32(0)))  # set, sreg, dreg


def rule_message(handle: int, *exprs: bytes, userdata: bytes | None = None) -> bytes:
    body = (struct.pack("=BBH", 2, 0, 0) + nla(1, b"pykeepalived_lvs\0") + nla(2, b"vs-web\0")
            + nla(3, struct.pack(">Q", handle)) + nla(4 | 0x8000, b"".join(exprs)))
    if userdata is not None:
        body += nla(7, userdata)
    return struct.pack("=IHHII", 16 + len(body), 10 << 8 | 6, 2, 9, 0) + body


DONE = struct.pack("=IHHIIi", 20, 3, 2, 9, 0, 0)
RULE = '[{"dnat": {"addr": {"map": {"data": "@vs-web-slots", "key": {"numgen": {"mod": %d, "mode": "inc", ' \
       '"offset": 0}}}}, "family": "ip"}}]'


def test_a_rule_that_differs_in_one_modulus_is_a_modulus_change() -> None:
    assert modulus_change(RULE % 100, RULE % 99) == ModulusChange("numgen", 100, 99)
    jhash = '[{"jhash": {"expr": {"payload": {"field": "saddr", "protocol": "ip"}}, "mod": %d, "seed": 7}}]'
    assert modulus_change(jhash % 4093, jhash % 8191) == ModulusChange("jhash", 4093, 8191)


@pytest.mark.parametrize("new", [
    RULE.replace("@vs-web-slots", "@vs-web-other") % 99,  # another map
    RULE.replace('"inc"', '"random"') % 99,  # another mode
    RULE % 100,  # the same rule
    (RULE % 99)[:-1] + ', {"counter": null}]',  # a statement more
    RULE % 0,  # no modulus of zero
])
def test_anything_else_that_differs_is_not_a_modulus_change(new: str) -> None:
    assert modulus_change(RULE % 100, new) is None


def test_two_moduli_changed_in_one_rule_are_not_swapped() -> None:
    two = '[{"numgen": {"mod": %d, "mode": "inc", "offset": 0}}, {"numgen": {"mod": %d, "mode": "inc", "offset": 0}}]'
    assert modulus_change(two % (3, 3), two % (2, 2)) is None


def test_a_chain_swaps_only_if_every_changed_rule_is_a_modulus_change() -> None:
    other = '[{"counter": null}]'
    swaps = rule_swaps("vs-web", [other, RULE % 100], [other, RULE % 99])
    assert swaps is not None and [(s.index, s.rules, s.change.new) for s in swaps] == [(1, 2, 99)]
    assert rule_swaps("vs-web", [other, RULE % 100], [RULE % 99]) is None
    assert rule_swaps("vs-web", [other, RULE % 100], ['[{"counter": {"packets": 1}}]', RULE % 99]) is None
    assert rule_swaps("vs-web", [RULE % 100], [RULE % 100]) is None


def test_the_dump_request_names_one_chain_of_one_family() -> None:
    request = rules_request("netdev", "pykeepalived_lvs", "vs-web-pick", 5)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq) == (len(request), 10 << 8 | 7, 0x301, 5)
    assert request[16] == 5  # NFPROTO_NETDEV
    assert b"pykeepalived_lvs\0" in request and b"vs-web-pick\0" in request


def test_a_dump_gives_each_rule_with_its_handle_and_expressions_in_order() -> None:
    first, second = rule_message(4, numgen(100), lookup("vs-web-slots")), rule_message(9, lookup("x"), userdata=b"u")
    rules, done = parse_rules(first + second)
    assert not done and [int.from_bytes(r.handle, "big") for r in rules] == [4, 9]
    assert rules[0].expressions == numgen(100) + lookup("vs-web-slots") and rules[1].userdata == b"u"
    assert parse_rules(DONE) == ([], True)
    with pytest.raises(RuleDumpError):
        parse_rules(struct.pack("=IHHIIi", 20, 2, 0, 9, 0, -2))  # ENOENT: the chain is not there
    overrun = struct.pack("=BBH", 2, 0, 0) + struct.pack("=HH", 64, 1) + b"web\0"  # an attribute past the message
    with pytest.raises(RuleDumpError):
        parse_rules(struct.pack("=IHHII", 16 + len(overrun), 10 << 8 | 6, 2, 9, 0) + overrun)


def test_the_new_modulus_is_written_over_the_old_and_nothing_else_changes() -> None:
    rule = KernelRule(struct.pack(">Q", 4), numgen(100) + lookup("vs-web-slots"), None)
    out = patched(rule, ModulusChange("numgen", 100, 99))
    assert out == numgen(99) + lookup("vs-web-slots")


@pytest.mark.parametrize("exprs, why", [
    (numgen(98) + lookup("vs-web-slots"), "0 numgen"),  # not the modulus the diff saw
    (numgen(100) + numgen(100), "2 numgen"),  # which one?
    (numgen(100) + lookup("__map%d"), "anonymous"),  # bound to the rule
])
def test_a_rule_not_as_expected_is_not_swapped(exprs: bytes, why: str) -> None:
    with pytest.raises(SwapUnavailable, match=why):
        patched(KernelRule(struct.pack(">Q", 4), exprs, None), ModulusChange("numgen", 100, 99))


def test_a_replacement_is_a_newrule_that_replaces_by_handle_in_the_element_batch() -> None:
    replace = RuleReplace("ip", "pykeepalived_lvs", "vs-web", struct.pack(">Q", 4), numgen(99), b"u")
    batch = Batch(1)
    batch.add(replace)
    data = bytes(batch.finish())
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", data, 20)  # after the batch's begin
    assert (kind, flags, seq) == (10 << 8 | 6, 0x1 | 0x4 | 0x100, 2)  # NEWRULE: request, ack, replace
    assert data[20 + 16 + 4:20 + length] == replace.payload()
    assert batch.names[2] == "rule ip pykeepalived_lvs vs-web handle 4"
    payload = replace.payload()
    assert nla(3, struct.pack(">Q", 4)) in payload and nla(4 | 0x8000, numgen(99)) in payload


def rr_pool(n: int, down: int | None = None, **kw: Any) -> VirtualService:
    method = kw.pop("method", "NAT")
    dests = tuple(Destination(f"10.20.0.{i + 1}", 80, 1, method=method, alive=i != down) for i in range(n))
    return VirtualService("web", "address", "203.0.113.10", 80, "TCP", scheduler="rr", method=method,
                          destinations=dests, **kw)


def tables(method: str = "NAT") -> tuple[Ruleset, Ruleset]:
    """The table before and after one server of 100 goes down (DR: its copy path in table ip, no ingress device)."""
    ctx = BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt-{a}")
    before = build([rr_pool(100, method=method)], ctx)["ip"]
    ctx.slot_tables = dict(before.slot_tables)
    return before, build([rr_pool(100, down=7, method=method)], ctx)["ip"]


@pytest.mark.parametrize("method", ["NAT", "DR"])
def test_an_rr_server_down_changes_one_modulus_in_place_and_deletes_the_last_slot_after_it(method: str) -> None:
    before, after = tables(method)
    early: list[Any] = []
    in_place = InPlace()
    assert diff(before, after, early, in_place) == []
    assert [(s.change.old, s.change.new) for s in in_place.rules] == [(100, 99)]
    assert [(name, list(slots)) for name, _, slots in in_place.tails] == [(in_place.tails[0][0], [99])]
    assert early  # the slots that change, before
    # the same as libnftables commands: the chain made again, then the tail
    verbs = [(verb, next(iter(body))) for cmd in in_place.commands for verb, body in cmd.items()]
    assert verbs == [("flush", "chain"), ("add", "rule"), ("delete", "element")]
    assert json.dumps(in_place.commands[1]).count('"mod": 99') == 1


def test_without_early_elements_the_modulus_stays_in_the_commands() -> None:
    before, after = tables()
    in_place = InPlace()
    cmds = diff(before, after, None, in_place)
    assert not in_place and not in_place.commands
    assert any("flush" in cmd for cmd in cmds)
