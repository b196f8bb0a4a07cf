"""VRRP-MIB (RFC 2787, mib-2.68) rows from the state document: operations, associated addresses, statistics.

As keepalived 2.2.7 (built with VRRPv3-MIB too): only VRRP version 2, IPv4
instances with at least one VIP, indexed by {ifIndex, VRID}. The MAC and the
primary address are the interface's (the shell's `Interfaces`), as
keepalived answers them; vrrpOperMasterIpAddr is the last master heard from,
so 0.0.0.0 on a master (the state document's master_address is our own
there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .agentx import Oid, ValueType, VarBind
from .rows import Interfaces, address, counter32, dicts, integer, keep, octets, part, ticks, truth

VRRP_MIB: Oid = (1, 3, 6, 1, 2, 1, 68)
NODE_VERSION: Oid = VRRP_MIB + (1, 1, 0)
NOTIFICATION_CNTL: Oid = VRRP_MIB + (1, 2, 0)
OPER_ENTRY: Oid = VRRP_MIB + (1, 3, 1)
ASSO_ENTRY: Oid = VRRP_MIB + (1, 4, 1)
STATISTICS: Oid = VRRP_MIB + (2,)
STATS_ENTRY: Oid = STATISTICS + (4, 1)
TRAP_NEW_MASTER: Oid = VRRP_MIB + (0, 1)
MASTER_IP_COLUMN = 7

_STATE = {"BACKUP": 2, "MASTER": 3}  # initialize(1) otherwise


def row_index(inst: Mapping[str, Any], interfaces: Interfaces) -> Oid | None:
    vips = [vip for vip in inst.get("vips") or [] if address(vip) is not None]
    facts = interfaces.get(inst.get("interface") or "")
    vrid = inst.get("vrid")
    if inst.get("version") != 2 or inst.get("family") == "inet6" or not vips or facts is None:
        return None
    return (facts.index, vrid) if isinstance(vrid, int) else None


def master_ip(inst: Mapping[str, Any]) -> bytes:
    addr = address(inst.get("master_address")) if inst.get("state") != "MASTER" else None
    return addr.packed if addr is not None and addr.version == 4 else bytes(4)


def vrrp2_rows(doc: Mapping[str, Any], interfaces: Interfaces, traps: bool) -> list[VarBind]:
    vrrp = part(doc, "vrrp")
    if not vrrp:
        return []
    started = part(doc, "daemon").get("started_at")
    rows = keep(integer(NODE_VERSION, 2), integer(NOTIFICATION_CNTL, 1 if traps else 2))
    checksum = version = vrid = 0
    for inst in dicts(vrrp.get("instances")):
        counters = part(inst, "counters")
        checksum += int(counters.get("checksum_errors") or 0)
        version += int(counters.get("version_errors") or 0)
        vrid += int(counters.get("vrid_errors") or 0)
        index = row_index(inst, interfaces)
        if index is None:
            continue
        facts = interfaces[inst["interface"]]
        vips = [a for a in (address(v) for v in inst.get("vips") or []) if a is not None]
        advert_ms = inst.get("advert_int_ms")
        up = 0
        if inst.get("state") in _STATE and isinstance(started, (int, float)):
            left_init = [t.get("at") for t in dicts(inst.get("transitions")) if t.get("from") == "INIT"]
            at = left_init[-1] if left_init and isinstance(left_init[-1], (int, float)) else inst.get("since")
            up = int(max(0.0, (at - started) * 100)) if isinstance(at, (int, float)) else 0

        def op(n: int) -> Oid:
            return OPER_ENTRY + (n, *index)  # noqa: B023 (used at once)

        def st(n: int) -> Oid:
            return STATS_ENTRY + (n, *index)  # noqa: B023 (used at once)

        rows += keep(
            octets(op(2), facts.mac or None),
            integer(op(3), _STATE.get(str(inst.get("state")), 1)),
            integer(op(4), 1),  # vrrpOperAdminState up(1)
            integer(op(5), inst.get("priority")),
            integer(op(6), len(vips)),
            VarBind(ValueType.IP_ADDRESS, op(MASTER_IP_COLUMN), master_ip(inst)),
            VarBind(ValueType.IP_ADDRESS, op(8), facts.ipv4) if facts.ipv4 is not None else None,
            integer(op(11), advert_ms // 1000 if isinstance(advert_ms, int) else None),
            truth(op(12), inst.get("preempt")),
            ticks(op(13), up),
            integer(op(14), 1),  # vrrpOperProtocol ip(1)
            integer(op(15), 1),  # RowStatus active(1)
            counter32(st(1), counters.get("became_master")),
            counter32(st(2), counters.get("adverts_rx")),
            counter32(st(3), counters.get("advert_interval_errors")),
            counter32(st(4), counters.get("auth_failures")),
            counter32(st(5), counters.get("invalid_ttl")),
            counter32(st(6), counters.get("priority_zero_rx")),
            counter32(st(7), counters.get("priority_zero_tx")),
            counter32(st(8), counters.get("invalid_type")),
            counter32(st(9), counters.get("address_list_errors")),
            counter32(st(10), counters.get("invalid_auth_type")),
            counter32(st(11), counters.get("auth_type_mismatch")),
            counter32(st(12), counters.get("packet_length_errors")),
        )
        rows += [VarBind(ValueType.INTEGER, ASSO_ENTRY + (2, *index, *vip.packed), 1) for vip in vips]
    rows += keep(counter32(STATISTICS + (1, 0), checksum), counter32(STATISTICS + (2, 0), version),
                 counter32(STATISTICS + (3, 0), vrid))
    return rows
