"""keepalived's derived values of one vrrp_instance, worked out in one place.

keepalived completes an instance once its block is read (vrrp_complete_instance
in 2.2.7): the family comes from the first VIP, the version from global_defs
(IPv6: 3), the priority from the wanted state (`state MASTER` without
`priority` is the address owner, 255; otherwise 100), the wanted state from
the priority, and `nopreempt` / `preempt_delay` are cleared where they cannot
work. Two readers need these values: config/complete.py writes them into the
model (what `-t`, the dump and the checks see) and vrrp/settings.py turns the
model into what the state machine runs. Both call `instance_defaults`, which
is pure and gives the same answer for a model straight from the parser and for
one it has already completed, so the two can no longer disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import GlobalDefs, VrrpInstance
from .vocabulary import Family, VrrpState

OWNER_PRIORITY = 255
DEFAULT_PRIORITY = 100


@dataclass(frozen=True)
class InstanceDefaults:
    """The derived values of one vrrp_instance, complete."""

    family: Family
    version: int
    priority: int
    state: VrrpState  # the wanted initial state
    nopreempt: bool
    preempt_delay_s: float
    ah_master_refused: bool = False  # `state MASTER` dropped for AH (keepalived reports it)

    @property
    def wanted_master(self) -> bool:
        return self.state == "MASTER"

    @property
    def owner(self) -> bool:
        return self.priority == OWNER_PRIORITY


def instance_family(instance: VrrpInstance) -> Family:
    """4 or 6: as set, else the first VIP's, else unicast_src_ip's, else 4 (keepalived's AF_UNSPEC -> AF_INET)."""
    if instance.family is not None:
        return instance.family
    for spec in instance.virtual_ipaddresses:
        return spec.address.version
    if instance.unicast_src_ip is not None:
        return instance.unicast_src_ip.version
    return 4


def instance_defaults(instance: VrrpInstance, global_defs: GlobalDefs) -> InstanceDefaults:
    """keepalived 2.2.7's completion of one instance (read-only: the caller decides where the values go)."""
    family = instance_family(instance)
    # IPv6 always runs VRRPv3 (keepalived refuses `version 2` once an IPv6 address is known)
    version = 3 if family == 6 else (instance.version or global_defs.vrrp_version)
    if instance.priority is not None:
        priority = instance.priority
    else:
        priority = OWNER_PRIORITY if instance.state == "MASTER" else DEFAULT_PRIORITY
    state = instance.state if instance.state is not None else ("MASTER" if priority == OWNER_PRIORITY else "BACKUP")
    ah_refused = False
    auth = instance.authentication
    if auth is not None and auth.auth_type == "AH" and state == "MASTER" and priority != OWNER_PRIORITY:
        state, ah_refused = "BACKUP", True  # AH needs a received advert's sequence number before taking over
    strict = instance.strict_mode if instance.strict_mode is not None else global_defs.vrrp_strict
    if strict:  # strict mode: only the address owner starts as MASTER
        state = "MASTER" if priority == OWNER_PRIORITY else "BACKUP"
    nopreempt, preempt_delay = instance.nopreempt, instance.preempt_delay_s
    if strict:
        preempt_delay = 0.0  # keepalived: preempt_delay is incompatible with strict mode
    if priority == OWNER_PRIORITY or state == "MASTER":
        nopreempt, preempt_delay = False, 0.0
    if nopreempt:
        preempt_delay = 0.0  # keepalived: preempt_delay is incompatible with nopreempt
    return InstanceDefaults(family=family, version=version, priority=priority, state=state, nopreempt=nopreempt,
                            preempt_delay_s=preempt_delay, ah_master_refused=ah_refused)
