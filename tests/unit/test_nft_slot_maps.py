"""Slot maps: what a change to one real server sends to nftables, without a kernel.

The hash and load-based schedulers' tables live in named maps so that a
change rewrites the slots that changed and nothing else (nft_rules' module
docstring); these tests read the commands the diff emits.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

from pykeepalived.lvs import sched
from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.lvs.nft import FORGET_CACHE, Libnftables
from pykeepalived.lvs.nft_diff import _slot_changes, diff, fresh_table
from pykeepalived.lvs.nft_rules import BuildContext, Ruleset, build


def rs(i: int, *, weight: int = 1, alive: bool = True, method: str = "NAT") -> Destination:
    return Destination(f"10.20.{i // 250}.{i % 250 + 1}", 80, weight, method=method, alive=alive)  # type: ignore[arg-type]


def vs(name: str, n: int, *, down: int | None = None, **kw: object) -> VirtualService:
    fields: dict[str, object] = {"kind": "address", "address": "203.0.113.10", "port": 80, "protocol": "TCP",
                                 "scheduler": "mh"}
    fields.update(kw)
    method = str(fields.get("method", "NAT"))
    dests = tuple(rs(i, alive=i != down, method=method) for i in range(n))
    return VirtualService(name, destinations=dests, **fields)  # type: ignore[arg-type]


def ctx() -> BuildContext:
    return BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt-{a}")


def kinds(cmds: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(verb, next(iter(body))) for cmd in cmds for verb, body in cmd.items()]


def elements(cmds: list[dict[str, Any]], verb: str) -> list[Any]:
    return [e for cmd in cmds if verb in cmd and "element" in cmd[verb] for e in cmd[verb]["element"]["elem"]]


def rebuild(before: Ruleset, services: list[VirtualService], c: BuildContext) -> Ruleset:
    c.slot_tables = dict(before.slot_tables)  # what the backend hands over from the table in force
    return build(services, c)["ip"]


def test_one_server_leaving_a_maglev_service_rewrites_only_the_slots_that_move() -> None:
    c = ctx()
    before = build([vs("web", 40)], c)["ip"]
    after = rebuild(before, [vs("web", 40, down=7)], c)
    cmds = diff(before, after)
    assert set(kinds(cmds)) == {("delete", "element"), ("add", "element")}
    old, new = before.slot_maps["vs-web-slots"].data, after.slot_maps["vs-web-slots"].data
    moved = [slot for slot, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert elements(cmds, "delete") == moved
    assert [slot for slot, _ in elements(cmds, "add")] == moved
    gone = json.dumps({"concat": [rs(7).address, 80]})
    assert {slot for slot, text in enumerate(old) if text == gone} <= set(moved)
    assert len(moved) < 3 * old.count(gone)  # Maglev: the leaver's slots and a few more
    assert diff(after, rebuild(after, [vs("web", 40, down=7)], c)) == []


def test_maps_of_one_maglev_run_compare_only_their_patched_slots_and_find_every_change() -> None:
    c = ctx()
    whole = build([vs("web", 60)], c)["ip"]
    one_down = rebuild(whole, [vs("web", 60, down=7)], c)
    another_down = rebuild(one_down, [vs("web", 60, down=20)], c)
    maps = [r.slot_maps["vs-web-slots"] for r in (whole, one_down, another_down)]
    assert maps[0].base is not None and all(m.base is maps[0].base for m in maps)
    assert maps[0].patched == () and maps[1].patched and maps[2].patched
    for old, new in itertools.permutations(maps, 2):
        slot_by_slot = _slot_changes(replace(old, base=None), replace(new, base=None), frozenset())
        assert _slot_changes(old, new, frozenset()) == slot_by_slot and slot_by_slot[0]


def test_wlc_moves_only_the_slots_of_the_server_that_left() -> None:
    c = ctx()
    before = build([vs("web", 20, scheduler="wlc")], c)["ip"]
    after = rebuild(before, [vs("web", 20, scheduler="wlc", down=3)], c)
    cmds = diff(before, after)
    assert set(kinds(cmds)) == {("delete", "element"), ("add", "element")}
    old = before.slot_maps["vs-web-slots"].data
    new = after.slot_maps["vs-web-slots"].data
    moved = {slot for slot, (a, b) in enumerate(zip(old, new, strict=True)) if a != b}
    assert moved == {slot for slot, text in enumerate(old) if rs(3).address in text}
    # the shares are the scheduler's own: only the order of the slots followed the table in force
    counts = sched.load_slots("wlc", [1] * 19, [0] * 19, [0] * 19, 256, 256)
    assert sorted(new.count(json.dumps({"concat": [rs(i).address, 80]})) for i in range(20) if i != 3) == \
        sorted(counts)


def test_an_rr_server_leaving_a_long_cycle_moves_two_slots_and_keeps_every_share() -> None:
    c = ctx()
    before = build([vs("web", 200, scheduler="rr")], c)["ip"]
    old = before.slot_maps["vs-web-slots"].data
    assert old == tuple(json.dumps({"concat": [rs(i).address, 80]}) for i in range(200))  # IPVS's order first
    after = rebuild(before, [vs("web", 200, scheduler="rr", down=7)], c)
    cmds = diff(before, after)
    new = after.slot_maps["vs-web-slots"].data
    assert len(new) == 199 and sorted(new) == sorted(t for i, t in enumerate(old) if i != 7)  # one slot each
    assert elements(cmds, "delete") == [7, 199]  # the leaver's slot, and the last one, which moved into it
    assert [(slot, target["concat"][0]) for slot, target in elements(cmds, "add")] == [(7, rs(199).address)]
    assert ("add", "rule") in kinds(cmds)  # the rule's `numgen inc mod 199`
    back = rebuild(after, [vs("web", 200, scheduler="rr")], c)  # it comes back: one slot more, at the end
    assert sorted(back.slot_maps["vs-web-slots"].data) == sorted(old)
    assert len(elements(diff(after, back), "add")) == 1


def test_a_short_rr_cycle_stays_in_the_rule_in_ipvs_order() -> None:
    c = ctx()
    before = build([vs("web", 10, scheduler="rr")], c)["ip"]
    assert not before.slot_maps and not before.slot_tables
    after = rebuild(before, [vs("web", 10, scheduler="rr", down=3)], c)
    rule = json.loads(after.rules["vs-web"][-1])
    pairs = rule[-1]["dnat"]["addr"]["map"]["data"]["set"]
    assert [target["concat"][0] for _, target in pairs] == [rs(i).address for i in range(10) if i != 3]


def test_services_on_one_pool_share_a_map_until_one_of_them_changes() -> None:
    c = ctx()
    a, b = vs("a", 5), vs("b", 5, address="203.0.113.11")
    before = build([a, b], c)["ip"]
    assert list(before.slot_maps) == ["vs-a-slots"]
    assert json.loads(before.rules["vs-b"][0])[-1]["dnat"]["addr"]["map"]["data"] == "@vs-a-slots"
    after = rebuild(before, [vs("a", 5, down=1), b], c)
    assert sorted(after.slot_maps) == ["vs-a-slots", "vs-b-slots"]
    cmds = diff(before, after)
    made = [cmd["add"]["map"] for cmd in cmds if "add" in cmd and "map" in cmd["add"]]
    assert [(m["name"], m["typeof"]) for m in made] == [("vs-b-slots", "numgen inc mod 1 : ip daddr . tcp dport")]
    assert ("flush", "chain") in kinds(cmds)  # vs-b's rule now names its own map


def test_a_new_slot_map_is_made_with_its_type_then_filled() -> None:
    ruleset = build([vs("web", 3), vs("dr", 3, port=81, method="DR", scheduler="sh")], ctx())["ip"]
    cmds = fresh_table(ruleset)
    made = {cmd["add"]["map"]["name"]: cmd["add"]["map"]["typeof"] for cmd in cmds
            if "add" in cmd and "map" in cmd["add"] and "typeof" in cmd["add"]["map"]}
    # DR's pick: the server's address as data, then its chain by that address (nft_rules.entries_map)
    assert made == {"vs-web-slots": "numgen inc mod 1 : ip daddr . tcp dport",
                    "vs-dr-addrs": "numgen inc mod 1 : ip daddr"}
    filled = {cmd["add"]["element"]["name"]: len(cmd["add"]["element"]["elem"]) for cmd in cmds
              if "add" in cmd and "element" in cmd["add"]}
    assert filled["vs-web-slots"] == filled["vs-dr-addrs"] == sched.maglev_size_for(3)
    assert filled["vs-dr-entries"] == 3


def test_a_dr_server_leaving_frees_its_slots_before_its_chain_goes() -> None:
    c = ctx()
    before = build([vs("dr", 4, method="DR", scheduler="mh")], c)["ip"]
    gone = replace(vs("dr", 4, method="DR", scheduler="mh"),
                   destinations=vs("dr", 4, method="DR").destinations[:3])
    cmds = diff(before, rebuild(before, [gone], c))
    order = kinds(cmds)
    assert order.index(("delete", "element")) < order.index(("delete", "chain"))
    freed = elements(cmds, "delete")
    gone_address = vs("dr", 4, method="DR").destinations[3].address
    old = before.slot_maps["vs-dr-addrs"].data
    assert {slot for slot, text in enumerate(old) if json.loads(text) == gone_address} <= set(freed)
    assert all(data != gone_address for _, data in elements(cmds, "add") if not isinstance(data, dict))
    # its entry in the address map goes before its chains (the kernel refuses to delete a chain still gone to)
    steps = [(verb, kind, body[kind].get("name")) for cmd in cmds for verb, body in cmd.items() for kind in body]
    assert steps.index(("delete", "element", "vs-dr-entries")) < steps.index(("delete", "chain", "vs-dr-4-in"))
    assert steps.index(("flush", "chain", "vs-dr-4-in")) < steps.index(("delete", "chain", "vs-dr-4"))


def test_a_persistent_service_removed_deletes_its_picks_map_before_the_chains_it_goes_to() -> None:
    """The kernel refuses to delete a chain a map element still goes to (EBUSY); the map goes first."""
    c = ctx()
    other = vs("web", 4, address="203.0.113.11")
    before = build([other, vs("per", 4, persistence_timeout_s=60)], c)["ip"]
    cmds = diff(before, rebuild(before, [other], c))
    deleted = [(verb, kind, body[kind]["name"]) for cmd in cmds for verb, body in cmd.items() for kind in body
               if verb == "delete" and kind in ("map", "chain")]
    assert deleted.index(("delete", "map", "vs-per-picks")) < deleted.index(("delete", "chain", "vs-per-1"))


class FakeNft:
    """libnftables' Nftables as the backend calls it: what was sent, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.forgot = 0  # Libnftables.forget_cache's commands, counted apart


    def cmd(self, text: str) -> tuple[int, str, str]:
        """A JSON transaction is sent as its text too (the backend keeps its length): told apart by its root."""
        if text == FORGET_CACHE:
            self.forgot += 1
            return 1, "", "Error: No such file or directory"
        if text.startswith('{"nftables"'):
            self.calls.append(("json", json.loads(text)["nftables"]))
        else:
            self.calls.append(("text", text))
        return 0, "", ""


def test_slot_maps_are_made_by_text_before_the_json_transaction_and_after_a_table_reset() -> None:
    nft = Libnftables()
    fake = FakeNft()
    nft._nft = fake
    nft.run(fresh_table(build([vs("web", 3)], ctx())["ip"]))
    (first, tables), (second, text), (third, rest) = fake.calls
    assert (first, second, third) == ("json", "text", "json")
    assert kinds(tables) == [("add", "table"), ("delete", "table"), ("add", "table")]
    assert text == "add map ip pykeepalived_lvs vs-web-slots { typeof numgen inc mod 1 : ip daddr . tcp dport ; }"
    assert ("add", "element") in kinds(rest) and not any("typeof" in json.dumps(cmd) for cmd in rest)


def test_libnftables_cache_is_emptied_once_per_change_that_used_it() -> None:
    # 512 KiB of hash buckets per cached table, fetched again by the next command anyway (Libnftables.forget_cache)
    nft = Libnftables()
    fake = FakeNft()
    nft._nft = fake
    nft.run(fresh_table(build([vs("web", 3)], ctx())["ip"]))
    assert fake.forgot == 1 and len(fake.calls) == 3
    nft.run([])  # an empty change still goes to libnftables (as before): forgotten after it too
    assert fake.forgot == 2
    nft.run([{"list": {"set": {"family": "ip", "table": "t", "name": "a"}}}], keep_cache=True)
    nft.run([{"list": {"set": {"family": "ip", "table": "t", "name": "b"}}}], keep_cache=True)
    assert fake.forgot == 2
    nft.forget_cache()
    nft.forget_cache()  # nothing cached since: no command
    assert fake.forgot == 3


def test_a_change_without_new_maps_is_one_json_transaction() -> None:
    nft = Libnftables()
    fake = FakeNft()
    nft._nft = fake
    c = ctx()
    before = build([vs("web", 30)], c)["ip"]
    nft.run(diff(before, rebuild(before, [vs("web", 30, down=2)], c)))
    assert [kind for kind, _ in fake.calls] == ["json"]


def test_a_slot_map_names_the_services_one_protocol_and_fwmarks_keep_a_literal_map() -> None:
    """libnftables refuses a map whose data names another protocol than the rule's match, or one of a set."""
    udp = vs("dns", 3, protocol="UDP", port=53)
    mark = VirtualService("FWM 7", "fwmark", fwmark=7, scheduler="mh", destinations=udp.destinations)
    ruleset = build([udp, mark], ctx())["ip"]
    assert list(ruleset.slot_maps) == ["vs-dns-udp-slots"]
    assert ruleset.slot_maps["vs-dns-udp-slots"].data_type == "ip daddr . udp dport"
    rule = json.loads(ruleset.rules["vs-dns"][0])
    assert rule[0] == {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}}
    literal = json.loads(ruleset.rules["vs-FWM_7"][0])
    assert literal[0]["match"]["right"] == {"set": ["tcp", "udp", "sctp"]}
    assert "set" in literal[-1]["dnat"]["addr"]["map"]["data"]
