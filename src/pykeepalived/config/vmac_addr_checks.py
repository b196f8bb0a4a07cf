"""keepalived 2.2.7's verdicts on a VIP's own `use_vmac` (its instance completion, as `-t` errors).

A VIP or eVIP line may say `use_vmac`: that address gets a VMAC of its own
(vrrp/vmac_addr.py). keepalived reports two combinations as configuration
errors: the address would go on the instance's own VMAC anyway (use_vmac on
the instance, the address on the instance's interface and of its family), or
use_vmac_addr already gives it one (another interface or the other family).
Pure.
"""

from __future__ import annotations

from .context import ParseContext
from .model import VrrpInstance


def address_vmac_rules(ctx: ParseContext, inst: VrrpInstance, family: int) -> None:
    for spec in (*inst.virtual_ipaddresses, *inst.virtual_ipaddresses_excluded):
        if not spec.use_vmac:
            continue
        own_if = spec.device in (None, inst.interface)
        same_family = spec.address.version == family
        where = spec.location or inst.location
        if own_if and inst.use_vmac is not None and same_family:
            ctx.error(where, f"({inst.name}) use_vmac specified for VIP/eVIP {spec.address} and vrrp instance",
                      "use_vmac")
        elif (not own_if or not same_family) and inst.use_vmac_addr:
            ctx.error(where, f"({inst.name}) use_vmac_addr specified and use_vmac specified for VIP/eVIP "
                             f"{spec.address}", "use_vmac_addr")
