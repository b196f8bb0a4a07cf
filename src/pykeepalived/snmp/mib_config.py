"""KEEPALIVED-MIB columns that say what the configuration asked for, not what is happening.

keepalived's VRRP tables mix state (vrrpInstanceState) with settings
(vrrpInstanceInitialState, ...PreemptDelay, ...GarpDelay, ...Accept). The
state document carries the first kind; this module reads the second from the
configuration in force, matched by instance and group name, with keepalived
2.2.7's defaults and quirks (Accept is 0 for VRRPv2, the multicast address
only without unicast peers) so that a walk shows the same numbers.
"""

from __future__ import annotations

from ..config.model import GlobalDefs, KeepalivedConfig, SyncGroup, VrrpInstance
from collections.abc import Mapping
from typing import Any

from .agentx import Oid, VarBind
from .mib_keepalived import INSTANCE_ENTRY, SYNC_GROUP_ENTRY, vrrp_state
from . import mib_vrrp2
from .mib_vrrpv3 import OPERATIONS_ENTRY, row_index
from .rows import Interfaces, dicts, gauge, integer, keep, octets, part, text, truth

GARP_MASTER_DELAY_S = 5  # keepalived's default garp_master_delay
MCAST_V4 = bytes([224, 0, 0, 18])
MCAST_V6 = bytes.fromhex("ff020000000000000000000000000012")
_AUTH_TYPES = {"PASS": 1, "AH": 2}


def accepts(inst: VrrpInstance) -> bool:
    """accept / no_accept, keepalived's default: accept unless strict mode."""
    return inst.accept if inst.accept is not None else not inst.strict_mode


def instance_config_rows(i: int, inst: VrrpInstance, g: GlobalDefs) -> list[VarBind]:
    def col(n: int) -> Oid:
        return INSTANCE_ENTRY + (n, i)

    version = inst.version or 2
    syncd = g.lvs_sync_daemon if g.lvs_sync_daemon is not None and g.lvs_sync_daemon.instance == inst.name else None
    smtp = inst.smtp_alert if inst.smtp_alert is not None else (
        g.smtp_alert_vrrp if g.smtp_alert_vrrp is not None else bool(g.smtp_alert))
    notify_exec = any(s is not None for s in (inst.notify_master, inst.notify_backup, inst.notify_fault,
                                               inst.notify_stop, inst.notify, inst.notify_deleted,
                                               inst.notify_master_rx_lower_pri))
    accept = accepts(inst)
    six = inst.family == 6
    multicast = not inst.unicast_peers
    mcast = inst.mcast_dst_ip.packed if inst.mcast_dst_ip is not None else (MCAST_V6 if six else MCAST_V4)
    auth = inst.authentication
    garp = inst.garp_master_delay_s if inst.garp_master_delay_s is not None else GARP_MASTER_DELAY_S
    return keep(
        integer(col(5), vrrp_state(inst.state or "BACKUP")),
        truth(col(11), bool(inst.track_interfaces)),
        gauge(col(14), int(inst.preempt_delay_s)),
        integer(col(15), _AUTH_TYPES.get(auth.auth_type or "", 0) if auth is not None and version == 2 else 0),
        truth(col(16), syncd is not None),
        text(col(17), syncd.interface if syncd is not None else None),
        gauge(col(19), int(garp)),
        truth(col(20), bool(smtp)),
        truth(col(21), notify_exec),
        integer(col(27), (1 if accept else 2) if version == 3 else 0),
        truth(col(28), inst.promote_secondaries),
        truth(col(29), inst.linkbeat_use_polling),
        truth(col(33), inst.notify_deleted_flag or inst.notify_deleted is not None),
        integer(col(34), 2 if six else 1) if multicast else None,
        octets(col(35), mcast) if multicast else None,
    )


def sync_group_config_rows(n: int, group: SyncGroup, g: GlobalDefs) -> list[VarBind]:
    def col(c: int) -> Oid:
        return SYNC_GROUP_ENTRY + (c, n)

    smtp = group.smtp_alert if group.smtp_alert is not None else (
        g.smtp_alert_vrrp if g.smtp_alert_vrrp is not None else bool(g.smtp_alert))
    notify_exec = any(s is not None for s in (group.notify_master, group.notify_backup, group.notify_fault,
                                               group.notify_stop, group.notify))
    return keep(truth(col(4), bool(smtp)), truth(col(5), notify_exec),
                truth(col(10), group.sync_group_tracking_weight))


def config_rows(config: KeepalivedConfig, instance_names: list[str], group_names: list[str]) -> list[VarBind]:
    """The settings columns of the instances and groups the state document lists, in its order."""
    rows: list[VarBind] = []
    g = config.global_defs
    for i, name in enumerate(instance_names, start=1):
        inst = config.vrrp_instances.get(name)
        if inst is not None:
            rows += instance_config_rows(i, inst, g)
    for n, name in enumerate(group_names, start=1):
        group = config.sync_groups.get(name)
        if group is not None:
            rows += sync_group_config_rows(n, group, g)
    return rows


def vrrpv3_config_rows(config: KeepalivedConfig, doc: Mapping[str, Any], interfaces: Interfaces) -> list[VarBind]:
    """vrrpv3OperationsAcceptMode of each row VRRPv3-MIB shows (keepalived answers it for v2 instances too)."""
    rows: list[VarBind] = []
    for inst in dicts(part(doc, "vrrp").get("instances")):
        index = row_index(inst, interfaces)
        configured = config.vrrp_instances.get(str(inst.get("name")))
        if index is not None and configured is not None:
            rows += keep(truth(OPERATIONS_ENTRY + (11, *index), accepts(configured)))
    return rows


def vrrp2_config_rows(config: KeepalivedConfig, doc: Mapping[str, Any], interfaces: Interfaces) -> list[VarBind]:
    """vrrpOperAuthType: noAuthentication(1), simpleTextPassword(2), ipAuthenticationHeader(3)."""
    rows: list[VarBind] = []
    for inst in dicts(part(doc, "vrrp").get("instances")):
        index = mib_vrrp2.row_index(inst, interfaces)
        configured = config.vrrp_instances.get(str(inst.get("name")))
        if index is not None and configured is not None:
            auth = configured.authentication
            kind = _AUTH_TYPES.get(auth.auth_type or "", 0) if auth is not None else 0
            rows += keep(integer(mib_vrrp2.OPER_ENTRY + (9, *index), kind + 1))
    return rows
