"""A full state document (docs/state.md) with every part filled in: the input of the /metrics tests."""

from __future__ import annotations

from typing import Any


def full_state() -> dict[str, Any]:
    """Two VRRP instances in a sync group, one virtual server with two real servers, a reload, events."""
    counters = {"adverts_rx": 10, "adverts_tx": 250, "became_master": 1, "released_master": 0,
                "priority_zero_rx": 0, "priority_zero_tx": 0, "auth_errors": 2, "invalid_ttl": 3, "invalid_type": 4,
                "address_list_errors": 5, "packet_length_errors": 6, "advert_interval_errors": 7,
                "checksum_errors": 8, "vrid_errors": 9}
    instance = {"name": "RH_1", "interface": "eth0", "vrid": 51, "family": "inet", "version": 2,
                "state": "MASTER", "wanted_state": "MASTER", "priority": 150, "effective_priority": 140,
                "master_address": "10.0.0.2", "advert_int_ms": 1000, "preempt": True, "sync_group": "RH1",
                "vips": ["192.0.2.10/24", "192.0.2.11/24"], "excluded_vips": ["198.51.100.1/32"], "since": 100.0,
                "counters": counters,
                "transitions": [{"at": 100.0, "from": "BACKUP", "to": "MASTER", "reason": "master down timer expired"}],
                "runtime": {"maintenance": False}}
    backup = {**instance, "name": "RH_2", "interface": "eth1", "vrid": 52, "state": "BACKUP", "vips": [],
              "excluded_vips": [], "runtime": {"maintenance": True}, "counters": dict(counters)}
    real = {"name": "10.11.12.2:80", "address": "10.11.12.2", "port": 80, "healthy": True, "weight": 3,
            "effective_weight": 3, "stats": {"active_connections": 4, "inactive_connections": 1},
            "checkers": [{"kind": "HTTP_GET", "verdict": "up", "attempts": 1, "last_ok": True, "last_reason": "200",
                          "last_at": 120.0}],
            "history": [{"at": 90.0, "healthy": True, "reason": "HTTP_GET: up"}],
            "runtime": {"drained": False, "weight": None}}
    down = {**real, "name": "10.11.12.3:80", "address": "10.11.12.3", "healthy": False, "effective_weight": 0,
            "checkers": [{"kind": "TCP_CHECK", "verdict": "down", "attempts": 3, "last_ok": False,
                          "last_reason": "connection refused", "last_at": 121.0}],
            "runtime": {"drained": True, "weight": 0}}
    return {
        "schema": 1, "version": 17,
        "daemon": {"pid": 1234, "version": "0.1.0", "started_at": 1.0, "router_id": "lvs1",
                   "config_file": "/etc/keepalived/keepalived.conf", "config_digest": "sha256:00",
                   "config_loaded_at": 2.0,
                   "children": {"vrrp": {"pid": 1235, "running": True, "started_at": 1.0, "restarts": 0,
                                         "last_alive_at": 130.0},
                                "checker": {"pid": 1236, "running": True, "started_at": 1.0, "restarts": 1,
                                            "last_alive_at": 130.0}},
                   "last_reload": {"at": 50.0, "ok": True, "digest": "sha256:01", "problems": []},
                   "api": {"listen": ["unix:/run/pykeepalived/api.sock"]}, "snmp": {"enabled": False}},
        "vrrp": {"updated_at": 130.0, "instances": [instance, backup],
                 "sync_groups": [{"name": "RH1", "state": "MASTER", "instances": ["RH_1", "RH_2"]}]},
        "checker": {"updated_at": 130.0, "dataplane": "nftables", "applied": True, "dataplane_error": None,
                    "counts_at": 129.0,
                    "bgp": {"pid": 77, "configured": ["192.0.2.10/32", "192.0.2.20/32"],
                            "announced": ["192.0.2.10/32"], "wanted": ["192.0.2.10/32"], "error": None,
                            "restarts": 1, "changes": 3, "changed_at": 120.0, "run_dir": "/run/x.bgp"},
                    "virtual_servers": [{"name": "TCP 192.0.2.10:80", "kind": "address", "address": "192.0.2.10",
                                         "port": 80, "protocol": "TCP", "fwmark": None, "group": None,
                                         "scheduler": "wlc", "lb_kind": "NAT", "persistence_timeout_s": 0,
                                         "quorum": 1, "quorum_up": True, "weight_sum": 3,
                                         "stats": {"active_connections": 4, "inactive_connections": 1,
                                                   "connections_per_s": 2.5},
                                         "runtime": {"out": False}, "real_servers": [real, down]}]},
        "events": [{"at": 100.0, "kind": "vrrp", "subject": "RH_1", "text": "BACKUP -> MASTER"}],
    }
