"""The ECMP lab's rendered files (lab/ecmp_conf.py) and its readers of nft JSON (lab/ecmp_lab.py).

The lab runs what these render, so a regression shows here without a lab: the
upstream's recipe (listen range, multipath, deny-all policy, the BFD profile
in bfdd's config and not bgpd's), the balancer's service (stateless DR over
mh) and speaker block, and the slot-table reader that compares balancers.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from pykeepalived.lab import ecmp_conf
from pykeepalived.lab.ecmp_conf import TierPlan
from pykeepalived.lab.ecmp_lab import _flow_elements, slot_table

PLAN = TierPlan(vip=IPv4Address("203.0.113.50"), port=80, tier_net=IPv4Network("10.19.0.0/24"),
                upstream=IPv4Address("10.19.0.1"), upstream_as=65000, balancer_as=65001,
                real_servers=(IPv4Address("10.19.0.101"), IPv4Address("10.19.0.102")))
BFD = replace(PLAN, bfd=True)


def test_upstream_listens_for_the_tier_and_installs_every_path() -> None:
    conf = ecmp_conf.upstream_bgpd_conf(PLAN)
    for line in (" bgp listen range 10.19.0.0/24 peer-group LB", "  maximum-paths 16", " neighbor LB remote-as 65001",
                 " neighbor LB timers 1 3", " bgp bestpath as-path multipath-relax", " no bgp ebgp-requires-policy",
                 "  neighbor LB route-map NOTHING out", "route-map NOTHING deny 10"):
        assert line in conf.splitlines()
    assert "bfd" not in conf


def test_bfd_profile_lives_in_bfdd_conf_and_bgpd_names_it() -> None:
    assert " neighbor LB bfd profile fast" in ecmp_conf.upstream_bgpd_conf(BFD).splitlines()
    assert "profile" not in ecmp_conf.upstream_bgpd_conf(BFD).replace("bfd profile fast", "")
    assert ecmp_conf.bfdd_conf(BFD).splitlines() == [
        "bfd", " profile fast", "  receive-interval 100", "  transmit-interval 100", "  detect-multiplier 3"]


def test_balancer_serves_stateless_dr_over_mh_and_announces_through_its_block() -> None:
    conf = ecmp_conf.balancer_conf(BFD, "lb1", IPv4Address("10.19.0.11"), bgp_block=True)
    lines = [line.strip() for line in conf.splitlines()]
    assert "vrrp_instance" not in conf
    for line in ("lb_algo mh", "mh-port", "lb_kind DR", "pykeepalived_stateless", "real_server 10.19.0.101 80 {",
                 "pykeepalived_bgp {", "local_as 65001", "neighbor 10.19.0.1 {", "remote_as 65000",
                 "bfd to_upstream", "announce 203.0.113.50", "bfd_instance to_upstream {", "neighbor_ip 10.19.0.1",
                 "source_ip 10.19.0.11"):
        assert line in lines, line
    assert conf.count("{") == conf.count("}")
    plain = ecmp_conf.balancer_conf(PLAN, "lb1", IPv4Address("10.19.0.11"), bgp_block=False)
    assert "pykeepalived_bgp" not in plain and "bfd" not in plain


def test_control_speaker_never_listens_and_announces_without_zebra() -> None:
    conf = ecmp_conf.control_bgpd_conf(PLAN, "lb1", IPv4Address("10.19.0.11"))
    assert " no bgp network import-check" in conf.splitlines()
    assert "  network 203.0.113.50/32" in conf.splitlines()
    assert "  neighbor 10.19.0.1 route-map NOTHING in" in conf.splitlines()


def test_slot_table_reads_the_servers_behind_the_vmap() -> None:
    items = [
        {"table": {"family": "netdev", "name": "pykeepalived_lvs"}},
        {"rule": {"chain": "vs-a-1", "expr": [{"fwd": {"dev": "eth0", "family": "ip", "addr": "10.19.0.101"}}]}},
        {"rule": {"chain": "vs-a-2", "expr": [{"fwd": {"dev": "eth0", "family": "ip", "addr": "10.19.0.102"}}]}},
        {"rule": {"chain": "vs-a", "expr": [{"vmap": {"key": {"jhash": {}}, "data": {"set": [
            [2, {"goto": {"target": "vs-a-1"}}], [0, {"goto": {"target": "vs-a-2"}}],
            [1, {"goto": {"target": "vs-a-1"}}]]}}}]}},
    ]
    assert slot_table(items) == ["10.19.0.102", "10.19.0.101", "10.19.0.101"]
    assert slot_table([]) == []
    # the same table in a named slot map (nft_forward's picks), as `nft -j list` shows it
    named = [*items[:3],
             {"map": {"family": "netdev", "name": "vs-a-picks", "type": "integer", "map": "verdict", "elem": [
                 [0, {"goto": {"target": "vs-a-2"}}], [1, {"goto": {"target": "vs-a-1"}}],
                 [2, {"goto": {"target": "vs-a-1"}}]]}},
             {"rule": {"chain": "vs-a", "expr": [{"vmap": {"key": {"jhash": {}}, "data": "@vs-a-picks"}}]}}]
    assert slot_table(named) == ["10.19.0.102", "10.19.0.101", "10.19.0.101"]
    # every server behind one interface: the address from a slot map of addresses (nft_forward.Direct)
    direct = [{"map": {"family": "netdev", "name": "vs-a-addrs", "type": "integer", "map": "ipv4_addr", "elem": [
                  [1, "10.19.0.101"], [0, "10.19.0.102"], [2, "10.19.0.101"]]}},
              {"rule": {"chain": "vs-a", "expr": [{"fwd": {"dev": "eth0", "family": "ip", "addr": {"map": {
                  "key": {"jhash": {}}, "data": "@vs-a-addrs"}}}}]}}]
    assert slot_table(direct) == ["10.19.0.102", "10.19.0.101", "10.19.0.101"]
    # the ingress chain's dispatch (keys: VIP . proto . port) listed first is no slot table
    dispatch = {"map": {"family": "netdev", "name": "fwd4_ports", "map": "verdict", "elem": [
        [{"concat": ["203.0.113.50", "tcp", 80]}, {"goto": {"target": "vs-a"}}]]}}
    ingress = {"rule": {"chain": "ingress-eth0", "expr": [{"vmap": {"key": {"concat": []}, "data": "@fwd4_ports"}}]}}
    assert slot_table([dispatch, ingress, *named]) == ["10.19.0.102", "10.19.0.101", "10.19.0.101"]
    assert slot_table([dispatch, ingress, *direct]) == ["10.19.0.102", "10.19.0.101", "10.19.0.101"]


def test_flow_elements_reads_plain_and_timed_elements() -> None:
    items = [{"set": {"name": "flows", "elem": [
        {"concat": ["198.51.100.2", 40000]},
        {"elem": {"val": {"concat": ["198.51.100.2", 40001]}, "timeout": 3600, "expires": 3500}},
    ]}}]
    assert _flow_elements(items) == {("198.51.100.2", 40000), ("198.51.100.2", 40001)}
    assert _flow_elements([{"set": {"name": "flows"}}]) == set()
