"""`pykeepalived doctor` in the guide's NAT lab: each planted mistake is found, the clean lab is clean.

doctor runs INSIDE router1's namespace (`ip netns exec`), so it reads that
namespace's sysctls, addresses and ruleset, and probes the real servers from
there; nothing is sent from the root namespace. Each mistake is planted,
doctor run, and the mistake undone before the next:

- net.ipv4.ip_forward=0 on router1 (the lab's services are NAT);
- rs1's default gateway set to router2's own address instead of the floating
  private VIP (its replies then come back to router1 on the public side);
- strict rp_filter on router1's eth0, which carries the public VIPs;
- router2's config with another virtual_router_id, then another auth_pass;
- a DR-style real server (rs2 with a VIP on lo) without arp_ignore/arp_announce.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import unique_prefix
from pykeepalived.lab.lvs_lab import PRIVATE_VIP, VIP, LvsLab, Router

from .vrrp_helpers import needs_root

pytestmark = [pytest.mark.netns, pytest.mark.slow, needs_root]

DOCTOR_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    lab = LvsLab("nat", prefix=unique_prefix("doc"), name="doctor", workdir=tmp_path_factory.mktemp("doctor") / "lab")
    try:
        lab.up()
        yield lab
    finally:
        lab.close()


def _doctor(router: Router, *args: str, ns: Router | None = None) -> tuple[int, dict[str, Any], str]:
    """Run doctor in the router's namespace: (exit status, its JSON report, its text report)."""
    base = [sys.executable, "-m", "pykeepalived", "doctor", "-f", str(router.conf_path), *args]
    where = (ns or router).netns
    as_json = where.run([*base, "--json"], check=False, timeout_s=DOCTOR_TIMEOUT_S)
    assert as_json.returncode in (0, 1), as_json.stderr
    text = where.run(base, check=False, timeout_s=DOCTOR_TIMEOUT_S)
    assert text.returncode == as_json.returncode, (text.stdout, as_json.stdout)
    return as_json.returncode, json.loads(as_json.stdout), text.stdout


def _counted(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["severity"] != "INFO"]


def _peer(lab: LvsLab, tmp_path: Path, old: str, new: str) -> Path:
    text = lab.router("router2").conf_path.read_text()
    assert old in text
    path = tmp_path / "router2-changed.conf"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_clean_lab_is_clean(lab: LvsLab) -> None:
    r1, r2 = lab.router("router1"), lab.router("router2")
    status, report, text = _doctor(r1, "--peer-config", str(r2.conf_path))
    assert status == 0, text
    assert _counted(report) == [] and report["clean"] is True
    assert text.splitlines()[-1].endswith(": clean")
    assert "INFO processes: pykeepalived already runs with" in text  # router1's own daemon, not another one
    # the backup is clean too; it cannot probe the route back (the master holds the private VIP) and says so
    status, report, text = _doctor(r2, "--peer-config", str(r1.conf_path))
    assert status == 0, text
    assert "run doctor on the master" in text


def test_ip_forward_off_is_found(lab: LvsLab) -> None:
    r1 = lab.router("router1")
    r1.netns.sysctl("net.ipv4.ip_forward", "0")
    try:
        status, report, text = _doctor(r1)
    finally:
        r1.netns.sysctl("net.ipv4.ip_forward", "1")
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "forwarding" and "net.ipv4.ip_forward is 0" in finding["message"]
    assert "sysctl -w net.ipv4.ip_forward=1" in finding["fix"]
    assert any(line.startswith("ERROR forwarding: ") and " -- fix: " in line for line in text.splitlines())


def test_a_real_server_with_the_wrong_gateway_is_found(lab: LvsLab) -> None:
    r1, rs1 = lab.router("router1"), lab.real_server("rs1")
    router2_own = lab.router("router2").private.ipv4.ip  # a router's real address, not the floating VIP
    rs1.host.netns.ip("route", "replace", "default", "via", str(router2_own))
    try:
        status, report, _ = _doctor(r1)
    finally:
        rs1.host.netns.ip("route", "replace", "default", "via", str(PRIVATE_VIP))
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "nat-route" and f"real server {rs1.address}:80" in finding["message"]
    assert "did not come back on eth1" in finding["message"]
    assert f"ip route replace default via {PRIVATE_VIP}" in finding["fix"]


def test_strict_rp_filter_on_the_vip_side_is_found(lab: LvsLab) -> None:
    r1 = lab.router("router1")
    r1.netns.sysctl("net.ipv4.conf.eth0.rp_filter", "1")
    try:
        status, report, _ = _doctor(r1)
    finally:
        r1.netns.sysctl("net.ipv4.conf.eth0.rp_filter", "0")
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "rp_filter" and "on eth0" in finding["message"]
    assert finding["fix"].startswith("sysctl -w net.ipv4.conf.eth0.rp_filter=2")


def test_a_firewall_rule_dropping_vrrp_is_found(lab: LvsLab) -> None:
    r1 = lab.router("router1")
    table = f"doctor_{lab.prefix.replace('-', '_')}"
    r1.netns.run(["nft", "-f", "-"], input=f"table inet {table} {{\n chain input {{\n"
                 "  type filter hook input priority 0; policy accept;\n  ip protocol vrrp counter drop\n }\n}\n")
    try:
        status, report, _ = _doctor(r1)
    finally:
        r1.netns.run(["nft", "delete", "table", "inet", table])
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "firewall" and f"inet {table} chain input" in finding["message"]
    assert "VRRP adverts (IP protocol 112)" in finding["message"]
    assert finding["fix"].startswith("accept them before it, or delete it: nft delete rule inet")


def test_a_different_vrid_on_the_peer_is_found(lab: LvsLab, tmp_path: Path) -> None:
    r1 = lab.router("router1")
    peer = _peer(lab, tmp_path, "virtual_router_id 50", "virtual_router_id 52")
    status, report, _ = _doctor(r1, "--peer-config", str(peer))
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "peer" and "virtual_router_id: 50" in finding["message"]
    files = {w.rsplit(":", 1)[0] for w in finding["where"]}
    assert files == {str(r1.conf_path), str(peer)}


def test_a_different_auth_on_the_peer_is_found(lab: LvsLab, tmp_path: Path) -> None:
    r1 = lab.router("router1")
    peer = _peer(lab, tmp_path, "auth_pass passw123", "auth_pass wrong123")
    status, report, _ = _doctor(r1, "--peer-config", str(peer))
    assert status == 1
    [finding] = _counted(report)
    assert finding["area"] == "peer" and "authentication differs" in finding["message"]
    assert {w.rsplit(":", 1)[0] for w in finding["where"]} == {str(r1.conf_path), str(peer)}
    assert "wrong123" not in json.dumps(report)


def test_a_dr_real_server_without_the_arp_settings(lab: LvsLab) -> None:
    r1, rs2 = lab.router("router1"), lab.real_server("rs2")
    ns = rs2.host.netns
    ns.ip("addr", "add", f"{VIP}/32", "dev", "lo")
    try:
        status, report, text = _doctor(r1, "--real-server", ns=_as_router(rs2, r1))
        assert status == 1, text
        assert {f["area"] for f in _counted(report)} == {"real-server"}
        assert any("arp_ignore" in f["fix"] for f in _counted(report))
        assert any("arp_announce" in f["fix"] for f in _counted(report))
        for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
            ns.sysctl(f"net.ipv4.conf.all.{key}", value)
        status, report, text = _doctor(r1, "--real-server", ns=_as_router(rs2, r1))
        assert status == 0, text
        # without a config file and with a VIP on lo, doctor knows it is on a DR real server
        missing = rs2.nginx.conf_path.parent / "no-keepalived.conf"
        auto = ns.run([sys.executable, "-m", "pykeepalived", "doctor", "-f", str(missing)], check=False,
                      timeout_s=DOCTOR_TIMEOUT_S)
        assert auto.returncode == 0 and "DR real server" in auto.stdout, auto.stdout + auto.stderr
    finally:
        ns.ip("addr", "del", f"{VIP}/32", "dev", "lo")


def _as_router(rs: Any, router: Router) -> Router:
    """A stand-in whose namespace is the real server's (doctor is given --real-server there)."""
    return Router(router.spec, rs.host, rs.host, router.dir)
