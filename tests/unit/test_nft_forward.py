"""DR and TUN from the ingress hook (lvs/nft_forward.py), without a kernel: which services, the netdev table's layout.

The lab half is tests/netns/test_fast_paths.py (and every DR lab test, which now runs this path); TUN's is
tests/netns/test_dataplane_lab.py's TUN variants, run in the qemu guest (tests/vm/test_tun_dataplane.py).
"""

from __future__ import annotations

import json
from typing import Any

from pykeepalived.lvs.model import DataPlaneError, Destination, GroupEntry, VirtualService
from pykeepalived.lvs.nft_forward import NETDEV, refusal
from pykeepalived.lvs.nft_layout import build_all
from pykeepalived.lvs.nft_rules import BuildContext, Ruleset
from pykeepalived.lvs.route_spans import Span


def rs(i: int, *, method: str = "DR", alive: bool = True, v6: bool = False) -> Destination:
    address = f"2001:db8:10::{i}" if v6 else f"10.11.12.{i}"
    return Destination(address, 80, 1, method=method, alive=alive)  # type: ignore[arg-type]


def vs(name: str = "web", *dests: Destination, **kw: Any) -> VirtualService:
    fields: dict[str, Any] = {"kind": "address", "address": "203.0.113.10", "port": 80, "protocol": "TCP",
                              "scheduler": "rr", "method": "DR"}
    fields.update(kw)
    return VirtualService(name, destinations=tuple(dests) or (rs(1), rs(2), rs(3)), **fields)


def ctx(*devices: str, mtu: dict[str, int] | None = None, tunnel_mtu: int = 0) -> BuildContext:
    """Interfaces with MTU 1500 unless `mtu` says otherwise; the real servers are behind eth1.

    `tunnel_mtu`: the IPIP devices' (0: none made, as before the backend's first `Tunnels.want`).
    """
    listed = tuple((d, (mtu or {}).get(d, 1500)) for d in (*devices, "eth1") if devices)
    return BuildContext(device_for=lambda a: "eth1", tunnel_for=lambda a: f"pkt{a.rsplit('.', 1)[1]}",
                        ingress_devices=lambda: listed, tunnel_mtu=lambda a: tunnel_mtu)


def rules_of(ruleset: Ruleset, chain: str) -> list[list[dict[str, Any]]]:
    return [json.loads(r) for r in ruleset.rules[chain]]


def test_dr_goes_out_from_ingress_with_fwd_instead_of_a_copy() -> None:
    out = build_all([vs()], ctx("eth0", "eth1"))
    netdev = out[NETDEV.name]
    assert "dup_prerouting" not in out.get("ip", Ruleset(NETDEV)).chains
    hooks = {name: spec for name, spec in netdev.chains.items() if spec.get("hook")}
    assert {spec["dev"] for spec in hooks.values()} == {"eth0", "eth1"}
    assert set(hooks) == {"ingress-eth0", "ingress-eth1"}
    for name in hooks:
        lookup = rules_of(netdev, name)
        assert lookup == [[{"match": {"op": "==", "left": {"meta": {"key": "pkttype"}}, "right": "host"}},
                           {"vmap": {"key": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}},
                                                        {"meta": {"key": "l4proto"}},
                                                        {"payload": {"protocol": "th", "field": "dport"}}]},
                                     "data": "@fwd4_ports"}}]]
    server = rules_of(netdev, "vs-web-1")
    assert server[-1] == [{"fwd": {"dev": "eth1", "family": "ip", "addr": "10.11.12.1"}}]
    assert not any("dup" in stmt or "drop" in stmt for rule in server for stmt in rule)
    # rr needs the flow sets: a known flow stays with its server
    assert "vs-web-1-flows" in netdev.sets
    assert any(stmt.get("set", {}).get("op") == "update" for rule in server for stmt in rule)


def test_stateless_dr_with_a_hash_scheduler_keeps_no_flow_sets() -> None:
    netdev = build_all([vs(scheduler="mh", stateless=True)], ctx("eth0"))[NETDEV.name]
    assert not [s for s in netdev.sets if s.endswith("-flows")]
    assert rules_of(netdev, "vs-web-2") == [[{"fwd": {"dev": "eth1", "family": "ip", "addr": "10.11.12.2"}}]]
    base = rules_of(netdev, "vs-web")
    # every server behind eth1: the pick writes the address itself from a slot map of addresses (nft_forward.Direct)
    assert len(base) == 1 and len(base[0]) == 1
    fwd = base[0][0]["fwd"]
    assert fwd["dev"] == "eth1" and fwd["family"] == "ip" and fwd["addr"]["map"]["key"]["jhash"]["mod"] == 509
    assert {address for _, address in netdev.slot_pairs(fwd["addr"]["map"]["data"])} == {
        "10.11.12.1", "10.11.12.2", "10.11.12.3"}
    assert netdev.slot_maps[fwd["addr"]["map"]["data"][1:]].data_type == "ip daddr"


def test_stateless_dr_over_several_interfaces_goes_to_the_servers_chains() -> None:
    context = ctx("eth0", "eth2")
    context.device_for = lambda a: "eth1" if a.endswith(".1") else "eth2"
    netdev = build_all([vs(scheduler="mh", stateless=True)], context)[NETDEV.name]
    base = rules_of(netdev, "vs-web")
    assert len(base) == 1 and base[0][0]["vmap"]["key"]["jhash"]["mod"] == 509
    targets = {target["goto"]["target"] for _, target in netdev.slot_pairs(base[0][0]["vmap"]["data"])}
    assert targets == {"vs-web-1", "vs-web-2", "vs-web-3"}


def test_dr_with_flow_sets_and_a_hash_scheduler_moves_only_a_failed_servers_slots() -> None:
    """The stable table, as without flow sets: a new Maglev table over the others would move ~7 % of theirs too."""
    servers = [rs(i) for i in range(1, 41)]
    context = ctx("eth0")

    def owners(svc: VirtualService) -> list[str]:
        netdev = build_all([svc], context)[NETDEV.name]
        assert "vs-web-1-flows" in netdev.sets
        return dr_owners(netdev, "vs-web")

    before = owners(vs("web", *servers, scheduler="mh"))
    servers[6] = rs(7, alive=False)
    after = owners(vs("web", *servers, scheduler="mh"))
    assert all(b == a for b, a in zip(before, after, strict=True) if b != "vs-web-7")
    assert "vs-web-7" not in after and len({a for b, a in zip(before, after) if b == "vs-web-7"}) > 20


def dr_owners(netdev: Ruleset, base: str) -> list[str]:
    """Slot by slot, the server chain a DR pick with flow sets reaches: address slot map, entries map, entry chain."""
    assert rules_of(netdev, base)[-1] == [{"goto": {"target": f"{base}-pick"}}]  # nft_rules.pick_chain
    write, by_address = rules_of(netdev, f"{base}-pick")[-1]
    assert write["mangle"]["key"] == {"payload": {"protocol": "ip", "field": "daddr"}}  # the service's family's
    pick = write["mangle"]["value"]["map"]
    assert by_address == {"vmap": {"key": write["mangle"]["key"], "data": f"@{base}-entries"}}
    entries = {json.loads(k): json.loads(v)["goto"]["target"] for k, v in netdev.elements[f"{base}-entries"].items()}
    chains = {}
    for address, entry in entries.items():
        put_back, go = rules_of(netdev, entry)[0]
        assert put_back == {"mangle": {"key": write["mangle"]["key"], "value": "203.0.113.10"}}  # the VIP again
        chains[address] = go["goto"]["target"]
    return [chains[address] for _, address in netdev.slot_pairs(pick["data"])]


def test_a_dr_pick_with_flow_sets_writes_data_slots_and_reaches_the_server_by_its_address() -> None:
    """No verdict slots: a server going down changes address slots alone (the kernel validates no table for them)."""
    from pykeepalived.lvs.nft_diff import diff
    servers = [rs(i) for i in range(1, 41)]
    context = ctx("eth0")
    before = build_all([vs("web", *servers, scheduler="wlc")], context)[NETDEV.name]
    assert {json.loads(k) for k in before.elements["vs-web-entries"]} == {f"10.11.12.{i}" for i in range(1, 41)}
    assert set(dr_owners(before, "vs-web")) == {f"vs-web-{i}" for i in range(1, 41)}
    servers[6] = rs(7, alive=False)
    after = build_all([vs("web", *servers, scheduler="wlc")], context)[NETDEV.name]
    assert after.elements["vs-web-entries"] == before.elements["vs-web-entries"]  # every server, up or down
    assert "vs-web-7" not in dr_owners(after, "vs-web")
    early: list[Any] = []
    commands = diff(before, after, early)
    assert not any("chain" in verb or "rule" in verb or "element" in verb for cmd in commands for verb in cmd.values())
    assert early and not [n for n, slots in after.slot_maps.items() if slots.data_type == "verdict"]


def test_a_dr_group_of_several_vips_keeps_verdict_slots() -> None:
    """The entry chain must know which VIP to write back: with several, the pick stays a slot map of verdicts."""
    entries = (GroupEntry("address", address="203.0.113.10", port=80), GroupEntry("address", address="203.0.113.11",
                                                                                  port=80))
    svc = vs("web", *[rs(i) for i in range(1, 41)], scheduler="wlc", kind="group", group="g", group_entries=entries,
             address=None, port=None)
    netdev = build_all([svc], ctx("eth0"))[NETDEV.name]
    assert "vs-web-entries" not in netdev.sets
    pick = rules_of(netdev, "vs-web-pick")[-1][0]["vmap"]
    assert {t["goto"]["target"] for _, t in netdev.slot_pairs(pick["data"])} == {f"vs-web-{i}" for i in range(1, 41)}


def test_ipv6_dr_uses_the_ip6_maps_and_fwd_ip6() -> None:
    svc = vs("six", rs(1, v6=True), rs(2, v6=True), address="2001:db8::10")
    netdev = build_all([svc], ctx("eth0"))[NETDEV.name]
    assert netdev.elements["fwd6_ports"] and not netdev.elements.get("fwd4_ports")
    assert rules_of(netdev, "vs-six-1")[-1] == [{"fwd": {"dev": "eth1", "family": "ip6", "addr": "2001:db8:10::1"}}]
    assert [rule[1]["vmap"]["data"] for rule in rules_of(netdev, "ingress-eth0")] == ["@fwd6_ports"]


def test_fwmark_and_a_router_without_interfaces_keep_the_copy_path() -> None:
    mark = vs("mark", kind="fwmark", fwmark=3, address=None, port=None)
    out = build_all([mark], ctx("eth0"))
    assert NETDEV.name not in out
    assert "dup_prerouting" in out["ip"].chains
    out = build_all([vs()], ctx())
    assert NETDEV.name not in out and "dup_prerouting" in out["ip"].chains


def tun(name: str = "tun", *dests: Destination, **kw: Any) -> VirtualService:
    """A TUN service over 10.11.12.4-6 (IPIP devices pkt4-pkt6 in `ctx`), stateless mh unless `kw` says otherwise."""
    fields: dict[str, Any] = {"method": "TUN", "port": 81, "scheduler": "mh", "stateless": True}
    fields.update(kw)
    return vs(name, *(dests or tuple(rs(i, method="TUN") for i in (4, 5, 6))), **fields)


def flow_sets(out: dict[str, Ruleset]) -> dict[str, list[str]]:
    return {family: [name for name in ruleset.sets if name.endswith("-flows")] for family, ruleset in out.items()}


def test_stateless_hash_tun_goes_out_from_ingress_through_its_ipip_device() -> None:
    out = build_all([tun()], ctx("eth0", tunnel_mtu=1480))
    netdev = out[NETDEV.name]
    assert "fwd4_ports" in netdev.elements
    base = rules_of(netdev, "vs-tun")
    # a fragment goes to the IP stack whole (its datagram must not be split between the two paths)
    frag = {"&": [{"payload": {"protocol": "ip", "field": "frag-off"}}, 0x3FFF]}
    assert base[0] == [{"match": {"op": "!=", "left": frag, "right": 0}}, {"accept": None}]
    assert len(base) == 2 and "jhash" in base[1][0]["vmap"]["key"]  # then every packet hashed: no flow sets
    # longer than the tunnel carries: to the IP stack first (the tunnel would drop it without ICMP)
    assert rules_of(netdev, "vs-tun-1") == [
        [{"match": {"op": ">", "left": {"meta": {"key": "length"}}, "right": 1480}}, {"accept": None}],
        [{"fwd": {"dev": "pkt4", "family": "ip", "addr": "10.11.12.4"}}]]
    assert flow_sets(out) == {"ip": [], NETDEV.name: []}
    assert refusal(tun()) is None


def test_the_tun_copy_path_picks_with_the_very_rule_of_the_ingress_chain() -> None:
    """Whichever path a packet of a flow takes, the same key into the same table: the same real server."""
    cases = [tun(scheduler=s) for s in ("sh", "mh", "dh", "lblc", "lblcr")]
    cases += [tun(scheduler="mh", sched_flags=("mh-port",)), tun(scheduler="sh", sched_flags=("sh-port",))]
    down = (rs(4, method="TUN"), rs(5, method="TUN", alive=False), rs(6, method="TUN"))
    cases += [tun("tun", *down, pool=tuple((d.name, 1) for d in down))]  # rs5 down: its slots handed out
    for svc in cases:
        out = build_all([svc], ctx("eth0", tunnel_mtu=1480))
        ip, netdev = out["ip"], out[NETDEV.name]
        assert ip.rules["vs-tun"][-1] == netdev.rules["vs-tun"][-1], svc
        assert rules_of(ip, "vs-tun")[-1][0]["vmap"]["data"] == "@vs-tun-picks"
        picks = ip.slot_maps["vs-tun-picks"]
        assert picks.data == netdev.slot_maps["vs-tun-picks"].data  # the same table in both
        targets = {json.loads(text)["goto"]["target"] for text in set(picks.data)}
        up = [n for n, d in enumerate(svc.destinations, 1) if d.alive]
        assert targets == {f"vs-tun-{n}" for n in up}
        assert "dup_prerouting" in ip.chains and "nat_prerouting" not in ip.chains
        assert list(ip.elements["dup_ports"].values()) == [json.dumps({"goto": {"target": "vs-tun"}})]
        for number, last in ((1, 4), (2, 5), (3, 6)):
            assert rules_of(ip, f"vs-tun-{number}") == [[{"dup": {"addr": f"10.11.12.{last}", "dev": f"pkt{last}"}}],
                                                        [{"drop": None}]]
        assert flow_sets(out) == {"ip": [], NETDEV.name: []}
    one = build_all([tun("tun", rs(4, method="TUN"))], ctx("eth0", tunnel_mtu=1480))
    assert rules_of(one["ip"], "vs-tun")[-1] == rules_of(one[NETDEV.name], "vs-tun")[-1] == [
        {"goto": {"target": "vs-tun-1"}}]


def test_tun_that_needs_flow_sets_keeps_the_copy_path_for_every_packet() -> None:
    keep = [tun(scheduler="rr"), tun(scheduler="wlc"), tun(stateless=False), tun(persistence_timeout_s=30),
            tun(kind="fwmark", fwmark=3, address=None, port=None)]
    for svc in keep:
        out = build_all([svc], ctx("eth0", tunnel_mtu=1480))
        assert NETDEV.name not in out, svc
        assert "dup_prerouting" in out["ip"].chains and "vs-tun-1-flows" in out["ip"].sets
        assert [{"dup": {"addr": "10.11.12.4", "dev": "pkt4"}}] in rules_of(out["ip"], "vs-tun-1")
    # no IPIP device made yet (the backend makes them before it builds), or no interface: the copy path too
    assert NETDEV.name not in build_all([tun()], ctx("eth0"))
    assert NETDEV.name not in build_all([tun()], ctx(tunnel_mtu=1480))
    context = ctx("eth0", tunnel_mtu=1480)
    build_all([tun(scheduler="rr")], context)
    assert "scheduler rr" in context.fallbacks["tun"]


def test_stateless_mh_and_rr_tun_side_by_side() -> None:
    out = build_all([tun("hash"), tun("round", scheduler="rr", stateless=False, port=82)], ctx("eth0", tunnel_mtu=1480))
    assert set(out[NETDEV.name].services) == {"hash"}
    assert set(out["ip"].services) == {"hash", "round"}
    assert flow_sets(out) == {"ip": ["vs-round-1-flows", "vs-round-2-flows", "vs-round-3-flows"], NETDEV.name: []}


def test_stateless_is_refused_where_dr_needs_its_flow_sets() -> None:
    assert refusal(vs(stateless=True)) is not None  # rr
    assert refusal(vs(scheduler="sh", stateless=True, persistence_timeout_s=30)) == "persistence remembers clients"
    assert refusal(vs(scheduler="sh", stateless=True)) is None
    assert refusal(vs(scheduler="sh")) is None  # not asked
    context = ctx("eth0")
    build_all([vs(stateless=True)], context)
    assert "scheduler rr" in context.fallbacks["web"]


def test_nat_and_dr_together_build_both_tables() -> None:
    nat = vs("nat", rs(1, method="NAT"), method="NAT", port=81)
    out = build_all([nat, vs()], ctx("eth0"))
    assert set(out) == {"ip", NETDEV.name}
    assert "nat_prerouting" in out["ip"].chains and "dup_prerouting" not in out["ip"].chains


def test_a_real_server_behind_a_narrower_link_keeps_the_copy_path_which_sends_frag_needed() -> None:
    out = build_all([vs()], ctx("eth0", mtu={"eth1": 1400}))
    assert NETDEV.name not in out and "dup_prerouting" in out["ip"].chains
    out = build_all([vs()], ctx("eth0", mtu={"eth0": 1400}))  # the other way round is no problem
    assert NETDEV.name in out


def nat(name: str = "snat", *dests: Destination, **kw: Any) -> VirtualService:
    """A stateless NAT service (mh over 10.11.12.1-3, port 8080 behind the VIP's 80) unless `kw` says otherwise."""
    fields: dict[str, Any] = {"method": "NAT", "scheduler": "mh", "stateless": True}
    fields.update(kw)
    made = dests or tuple(Destination(f"10.11.12.{i}", 8080, 1, method="NAT") for i in (1, 2, 3))  # type: ignore[arg-type]
    return vs(name, *made, **fields)


def test_stateless_nat_rewrites_and_forwards_its_requests_from_ingress() -> None:
    out = build_all([nat()], ctx("eth0"))
    netdev, ip = out[NETDEV.name], out["ip"]
    assert list(netdev.elements["fwd4_ports"].values()) == [json.dumps({"goto": {"target": "vs-snat"}})]
    base = rules_of(netdev, "vs-snat")
    frag = {"&": [{"payload": {"protocol": "ip", "field": "frag-off"}}, 0x3FFF]}
    assert base[0] == [{"match": {"op": "!=", "left": frag, "right": 0}}, {"accept": None}]
    assert len(base) == 2
    port, address, fwd = base[1]  # every server behind eth1 on port 8080: no server chain (nft_forward.Direct)
    assert port == {"mangle": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "value": 8080}}
    assert address["mangle"]["key"] == {"payload": {"protocol": "ip", "field": "daddr"}}
    assert "jhash" in address["mangle"]["value"]["map"]["key"]
    assert fwd == {"fwd": {"dev": "eth1", "family": "ip", "addr": {"payload": {"protocol": "ip", "field": "daddr"}}}}
    # the server chains (used where the servers are behind several interfaces or on several ports) say the same
    assert rules_of(netdev, "vs-snat-2") == [
        [{"mangle": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "value": 8080}}],
        [{"mangle": {"key": {"payload": {"protocol": "ip", "field": "daddr"}}, "value": "10.11.12.2"}}],
        [{"fwd": {"dev": "eth1", "family": "ip", "addr": "10.11.12.2"}}]]
    assert flow_sets(out) == {"ip": [], NETDEV.name: []}
    # table ip keeps the stateless chains (fragments, replies, ICMP errors) and the conntrack chain (local clients)
    assert {"sl_prerouting", "sl_postrouting", "vs-snat-sl", "vs-snat-slr"} <= set(ip.chains)
    assert "nat_prerouting" in ip.chains


def test_stateless_nat_picks_the_same_server_on_both_paths() -> None:
    """A fragment takes table ip's stateless chain, the rest of its flow ingress: the same key, the same table."""
    cases = [nat(scheduler=s) for s in ("sh", "mh", "dh")]
    cases += [nat(scheduler="mh", sched_flags=("mh-port",)), nat(scheduler="sh", sched_flags=("sh-port",))]
    down = (Destination("10.11.12.1", 8080, 1, method="NAT"),  # type: ignore[arg-type]
            Destination("10.11.12.2", 8080, 1, method="NAT", alive=False),  # type: ignore[arg-type]
            Destination("10.11.12.3", 8080, 1, method="NAT"))  # type: ignore[arg-type]
    cases += [nat("snat", *down, pool=tuple((d.name, 1) for d in down))]
    for svc in cases:
        out = build_all([svc], ctx("eth0"))
        ip, netdev = out["ip"], out[NETDEV.name]
        ingress_pick = next(stmt["mangle"]["value"]["map"] for stmt in rules_of(netdev, "vs-snat")[-1]
                            if "daddr" in json.dumps(stmt.get("mangle", {}).get("key")))
        stack_pick = next(stmt["mangle"]["value"]["map"] for rule in rules_of(ip, "vs-snat-sl") for stmt in rule
                          if "daddr" in json.dumps(stmt.get("mangle", {}).get("key")))
        assert ingress_pick["key"] == stack_pick["key"], svc
        by_ingress = [address for _, address in netdev.slot_pairs(ingress_pick["data"])]
        by_stack = [address for _, address in ip.slot_pairs(stack_pick["data"])]
        assert by_ingress == by_stack, svc
        assert "10.11.12.2" not in by_ingress or all(d.alive for d in svc.destinations)


def test_stateless_nat_stays_in_the_ip_stack_where_fwd_cannot_serve_it() -> None:
    assert NETDEV.name not in build_all([nat(scheduler="rr")], ctx("eth0"))  # not stateless: conntrack NAT
    assert NETDEV.name not in build_all([nat(stateless=False)], ctx("eth0"))
    # the link to the real servers narrower than another: the IP stack sends "fragmentation needed"
    assert NETDEV.name not in build_all([nat()], ctx("eth0", mtu={"eth1": 1400}))
    assert NETDEV.name in build_all([nat()], ctx("eth0", mtu={"eth0": 1400}))

    def routed(address: str) -> str:
        raise DataPlaneError(f"real server {address} is reached through a gateway")

    behind_gateway = BuildContext(device_for=routed, ingress_devices=lambda: (("eth0", 1500), ("eth1", 1500)))
    out = build_all([nat()], behind_gateway)
    assert NETDEV.name not in out and "vs-snat-sl" in out["ip"].chains


def test_stateless_nat_over_ipv6_sends_fragments_to_the_stack_by_their_header() -> None:
    dests = tuple(Destination(f"2001:db8:10::{i}", 80, 1, method="NAT") for i in (1, 2))  # type: ignore[arg-type]
    netdev = build_all([nat("six", *dests, address="2001:db8::10")], ctx("eth0"))[NETDEV.name]
    assert rules_of(netdev, "vs-six")[0] == [
        {"match": {"op": "==", "left": {"exthdr": {"name": "frag"}}, "right": True}}, {"accept": None}]
    # the VIP's port already: no port rewrite
    assert rules_of(netdev, "vs-six-1") == [
        [{"mangle": {"key": {"payload": {"protocol": "ip6", "field": "daddr"}}, "value": "2001:db8:10::1"}}],
        [{"fwd": {"dev": "eth1", "family": "ip6", "addr": "2001:db8:10::1"}}]]


NAT_ONLY = """
import sys
from pykeepalived.lvs.model import Destination, VirtualService
from pykeepalived.lvs.nft_layout import build_all
from pykeepalived.lvs.nft_rules import BuildContext

nat = VirtualService("web", "address", address="203.0.113.10", port=80, protocol="TCP", scheduler="rr",
                     destinations=tuple(Destination(f"10.0.0.{i}", 80, 1) for i in range(1, 4)))
out = build_all([nat], BuildContext())
assert set(out) == {"ip"} and "vs-web" in out["ip"].chains, out
print(sorted(m for m in ("pykeepalived.lvs.nft_forward", "pykeepalived.lvs.nft_stateless") if m in sys.modules))
"""


def test_a_nat_only_table_is_built_without_loading_the_ingress_and_stateless_modules() -> None:
    # their code and classes are about 0.2 MiB the checker of bench/checks.py (NAT, rr) carried for nothing
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", NAT_ONLY], capture_output=True, text=True, timeout=60, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


ONLINK = Span("192.0.2.0", "192.0.2.255", None, 2, "eth0")
VIA = Span("198.51.100.0", "198.51.100.255", "192.0.2.1", 2, "eth0")


def with_routes(context: BuildContext, *spans: Span) -> BuildContext:
    context.client_spans = lambda version: tuple(spans)
    return context


def test_stateless_nat_replies_are_rewritten_and_sent_by_the_copied_routes() -> None:
    netdev = build_all([nat()], with_routes(ctx("eth0"), ONLINK, VIA))[NETDEV.name]
    # every server's replies by their source, to the service's way back
    assert {json.loads(k)["concat"][0] for k in netdev.elements["back4"]} == {"10.11.12.1", "10.11.12.2", "10.11.12.3"}
    assert set(netdev.elements["back4"].values()) == {json.dumps({"goto": {"target": "vs-snat-back"}})}
    assert netdev.sets["dev4"]["flags"] == ["interval"] and netdev.sets["via4"]["map"] == "ipv4_addr"
    assert netdev.elements["dev4"] == {json.dumps({"range": ["192.0.2.0", "192.0.2.255"]}): "2",
                                       json.dumps({"range": ["198.51.100.0", "198.51.100.255"]}): "2"}
    assert list(netdev.elements["via4"].values()) == ['"192.0.2.1"']
    back = rules_of(netdev, "vs-snat-back")
    assert back[1] == [{"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                                  "right": "local"}}, {"accept": None}]  # the router's own connections
    daddr = {"payload": {"protocol": "ip", "field": "daddr"}}
    rewrite = [{"mangle": {"key": {"payload": {"protocol": "tcp", "field": "sport"}}, "value": 80}},
               {"mangle": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "value": "203.0.113.10"}}]
    device = {"map": {"key": daddr, "data": "@dev4"}}
    assert back[2:] == [
        [{"match": {"op": "==", "left": daddr, "right": "@via4"}}, *rewrite,
         {"fwd": {"dev": device, "family": "ip", "addr": {"map": {"key": daddr, "data": "@via4"}}}}],
        [{"match": {"op": "==", "left": daddr, "right": "@dev4"}}, *rewrite,
         {"fwd": {"dev": device, "family": "ip", "addr": daddr}}]]
    # looked up first where the real servers are (eth1), not at all elsewhere
    assert [rule[1]["vmap"]["data"] for rule in rules_of(netdev, "ingress-eth1")] == ["@back4", "@fwd4_ports"]
    assert [rule[1]["vmap"]["data"] for rule in rules_of(netdev, "ingress-eth0")] == ["@fwd4_ports"]


def test_stateless_nat_replies_stay_in_the_stack_without_routes_or_with_a_narrower_client_side() -> None:
    assert not build_all([nat()], ctx("eth0"))[NETDEV.name].elements.get("back4")  # no routing table known
    narrow = with_routes(ctx("eth0", mtu={"eth0": 1400}), ONLINK)  # replies sized for eth1 (1500) leave by eth0
    netdev = build_all([nat()], narrow)[NETDEV.name]
    assert netdev.elements.get("fwd4_ports") and not netdev.elements.get("back4")
    onlink_only = build_all([nat()], with_routes(ctx("eth0"), ONLINK))[NETDEV.name]
    assert "@via4" not in json.dumps(rules_of(onlink_only, "vs-snat-back"))
    assert not onlink_only.elements.get("via4")
