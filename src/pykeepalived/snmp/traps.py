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
from .mib_keepalived import (CHECK, INSTANCE_ENTRY, INSTANCE_STATE_CHANGE, REAL_SERVER_ENTRY, ROUTER_ID,
                             SYNC_GROUP_ENTRY, SYNC_GROUP_STATE_CHANGE, VIRTUAL_SERVER_ENTRY, real_server_rows,
                             virtual_server_rows, vrrp_state)
from .mib_vrrpv3 import MASTER_IP_COLUMN, NEW_MASTER, NEW_MASTER_REASON_COLUMN, OPERATIONS_ENTRY, STATISTICS_ENTRY
from .mib_vrrpv3 import master_address, new_master_reason, row_index
from . import mib_vrrp2
from .rows import Interfaces, dicts, keep, part, text
from .settings import SnmpSettings

SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
REAL_SERVER_STATE_CHANGE: Oid = CHECK + (5, 0, 1)
QUORUM_STATE_CHANGE: Oid = CHECK + (5, 0, 2)
# virtualServerType, then by type NameOfGroup / FwMark / AddrType, Address, Port, then Protocol (MIB order)
_VS_IDENTITY = (2, 3, 4, 5, 6, 7, 8)


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


def _pick(rows: list[VarBind], entry: Oid, columns: tuple[int, ...]) -> list[VarBind]:
    by_column = {row.name[len(entry)]: row for row in rows}
    return [by_column[c] for c in columns if c in by_column]


def check_traps(old: Mapping[str, Any], new: Mapping[str, Any], settings: SnmpSettings) -> list[Trap]:
    """realServerStateChange and virtualServerQuorumStateChange, as keepalived's checker sends them."""
    if not (settings.traps and settings.checker) or not part(old, "checker"):
        return []
    before_vs = {vs.get("name"): vs for vs in dicts(part(old, "checker").get("virtual_servers"))}
    router_id = keep(text(ROUTER_ID, part(new, "daemon").get("router_id")))
    traps: list[Trap] = []
    for v, vs in enumerate(dicts(part(new, "checker").get("virtual_servers")), start=1):
        old_vs = before_vs.get(vs.get("name"))
        if old_vs is None:
            continue
        vs_rows = virtual_server_rows(v, vs)
        identity = _pick(vs_rows, VIRTUAL_SERVER_ENTRY, _VS_IDENTITY)
        counts = _pick(vs_rows, VIRTUAL_SERVER_ENTRY, (21, 20))
        before_rs = {rs.get("name"): rs.get("healthy") for rs in dicts(old_vs.get("real_servers"))}
        for r, rs in enumerate(dicts(vs.get("real_servers")), start=1):
            name = rs.get("name")
            if name not in before_rs or before_rs[name] == rs.get("healthy"):
                continue
            rs_rows = _pick(real_server_rows(v, r, rs, vs), REAL_SERVER_ENTRY, (3, 4, 5, 6))
            traps.append(Trap("realServerStateChange", f"{vs.get('name')} {name}", (
                VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, REAL_SERVER_STATE_CHANGE),
                *rs_rows, *identity, *counts, *router_id)))
        if old_vs.get("quorum_up") != vs.get("quorum_up"):
            traps.append(Trap("virtualServerQuorumStateChange", str(vs.get("name")), (
                VarBind(ValueType.OBJECT_IDENTIFIER, SNMP_TRAP_OID, QUORUM_STATE_CHANGE),
                *identity, *_pick(vs_rows, VIRTUAL_SERVER_ENTRY, (23, 22)), *counts, *router_id)))
    return traps
