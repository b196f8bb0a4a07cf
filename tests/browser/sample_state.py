"""A full state document as docs/state.md describes it: two VRRP instances in a sync group, two virtual servers.

Some strings are hostile on purpose (markup in a checker's reason and an event's
text): the page must show them as text and run none of them.
"""

from __future__ import annotations

import copy
import time
from typing import Any

HOSTILE_REASON = '<img src=x onerror="window.__pwned=1">connection refused'
HOSTILE_EVENT = "<script>window.__pwned=2</script>reload from <b>ops</b>"
VS_WEB = "TCP 192.0.2.10:80"
VS_DNS = "UDP 192.0.2.53:53"
RS_1 = "10.11.12.2:80"
RS_2 = "10.11.12.3:80"


def _counters() -> dict[str, int]:
    names = ["adverts_rx", "adverts_tx", "became_master", "released_master", "priority_zero_rx", "priority_zero_tx",
             "auth_errors", "invalid_ttl", "invalid_type", "address_list_errors", "packet_length_errors",
             "advert_interval_errors", "checksum_errors", "vrid_errors"]
    return {n: 0 for n in names} | {"adverts_tx": 1234, "became_master": 1}


def _instance(name: str, vrid: int, vip: str, now: float) -> dict[str, Any]:
    return {
        "name": name, "interface": "eth0", "vrid": vrid, "family": "inet", "version": 2,
        "state": "MASTER", "wanted_state": "MASTER", "priority": 150, "effective_priority": 150,
        "master_address": "10.0.0.2", "advert_int_ms": 1000, "preempt": True, "sync_group": "RH1",
        "vips": [vip], "excluded_vips": [], "since": now - 600,
        "counters": _counters(),
        "transitions": [
            {"at": now - 605, "from": "INIT", "to": "BACKUP", "reason": "startup"},
            {"at": now - 600, "from": "BACKUP", "to": "MASTER", "reason": "master down timer expired"},
        ],
        "runtime": {"maintenance": False},
    }


def _real_server(address: str, healthy: bool, now: float, reason: str) -> dict[str, Any]:
    return {
        "name": f"{address}:80", "address": address, "port": 80,
        "healthy": healthy, "weight": 1, "effective_weight": 1 if healthy else 0,
        "stats": {"active_connections": 3 if healthy else 0, "inactive_connections": 7},
        "checkers": [{"kind": "HTTP_GET", "verdict": "up" if healthy else "down", "attempts": 1,
                      "last_ok": healthy, "last_reason": reason, "last_at": now - 2}],
        "history": [{"at": now - 300, "healthy": healthy, "reason": reason}],
        "runtime": {"drained": False, "weight": None},
    }


def sample_state(now: float | None = None) -> dict[str, dict[str, Any]]:
    """The parts a StateStore gets: {"daemon": ..., "vrrp": ..., "checker": ...} (events apart: sample_events)."""
    now = time.time() if now is None else now
    daemon = {
        "pid": 1234, "version": "0.1.0", "started_at": now - 700, "router_id": "lvs1",
        "config_file": "/etc/keepalived/keepalived.conf", "config_digest": "sha256:00", "config_loaded_at": now - 700,
        "children": {"vrrp": {"pid": 1235, "running": True, "started_at": now - 700, "restarts": 0,
                              "last_alive_at": now},
                     "checker": {"pid": 1236, "running": True, "started_at": now - 700, "restarts": 0,
                                 "last_alive_at": now}},
        "last_reload": None, "api": {"listen": ["127.0.0.1:0"]}, "snmp": {"enabled": False},
    }
    vrrp = {
        "updated_at": now,
        "instances": [_instance("RH_1", 51, "192.0.2.10/24", now), _instance("RH_2", 52, "198.51.100.10/24", now)],
        "sync_groups": [{"name": "RH1", "state": "MASTER", "instances": ["RH_1", "RH_2"]}],
    }
    checker = {
        "updated_at": now, "dataplane": "nftables", "applied": True, "dataplane_error": None, "counts_at": now,
        "virtual_servers": [
            {"name": VS_WEB, "kind": "address", "address": "192.0.2.10", "port": 80, "protocol": "TCP",
             "fwmark": None, "group": None, "scheduler": "wlc", "lb_kind": "NAT", "persistence_timeout_s": 0,
             "quorum": 1, "quorum_up": True, "weight_sum": 1,
             "stats": {"active_connections": 3, "inactive_connections": 14, "connections_per_s": 2.5},
             "runtime": {"out": False},
             "real_servers": [_real_server("10.11.12.2", True, now, "HTTP 200"),
                              _real_server("10.11.12.3", False, now, HOSTILE_REASON)]},
            {"name": VS_DNS, "kind": "address", "address": "192.0.2.53", "port": 53, "protocol": "UDP",
             "fwmark": None, "group": None, "scheduler": "rr", "lb_kind": "NAT", "persistence_timeout_s": 0,
             "quorum": 1, "quorum_up": True, "weight_sum": 1, "stats": None, "runtime": {"out": False},
             "real_servers": [_real_server("10.11.12.4", True, now, "DNS answer")]},
        ],
    }
    return {"daemon": daemon, "vrrp": vrrp, "checker": checker}


def sample_events(now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    return [
        {"at": now - 600, "kind": "vrrp", "subject": "RH_1", "text": "BACKUP -> MASTER (master down timer expired)"},
        {"at": now - 300, "kind": "real_server", "subject": f"{VS_WEB} {RS_2}", "text": "down: connection refused"},
        {"at": now - 100, "kind": "reload", "subject": "config", "text": HOSTILE_EVENT},
    ]


def edited(part: dict[str, Any]) -> dict[str, Any]:
    """A deep copy to change: StateStore.set_part ignores a part equal to the one it holds."""
    return copy.deepcopy(part)
