"""The traps a state change calls for: two state documents in, the Notify varbind lists out.

keepalived 2.2.7 sends, with enable_traps, KEEPALIVED-MIB's
vrrpInstanceStateChange and vrrpSyncGroupStateChange on every VRRP state
change, and VRRPv3-MIB's vrrpv3NewMaster when an instance of a version 3
router becomes master. Each list starts with snmpTrapOID.0 (the master agent
adds sysUpTime.0 when it is missing, RFC 2741 6.2.10). Pure: the shell keeps
the previous document and sends what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config.model import KeepalivedConfig
from .agentx import Oid, ValueType, VarBind
from .mib_keepalived import (INSTANCE_ENTRY, INSTANCE_STATE_CHANGE, ROUTER_ID, SYNC_GROUP_ENTRY,
                             SYNC_GROUP_STATE_CHANGE, vrrp_state)
from .mib_vrrpv3 import MASTER_IP_COLUMN, NEW_MASTER, NEW_MASTER_REASON_COLUMN, OPERATIONS_ENTRY, STATISTICS_ENTRY
from .mib_vrrpv3 import master_address, new_master_reason, row_index
from . import mib_vrrp2
from .rows import Interfaces, dicts, keep, part, text
from .settings import SnmpSettings

SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)


@dataclass(frozen=True)
class Trap:
    name: str  # the notification's MIB name, for the log and the timeline
    subject: str  # the instance or group
    varbinds: tuple[VarBind, ...]


def _states(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {str(item["name"]): item.get("state") for item in items if isinstance(item.get("name"), str)}


def state_traps(old: Mapping[str, Any], new: Mapping[str, Any], settings: SnmpSettings,
                interfaces: Interfaces, config: KeepalivedConfig | None = None) -> list[Trap]:
    """The traps for what changed between two documents; none when traps are off or on the first document.

    vrrpInstanceInitialState is the configured state (`config`; BACKUP without one, keepalived's default).
    """
    if not settings.traps or not part(old, "vrrp"):
        return []
    traps: list[Trap] = []
    router_id = part(new, "daemon").get("router_id")
    old_vrrp, new_vrrp = part(old, "vrrp"), part(new, "vrrp")
    if settings.vrrp:
        before = _states(dicts(old_vrrp.get("sync_groups")))
        for g, group in enumerate(dicts(new_vrrp.get("sync_groups")), start=1):
            name = group.get("name")
            if isinstance(name, str) and name in before and before[name] != group.get("state"):
                traps.append(Trap("vrrpSyncGroupStateChange", name, (
                    VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, SYNC_GROUP_STATE_CHANGE),
                    *keep(text(SYNC_GROUP_ENTRY + (2, g), name)),
                    VarBind(ValueType.INTEGER, SYNC_GROUP_ENTRY + (3, g), vrrp_state(group.get("state"))),
                    *keep(text(ROUTER_ID, router_id)))))
    before = _states(dicts(old_vrrp.get("instances")))
    for i, inst in enumerate(dicts(new_vrrp.get("instances")), start=1):
        name = inst.get("name")
        if not isinstance(name, str) or name not in before or before[name] == inst.get("state"):
            continue
        if settings.vrrp:
            configured = config.vrrp_instances.get(name) if config is not None else None
            initial = (configured.state if configured is not None else None) or "BACKUP"
            traps.append(Trap("vrrpInstanceStateChange", name, (
                VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, INSTANCE_STATE_CHANGE),
                *keep(text(INSTANCE_ENTRY + (2, i), name)),
                VarBind(ValueType.INTEGER, INSTANCE_ENTRY + (4, i), vrrp_state(inst.get("state"))),
                VarBind(ValueType.INTEGER, INSTANCE_ENTRY + (5, i), vrrp_state(initial)),
                *keep(text(ROUTER_ID, router_id)))))
        index2 = mib_vrrp2.row_index(inst, interfaces)
        if settings.rfcv2 and inst.get("state") == "MASTER" and index2 is not None:
            traps.append(Trap("vrrpTrapNewMaster", name, (
                VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, mib_vrrp2.TRAP_NEW_MASTER),
                VarBind(ValueType.IP_ADDRESS, mib_vrrp2.OPER_ENTRY + (mib_vrrp2.MASTER_IP_COLUMN, *index2),
                        interfaces[inst["interface"]].ipv4 or bytes(4)))))  # the new master: us
        index = row_index(inst, interfaces)
        if settings.rfcv3 and inst.get("state") == "MASTER" and index is not None:
            traps.append(Trap("vrrpv3NewMaster", name, (
                VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, NEW_MASTER),
                VarBind(ValueType.OCTET_STRING, OPERATIONS_ENTRY + (MASTER_IP_COLUMN, *index),
                        master_address(inst, interfaces)),
                VarBind(ValueType.INTEGER, STATISTICS_ENTRY + (NEW_MASTER_REASON_COLUMN, *index),
                        new_master_reason(inst)))))
    return traps
