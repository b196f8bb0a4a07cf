"""Consistent flows: the nftables choices that dynamic sets remember are made by a hash both routers share.

Without a kernel: what the service chains pick a new client's or flow's real
server with, in the mode and out of it, and that two routers that numbered
their servers differently still send every slot to the same server.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pykeepalived.config import read_config_text
from pykeepalived.config.model import CHECKER_NOTRACK_MARK, GlobalDefs, LvsSyncDaemon
from pykeepalived.check.reload_plan import needs_restart
from pykeepalived.daemon.reload_plan import restart_needed
from pykeepalived.lvs import sched
from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.lvs.nft_limits import consistent_flows
from pykeepalived.lvs.nft_rules import HASH_SEED, BuildContext, Ruleset, build

SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
FLOW = {"concat": [SADDR, {"payload": {"protocol": "th", "field": "sport"}},
                   {"payload": {"protocol": "th", "field": "dport"}}]}


def rs(i: int, *, weight: int = 1, alive: bool = True, method: str = "DR") -> Destination:
    return Destination(f"10.11.12.{i}", 80, weight, method=method, alive=alive)  # type: ignore[arg-type]


def vs(name: str, *dests: Destination, **kw: object) -> VirtualService:
    fields: dict[str, object] = {"kind": "address", "address": "203.0.113.10", "port": 80, "protocol": "TCP",
                                 "scheduler": "rr", "method": "DR"}
    fields.update(kw)
    return VirtualService(name, destinations=tuple(dests) or (rs(1), rs(2), rs(3)), **fields)  # type: ignore[arg-type]


def ctx(consistent: bool = True, numbers: dict[tuple[str, str], int] | None = None) -> BuildContext:
    return BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt-{a}", consistent=consistent,
                        numbers=dict(numbers or {}))


def pick(ruleset: Ruleset, chain: str) -> dict[str, Any]:
    """The verdict map that schedules what no set knows: the last rule of the chain the service chain ends in."""
    last = json.loads(ruleset.rules[chain][-1])
    if last == [{"goto": {"target": f"{chain}-pick"}}]:  # nft_rules.pick_chain
        last = json.loads(ruleset.rules[f"{chain}-pick"][-1])
    if "mangle" in last[0]:  # the server's address as data, its chain by that address (nft_rules.entries_map)
        assert last[1]["vmap"]["data"] == f"@{chain}-entries"
        data_map: dict[str, Any] = last[0]["mangle"]["value"]["map"]
        return data_map
    vmap: dict[str, Any] = last[0]["vmap"]
    return vmap


def servers_by_slot(ruleset: Ruleset, chain: str) -> list[str]:
    """Slot -> the real server its chain dups (DR) or DNATs (NAT) to: what a router decides, names aside."""
    out = []
    for _, verdict in ruleset.slot_pairs(pick(ruleset, chain)["data"]):
        if isinstance(verdict, str):  # an address slot: the entry chain of that address goes to its chain
            entry = json.loads(ruleset.elements[f"{chain}-entries"][json.dumps(verdict)])["goto"]["target"]
            verdict = json.loads(ruleset.rules[entry][0])[-1]
        rules = [json.loads(r) for r in ruleset.rules[verdict["goto"]["target"]]]
        target = next(e.get("dup", e.get("dnat")) for rule in rules for e in rule if "dup" in e or "dnat" in e)
        out.append(target["addr"])
    return out


def test_off_keeps_the_schedulers_own_choice() -> None:
    ruleset = build([vs("dr"), vs("nat", rs(1, method="NAT"), rs(2, method="NAT"), port=81, method="NAT",
                                  persistence_timeout_s=30)], ctx(consistent=False))["ip"]
    assert pick(ruleset, "vs-dr")["key"] == {"numgen": {"mode": "inc", "mod": 3, "offset": 0}}
    assert pick(ruleset, "vs-nat")["key"] == {"numgen": {"mode": "inc", "mod": 2, "offset": 0}}


@pytest.mark.parametrize("scheduler", ["rr", "wrr", "random", "lc", "wlc", "sed", "nq", "twos", "ovf"])
def test_dr_flows_are_hashed_over_the_weighted_maglev_table(scheduler: str) -> None:
    dests = (rs(1, weight=1), rs(2, weight=3), rs(3, alive=False), rs(4, weight=0), rs(5, weight=2))
    ruleset = build([vs("dr", *dests, scheduler=scheduler)], ctx())["ip"]
    vmap = pick(ruleset, "vs-dr")
    eligible = [d for d in dests if d.alive and d.weight > 0]
    table = sched.maglev_table([d.name for d in eligible], [d.weight for d in eligible], sched.maglev_size_for(3))
    assert vmap["key"] == {"jhash": {"mod": len(table), "seed": HASH_SEED, "expr": FLOW}}
    assert servers_by_slot(ruleset, "vs-dr") == [eligible[i].address for i in table]
    shares = {a: servers_by_slot(ruleset, "vs-dr").count(a) / len(table) for a in ("10.11.12.1", "10.11.12.2")}
    assert shares["10.11.12.2"] > 2 * shares["10.11.12.1"]  # weight 3 against weight 1
    # the flow sets stay: a router keeps the flows it made where they are
    assert json.loads(ruleset.rules["vs-dr"][0])[0]["match"]["left"] == FLOW


def test_two_routers_that_numbered_their_servers_apart_send_every_slot_alike() -> None:
    """The backup came up later, or saw servers leave and come back: its chains are named otherwise."""
    svc = vs("dr", rs(1), rs(2), rs(3))
    first = build([svc], ctx())["ip"]
    other = {("dr", d.name): n for d, n in zip(svc.destinations, (7, 3, 5), strict=True)}
    second = build([svc], ctx(numbers=other))["ip"]
    assert "vs-dr-7" in second.chains and "vs-dr-7" not in first.chains
    assert servers_by_slot(first, "vs-dr") == servers_by_slot(second, "vs-dr")


def test_persistence_hashes_the_masked_client_whatever_the_scheduler() -> None:
    nat = (rs(1, method="NAT"), rs(2, method="NAT"))
    masked = {"&": [SADDR, "255.255.255.0"]}
    ruleset = build([
        vs("nat", *nat, method="NAT", persistence_timeout_s=30, persistence_granularity="24"),
        vs("sh", *nat, method="NAT", port=81, scheduler="sh", sched_flags=("sh-port",), persistence_timeout_s=30,
           persistence_granularity="255.255.255.0"),
        vs("dr", port=82, scheduler="wlc", persistence_timeout_s=60),
    ], ctx())["ip"]
    assert pick(ruleset, "vs-nat")["key"]["jhash"]["expr"] == masked
    assert pick(ruleset, "vs-sh")["key"]["jhash"]["expr"] == masked  # not its port: the next connection's differs
    assert pick(ruleset, "vs-dr")["key"]["jhash"]["expr"] == SADDR  # no granularity: the address itself
    # a known client still goes first to the server whose set holds it
    assert json.loads(ruleset.rules["vs-nat"][0])[0]["match"]["right"] == "@vs-nat-1-clients"


def test_what_conntrack_or_a_hash_already_pins_is_left_alone() -> None:
    nat = (rs(1, method="NAT"), rs(2, method="NAT"))
    ruleset = build([vs("nat", *nat, method="NAT"), vs("sh", port=81, scheduler="sh"),
                     vs("mh", port=82, scheduler="mh", sched_flags=("mh-port",))], ctx())["ip"]
    nat_rule = json.loads(ruleset.rules["vs-nat"][0])
    assert nat_rule[-1]["dnat"]["addr"]["map"]["key"] == {"numgen": {"mode": "inc", "mod": 2, "offset": 0}}
    assert pick(ruleset, "vs-sh")["key"]["jhash"]["expr"] == SADDR
    assert pick(ruleset, "vs-mh")["key"]["jhash"]["expr"]["concat"][1]["payload"]["field"] == "sport"


def test_fo_sends_everything_to_its_one_server_on_every_router_already() -> None:
    ruleset = build([vs("fo", rs(1, weight=1), rs(2, weight=5), scheduler="fo", persistence_timeout_s=30)],
                    ctx())["ip"]
    assert set(servers_by_slot(ruleset, "vs-fo")) == {"10.11.12.2"}
    assert "numgen" in pick(ruleset, "vs-fo")["key"]


def test_the_mode_follows_lvs_sync_daemon_unless_set() -> None:
    assert not consistent_flows(GlobalDefs())
    synced = GlobalDefs(lvs_sync_daemon=LvsSyncDaemon(interface="eth0", instance="VI_1"))
    assert consistent_flows(synced)
    synced.pykeepalived_consistent_flows = False
    assert not consistent_flows(synced)
    assert consistent_flows(GlobalDefs(pykeepalived_consistent_flows=True))


@pytest.mark.parametrize(("line", "value"), [("pykeepalived_consistent_flows", True),
                                             ("pykeepalived_consistent_flows on", True),
                                             ("pykeepalived_consistent_flows off", False)])
def test_the_keyword(line: str, value: bool) -> None:
    result = read_config_text(f"global_defs {{\n  {line}\n}}\n")
    assert not result.errors
    assert result.config.global_defs.pykeepalived_consistent_flows is value


def test_a_bad_word_names_the_line_and_keyword() -> None:
    result = read_config_text("global_defs {\n  pykeepalived_consistent_flows sometimes\n}\n")
    assert result.errors
    (error,) = result.errors
    assert error.location is not None and error.location.line == 2
    assert error.keyword == "pykeepalived_consistent_flows" and "'sometimes'" in error.message


def test_a_reload_that_changes_the_mode_says_it_waits_for_a_restart() -> None:
    """The backend reads the mode once, when it starts (lvs/choose.py)."""
    lines = restart_needed(GlobalDefs(), GlobalDefs(pykeepalived_consistent_flows=True))
    assert lines == ["global_defs pykeepalived_consistent_flows changed (unset -> True): it takes effect at the "
                     "next restart"]
    assert needs_restart(GlobalDefs(), GlobalDefs(pykeepalived_consistent_flows=False)) == [
        "pykeepalived_consistent_flows"]  # the checker keeps the running value


@pytest.mark.parametrize(("line", "value"), [("", False), ("pykeepalived_checker_notrack", True),
                                             ("pykeepalived_checker_notrack off", False)])
def test_the_checker_notrack_keyword_is_read_and_waits_for_a_restart(line: str, value: bool) -> None:
    result = read_config_text(f"global_defs {{\n  {line}\n}}\n")
    assert not result.errors
    assert result.config.global_defs.pykeepalived_checker_notrack is value
    assert needs_restart(GlobalDefs(), GlobalDefs(pykeepalived_checker_notrack=True)) == [
        "pykeepalived_checker_notrack"]
    assert restart_needed(GlobalDefs(), GlobalDefs(pykeepalived_checker_notrack=True))


def test_a_fwmark_service_on_the_checkers_mark_is_refused_under_checker_notrack() -> None:
    text = ("global_defs {\n  pykeepalived_checker_notrack\n}\n"
            f"virtual_server fwmark {CHECKER_NOTRACK_MARK} {{\n  lb_algo rr\n  lb_kind NAT\n"
            "  real_server 10.0.0.2 80 {\n  }\n}\n")
    (error,) = read_config_text(text).errors
    assert error.keyword == "pykeepalived_checker_notrack" and "0x6b610000" in error.message
    assert not read_config_text(text.replace("pykeepalived_checker_notrack", "router_id x")).errors
