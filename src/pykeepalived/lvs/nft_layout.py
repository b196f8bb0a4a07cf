"""The whole nftables layout: nft_rules' tables, DR/TUN from ingress (nft_forward), stateless NAT (nft_stateless).

One entry point for the backend, so that nft_rules stays the layout of the
conntrack and copy paths and knows nothing of the other two: a DR service
that `nft_forward.takes` is built in the netdev table instead of
nft_rules' prerouting copy path; a TUN one too, plus nft_forward's own
flowless copy path in table ip for its packets too long for the tunnel; a
NAT service that `nft_stateless.choose` picks is built by nft_rules as
usual (its conntrack chain serves the router's own clients) and gets its
stateless chains on top; where `nft_forward.takes` it too, its requests are
rewritten and forwarded from ingress, and the table-ip chains see only its
fragments, its replies and the ICMP errors about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import VirtualService
from .nft_limits import IPV4, forwarding
from .nft_rules import BuildContext, Ruleset, build, check_service, empty_ruleset, prune_hooks


def build_all(services: Sequence[VirtualService], ctx: BuildContext) -> dict[str, Ruleset]:
    """The rulesets (by nftables family: ip, ip6, netdev) that make the kernel forward as `services` say."""
    for svc in services:
        check_service(svc)
    if not any(svc.stateless or forwarding(svc) != "NAT" for svc in services):
        # NAT with conntrack alone (bench/checks.py's table): what follows would take none of them, so its two
        # modules are not imported (about 0.2 MiB of code and classes in the checker for nothing)
        ctx.fallbacks = {}
        ctx.forward_fragments.clear()
        return build(list(services), ctx, checked=True)
    from . import nft_forward, nft_stateless

    stateless, ctx.fallbacks = nft_stateless.choose(services)
    forwarded: list[VirtualService] = []
    rest: list[VirtualService] = []
    for svc in services:
        if (why := nft_forward.refusal(svc)) is not None:
            ctx.fallbacks[svc.name] = why
        if nft_forward.takes(svc, ctx, stateless):
            forwarded.append(svc)
            if svc.name in stateless:  # NAT: its table-ip chains stay (fragments, the way back, local clients)
                rest.append(svc)
        else:
            rest.append(svc)
    out = build(rest, ctx, checked=True)
    for svc in rest:
        if svc.name in stateless:
            for rs in out.values():
                if svc.name in rs.services:
                    nft_stateless.add_service(rs, svc, ctx)
    nft_forward.forget_others(ctx, forwarded)
    if forwarded:
        netdev = out[nft_forward.NETDEV.name] = nft_forward.empty_ruleset()
        for svc in forwarded:
            nft_forward.add_cached(netdev, svc, ctx)
        nft_forward.finish(netdev, ctx)
    tunnelled = [svc for svc in forwarded if forwarding(svc) == "TUN"]
    if tunnelled:
        ip = out.setdefault(IPV4.name, empty_ruleset(IPV4))
        for svc in tunnelled:
            nft_forward.add_copy_path(ip, svc, ctx)
        _hook(ip)
    return out


def _hook(rs: Ruleset) -> None:
    """Hook again the base chains that nft_rules' `build` unhooked for want of services, then unhook the idle ones.

    `build` has pruned `dup_prerouting` where no service of its own used
    it; TUN's copy path (nft_forward.add_copy_path) now does.
    """
    whole = empty_ruleset(rs.family)
    for name, spec in whole.chains.items():
        if name not in rs.chains:
            rs.chain(name, **spec)
            for text in whole.rules[name]:
                rs.rules[name] += (text,)
            rs.refs[name] = whole.refs[name]
    prune_hooks(rs)
