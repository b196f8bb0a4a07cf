"""The whole nftables layout: nft_rules' tables, plus DR from ingress (nft_forward) and stateless NAT (nft_stateless).

One entry point for the backend, so that nft_rules stays the layout of the
conntrack and copy paths and knows nothing of the other two: a DR service
that `nft_forward.takes` is built in the netdev table instead of
nft_rules' prerouting copy path (a TUN one in both: its packets too long
for the tunnel go on to the copy path); a NAT service that `nft_stateless.choose`
picks is built by nft_rules as usual (its conntrack chain serves the
router's own clients) and gets its stateless chains on top.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import nft_forward, nft_stateless
from .model import VirtualService
from .nft_limits import forwarding
from .nft_rules import BuildContext, Ruleset, build, check_service


def build_all(services: Sequence[VirtualService], ctx: BuildContext) -> dict[str, Ruleset]:
    """The rulesets (by nftables family: ip, ip6, netdev) that make the kernel forward as `services` say."""
    for svc in services:
        check_service(svc)
    stateless, ctx.fallbacks = nft_stateless.choose(services)
    forwarded: list[VirtualService] = []
    rest: list[VirtualService] = []
    for svc in services:
        if (why := nft_forward.refusal(svc)) is not None:
            ctx.fallbacks[svc.name] = why
        taken = nft_forward.takes(svc, ctx)
        if taken:
            forwarded.append(svc)
        if not taken or forwarding(svc) == "TUN":
            rest.append(svc)
    out = build(rest, ctx, checked=True)
    for svc in rest:
        if svc.name in stateless:
            for rs in out.values():
                if svc.name in rs.services:
                    nft_stateless.add_service(rs, svc, ctx)
    if forwarded:
        netdev = out[nft_forward.NETDEV.name] = nft_forward.empty_ruleset()
        for svc in forwarded:
            nft_forward.add_service(netdev, svc, ctx)
        nft_forward.finish(netdev, ctx.ingress_devices())
    return out
