"""doctor's host rules over hand-made facts: each mistake of the guide is found, a good router is clean."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_interface

from pykeepalived.config import read_config_text
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.doctor.facts import (
    DataPlaneFacts, Finding, HostFacts, Interface, NetworkManagerFact, ProbeResult, ProcessFact,
)
from pykeepalived.doctor.host_rules import (
    config_findings, host_findings, probe_findings, probe_targets, real_server_findings,
)
from pykeepalived.doctor.report import exit_status, json_report, text_report
from pykeepalived.lab.lvs_lab import ROUTER_SPECS, LabKind, render_router_conf

RS = [IPv4Address("10.11.12.1"), IPv4Address("10.11.12.2")]
CONF_PATH = "/etc/keepalived/keepalived.conf"


def _config(kind: LabKind = LabKind.NAT) -> KeepalivedConfig:
    result = read_config_text(render_router_conf(kind, ROUTER_SPECS[0], RS), path="r1.conf")
    assert not result.errors
    return result.config


def _master(**sysctl_overrides: str) -> HostFacts:
    """router1 of the NAT lab, holding every VIP, set up as the guide says."""
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "0"}
    for dev in ("all", "default", "lo", "eth0", "eth1"):
        sysctls[f"net.ipv4.conf.{dev}.rp_filter"] = "0"
    sysctls.update({k.replace("__", "."): v for k, v in sysctl_overrides.items()})
    return HostFacts(
        sysctls=sysctls,
        interfaces={
            "lo": Interface("lo", "loopback", True, False, (ip_interface("127.0.0.1/8"),)),
            "eth0": Interface("eth0", "veth", addresses=(ip_interface("203.0.113.2/24"),
                                                         ip_interface("203.0.113.10/32"),
                                                         ip_interface("203.0.113.11/32"))),
            "eth1": Interface("eth1", "veth", addresses=(ip_interface("10.11.12.8/24"),
                                                         ip_interface("10.11.12.10/32"))),
        },
        dataplane=DataPlaneFacts("auto", ipvs=False, nftables=True),
    )


def _counted(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.counts]


def _areas(findings: list[Finding]) -> list[str]:
    return [f.area for f in _counted(findings)]


def test_a_router_set_up_as_the_guide_says_is_clean() -> None:
    findings = host_findings(_config(), _master(), CONF_PATH)
    assert _counted(findings) == []
    assert exit_status(findings) == 0
    assert text_report(findings, "router1").splitlines()[-1] == "doctor: router1: clean"


def test_ip_forward_off_with_nat_services_is_an_error_with_the_fix() -> None:
    findings = host_findings(_config(), _master(net__ipv4__ip_forward="0"), CONF_PATH)
    [finding] = _counted(findings)
    assert finding.severity == "ERROR" and finding.area == "forwarding"
    assert "r1.conf:" in finding.message and "sysctl -w net.ipv4.ip_forward=1" in finding.fix
    assert finding.line().startswith("ERROR forwarding: net.ipv4.ip_forward is 0")
    assert " -- fix: " in finding.line()
    assert exit_status(findings) == 1


def test_ip_forward_off_without_nat_is_fine() -> None:
    assert _counted(host_findings(_config(LabKind.DR), _master(net__ipv4__ip_forward="0"), CONF_PATH)) == []


def test_strict_rp_filter_on_a_vip_interface_or_all() -> None:
    [one] = _counted(host_findings(_config(), _master(net__ipv4__conf__eth0__rp_filter="1"), CONF_PATH))
    assert one.area == "rp_filter" and "eth0" in one.message
    assert one.fix.startswith("sysctl -w net.ipv4.conf.eth0.rp_filter=2")
    both = _counted(host_findings(_config(), _master(net__ipv4__conf__all__rp_filter="1"), CONF_PATH))
    assert sorted(f.message.split()[4] for f in both) == ["eth0", "eth1"]  # all=1 makes both strict
    assert all("net.ipv4.conf.all.rp_filter=2" in f.fix for f in both)
    loose = host_findings(_config(), _master(net__ipv4__conf__eth0__rp_filter="2"), CONF_PATH)
    assert _counted(loose) == []


def test_another_keepalived_in_this_namespace_is_a_warning_our_own_daemon_a_note() -> None:
    other = ProcessFact(4321, ("/usr/sbin/keepalived", "-D"), "keepalived", CONF_PATH)
    ours = ProcessFact(99, ("python", "-m", "pykeepalived", "-f", CONF_PATH), "pykeepalived", CONF_PATH)
    facts = HostFacts(**{**_master().__dict__, "processes": (other, ours)})
    findings = host_findings(_config(), facts, CONF_PATH)
    [warning] = _counted(findings)
    assert warning.area == "processes" and "pid 4321" in warning.message
    assert any(f.severity == "INFO" and "pid 99" in f.message for f in findings)


def test_network_manager_managing_a_vip_interface() -> None:
    base = _master().__dict__
    managed = HostFacts(**{**base, "network_manager": NetworkManagerFact(7, frozenset({"eth0"}))})
    [finding] = _counted(host_findings(_config(), managed, CONF_PATH))
    assert finding.area == "NetworkManager" and "eth0" in finding.message
    assert "nmcli device set eth0 managed no" in finding.fix
    unmanaged = HostFacts(**{**base, "network_manager": NetworkManagerFact(7, frozenset({"eth2"}))})
    assert _counted(host_findings(_config(), unmanaged, CONF_PATH)) == []
    unknown = HostFacts(**{**base, "network_manager": NetworkManagerFact(7, None)})
    assert len(_counted(host_findings(_config(), unknown, CONF_PATH))) == 2  # eth0 and eth1 may be managed


def test_data_plane_availability() -> None:
    base = _master().__dict__
    no_ipvs = HostFacts(**{**base, "dataplane": DataPlaneFacts("ipvs", ipvs=False)})
    [finding] = _counted(host_findings(_config(), no_ipvs, CONF_PATH))
    assert finding.severity == "ERROR" and "modprobe ip_vs" in finding.fix
    nothing = HostFacts(**{**base, "dataplane": DataPlaneFacts("auto", ipvs=False, nftables=False,
                                                               nftables_problem="binding missing")})
    [finding] = _counted(host_findings(_config(), nothing, CONF_PATH))
    assert "binding missing" in finding.message and "python3-nftables" in finding.fix
    limited = HostFacts(**{**base, "dataplane": DataPlaneFacts("auto", unbuildable=("r1.conf:44: sh-port",))})
    [finding] = _counted(host_findings(_config(), limited, CONF_PATH))
    assert finding.severity == "WARNING" and finding.where == ("r1.conf:44",)
    assert _counted(host_findings(_config(), HostFacts(**{**base, "dataplane": DataPlaneFacts("auto", ipvs=True,
                                                                                               nftables=False)}),
                                  CONF_PATH)) == []


def test_probe_plan_on_the_master_one_per_real_server_and_port() -> None:
    targets, notes = probe_targets(_config(), _master())
    assert _counted(notes) == []
    got = sorted((str(t.real_server), t.port, t.device, str(t.source), str(t.control), str(t.gateway_vip))
                 for t in targets)
    # the plain service (port 80) and the fwmark one (its checkers' connect_port 80, then 443: the first)
    assert got == [(str(rs), 80, "eth1", "203.0.113.10", "10.11.12.8", "10.11.12.10") for rs in RS]


def test_probe_skipped_with_a_note_where_the_private_vip_is_not_held() -> None:
    facts = _master()
    backup = HostFacts(**{**facts.__dict__, "interfaces": {
        "eth0": Interface("eth0", "veth", addresses=(ip_interface("203.0.113.3/24"),)),
        "eth1": Interface("eth1", "veth", addresses=(ip_interface("10.11.12.9/24"),))}})
    targets, notes = probe_targets(_config(), backup)
    assert targets == []
    assert notes and all(n.severity == "INFO" and "run doctor on the master" in n.message for n in notes)


def test_no_private_vip_for_the_real_servers_is_an_error() -> None:
    text = render_router_conf(LabKind.NAT, ROUTER_SPECS[0], RS).replace("10.11.12.10/32 dev eth1",
                                                                         "203.0.113.12/32 dev eth0")
    config = read_config_text(text, path="r1.conf").config
    _, notes = probe_targets(config, _master())
    [finding] = _counted(notes)
    assert finding.severity == "ERROR" and "no floating VIP on eth1" in finding.message


def test_probe_outcomes() -> None:
    [target, *_] = probe_targets(_config(), _master())[0]
    assert probe_findings([ProbeResult(target, "answered")]) == []
    [wrong_gw] = probe_findings([ProbeResult(target, "timeout", "answered")])
    assert wrong_gw.severity == "ERROR" and "ip route replace default via 10.11.12.10" in wrong_gw.fix
    assert "did not come back on eth1" in wrong_gw.message
    [down] = probe_findings([ProbeResult(target, "timeout", "timeout")])
    assert down.severity == "WARNING"
    [unreachable] = probe_findings([ProbeResult(target, "unreachable", None, "EHOSTUNREACH")])
    assert unreachable.severity == "ERROR" and "unreachable" in unreachable.message


def test_dr_real_server_arp_settings() -> None:
    def rs(**sysctls: str) -> HostFacts:
        return HostFacts(sysctls={k.replace("__", "."): v for k, v in sysctls.items()}, interfaces={
            "lo": Interface("lo", "loopback", addresses=(ip_interface("127.0.0.1/8"), ip_interface("203.0.113.10/32"))),
            "eth0": Interface("eth0", "veth", addresses=(ip_interface("10.11.12.1/24"),))})

    good = rs(net__ipv4__conf__all__arp_ignore="1", net__ipv4__conf__all__arp_announce="2",
              net__ipv4__conf__eth0__arp_ignore="0", net__ipv4__conf__eth0__arp_announce="0")
    assert real_server_findings(good) == []
    bad = real_server_findings(rs(net__ipv4__conf__all__arp_ignore="0", net__ipv4__conf__eth0__arp_ignore="0"))
    assert len(bad) == 2 and {f.fix.split()[2].split("=")[0] for f in bad} == {
        "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_announce"}
    assert "203.0.113.10 on lo" in bad[0].message
    [no_vip] = real_server_findings(HostFacts(interfaces={"lo": Interface("lo", "loopback", addresses=(
        ip_interface("127.0.0.1/8"),))}))
    assert "no VIP" in no_vip.message


def test_config_diagnostics_come_first_as_findings() -> None:
    result = read_config_text("vrrp_instance X {\n interface eth0\n virtual_router_id 300\n}\n", path="bad.conf")
    findings = config_findings(result.diagnostics, "bad.conf")
    assert findings and findings[0].severity == "ERROR" and findings[0].where[0].startswith("bad.conf:")


def test_json_report_lists_each_finding() -> None:
    import json

    findings = host_findings(_config(), _master(net__ipv4__ip_forward="0"), CONF_PATH)
    data = json.loads(json_report(findings, "router1"))
    assert data["clean"] is False and data["errors"] == 1
    assert data["findings"][0]["area"] == "forwarding" and data["findings"][0]["line"].startswith("ERROR")
