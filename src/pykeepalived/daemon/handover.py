"""A clean stop in two steps: VRRP hands the VIPs over first, the checker removes the LVS rules after.

Why: on SIGTERM the VRRP master sends a priority-0 advert and keeps its VIPs
until the backup, after its skew time (about 0.6 s at priority 100 and a 1 s
advert), becomes master, sends its adverts and gratuitous ARPs
(vrrp/machine.py, stop). Clients and NAT real servers keep sending to the old
master's MAC until those GARPs land. If the checker removed the data plane's
rules at the same moment, as a stop of every child at once did, each new
connection in that window reached a router holding the VIP without its DNAT
rule and was refused (about 0.6 s of failed requests). With the rules kept,
the old master goes on forwarding whatever still reaches it: nftables DNATs
the client's packets to a real server even once the VIP is no longer local,
and conntrack un-NATs the real servers' replies (NAT: they route back through
the private VIP, i.e. the old master's MAC until the GARPs land). DR and TUN
replies never pass a router, but the requests do, the same way.

So the parent stops the VRRP child first and the rest (checker, BFD) once
VRRP has exited, plus a grace for the new master's GARPs (sent when it took
over, before the old master heard its advert and let go) to be acted on and
the packets in flight to drain. It is bounded: VRRP gets at most
`handover_wait_s` (twice the longest advert interval plus a second, within the
stop's overall budget), after which the checker is stopped anyway. Nothing is
waited for when it cannot help: no checker child or no virtual server (a
VRRP-only router), no VRRP child (a checker-only one), -I (the rules stay
anyway), or a VRRP child whose last state report shows no instance MASTER
(a backup holds no VIP, so nothing reaches it). Children run alone (-P, -C)
have no parent and stop at once as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

HANDOVER_GRACE_S = 1.0  # after the VRRP child exited: the new master's GARPs land, packets in flight drain
CHECKER_STOP_S = 3.0  # what the overall stop budget leaves the checker at least (omega scripts get 1 s, the table)
MIN_HANDOVER_WAIT_S = 1.0


def handover_wait_s(advert_ints_s: Iterable[float], stop_timeout_s: float) -> float:
    """How long the checker waits for the VRRP child's exit.

    VRRP's own hold after the priority-0 advert is the backup's skew plus one
    advert interval plus a quarter second (vrrp/machine.py), so twice the
    longest interval plus a second covers it; capped so that the grace and
    the checker's own stop still fit in `stop_timeout_s`.
    """
    longest = max(advert_ints_s, default=1.0)
    cap = max(MIN_HANDOVER_WAIT_S, stop_timeout_s - HANDOVER_GRACE_S - CHECKER_STOP_S)
    return min(2.0 * longest + 1.0, cap)


def holds_a_vip(vrrp_part: Mapping[str, Any] | None) -> bool:
    """Whether the VRRP child's last state report (docs/state.md "vrrp") shows an instance MASTER.

    No report yet is taken as yes: waiting is bounded, failing requests is not undone.
    """
    if vrrp_part is None:
        return True
    instances = vrrp_part.get("instances")
    if not isinstance(instances, list):
        return True
    return any(isinstance(i, Mapping) and i.get("state") == "MASTER" for i in instances)


def wants_handover(*, vrrp_running: bool, checker_running: bool, release_dataplane: bool,
                   vrrp_part: Mapping[str, Any] | None, virtual_servers: bool = True) -> bool:
    """Whether the checker's stop must wait for VRRP's hand-over (see the module's docstring).

    `virtual_servers`: the configuration has some (a checker run with --all and none has no rules to keep).
    """
    return vrrp_running and checker_running and virtual_servers and release_dataplane and holds_a_vip(vrrp_part)


async def wait_exit(exited: Awaitable[Any], timeout_s: float) -> bool:
    """Wait for the VRRP child's exit, at most `timeout_s`; True if it exited (the wait itself is not cancelled)."""
    try:
        await asyncio.wait_for(asyncio.shield(exited), timeout_s)
    except TimeoutError:
        return False
    return True
