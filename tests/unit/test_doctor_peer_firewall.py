"""doctor's pair comparison (--peer-config) and firewall reading, over parsed configs and nft JSON."""

from __future__ import annotations

from typing import Any

from pykeepalived.config import read_config_text
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.doctor.facts import HostFacts
from pykeepalived.doctor.firewall import firewall_findings
from pykeepalived.doctor.peer import peer_findings
from pykeepalived.lab.lvs_lab import ROUTER_SPECS, LabKind, render_router_conf
from tests.unit.test_doctor_rules import RS


def _text(router: int) -> str:
    return render_router_conf(LabKind.NAT, ROUTER_SPECS[router], RS)


def _read(text: str, path: str) -> KeepalivedConfig:
    result = read_config_text(text, path=path)
    assert not result.errors, result.diagnostics
    return result.config


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_the_lab_pair_is_a_good_pair() -> None:
    assert peer_findings(_read(_text(0), "r1.conf"), _read(_text(1), "r2.conf"), "r1.conf", "r2.conf") == []


def test_a_different_vrid_names_both_files_lines() -> None:
    b = _text(1).replace("virtual_router_id 50", "virtual_router_id 52")
    [finding] = peer_findings(_read(_text(0), "r1.conf"), _read(b, "r2.conf"), "r1.conf", "r2.conf")
    line = _line_of(b, "virtual_router_id 52")
    assert finding.severity == "ERROR" and finding.area == "peer"
    assert finding.where == (f"r1.conf:{line}", f"r2.conf:{line}")
    assert "virtual_router_id: 50 at r1.conf" in finding.message and "52 at r2.conf" in finding.message
    assert finding.fix.startswith("use the same virtual_router_id")


def test_a_different_auth_pass_is_found_without_printing_it() -> None:
    b = _text(1).replace("auth_pass passw123", "auth_pass other123", 1)
    [finding] = peer_findings(_read(_text(0), "r1.conf"), _read(b, "r2.conf"), "r1.conf", "r2.conf")
    assert "authentication differs" in finding.message and "RH_EXT" in finding.message
    assert "passw123" not in finding.line() and "other123" not in finding.line()


def test_priorities_masters_vips_adverts_and_virtual_servers() -> None:
    b = (_text(0).replace("router_id router1", "router_id router2")
         .replace("advert_int 1", "advert_int 2", 1)
         .replace("203.0.113.11/32 dev eth0", "203.0.113.12/32 dev eth0")
         .replace("real_server 10.11.12.2 80", "real_server 10.11.12.3 80")
         .replace("lb_algo rr", "lb_algo wlc", 1))
    findings = peer_findings(_read(_text(0), "r1.conf"), _read(b, "r2.conf"), "r1.conf", "r2.conf")
    text = "\n".join(f.message for f in findings)
    assert "RH_EXT: the same priority: 150" in text and "RH_INT: state MASTER on both" in text
    assert "RH_EXT: advert_int: 1.0" in text and "RH_EXT: VIPs" in text
    assert "real_server 10.11.12.2:80" in text and "real_server 10.11.12.3:80" in text
    assert "lb_algo: rr" in text
    assert all(f.where and all(w.startswith(("r1.conf:", "r2.conf:")) for w in f.where) for f in findings)


def test_an_instance_missing_on_the_peer() -> None:
    a = _text(0)
    b = render_router_conf(LabKind.DR, ROUTER_SPECS[1], RS)  # no RH_INT, no sync group, DR services
    findings = peer_findings(_read(a, "r1.conf"), _read(b, "r2.conf"), "r1.conf", "r2.conf")
    text = "\n".join(f.message for f in findings)
    assert "vrrp_instance RH_INT (r1.conf:" in text and "no counterpart in r2.conf" in text
    assert "vrrp_sync_group VG1" in text and "lb_kind: NAT" in text


# ------------------------------------------------------------------ firewall


def _ruleset(*items: dict[str, Any]) -> dict[str, Any]:
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]}


def _chain(table: str, name: str, hook: str, policy: str = "accept", family: str = "inet") -> dict[str, Any]:
    return {"chain": {"family": family, "table": table, "name": name, "handle": 1, "type": "filter", "hook": hook,
                      "prio": 0, "policy": policy}}


def _rule(table: str, chain: str, *expr: dict[str, Any], handle: int = 5, family: str = "inet") -> dict[str, Any]:
    return {"rule": {"family": family, "table": table, "chain": chain, "handle": handle, "expr": list(expr)}}


def _match(left: dict[str, Any], right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


L4PROTO = {"meta": {"key": "l4proto"}}
TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
DROP: dict[str, Any] = {"drop": None}


def _fw(ruleset: dict[str, Any]) -> list[str]:
    config = _read(_text(0), "r1.conf")
    return [f.line() for f in firewall_findings(config, HostFacts(ruleset=ruleset)) if f.counts]


def test_a_rule_dropping_vrrp_or_a_service_port_is_found() -> None:
    vrrp = _fw(_ruleset(_chain("filter", "input", "input"), _rule("filter", "input", _match(L4PROTO, "vrrp"), DROP)))
    assert len(vrrp) == 1 and "drops VRRP adverts" in vrrp[0] and "handle 5" in vrrp[0]
    port = _fw(_ruleset(_chain("filter", "pre", "prerouting"),
                        _rule("filter", "pre", _match(TCP_DPORT, {"set": [22, 80]}), {"counter": None}, DROP)))
    assert len(port) == 1 and "[203.0.113.10]:tcp:80" in port[0]
    assert "nft delete rule inet filter pre handle 5" in port[0]


def test_rules_that_cannot_shadow_ours_are_left_alone() -> None:
    assert _fw(_ruleset(
        _chain("filter", "input", "input"),
        _rule("filter", "input", _match(TCP_DPORT, 22), DROP, handle=1),  # another port
        _rule("filter", "input", _match({"ct": {"key": "state"}}, "invalid"), DROP, handle=2),  # not understood
        _rule("filter", "input", {"xt": {"type": "match", "name": "conntrack"}}, DROP, handle=3),
        _chain("filter", "out", "output"),
        _rule("filter", "out", DROP, handle=4),  # output is not watched
        _chain("pykeepalived_lvs", "pre", "prerouting"),
        _rule("pykeepalived_lvs", "pre", DROP, handle=5),  # ours
    )) == []
    accepted_first = _fw(_ruleset(_chain("filter", "input", "input", "drop"),
                                  _rule("filter", "input", _match(L4PROTO, 112), {"accept": None}, handle=1),
                                  _rule("filter", "input", _match(TCP_DPORT, 80), {"accept": None}, handle=2),
                                  _rule("filter", "input", DROP, handle=3)))
    assert accepted_first == []


def test_a_drop_policy_without_an_accept_for_vrrp() -> None:
    found = _fw(_ruleset(_chain("filter", "input", "input", "drop", family="ip")))
    assert any("policy drop and no rule that accepts VRRP adverts" in line for line in found)
    forward = _fw(_ruleset(_chain("filter", "fwd", "forward", "drop")))
    assert len(forward) == 1 and "NAT traffic" in forward[0]
