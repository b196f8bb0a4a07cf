"""/metrics: the state document (docs/state.md) as Prometheus metrics, built with prometheus-client.

Where the popular external exporter (mehdy/keepalived-exporter) has a metric
for the same thing, ours has its name, labels and values (`keepalived_vrrp_state`
with keepalived's numbers 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP;
`keepalived_advertisements_received_total`, ... with `iname`, `intf`, `vrid`),
so that dashboards built on it keep working. The rest is ours and prefixed
`pykeepalived_`. Every metric is listed in docs/api.md; `METRICS` below is the
same list, and a test checks that the collector makes each one.

The collector reads one snapshot per scrape and tolerates missing parts: a
router without VRRP has no `vrrp` part, a child that has not reported yet has
none either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..vrrp.dump_view import STATE_WORDS

VRRP_LABELS = ["iname", "intf", "vrid"]
VIP_LABELS = ["iname", "intf", "vrid", "ip_address"]
VS_LABELS = ["virtual_server"]
RS_LABELS = ["virtual_server", "real_server"]
CHECKER_LABELS = ["virtual_server", "real_server", "checker", "index"]

# keepalived's own numbers (the dumps' table): INIT 0, BACKUP 1, MASTER 2, FAULT 3, STOP 98
STATE_NUMBERS = {word: number for number, word in STATE_WORDS.items()}

# state counters key -> (metric name without _total, help); the keepalived_ ones are the exporter's names
VRRP_COUNTERS: list[tuple[str, str, str]] = [
    ("adverts_rx", "keepalived_advertisements_received", "Advertisements received"),
    ("adverts_tx", "keepalived_advertisements_sent", "Advertisements sent"),
    ("became_master", "keepalived_become_master", "Times the instance became master"),
    ("released_master", "keepalived_release_master", "Times the instance released master"),
    ("packet_length_errors", "keepalived_packet_length_errors", "Adverts with a bad length"),
    ("advert_interval_errors", "keepalived_advertisements_interval_errors", "Adverts with another interval"),
    ("invalid_ttl", "keepalived_ip_ttl_errors", "Adverts with a TTL other than 255"),
    ("invalid_type", "keepalived_invalid_type_received", "Packets of an unknown VRRP type"),
    ("address_list_errors", "keepalived_address_list_errors", "Adverts whose address list differs"),
    ("auth_errors", "keepalived_authentication_failure", "Adverts failing authentication"),
    ("priority_zero_rx", "keepalived_priority_zero_received", "Adverts of priority 0 received"),
    ("priority_zero_tx", "keepalived_priority_zero_sent", "Adverts of priority 0 sent"),
    ("checksum_errors", "pykeepalived_vrrp_checksum_errors", "Adverts with a bad checksum"),
    ("vrid_errors", "pykeepalived_vrrp_vrid_errors", "Adverts for a VRID no instance has"),
]

# every metric family the collector can make (names as the text format shows them, counters with _total)
METRICS: dict[str, str] = {
    "keepalived_up": "1 when the daemon and every child it runs are up",
    "keepalived_vrrp_state": "VRRP state per VIP (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP)",
    "keepalived_vrrp_excluded_state": "VRRP state per excluded VIP",
    **{f"{name}_total": text for _key, name, text in VRRP_COUNTERS},
    "pykeepalived_info": "1, labelled with the version and router_id",
    "pykeepalived_start_time_seconds": "When the daemon started (unix time)",
    "pykeepalived_config_loaded_time_seconds": "When the configuration in force was loaded (unix time)",
    "pykeepalived_child_up": "1 when the child process runs",
    "pykeepalived_child_restarts_total": "Times the child was restarted",
    "pykeepalived_last_reload_success": "1 when the last reload was applied, 0 when refused",
    "pykeepalived_last_reload_time_seconds": "When the last reload happened (unix time)",
    "pykeepalived_events": "Events in the timeline (at most 200 are kept)",
    "pykeepalived_vrrp_priority": "Configured priority",
    "pykeepalived_vrrp_effective_priority": "Priority after tracking",
    "pykeepalived_vrrp_is_master": "1 when the instance is MASTER",
    "pykeepalived_vrrp_state_since_seconds": "When the instance entered its state (unix time)",
    "pykeepalived_vrrp_advert_interval_seconds": "Advertisement interval",
    "pykeepalived_vrrp_maintenance": "1 when held in BACKUP by the runtime API",
    "pykeepalived_vrrp_sync_group_state": "Sync group state (keepalived's numbers)",
    "pykeepalived_dataplane_info": "1, labelled with the data plane in use",
    "pykeepalived_dataplane_applied": "1 when the data plane holds the configured services",
    "pykeepalived_virtual_server_quorum_up": "1 when the virtual server has its quorum",
    "pykeepalived_virtual_server_weight_sum": "Sum of the live real servers' weights",
    "pykeepalived_virtual_server_out": "1 when taken out by the runtime API",
    "pykeepalived_virtual_server_active_connections": "Active connections (data plane)",
    "pykeepalived_virtual_server_inactive_connections": "Inactive connections (data plane)",
    "pykeepalived_virtual_server_connections_per_second": "New connections per second (data plane)",
    "pykeepalived_real_server_healthy": "1 when the real server passes its checks",
    "pykeepalived_real_server_weight": "Configured weight",
    "pykeepalived_real_server_effective_weight": "Weight in the data plane (0 when down, drained or out)",
    "pykeepalived_real_server_drained": "1 when drained by the runtime API",
    "pykeepalived_real_server_runtime_weight": "Weight set by the runtime API (no sample when none is set)",
    "pykeepalived_real_server_active_connections": "Active connections (data plane)",
    "pykeepalived_real_server_inactive_connections": "Inactive connections (data plane)",
    "pykeepalived_real_server_checker_up": "1 when the checker's verdict is up",
    "pykeepalived_real_server_checker_attempts": "Consecutive attempts in the checker's current verdict",
    "pykeepalived_bgp_speaker_up": "1 when bgpd runs and takes our commands (pykeepalived_bgp)",
    "pykeepalived_bgp_announced": "1 when the configured prefix is announced, 0 when withdrawn",
    "pykeepalived_bgp_speaker_restarts_total": "Times bgpd was started again",
    "pykeepalived_bgp_changes_total": "Announcements and withdrawals sent to bgpd",
}


def _num(value: Any) -> float | None:
    """A number from the document; None for a missing or non-numeric value (bool counts as 0/1)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _list(part: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    value = part.get(key) if isinstance(part, Mapping) else None
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _dict(part: Any, key: str) -> Mapping[str, Any]:
    value = part.get(key) if isinstance(part, Mapping) else None
    return value if isinstance(value, Mapping) else {}


class _Families:
    """Metric families made on first use, so that a scrape lists only the families that have samples."""

    def __init__(self) -> None:
        self.made: dict[str, Metric] = {}

    def gauge(self, name: str, labels: list[str]) -> GaugeMetricFamily:
        family = self.made.get(name)
        if family is None:
            family = self.made[name] = GaugeMetricFamily(name, METRICS[name], labels=labels)
        assert isinstance(family, GaugeMetricFamily)
        return family

    def counter(self, name: str, labels: list[str]) -> CounterMetricFamily:
        family = self.made.get(name)
        if family is None:
            family = self.made[name] = CounterMetricFamily(name, METRICS[f"{name}_total"], labels=labels)
        assert isinstance(family, CounterMetricFamily)
        return family

    def set(self, name: str, labels: list[str], values: list[str], value: Any) -> None:
        number = _num(value)
        if number is not None:
            self.gauge(name, labels).add_metric(values, number)

    def count(self, name: str, labels: list[str], values: list[str], value: Any) -> None:
        number = _num(value)
        if number is not None:
            self.counter(name, labels).add_metric(values, number)


def collect_state(doc: Mapping[str, Any]) -> list[Metric]:
    """The metric families for one state document."""
    out = _Families()
    _daemon(out, doc)
    _vrrp(out, _dict(doc, "vrrp"))
    _checker(out, _dict(doc, "checker"))
    events = doc.get("events")
    if isinstance(events, list):
        out.set("pykeepalived_events", [], [], len(events))
    return list(out.made.values())


def _daemon(out: _Families, doc: Mapping[str, Any]) -> None:
    daemon = _dict(doc, "daemon")
    children = _dict(daemon, "children")
    up = bool(daemon) and all(_dict(children, name).get("running") is not False for name in children)
    out.set("keepalived_up", [], [], up)
    if not daemon:
        return
    out.set("pykeepalived_info", ["version", "router_id"],
            [str(daemon.get("version") or ""), str(daemon.get("router_id") or "")], 1)
    out.set("pykeepalived_start_time_seconds", [], [], daemon.get("started_at"))
    out.set("pykeepalived_config_loaded_time_seconds", [], [], daemon.get("config_loaded_at"))
    for name in sorted(children):
        child = _dict(children, name)
        out.set("pykeepalived_child_up", ["child"], [name], bool(child.get("running")))
        out.count("pykeepalived_child_restarts", ["child"], [name], child.get("restarts"))
    reload = _dict(daemon, "last_reload")
    if reload:
        out.set("pykeepalived_last_reload_success", [], [], bool(reload.get("ok")))
        out.set("pykeepalived_last_reload_time_seconds", [], [], reload.get("at"))


def _vrrp(out: _Families, vrrp: Mapping[str, Any]) -> None:
    for inst in _list(vrrp, "instances"):
        name, intf, vrid = str(inst.get("name", "")), str(inst.get("interface") or ""), str(inst.get("vrid", ""))
        base = [name, intf, vrid]
        state = STATE_NUMBERS.get(str(inst.get("state")))
        vips = [str(v) for v in inst.get("vips") or []]
        if state is not None:
            for vip in vips or [""]:  # one series even without VIPs, as the exporter does
                out.set("keepalived_vrrp_state", VIP_LABELS, [*base, vip], state)
            for vip in [str(v) for v in inst.get("excluded_vips") or []]:
                out.set("keepalived_vrrp_excluded_state", VIP_LABELS, [*base, vip], state)
            out.set("pykeepalived_vrrp_is_master", VRRP_LABELS, base, state == STATE_NUMBERS["MASTER"])
        counters = _dict(inst, "counters")
        for key, metric, _text in VRRP_COUNTERS:
            out.count(metric, VRRP_LABELS, base, counters.get(key))
        out.set("pykeepalived_vrrp_priority", VRRP_LABELS, base, inst.get("priority"))
        out.set("pykeepalived_vrrp_effective_priority", VRRP_LABELS, base, inst.get("effective_priority"))
        out.set("pykeepalived_vrrp_state_since_seconds", VRRP_LABELS, base, inst.get("since"))
        advert_ms = _num(inst.get("advert_int_ms"))
        if advert_ms is not None:
            out.set("pykeepalived_vrrp_advert_interval_seconds", VRRP_LABELS, base, advert_ms / 1000)
        runtime = _dict(inst, "runtime")
        out.set("pykeepalived_vrrp_maintenance", VRRP_LABELS, base, bool(runtime.get("maintenance")))
    for group in _list(vrrp, "sync_groups"):
        state = STATE_NUMBERS.get(str(group.get("state")))
        if state is not None:
            out.set("pykeepalived_vrrp_sync_group_state", ["group"], [str(group.get("name", ""))], state)


def _checker(out: _Families, checker: Mapping[str, Any]) -> None:
    if not checker:
        return
    if checker.get("dataplane") is not None:
        out.set("pykeepalived_dataplane_info", ["dataplane"], [str(checker["dataplane"])], 1)
    if "applied" in checker:
        out.set("pykeepalived_dataplane_applied", [], [], bool(checker.get("applied")))
    _bgp(out, _dict(checker, "bgp"))
    for vs in _list(checker, "virtual_servers"):
        vs_name = str(vs.get("name", ""))
        v = [vs_name]
        if "quorum_up" in vs:
            out.set("pykeepalived_virtual_server_quorum_up", VS_LABELS, v, bool(vs.get("quorum_up")))
        out.set("pykeepalived_virtual_server_weight_sum", VS_LABELS, v, vs.get("weight_sum"))
        out.set("pykeepalived_virtual_server_out", VS_LABELS, v, bool(_dict(vs, "runtime").get("out")))
        stats = _dict(vs, "stats")
        out.set("pykeepalived_virtual_server_active_connections", VS_LABELS, v, stats.get("active_connections"))
        out.set("pykeepalived_virtual_server_inactive_connections", VS_LABELS, v, stats.get("inactive_connections"))
        out.set("pykeepalived_virtual_server_connections_per_second", VS_LABELS, v, stats.get("connections_per_s"))
        for rs in _list(vs, "real_servers"):
            r = [vs_name, str(rs.get("name", ""))]
            if "healthy" in rs:
                out.set("pykeepalived_real_server_healthy", RS_LABELS, r, bool(rs.get("healthy")))
            out.set("pykeepalived_real_server_weight", RS_LABELS, r, rs.get("weight"))
            out.set("pykeepalived_real_server_effective_weight", RS_LABELS, r, rs.get("effective_weight"))
            out.set("pykeepalived_real_server_drained", RS_LABELS, r, bool(_dict(rs, "runtime").get("drained")))
            out.set("pykeepalived_real_server_runtime_weight", RS_LABELS, r, _dict(rs, "runtime").get("weight"))
            rs_stats = _dict(rs, "stats")
            out.set("pykeepalived_real_server_active_connections", RS_LABELS, r, rs_stats.get("active_connections"))
            out.set("pykeepalived_real_server_inactive_connections", RS_LABELS, r,
                    rs_stats.get("inactive_connections"))
            for index, chk in enumerate(_list(rs, "checkers")):
                c = [*r, str(chk.get("kind", "")), str(index)]
                if chk.get("verdict") is not None:
                    out.set("pykeepalived_real_server_checker_up", CHECKER_LABELS, c, chk.get("verdict") == "up")
                out.set("pykeepalived_real_server_checker_attempts", CHECKER_LABELS, c, chk.get("attempts"))


def _bgp(out: _Families, bgp: Mapping[str, Any]) -> None:
    """pykeepalived_bgp (docs/ecmp.md): absent without the block."""
    if not bgp:
        return
    out.set("pykeepalived_bgp_speaker_up", [], [], bgp.get("pid") is not None and not bgp.get("error"))
    announced = set(bgp.get("announced") or [])
    for prefix in bgp.get("configured") or []:
        out.set("pykeepalived_bgp_announced", ["prefix"], [str(prefix)], prefix in announced)
    out.count("pykeepalived_bgp_speaker_restarts", [], [], bgp.get("restarts"))
    out.count("pykeepalived_bgp_changes", [], [], bgp.get("changes"))


class StateCollector(Collector):
    """A prometheus-client collector over a state document (one per scrape: the snapshot is taken once)."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc

    def collect(self) -> Iterator[Metric]:
        yield from collect_state(self.doc)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(doc: Mapping[str, Any]) -> tuple[bytes, str]:
    """The Prometheus text format for one state document, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(doc))
    return generate_latest(registry), CONTENT_TYPE
