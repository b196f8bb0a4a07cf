"""KEEPALIVED-MIB checker columns that say what the configuration asked for: delays, alpha, omega, forwarding.

keepalived's virtualServerTable and realServerTable mix state (status,
realServersUp, weight) with settings (delayLoop, haSuspend, alpha, ...). The
state document carries the first kind (mib_keepalived.py); this module reads
the second from the configuration in force, matched to the document's rows by
kind, address, port, fwmark or group (and a real server by address and port),
with keepalived 2.2.7's inheritance (a real server's delays and alpha come
from its virtual server unless it sets its own). Only the columns whose
meaning is plain are served; docs/snmp.md lists the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.model import KeepalivedConfig, RealServer, VirtualServer
from .agentx import VarBind
from .mib_keepalived import REAL_SERVER_ENTRY, VIRTUAL_SERVER_ENTRY
from .rows import dicts, gauge, integer, keep, part, truth

_LB_KINDS = {"NAT": 1, "DR": 2, "TUN": 3}


def _usec(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _same_vs(doc_vs: Mapping[str, Any], vs: VirtualServer) -> bool:
    kind = doc_vs.get("kind")
    if kind != vs.kind:
        return False
    if kind == "fwmark":
        return doc_vs.get("fwmark") == vs.fwmark
    if kind == "group":
        return doc_vs.get("group") == vs.group and doc_vs.get("port") in (None, vs.port)
    return doc_vs.get("address") == str(vs.address) and doc_vs.get("port") == vs.port


def _same_rs(doc_rs: Mapping[str, Any], rs: RealServer) -> bool:
    return doc_rs.get("address") == str(rs.address) and doc_rs.get("port") in (rs.port, None)


def virtual_server_config_rows(v: int, vs: VirtualServer) -> list[VarBind]:
    def col(n: int) -> tuple[int, ...]:
        return VIRTUAL_SERVER_ENTRY + (n, v)

    return keep(
        gauge(col(16), int(vs.delay_loop_s)),
        truth(col(17), vs.ha_suspend),
        truth(col(18), vs.alpha),
        truth(col(19), vs.omega),
        gauge(col(26), vs.hysteresis),
        integer(col(60), vs.weight),
        gauge(col(64), _usec(vs.delay_loop_s)),
        gauge(col(67), _usec(vs.connect_timeout_s)),
    )


def real_server_config_rows(v: int, r: int, rs: RealServer, vs: VirtualServer) -> list[VarBind]:
    def col(n: int) -> tuple[int, ...]:
        return REAL_SERVER_ENTRY + (n, v, r)

    inhibit = rs.inhibit_on_failure if rs.inhibit_on_failure is not None else vs.inhibit_on_failure
    delay_loop = rs.delay_loop_s if rs.delay_loop_s is not None else vs.delay_loop_s
    timeout = rs.connect_timeout_s if rs.connect_timeout_s is not None else vs.connect_timeout_s
    method = rs.lvs_method or vs.lvs_method or "NAT"
    return keep(
        integer(col(10), 2 if inhibit else 1),  # remove(1), inhibit(2)
        integer(col(40), _LB_KINDS.get(str(method))),
        truth(col(42), rs.alpha if rs.alpha is not None else vs.alpha),
        gauge(col(46), int(delay_loop)),
        gauge(col(50), _usec(delay_loop)),
        gauge(col(51), _usec(timeout)),
    )


def checker_config_rows(config: KeepalivedConfig, doc: Mapping[str, Any]) -> list[VarBind]:
    """The settings columns of the virtual and real servers the state document lists, in its order."""
    rows: list[VarBind] = []
    for v, doc_vs in enumerate(dicts(part(doc, "checker").get("virtual_servers")), start=1):
        vs = next((c for c in config.virtual_servers if _same_vs(doc_vs, c)), None)
        if vs is None:
            continue
        rows += virtual_server_config_rows(v, vs)
        for r, doc_rs in enumerate(dicts(doc_vs.get("real_servers")), start=1):
            rs = next((c for c in vs.real_servers if _same_rs(doc_rs, c)), None)
            if rs is not None:
                rows += real_server_config_rows(v, r, rs, vs)
    return rows
