"""VRRPv3-MIB (RFC 6527, mib-2.207) rows from the state document: operations and statistics, read-only.

As Debian's keepalived 2.2.7 does (built to answer VRRPv3-MIB for version 2
instances too), every instance with at least one VIP appears, indexed by
{ifIndex, VRID, InetAddressType}; the associated address table's index ends
with the address's octets without a length, as keepalived writes it. The
ifIndex, the interface's primary address and its MAC are facts of the host,
not of the state document: the shell looks them up and passes them in
(`Interfaces`); an instance whose interface it could not find is left out,
since its index cannot be written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .agentx import Oid, VarBind
from .rows import (Interfaces, address, counter32, counter64, dicts, gauge, integer, keep, octets, part, ticks,
                   truth)

VRRPV3: Oid = (1, 3, 6, 1, 2, 1, 207)
NOTIFICATIONS: Oid = VRRPV3 + (0,)
NEW_MASTER: Oid = NOTIFICATIONS + (1,)
OPERATIONS_ENTRY: Oid = VRRPV3 + (1, 1, 1, 1)
ASSOCIATED_ENTRY: Oid = VRRPV3 + (1, 1, 2, 1)
STATISTICS: Oid = VRRPV3 + (1, 2)
STATISTICS_ENTRY: Oid = STATISTICS + (5, 1)
MASTER_IP_COLUMN = 3
NEW_MASTER_REASON_COLUMN = 2

_STATUS = {"BACKUP": 2, "MASTER": 3}  # initialize(1) for anything else


def row_index(inst: Mapping[str, Any], interfaces: Interfaces) -> Oid | None:
    """{ifIndex, VRID, InetAddressType} of an instance the table shows, else None."""
    vips = [vip for vip in inst.get("vips") or [] if address(vip) is not None]
    facts = interfaces.get(inst.get("interface") or "")
    vrid = inst.get("vrid")
    if not vips or facts is None or not isinstance(vrid, int):
        return None
    return (facts.index, vrid, 2 if inst.get("family") == "inet6" else 1)


def master_address(inst: Mapping[str, Any], interfaces: Interfaces) -> bytes:
    """vrrpv3OperationsMasterIpAddr: ours (the interface's primary address) when MASTER, else the master's."""
    six = inst.get("family") == "inet6"
    facts = interfaces.get(inst.get("interface") or "")
    if inst.get("state") == "MASTER" and facts is not None:
        primary = facts.ipv6 if six else facts.ipv4
        if primary is not None:
            return primary
    addr = address(inst.get("master_address"))
    if addr is not None and (addr.version == 6) == six:
        return addr.packed
    return bytes(16 if six else 4)


def up_time_cs(inst: Mapping[str, Any], now: float) -> int:
    """vrrpv3OperationsUpTime in centiseconds: since the instance left INIT, 0 while not BACKUP or MASTER."""
    if inst.get("state") not in _STATUS:
        return 0
    started = inst.get("since")
    for transition in dicts(inst.get("transitions")):
        if transition.get("from") == "INIT" and isinstance(transition.get("at"), (int, float)):
            started = transition["at"]
    if not isinstance(started, (int, float)):
        return 0
    return max(0, int((now - started) * 100))


def new_master_reason(inst: Mapping[str, Any]) -> int:
    """vrrpv3StatisticsNewMasterReason: why it last became master, as keepalived 2.2.7 keeps it.

    notMaster(0) until the first time it became master, then (kept after it
    leaves MASTER, as keepalived does) preempted(2) or priority(1) when the
    transition's reason says so, else masterNoResponse(3), keepalived's default.
    """
    to_master = [t for t in dicts(inst.get("transitions")) if t.get("to") == "MASTER"]
    if not to_master:
        return 3 if inst.get("state") == "MASTER" else 0
    reason = str(to_master[-1].get("reason", "")).lower()
    if "preempt" in reason:
        return 2
    if "priority" in reason and "timer" not in reason:
        return 1
    return 3


def vrrpv3_rows(doc: Mapping[str, Any], interfaces: Interfaces, now: float) -> list[VarBind]:
    rows: list[VarBind] = []
    checksum_errors = version_errors = vrid_errors = 0
    for inst in dicts(part(doc, "vrrp").get("instances")):
        counters = part(inst, "counters")
        checksum_errors += int(counters.get("checksum_errors") or 0)
        vrid_errors += int(counters.get("vrid_errors") or 0)
        version_errors += int(counters.get("version_errors") or 0)
        index = row_index(inst, interfaces)
        if index is None:
            continue
        facts = interfaces[inst["interface"]]
        vips = [vip for vip in inst.get("vips") or [] if address(vip) is not None]
        advert_ms = inst.get("advert_int_ms")

        def op(n: int) -> Oid:
            return OPERATIONS_ENTRY + (n, *index)  # noqa: B023 (used at once)

        def st(n: int) -> Oid:
            return STATISTICS_ENTRY + (n, *index)  # noqa: B023 (used at once)

        rows += keep(
            octets(op(3), master_address(inst, interfaces)),
            octets(op(4), (facts.ipv6 if inst.get("family") == "inet6" else facts.ipv4)),
            octets(op(5), facts.mac or None),
            integer(op(6), _STATUS.get(str(inst.get("state")), 1)),
            gauge(op(7), inst.get("priority")),
            integer(op(8), len(vips)),
            integer(op(9), advert_ms // 10 if isinstance(advert_ms, int) else None),
            truth(op(10), inst.get("preempt")),
            truth(op(11), inst.get("accept")) if isinstance(inst.get("accept"), bool) else None,
            ticks(op(12), up_time_cs(inst, now)),
            integer(op(13), 1),  # RowStatus active(1): rows come from the config
            counter32(st(1), counters.get("became_master")),
            integer(st(2), new_master_reason(inst)),
            counter64(st(3), counters.get("adverts_rx")),
            counter64(st(4), counters.get("advert_interval_errors")),
            counter64(st(5), counters.get("invalid_ttl")),
            counter64(st(7), counters.get("priority_zero_rx")),
            counter64(st(8), counters.get("priority_zero_tx")),
            counter64(st(9), counters.get("invalid_type")),
            counter64(st(10), counters.get("address_list_errors")),
            counter64(st(11), counters.get("packet_length_errors")),
            ticks(st(12), 0),  # vrrpv3StatisticsRowDiscontinuityTime: counters start with the daemon
            gauge(st(13), advert_ms),  # vrrpv3StatisticsRefreshRate (ms)
        )
        rows += keep(integer(st(6), 0))  # vrrpv3StatisticsProtoErrReason: noError(0)
        for vip in vips:
            addr = address(vip)
            if addr is not None:
                rows += keep(integer(ASSOCIATED_ENTRY + (2, *index, *addr.packed), 1))  # RowStatus active(1)
    if part(doc, "vrrp"):
        rows += keep(counter64(STATISTICS + (1, 0), checksum_errors), counter64(STATISTICS + (2, 0), version_errors),
                     counter64(STATISTICS + (3, 0), vrid_errors), ticks(STATISTICS + (4, 0), 0))
    return rows
