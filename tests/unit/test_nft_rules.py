"""The nftables layout and diff, without a kernel: what each service becomes, and what a change rewrites."""

from __future__ import annotations

import json

import pytest

from pykeepalived.lvs.model import Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft_diff import diff, fresh_table
from pykeepalived.lvs.nft_rules import (CHECKER_IN_CHAIN, CHECKER_OUT_CHAIN, BuildContext, CannotExpress, Ruleset,
                                         build, check_service)


def rs(i: int, *, port: int | None = 80, weight: int = 1, alive: bool = True, method: str = "NAT") -> Destination:
    return Destination(f"10.11.12.{i}", port, weight, method=method, alive=alive)


def vs(name: str = "web", *dests: Destination, **kw: object) -> VirtualService:
    fields: dict[str, object] = {"kind": "address", "address": "203.0.113.10", "port": 80, "protocol": "TCP",
                                 "scheduler": "rr"}
    fields.update(kw)
    return VirtualService(name, destinations=tuple(dests) or (rs(1), rs(2), rs(3)), **fields)  # type: ignore[arg-type]


def ctx() -> BuildContext:
    return BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt-{a}")


def rules(ruleset: Ruleset, chain: str) -> list[list[dict[str, object]]]:
    return [json.loads(r) for r in ruleset.rules[chain]]


def dnat_map(rule: list[dict[str, object]]) -> dict[str, object]:
    dnat = next(e["dnat"] for e in rule if "dnat" in e)
    return dnat["addr"]["map"]  # type: ignore[index,no-any-return]


def test_nat_rr_spreads_over_alive_servers_in_order() -> None:
    ruleset = build([vs("web", rs(1), rs(2, alive=False), rs(3), rs(4, weight=0))], ctx())["ip"]
    (rule,) = rules(ruleset, "vs-web")
    mapping = dnat_map(rule)
    assert mapping["key"] == {"numgen": {"mode": "inc", "mod": 2, "offset": 0}}
    assert mapping["data"] == {"set": [[0, {"concat": ["10.11.12.1", 80]}], [1, {"concat": ["10.11.12.3", 80]}]]}
    assert json.loads(next(iter(ruleset.elements["nat_ports"]))) == {"concat": ["203.0.113.10", "tcp", 80]}


def test_wrr_follows_ipvs_order_and_hash_schedulers_use_a_fixed_seed() -> None:
    ruleset = build([vs("w", rs(1, weight=1), rs(2, weight=2), rs(3, weight=3), scheduler="wrr"),
                     vs("m", rs(1), rs(2), scheduler="mh", sched_flags=("mh-port",), port=81)], ctx())["ip"]
    wrr = dnat_map(rules(ruleset, "vs-w")[0])
    order = [pair[1]["concat"][0][-1] for pair in wrr["data"]["set"]]  # type: ignore[index]
    assert order == ["3", "2", "3", "1", "2", "3"]
    mh = dnat_map(rules(ruleset, "vs-m")[0])["key"]["jhash"]  # type: ignore[index]
    assert mh["seed"] == 0x706B6100
    assert mh["expr"]["concat"][1] == {"payload": {"protocol": "th", "field": "sport"}}


def test_one_server_is_a_plain_dnat_and_none_leaves_the_chain_empty() -> None:
    ruleset = build([vs("one", rs(1), rs(2, alive=False)), vs("none", rs(1, alive=False), port=81)], ctx())["ip"]
    assert rules(ruleset, "vs-one")[0][-1] == {"dnat": {"family": "ip", "addr": "10.11.12.1", "port": 80}}
    assert rules(ruleset, "vs-none") == []


def test_fwmark_persistence_gives_each_server_a_client_set() -> None:
    svc = VirtualService("FWM 80", "fwmark", fwmark=80, scheduler="rr", persistence_timeout_s=30,
                         persistence_granularity="255.255.255.0",
                         destinations=(rs(1, port=None), rs(2, port=None)))
    ruleset = build([svc], ctx())["ip"]
    assert set(ruleset.elements["nat_fwmarks"]) == {"80"}
    base = rules(ruleset, "vs-FWM_80")
    assert base[0][0]["match"]["right"] == "@vs-FWM_80-1-clients"  # type: ignore[index]
    assert base[0][0]["match"]["left"] == {"&": [{"payload": {"protocol": "ip", "field": "saddr"}}, "255.255.255.0"]}
    assert base[-1] == [{"goto": {"target": "vs-FWM_80-pick"}}]  # the pick in a chain of its own (pick_chain)
    assert "vmap" in rules(ruleset, "vs-FWM_80-pick")[-1][0]
    assert ruleset.sets["vs-FWM_80-1-clients"]["timeout"] == 30
    assert rules(ruleset, "vs-FWM_80-2")[-1] == [{"dnat": {"family": "ip", "addr": "10.11.12.2"}}]


def test_dr_duplicates_to_the_server_and_drops_the_original() -> None:
    svc = vs("dr", rs(1, method="DR"), rs(2, method="DR"), method="DR")
    ruleset = build([svc], ctx())["ip"]
    assert "vs-dr" in {json.loads(v)["goto"]["target"] for v in ruleset.elements["dup_ports"].values()}
    assert rules(ruleset, "vs-dr-1")[1:] == [[{"dup": {"addr": "10.11.12.1", "dev": "eth1"}}], [{"drop": None}]]
    assert ruleset.sets["vs-dr-2-flows"]["type"] == ["ipv4_addr", "inet_service", "inet_service"]


def test_group_entries_expand_to_dispatch_keys() -> None:
    svc = vs("g", kind="group", address=None, port=None, group="G",
             group_entries=(GroupEntry("range", "203.0.113.20", "203.0.113.22", port=80),
                            GroupEntry("fwmark", fwmark=7)))
    ruleset = build([svc], ctx())["ip"]
    assert len(ruleset.elements["nat_ports"]) == 3
    assert set(ruleset.elements["nat_fwmarks"]) == {"7"}


@pytest.mark.parametrize(("svc", "reason"), [
    (vs("mix", rs(1), rs(2, method="DR")), "mix forwarding methods"),
    (vs("ops", sched_flags=("ops",)), "one-packet"),
    (vs("sip", persistence_engine="sip"), "persistence_engine"),
    (vs("ports", rs(1), rs(2, port=None)), "some real servers have a port"),
    (vs("v6", rs(1), Destination("2001:db8::1", 80, 1)), "address family"),
])
def test_what_nftables_cannot_express_is_refused_with_the_reason(svc: VirtualService, reason: str) -> None:
    with pytest.raises(CannotExpress, match=reason):
        check_service(svc)


def test_a_changed_server_rewrites_only_its_service() -> None:
    c = ctx()
    old = build([vs("a"), vs("b", port=81)], c)["ip"]
    new = build([vs("a", rs(1), rs(2, alive=False), rs(3)), vs("b", port=81)], c)["ip"]
    cmds = diff(old, new)
    assert [next(iter(cmd)) for cmd in cmds] == ["flush", "add"]
    assert cmds[0]["flush"]["chain"]["name"] == "vs-a"
    assert cmds[1]["add"]["rule"]["chain"] == "vs-a"
    assert diff(new, new) == []


def test_a_removed_service_goes_with_its_chains_sets_and_dispatch_element() -> None:
    c = ctx()
    svc = vs("p", persistence_timeout_s=60, port=81)
    old = build([vs("a"), svc], c)["ip"]
    new = build([vs("a")], c)["ip"]
    cmds = diff(old, new)
    kinds = [(next(iter(cmd)), next(iter(next(iter(cmd.values()))))) for cmd in cmds]
    assert kinds[0] == ("delete", "element")
    assert ("delete", "chain") in kinds and ("delete", "set") in kinds
    assert kinds.index(("flush", "chain")) < kinds.index(("delete", "chain")) < kinds.index(("delete", "set"))
    assert not any(k[0] == "add" for k in kinds)


def test_a_fresh_table_replaces_any_leftover() -> None:
    cmds = fresh_table(build([vs("a")], ctx())["ip"])
    assert [next(iter(c)) for c in cmds[:3]] == ["add", "delete", "add"]
    assert cmds[1]["delete"]["table"] == {"family": "ip", "name": "pykeepalived_lvs"}


def test_server_numbers_stay_put_when_others_leave() -> None:
    c = ctx()
    build([vs("p", rs(1), rs(2), rs(3), persistence_timeout_s=60)], c)
    ruleset = build([vs("p", rs(1), rs(3), persistence_timeout_s=60)], c)["ip"]
    assert "vs-p-3" in ruleset.chains and "vs-p-2" not in ruleset.chains


def test_only_the_hooks_some_service_dispatches_through_are_registered() -> None:
    c = ctx()
    nat = build([vs("a")], c)["ip"]
    assert {"nat_prerouting", "nat_output"} <= set(nat.chains) and "dup_prerouting" not in nat.chains
    dr = build([vs("d", rs(1, method="DR"), method="DR")], c)["ip"]
    assert "dup_prerouting" in dr.chains and not {"nat_prerouting", "nat_output"} & set(dr.chains)
    both = build([vs("a"), vs("d", rs(1, method="DR"), method="DR", port=81)], c)["ip"]
    cmds = diff(nat, both)
    added = [cmd["add"]["chain"]["name"] for cmd in cmds if "chain" in cmd.get("add", {})]
    assert "dup_prerouting" in added and "nat_prerouting" not in added
    # the maps stay whatever is hooked, so a later service only adds its element and chain
    assert {"nat_ports", "dup_ports"} <= set(dr.sets)
    back = diff(both, nat)
    assert {"flush": {"chain": {"family": "ip", "table": "pykeepalived_lvs", "name": "dup_prerouting"}}} in back
    assert {"delete": {"chain": {"family": "ip", "table": "pykeepalived_lvs", "name": "dup_prerouting"}}} in back


def test_uthreshold_takes_a_server_out_until_it_falls_below_lthreshold_or_three_quarters() -> None:
    from pykeepalived.lvs.nft_rules import overloaded_now

    with_l = Destination("10.11.12.1", 80, 1, uthreshold=10, lthreshold=5)
    without_l = Destination("10.11.12.2", 80, 1, uthreshold=8)
    plain = rs(3)
    svc = vs("t", with_l, without_l, plain)
    a, b, c = (d.name for d in svc.destinations)

    def step(before: frozenset[tuple[str, str]], la: int, lb: int, lc: int = 1000) -> frozenset[tuple[str, str]]:
        return overloaded_now([svc], {"t": {a: (la, 0), b: (lb - 1, 1), c: (lc, 0)}}, before)

    over = step(frozenset(), 10, 8)
    assert over == {("t", a), ("t", b)}  # reached uthreshold (active + inactive); no uthreshold: never
    over = step(over, 6, 6)
    assert over == {("t", a), ("t", b)}  # 6 is not below lthreshold 5; 6 * 4 is not below 8 * 3
    over = step(over, 4, 5)
    assert over == set()
    assert step(frozenset(), 9, 7) == set()  # below uthreshold and not overloaded before

    c_ctx = ctx()
    c_ctx.overloaded = frozenset({("t", a)})
    table = dnat_map(rules(build([svc], c_ctx)["ip"], "vs-t")[0])
    targets = {json.dumps(pair[1]) for pair in table["data"]["set"]}  # type: ignore[index]
    assert not any("10.11.12.1" in t for t in targets) and any("10.11.12.2" in t for t in targets)


def test_lost_quorum_without_a_sorry_server_keeps_the_alive_servers_as_keepalived_does() -> None:
    ruleset = build([vs("q", rs(1), rs(2, alive=False), quorum_up=False)], ctx())["ip"]
    assert rules(ruleset, "vs-q")[0][-1] == {"dnat": {"family": "ip", "addr": "10.11.12.1", "port": 80}}


def test_checker_notrack_untracks_marked_sockets_and_replies_from_real_servers_to_them() -> None:
    """pykeepalived_checker_notrack: raw-priority chains on output and prerouting, before conntrack."""
    mark = 0x6B610000
    context = ctx()
    context.checker_notrack_mark = mark
    ruleset = build([vs("web", rs(2), rs(1)), vs("one", rs(1), address="203.0.113.11")], context)["ip"]
    out, pre = ruleset.chains[CHECKER_OUT_CHAIN], ruleset.chains[CHECKER_IN_CHAIN]
    assert (out["hook"], out["prio"], pre["hook"], pre["prio"]) == ("output", -300, "prerouting", -300)
    assert rules(ruleset, CHECKER_OUT_CHAIN) == [[{"match": {"op": "==", "left": {"meta": {"key": "mark"}},
                                                             "right": mark}}, {"notrack": None}]]
    (rule,) = rules(ruleset, CHECKER_IN_CHAIN)
    assert rule[1] == {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                                 "right": {"set": ["10.11.12.1", "10.11.12.2"]}}}
    assert rule[2:] == [{"match": {"op": "==", "left": {"socket": {"key": "mark"}}, "right": mark}},
                        {"notrack": None}]
    assert CHECKER_OUT_CHAIN not in build([vs("web")], ctx())["ip"].chains  # off by default
