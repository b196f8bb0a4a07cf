"""A full state document (docs/state.md's shape) for the SNMP tests: two instances, a sync group, two VS."""

from __future__ import annotations

import copy
from typing import Any


def _instance(name: str, vrid: int, state: str, version: int, vips: list[str], **extra: Any) -> dict[str, Any]:
    inst: dict[str, Any] = {
        "name": name, "interface": "eth0", "vrid": vrid, "family": "inet", "version": version,
        "state": state, "wanted_state": state, "priority": 150, "effective_priority": 140,
        "master_address": "10.0.0.2", "advert_int_ms": 1000, "preempt": True, "sync_group": None,
        "vips": vips, "excluded_vips": [], "since": 1000.0,
        "counters": {"adverts_rx": 5, "adverts_tx": 7, "became_master": 2, "released_master": 1,
                     "priority_zero_rx": 0, "priority_zero_tx": 1, "auth_errors": 0, "invalid_ttl": 0,
                     "invalid_type": 0, "address_list_errors": 0, "packet_length_errors": 0,
                     "advert_interval_errors": 0, "checksum_errors": 3, "vrid_errors": 4},
        "transitions": [{"at": 990.0, "from": "INIT", "to": "BACKUP", "reason": "start"},
                        {"at": 1000.0, "from": "BACKUP", "to": state, "reason": "master down timer expired"}],
        "runtime": {"maintenance": False},
    }
    inst.update(extra)
    return inst


SAMPLE: dict[str, Any] = {
    "schema": 1, "version": 3,
    "daemon": {"pid": 1, "version": "0.1.0", "started_at": 1.0, "router_id": "lvs1"},
    "vrrp": {
        "updated_at": 1.0,
        "instances": [
            _instance("VI_1", 51, "MASTER", 2, ["192.0.2.10/24", "192.0.2.11/32 dev eth1"], sync_group="G1",
                      excluded_vips=["198.51.100.1/24"]),
            _instance("VI_3", 52, "BACKUP", 3, ["192.0.2.20/24"], sync_group="G1", preempt=False),
        ],
        "sync_groups": [{"name": "G1", "state": "MASTER", "instances": ["VI_1", "VI_3"]}],
    },
    "checker": {
        "updated_at": 1.0, "dataplane": "nftables", "applied": True, "dataplane_error": None, "counts_at": 1.0,
        "virtual_servers": [
            {"name": "TCP 192.0.2.10:80", "kind": "address", "address": "192.0.2.10", "port": 80, "protocol": "TCP",
             "fwmark": None, "group": None, "scheduler": "wlc", "lb_kind": "NAT", "persistence_timeout_s": 0,
             "quorum": 1, "quorum_up": True, "weight_sum": 2,
             "stats": {"active_connections": 3, "inactive_connections": 1, "connections_per_s": 2.5},
             "runtime": {"out": False},
             "real_servers": [
                 {"name": "10.11.12.2:80", "address": "10.11.12.2", "port": 80, "healthy": True, "weight": 1,
                  "effective_weight": 1, "stats": {"active_connections": 3, "inactive_connections": 1},
                  "checkers": [], "history": [], "runtime": {"drained": False, "weight": None}},
                 {"name": "10.11.12.3:80", "address": "10.11.12.3", "port": 80, "healthy": False, "weight": 2,
                  "effective_weight": 0, "stats": None, "checkers": [], "history": [],
                  "runtime": {"drained": False, "weight": None}},
             ]},
            {"name": "FWM 7", "kind": "fwmark", "address": None, "port": None, "protocol": "TCP", "fwmark": 7,
             "group": None, "scheduler": "rr", "lb_kind": "DR", "persistence_timeout_s": 300, "quorum": 1,
             "quorum_up": False, "weight_sum": 0, "stats": None, "runtime": {"out": False}, "real_servers": []},
        ],
    },
    "events": [],
}


def sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE)
