"""/metrics: the state document as Prometheus text, parsed back with prometheus-client's own parser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from pykeepalived.api.metrics import METRICS, render_metrics

from .api_state_sample import full_state

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana-dashboard.json"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def scrape(doc: dict[str, Any]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}, from the text format as Prometheus would read it."""
    body, content_type = render_metrics(doc)
    assert content_type.startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def one(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    key = tuple(sorted(labels.items()))
    assert key in samples, f"{labels} not in {list(samples)}"
    return samples[key]


def test_vrrp_metrics_use_the_exporters_names_labels_and_numbers() -> None:
    m = scrape(full_state())
    vip = {"iname": "RH_1", "intf": "eth0", "vrid": "51"}
    assert one(m["keepalived_vrrp_state"], **vip, ip_address="192.0.2.10/24") == 2
    assert one(m["keepalived_vrrp_state"], **vip, ip_address="192.0.2.11/24") == 2
    assert one(m["keepalived_vrrp_state"], iname="RH_2", intf="eth1", vrid="52", ip_address="") == 1
    assert one(m["keepalived_vrrp_excluded_state"], **vip, ip_address="198.51.100.1/32") == 2
    assert one(m["keepalived_advertisements_received_total"], **vip) == 10
    assert one(m["keepalived_advertisements_sent_total"], **vip) == 250
    assert one(m["keepalived_become_master_total"], **vip) == 1
    assert one(m["keepalived_authentication_failure_total"], **vip) == 2
    assert one(m["keepalived_ip_ttl_errors_total"], **vip) == 3
    assert one(m["keepalived_advertisements_interval_errors_total"], **vip) == 7
    assert one(m["pykeepalived_vrrp_vrid_errors_total"], **vip) == 9
    assert one(m["pykeepalived_vrrp_effective_priority"], **vip) == 140
    assert one(m["pykeepalived_vrrp_advert_interval_seconds"], **vip) == 1.0
    assert one(m["pykeepalived_vrrp_maintenance"], iname="RH_2", intf="eth1", vrid="52") == 1
    assert one(m["pykeepalived_vrrp_sync_group_state"], group="RH1") == 2
    assert one(m["keepalived_up"]) == 1


def test_virtual_and_real_server_metrics() -> None:
    m = scrape(full_state())
    vs = "TCP 192.0.2.10:80"
    assert one(m["pykeepalived_virtual_server_active_connections"], virtual_server=vs) == 4
    assert one(m["pykeepalived_virtual_server_connections_per_second"], virtual_server=vs) == 2.5
    assert one(m["pykeepalived_real_server_healthy"], virtual_server=vs, real_server="10.11.12.2:80") == 1
    assert one(m["pykeepalived_real_server_healthy"], virtual_server=vs, real_server="10.11.12.3:80") == 0
    assert one(m["pykeepalived_real_server_effective_weight"], virtual_server=vs, real_server="10.11.12.3:80") == 0
    assert one(m["pykeepalived_real_server_drained"], virtual_server=vs, real_server="10.11.12.3:80") == 1
    assert one(m["pykeepalived_real_server_active_connections"], virtual_server=vs, real_server="10.11.12.2:80") == 4
    assert one(m["pykeepalived_real_server_checker_up"], virtual_server=vs, real_server="10.11.12.3:80",
               checker="TCP_CHECK", index="0") == 0
    assert one(m["pykeepalived_dataplane_info"], dataplane="nftables") == 1
    assert one(m["pykeepalived_child_restarts_total"], child="checker") == 1


def test_bgp_metrics() -> None:
    m = scrape(full_state())
    assert one(m["pykeepalived_bgp_speaker_up"]) == 1
    assert one(m["pykeepalived_bgp_announced"], prefix="192.0.2.10/32") == 1
    assert one(m["pykeepalived_bgp_announced"], prefix="192.0.2.20/32") == 0
    assert one(m["pykeepalived_bgp_speaker_restarts_total"]) == 1
    assert one(m["pykeepalived_bgp_changes_total"]) == 3


def test_every_documented_metric_is_produced_for_a_full_state() -> None:
    produced = set(scrape(full_state()))
    assert set(METRICS) <= produced, set(METRICS) - produced


def test_missing_parts_are_tolerated() -> None:
    assert scrape({"schema": 1, "version": 0, "events": []})["keepalived_up"] == {(): 0.0}
    doc = full_state()
    del doc["checker"]
    doc["vrrp"]["instances"][0] = {"name": "X"}  # a child mid-report: no state, no counters
    m = scrape(doc)
    assert "pykeepalived_real_server_healthy" not in m
    assert one(m["pykeepalived_vrrp_maintenance"], iname="X", intf="", vrid="") == 0
    doc["daemon"]["children"]["vrrp"]["running"] = False
    assert scrape(doc)["keepalived_up"] == {(): 0.0}


def test_label_values_are_escaped() -> None:
    doc = full_state()
    doc["checker"]["virtual_servers"][0]["name"] = 'odd "name"\\ with\nnewline'
    m = scrape(doc)
    assert ('virtual_server', 'odd "name"\\ with\nnewline') in {k[0] for k in m["pykeepalived_virtual_server_out"]}


def test_every_metric_is_documented() -> None:
    text = DOCS.read_text()
    missing = [name for name in METRICS if f"`{name}`" not in text]
    assert not missing, missing


def test_the_dashboard_uses_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [v.get("query", "") if isinstance(v.get("query"), str) else v.get("query", {}).get("query", "")
              for v in dashboard.get("templating", {}).get("list", [])]
    assert exprs
    names = {n for e in exprs for n in re.findall(r"\b((?:py)?keepalived_[a-z_]+)\b", e)}
    produced = set(scrape(full_state()))
    assert names and names <= produced, names - produced
