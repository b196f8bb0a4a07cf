"""The ECMP lab's configuration files: the upstream's bgpd.conf and bfdd.conf, each balancer's keepalived.conf,
the control speaker's bgpd.conf and the nftables table that counts flows per balancer.

Pure text from a `TierPlan`, so a unit test can read what the lab runs. What
the upstream needs is issue 19's recipe (/work/notes/i19/DESIGN.md, learned
on FRR 8.4): a passive `bgp listen range` over the balancers' network (a
balancer added later needs no upstream change), `maximum-paths` for ECMP,
`as-path multipath-relax`, short timers (keepalive 1 s, hold 3 s: FRR's
minimum), route-maps that deny everything the upstream would send back, and
the BFD profile in bfdd's own config (written into bgpd.conf it is refused
line by line and the default 300 ms x 3 runs instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

BFD_PROFILE = "fast"
BFD_INSTANCE = "to_upstream"
COUNTER_TABLE = "ecmplab"  # netdev table in each balancer: flows seen per balancer
FLOW_SET = "flows"
SYN_COUNTER = "vip_syns"
PACKET_COUNTER = "vip_packets"
COUNTER_PRIORITY = -500  # before pykeepalived's ingress chains (priority 0), whose `fwd` ends the packet's path
MAX_PATHS = 16


@dataclass(frozen=True)
class TierPlan:
    """What every balancer and the upstream agree on."""

    vip: IPv4Address
    port: int
    tier_net: IPv4Network
    upstream: IPv4Address
    upstream_as: int
    balancer_as: int
    real_servers: tuple[IPv4Address, ...]
    check: str = "TCP_CHECK"  # or HTTP_GET (GET /whoami, 200)
    hold_time_s: int = 3
    keepalive_s: int = 1
    bfd: bool = False
    bfd_interval_ms: int = 100
    bfd_multiplier: int = 3


def _block(head: str, body: Sequence[str]) -> list[str]:
    return [f"{head} {{", *[f"    {line}" if line else "" for line in body], "}"]


def upstream_bgpd_conf(plan: TierPlan) -> str:
    """The upstream: AS upstream_as, listening for any balancer of the tier's network (peer group LB)."""
    lines = [
        "hostname upstream",
        f"router bgp {plan.upstream_as}",
        f" bgp router-id {plan.upstream}",
        " no bgp ebgp-requires-policy",
        " bgp bestpath as-path multipath-relax",
        " neighbor LB peer-group",
        f" neighbor LB remote-as {plan.balancer_as}",
        f" neighbor LB timers {plan.keepalive_s} {plan.hold_time_s}",
        *([f" neighbor LB bfd profile {BFD_PROFILE}"] if plan.bfd else []),
        f" bgp listen range {plan.tier_net} peer-group LB",
        " address-family ipv4 unicast",
        f"  maximum-paths {MAX_PATHS}",
        "  neighbor LB route-map NOTHING out",
        " exit-address-family",
        "route-map NOTHING deny 10",
    ]
    return "\n".join(lines) + "\n"


def bfdd_conf(plan: TierPlan) -> str:
    """The profile bgpd names; it must live here, in bfdd's config."""
    lines = ["bfd", f" profile {BFD_PROFILE}", f"  receive-interval {plan.bfd_interval_ms}",
             f"  transmit-interval {plan.bfd_interval_ms}", f"  detect-multiplier {plan.bfd_multiplier}"]
    return "\n".join(lines) + "\n"


def control_bgpd_conf(plan: TierPlan, name: str, address: IPv4Address) -> str:
    """A balancer's `bgpd -Z -p 0` run by the lab itself (the control speaker): the VIP always announced.

    Without zebra, `no bgp network import-check` lets `network` announce;
    `-p 0` means it only connects out to the listening upstream.
    """
    peer = plan.upstream
    lines = [
        f"hostname {name}",
        f"router bgp {plan.balancer_as}",
        f" bgp router-id {address}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        f" neighbor {peer} remote-as {plan.upstream_as}",
        f" neighbor {peer} timers {plan.keepalive_s} {plan.hold_time_s}",
        f" neighbor {peer} timers connect 1",
        f" neighbor {peer} advertisement-interval 0",
        " address-family ipv4 unicast",
        f"  network {plan.vip}/32",
        f"  neighbor {peer} route-map NOTHING in",
        " exit-address-family",
        "route-map NOTHING deny 10",
    ]
    return "\n".join(lines) + "\n"


def _check(plan: TierPlan) -> list[str]:
    timing = ["connect_timeout 1", "retry 1", "delay_before_retry 1"]
    if plan.check == "HTTP_GET":
        return _block("HTTP_GET", [*_block("url", ["path /whoami", "status_code 200"]), *timing])
    return _block(plan.check, timing)


def balancer_conf(plan: TierPlan, name: str, address: IPv4Address, *, bgp_block: bool) -> str:
    """keepalived.conf of one balancer: no vrrp_instance, one DR service over mh, and (bgp_block) the speaker.

    The service is stateless DR (`pykeepalived_stateless`, mh with mh-port):
    every packet is hashed over the same table on every balancer, so a flow
    that the upstream's ECMP moves to another balancer mid-connection still
    reaches its real server. `bgp_block` adds `pykeepalived_bgp` (CONFIG.md of
    issue 19); without it the lab's control speaker announces the VIP.
    """
    lines = [
        f"! pykeepalived ECMP lab: balancer {name} ({address}), AS {plan.balancer_as}, "
        f"announcing {plan.vip} to {plan.upstream}",
        *_block("global_defs", [f"router_id {name}"]),
    ]
    if plan.bfd:
        lines += ["", *_block(f"bfd_instance {BFD_INSTANCE}", [
            f"neighbor_ip {plan.upstream}", f"source_ip {address}", f"min_rx {plan.bfd_interval_ms}",
            f"min_tx {plan.bfd_interval_ms}", f"multiplier {plan.bfd_multiplier}"])]
    if bgp_block:
        neighbor = [f"remote_as {plan.upstream_as}", f"source_ip {address}",
                    *([f"bfd {BFD_INSTANCE}"] if plan.bfd else [])]
        lines += ["", *_block("pykeepalived_bgp", [
            f"local_as {plan.balancer_as}", f"router_id {address}", f"hold_time {plan.hold_time_s}",
            f"keepalive {plan.keepalive_s}", "connect_retry 1", *_block(f"neighbor {plan.upstream}", neighbor),
            f"announce {plan.vip}"])]
    body = ["delay_loop 1", "lb_algo mh", "mh-port", "lb_kind DR", "protocol TCP", "pykeepalived_stateless"]
    for rs in plan.real_servers:
        body += ["", *_block(f"real_server {rs} {plan.port}", _check(plan))]
    lines += ["", *_block(f"virtual_server {plan.vip} {plan.port}", body)]
    return "\n".join(lines) + "\n"


def counter_table(plan: TierPlan, ifname: str) -> str:
    """nftables: count the service's packets and SYNs reaching this balancer, and remember each flow.

    A netdev ingress chain ahead of pykeepalived's own (which `fwd`s the
    packet away): `flows` holds client address . port of every flow seen here
    (a flow the upstream moved shows in two balancers' sets).
    """
    match = f"ip daddr {plan.vip} tcp dport {plan.port}"
    return "\n".join([
        f"table netdev {COUNTER_TABLE} {{",
        f"    counter {SYN_COUNTER} {{ }}",
        f"    counter {PACKET_COUNTER} {{ }}",
        f"    set {FLOW_SET} {{ type ipv4_addr . inet_service; flags dynamic,timeout; timeout 1h; size 65536; }}",
        "    chain count {",
        f'        type filter hook ingress device "{ifname}" priority {COUNTER_PRIORITY}; policy accept;',
        f"        {match} counter name {PACKET_COUNTER} update @{FLOW_SET} {{ ip saddr . tcp sport }}",
        f"        {match} tcp flags & (syn | ack) == syn counter name {SYN_COUNTER}",
        "    }",
        "}",
    ]) + "\n"
