"""KEEPALIVED-MIB columns that say what the configuration asked for, not what is happening.

keepalived's VRRP tables mix state (vrrpInstanceState) with settings
(vrrpInstanceInitialState, ...PreemptDelay, ...GarpDelay, ...Accept). The
state document carries the first kind; this module reads the second from the
configuration in force, matched by instance and group name, with keepalived
2.2.7's defaults and quirks (Accept is 0 for VRRPv2, the multicast address
only without unicast peers) so that a walk shows the same numbers.
"""

from __future__ import annotations

from ..config.model import GlobalDefs, KeepalivedConfig, Script, SyncGroup, VrrpInstance
from collections.abc import Mapping
from typing import Any

from .agentx import Oid, VarBind
from .mib_keepalived import GLOBAL, INSTANCE_ENTRY, SYNC_GROUP_ENTRY, vrrp_state
from . import mib_vrrp2
from .mib_vrrpv3 import OPERATIONS_ENTRY, row_index
from .rows import Interfaces, address, dicts, gauge, integer, keep, octets, part, text, truth

GARP_MASTER_DELAY_S = 5  # keepalived's default garp_master_delay
MCAST_V4 = bytes([224, 0, 0, 18])
MCAST_V6 = bytes.fromhex("ff020000000000000000000000000012")
_AUTH_TYPES = {"PASS": 1, "AH": 2}


MAIL: Oid = GLOBAL + (3,)


def script_text(script: Script | None) -> str | None:
    """A notify script as keepalived shows it: each word in single quotes (a first `<`/`>` word bare)."""
    if script is None or not script.argv:
        return None
    words = [word if i == 0 and word[:1] in ("<", ">") else f"'{word}'" for i, word in enumerate(script.argv)]
    return " ".join(words)


def _tristate(value: bool | None) -> int:
    """on(1), off(2), unset(3)."""
    return 3 if value is None else 1 if value else 2


def global_config_rows(config: KeepalivedConfig) -> list[VarBind]:
    """KEEPALIVED-MIB's global settings (`K.1.3` mail, `K.1.4`-`K.1.11`), keepalived's numbers."""
    g = config.global_defs
    smtp = address(g.smtp_server)
    flush_on_stop = g.lvs_flush_on_stop
    rows = keep(
        integer(MAIL + (1, 0), 1 if smtp is not None and smtp.version == 4 else 2),  # keepalived: 2 when unset
        octets(MAIL + (2, 0), smtp.packed if smtp is not None else bytes(4)),
        gauge(MAIL + (3, 0), int(g.smtp_connect_timeout_s) if smtp is not None else 0),
        text(MAIL + (4, 0), g.notification_email_from),
        gauge(MAIL + (6, 0), g.smtp_server_port if smtp is not None else 0),
        truth(MAIL + (7, 0), not g.no_email_faults),
        integer(MAIL + (8, 0), _tristate(g.smtp_alert)),
        integer(MAIL + (9, 0), _tristate(g.smtp_alert_vrrp)),
        integer(MAIL + (10, 0), _tristate(g.smtp_alert_checker)),
        truth(GLOBAL + (4, 0), g.enable_traps),
        integer(GLOBAL + (5, 0), 2 if config.root_options.get("linkbeat_use_polling") else 1),  # polling(2)
        truth(GLOBAL + (6, 0), g.lvs_flush),
        integer(GLOBAL + (7, 0), 1),  # ipvs64BitStats: our counters are 64-bit
        text(GLOBAL + (8, 0), g.net_namespace or ""),
        integer(GLOBAL + (9, 0), 2),  # dbus: no D-Bus in pykeepalived
        truth(GLOBAL + (10, 0), g.dynamic_interfaces),
        # lvsFlushOnStop: disabled(2) unless set, flushVS(3) with a VS word, else enabled(1)
        integer(GLOBAL + (11, 0), 2 if flush_on_stop is None else 3 if flush_on_stop else 1),
    )
    rows += [row for n, mail in enumerate(g.notification_email, start=1)
             for row in keep(text(MAIL + (5, 1, 2, n), mail))]
    return rows


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
        text(col(22), script_text(inst.notify_master)),
        text(col(23), script_text(inst.notify_backup)),
        text(col(24), script_text(inst.notify_fault)),
        text(col(25), script_text(inst.notify_stop)),
        text(col(26), script_text(inst.notify)),
        integer(col(27), (1 if accept else 2) if version == 3 else 0),
        truth(col(28), inst.promote_secondaries),
        truth(col(29), inst.linkbeat_use_polling),
        text(col(31), script_text(inst.notify_master_rx_lower_pri)),
        text(col(32), script_text(inst.notify_deleted)),
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
                text(col(6), script_text(group.notify_master)), text(col(7), script_text(group.notify_backup)),
                text(col(8), script_text(group.notify_fault)), text(col(9), script_text(group.notify)),
                truth(col(10), group.sync_group_tracking_weight), text(col(11), script_text(group.notify_stop)))


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
