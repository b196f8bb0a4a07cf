"""KEEPALIVED-MIB (enterprises.9586.100.5) rows from the state document: global, VRRP and checker parts.

Served read-only, with keepalived 2.2.7's conventions so that existing
pollers read the same numbers: tables are indexed from 1 in the document's
order (the config's order), a column with nothing to say is left out (a
GetNext skips it, as keepalived's handlers do), instance and group states use
VrrpState (init 0, backup 1, master 2, fault 3, anything else 4), and the
yes/no columns TruthValue (1 true, 2 false) even where the MIB spells
enumerations, as keepalived does. Only the columns the state document
carries are served; docs/snmp.md lists those that are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .agentx import Oid, VarBind
from .rows import (Interfaces, address, address_type, dicts, gauge, integer, keep, octets, part, prefix_length,
                   text, truth)

KEEPALIVED: Oid = (1, 3, 6, 1, 4, 1, 9586, 100, 5)
GLOBAL: Oid = KEEPALIVED + (1,)
VRRP: Oid = KEEPALIVED + (2,)
CHECK: Oid = KEEPALIVED + (3,)

ROUTER_ID: Oid = GLOBAL + (2, 0)
SYNC_GROUP_ENTRY: Oid = VRRP + (1, 1)
SYNC_GROUP_MEMBER_ENTRY: Oid = VRRP + (2, 1)
INSTANCE_ENTRY: Oid = VRRP + (3, 1)
ADDRESS_ENTRY: Oid = VRRP + (6, 1)
VRRP_TRAPS: Oid = VRRP + (10, 0)
SYNC_GROUP_STATE_CHANGE: Oid = VRRP_TRAPS + (1,)
INSTANCE_STATE_CHANGE: Oid = VRRP_TRAPS + (2,)
VIRTUAL_SERVER_ENTRY: Oid = CHECK + (3, 1)
REAL_SERVER_ENTRY: Oid = CHECK + (4, 1)

_STATES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
_SCHEDULERS = {name: i for i, name in enumerate(
    ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"), start=1)}
_LB_KINDS = {"NAT": 1, "DR": 2, "TUN": 3}
_PROTOCOLS = {"TCP": 1, "UDP": 2, "SCTP": 3}
_VS_TYPES = {"fwmark": 1, "address": 2, "group": 3}


def vrrp_state(state: Any) -> int:
    """KEEPALIVED-MIB's VrrpState number for a state word (keepalived answers 4 for any other state)."""
    return _STATES.get(state, 4) if isinstance(state, str) else 4


def global_rows(doc: Mapping[str, Any]) -> list[VarBind]:
    daemon = part(doc, "daemon")
    version = daemon.get("version")
    return keep(text(GLOBAL + (1, 0), f"pykeepalived {version}" if isinstance(version, str) else None),
                text(ROUTER_ID, daemon.get("router_id")))


def vrrp_rows(doc: Mapping[str, Any], interfaces: Interfaces | None = None) -> list[VarBind]:
    vrrp = part(doc, "vrrp")
    instances = dicts(vrrp.get("instances"))
    rows: list[VarBind] = []
    for g, group in enumerate(dicts(vrrp.get("sync_groups")), start=1):
        rows += keep(text(SYNC_GROUP_ENTRY + (2, g), group.get("name")),
                     integer(SYNC_GROUP_ENTRY + (3, g), vrrp_state(group.get("state"))))
        members = group.get("instances")
        for m, member in enumerate(members if isinstance(members, list) else [], start=1):
            rows += keep(text(SYNC_GROUP_MEMBER_ENTRY + (2, g, m), member))
    for i, inst in enumerate(instances, start=1):
        rows += instance_rows(i, inst)
        rows += address_rows(i, inst, interfaces or {})
    return rows


def instance_rows(i: int, inst: Mapping[str, Any]) -> list[VarBind]:
    def col(n: int) -> Oid:
        return INSTANCE_ENTRY + (n, i)

    version = inst.get("version")
    advert_ms = inst.get("advert_int_ms")
    advert = None
    if isinstance(advert_ms, (int, float)) and not isinstance(advert_ms, bool):
        advert = advert_ms // 1000 if version == 2 else advert_ms // 10  # keepalived: seconds for v2, cs for v3
    state = inst.get("state")
    return keep(
        text(col(2), inst.get("name")),
        gauge(col(3), inst.get("vrid")),
        integer(col(4), vrrp_state(state)),
        integer(col(6), vrrp_state(inst.get("wanted_state"))) if "wanted_state" in inst else None,
        integer(col(7), inst.get("priority")),
        integer(col(8), inst.get("effective_priority")),
        truth(col(9), state == "MASTER"),  # the VIPs are set exactly while MASTER
        text(col(10), inst.get("interface")),
        gauge(col(12), advert),
        truth(col(13), inst.get("preempt")),
        text(col(18), inst.get("sync_group")),
        integer(col(30), version),
    )


_SCOPES = {"host": 1, "link": 2, "site": 5}  # InetScopeType as keepalived maps it; anything else global(14)


def _word_after(words: list[str], key: str) -> str | None:
    return words[words.index(key) + 1] if key in words[:-1] else None


def address_rows(i: int, inst: Mapping[str, Any], interfaces: Interfaces) -> list[VarBind]:
    """vrrpAddressTable: the VIPs, then the excluded ones (set with the VIPs, not advertised)."""
    rows: list[VarBind] = []
    master = inst.get("state") == "MASTER"
    entries = [(vip, True) for vip in inst.get("vips") or [] if isinstance(vip, str)]
    entries += [(vip, False) for vip in inst.get("excluded_vips") or [] if isinstance(vip, str)]
    for a, (vip, advertised) in enumerate(entries, start=1):
        addr = address(vip)
        if addr is None:
            continue
        words = vip.split()
        dev = _word_after(words, "dev") or inst.get("interface")
        brd = address(_word_after(words, "brd")) if addr.version == 4 else None
        facts = interfaces.get(dev) if isinstance(dev, str) else None

        def col(n: int) -> Oid:
            return ADDRESS_ENTRY + (n, i, a)  # noqa: B023 (used at once)

        rows += keep(
            integer(col(2), address_type(addr)),
            octets(col(3), addr.packed),
            octets(col(4), (brd.packed if brd is not None else bytes(4)) if addr.version == 4 else None),
            gauge(col(5), prefix_length(vip)),
            integer(col(6), _SCOPES.get(_word_after(words, "scope") or "", 14)),
            integer(col(7), facts.index if facts is not None else None),
            text(col(8), dev),
            integer(col(10), 1 if master else 2),  # set(1), unset(2)
            integer(col(11), 1 if advertised else 2),  # advertised(1), notAdvertised(2)
        )
    return rows


def check_rows(doc: Mapping[str, Any]) -> list[VarBind]:
    rows: list[VarBind] = []
    for v, vs in enumerate(dicts(part(doc, "checker").get("virtual_servers")), start=1):
        rows += virtual_server_rows(v, vs)
        for r, rs in enumerate(dicts(vs.get("real_servers")), start=1):
            rows += real_server_rows(v, r, rs, vs)
    return rows


def virtual_server_rows(v: int, vs: Mapping[str, Any]) -> list[VarBind]:
    def col(n: int) -> Oid:
        return VIRTUAL_SERVER_ENTRY + (n, v)

    kind = vs.get("kind")
    addr = address(vs.get("address")) if kind == "address" else None
    real_servers = dicts(vs.get("real_servers"))
    stats = part(vs, "stats")
    persistence = vs.get("persistence_timeout_s")
    scheduler = vs.get("scheduler")
    protocol = vs.get("protocol")
    rate = stats.get("connections_per_s")
    return keep(
        integer(col(2), _VS_TYPES.get(kind)) if kind in _VS_TYPES else None,
        text(col(3), vs.get("group")) if kind == "group" else None,
        gauge(col(4), vs.get("fwmark")) if kind == "fwmark" else None,
        integer(col(5), address_type(addr)) if addr is not None else None,
        octets(col(6), addr.packed if addr is not None else None),
        gauge(col(7), vs.get("port")) if kind == "address" else None,
        integer(col(8), _PROTOCOLS.get(protocol, 4)) if kind != "fwmark" and isinstance(protocol, str) else None,
        integer(col(9), _SCHEDULERS.get(scheduler, 99)) if isinstance(scheduler, str) else None,
        integer(col(10), _LB_KINDS.get(str(vs.get("lb_kind")))),
        truth(col(11), vs.get("quorum_up")),  # keepalived: the VS is alive while its quorum is up
        truth(col(13), bool(persistence)) if isinstance(persistence, (int, float)) else None,
        gauge(col(14), persistence) if persistence else None,
        gauge(col(20), len(real_servers)),
        gauge(col(21), sum(1 for rs in real_servers if rs.get("healthy") is True)),
        gauge(col(22), vs.get("quorum")),
        truth(col(23), vs.get("quorum_up")),
        gauge(col(32), rate) if isinstance(rate, (int, float)) else None,
    )


def real_server_weight(rs: Mapping[str, Any]) -> Any:
    """realServerWeight as keepalived 2.2.7 answers it: the weight the server has when it is in the pool.

    keepalived shows its effective weight (the configured one plus dynamic offsets, or what was set) whether
    the server is up or not; the document's effective_weight is the data plane's, 0 while the server is
    down, so a server that is down shows its configured weight (keepalived drops the offsets of a dead one).
    """
    if rs.get("healthy") is True:
        return rs.get("effective_weight", rs.get("weight"))
    return rs.get("weight")


def real_server_rows(v: int, r: int, rs: Mapping[str, Any], vs: Mapping[str, Any]) -> list[VarBind]:
    def col(n: int) -> Oid:
        return REAL_SERVER_ENTRY + (n, v, r)

    addr = address(rs.get("address"))
    stats = part(rs, "stats")
    active, inactive = stats.get("active_connections"), stats.get("inactive_connections")
    return keep(
        integer(col(2), 1),  # regular(1): the document has no sorry server row
        integer(col(3), address_type(addr)) if addr is not None else None,
        octets(col(4), addr.packed if addr is not None else None),
        gauge(col(5), rs.get("port")),
        truth(col(6), rs.get("healthy")),
        integer(col(7), real_server_weight(rs)),
        gauge(col(15), active),
        gauge(col(16), inactive),
    )
