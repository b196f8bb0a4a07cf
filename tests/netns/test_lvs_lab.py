"""The LVS lab (`LvsLab`, `pykeepalived lab`): the guide's topology for NAT, DR and TUN, built and torn down.

These tests check what the lab promises without relying on a data plane:
the hosts and addresses, who holds the VIPs, that the routers reach every
real server, the real servers' routes and VIPs per forwarding method, the
checkers' view, the CLI, and that nothing is left behind - also after a
failed or killed `up`. The one test that sends traffic through the VIP is
marked for the data plane.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from pykeepalived.lab import LabError, Netns, lvs_lab, unique_prefix, wait_until
from pykeepalived.lab.netns import pid_alive
from pykeepalived.lab.lvs_lab import (
    FWMARK_VIP,
    GATEWAY_PRIVATE,
    MARK_TABLE,
    PRIVATE_VIP,
    ROUTER_SPECS,
    VIP,
    LabKind,
    LabRecord,
    LvsLab,
    destroy,
    http_get,
    owned,
    render_router_conf,
    state_path,
)

from .vrrp_helpers import HAVE_KEEPALIVED, needs_root

pytestmark = [pytest.mark.netns, needs_root]

KINDS = [k.value for k in LabKind]
RS_ADDRESSES = [IPv4Address(f"10.11.12.{i}") for i in (1, 2, 3)]
CLI = [sys.executable, "-m", "pykeepalived", "lab"]


def _show_logs(lab: LvsLab) -> None:
    for router in lab.routers.values():
        print(f"===== {router.name} ({router.log_path}) =====\n{router.log()[-4000:]}")


def _close(lab: LvsLab) -> None:
    _show_logs(lab)
    lab.close()


@pytest.fixture(scope="module", params=KINDS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LvsLab]:
    """One lab per kind, shared by the tests that only look at it."""
    kind = str(request.param)
    lab = LvsLab(kind, prefix=unique_prefix(f"lvs{kind}"), name=f"lvs-{kind}",
                 workdir=tmp_path_factory.mktemp(f"lab-{kind}"))
    try:
        lab.up()
        yield lab
    finally:
        _close(lab)


@pytest.fixture
def nat_lab(tmp_path: Path) -> Iterator[LvsLab]:
    """A NAT lab of the test's own, for tests that kill and restart things."""
    lab = LvsLab("nat", prefix=unique_prefix("lvsn"), name="lvs-nat", workdir=tmp_path / "lab")
    try:
        lab.up()
        yield lab
    finally:
        _close(lab)


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _cli(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout_s, check=False)


def _default_route(ns: Netns) -> str | None:
    routes = ns.ip_json("-4", "route", "show", "default")
    return str(routes[0]["gateway"]) if routes else None


def _sysctl(ns: Netns, key: str) -> str:
    return ns.run(["sysctl", "-n", key]).stdout.strip()


def _addresses_on(ns: Netns, dev: str) -> set[IPv4Address]:
    return {IPv4Address(a["local"]) for link in ns.ip_json("-4", "addr", "show", "dev", dev)
            for a in link.get("addr_info", [])}


# ----------------------------------------------------------------------------------------------
# the generated configuration


@pytest.mark.parametrize("kind", KINDS)
def test_generated_configs_pass_pykeepalived_and_keepalived_config_tests(
        kind: str, router_netns: str, tmp_path: Path) -> None:
    ns = Netns(router_netns)  # has eth0 and eth1, as the routers do
    for spec in ROUTER_SPECS:
        conf = tmp_path / f"{spec.name}.conf"
        conf.write_text(render_router_conf(LabKind(kind), spec, RS_ADDRESSES))
        ours = ns.run([sys.executable, "-m", "pykeepalived", "-t", "-f", str(conf)], check=False)
        assert ours.returncode == 0, ours.stderr
        if HAVE_KEEPALIVED:
            theirs = ns.run(["keepalived", "-t", "-f", str(conf)], check=False)
            assert theirs.returncode == 0, theirs.stderr
            assert "WARNING" not in theirs.stderr and "rror" not in theirs.stderr, theirs.stderr


def test_nat_config_has_the_sync_group_and_dr_tun_one_instance() -> None:
    nat = render_router_conf(LabKind.NAT, ROUTER_SPECS[0], RS_ADDRESSES)
    dr = render_router_conf(LabKind.DR, ROUTER_SPECS[1], RS_ADDRESSES)
    assert "vrrp_sync_group VG1" in nat and f"{PRIVATE_VIP}/32 dev eth1" in nat
    assert "vrrp_sync_group" not in dr and "RH_INT" not in dr and str(PRIVATE_VIP) not in dr
    assert "state BACKUP" in dr and "priority 100" in dr and "lb_kind DR" in dr
    assert "virtual_server fwmark 80" in nat and "persistence_timeout 30" in nat
    assert "lvs_sync_daemon" not in nat
    synced = render_router_conf(LabKind.NAT, ROUTER_SPECS[0], RS_ADDRESSES, sync_daemon=True)
    assert "lvs_sync_daemon eth1 RH_INT" in synced  # connection sync over the private network
    assert "lvs_sync_daemon eth0 RH_EXT" in render_router_conf(LabKind.DR, ROUTER_SPECS[1], RS_ADDRESSES,
                                                               sync_daemon=True)


# ----------------------------------------------------------------------------------------------
# one lab per kind, looked at


def test_up_builds_every_host_of_the_topology(lab: LvsLab) -> None:
    record = LabRecord.load(lab.state_path)
    assert record.phase == "up" and record.kind == lab.kind.value
    assert set(record.namespaces) == set(lab.namespaces) and set(lab.namespaces) <= _namespaces()
    roles = {"c", "router1", "router2", "rs1", "rs2", "rs3"} | ({"gw"} if lab.kind is not LabKind.NAT else set())
    assert set(lab.hosts) == roles == set(record.hosts)
    assert str(lab.client.ipv4) == "203.0.113.100/24"
    r1, r2 = lab.routers["router1"], lab.routers["router2"]
    assert (str(r1.public.ipv4), str(r1.private.ipv4)) == ("203.0.113.2/24", "10.11.12.8/24")
    assert (str(r2.public.ipv4), str(r2.private.ipv4)) == ("203.0.113.3/24", "10.11.12.9/24")
    assert [rs.address for rs in lab.real_servers] == RS_ADDRESSES
    assert all(r.running() for r in (r1, r2))
    assert all(owned(p) for p in record.processes.values()) and len(record.processes) == 5


def test_master_holds_the_vips_and_the_backup_none(lab: LvsLab) -> None:
    master, backup = lab.routers["router1"], lab.routers["router2"]
    assert lab.which_router_is_master() == "router1"
    assert _addresses_on(master.netns, "eth0") >= {VIP, FWMARK_VIP}
    if lab.kind is LabKind.NAT:
        assert PRIVATE_VIP in _addresses_on(master.netns, "eth1")
    else:
        assert PRIVATE_VIP not in master.addresses()
    assert not set(lab.vips) & backup.addresses()


def test_routers_reach_every_real_server_on_http_and_https(lab: LvsLab) -> None:
    for router in lab.routers.values():
        for rs in lab.real_servers:
            assert http_get(router.netns, f"http://{rs.address}/whoami").split()[0] == rs.name
            assert http_get(router.netns, f"https://{rs.address}/whoami").split()[0] == rs.name


def test_real_servers_route_and_hold_the_vips_as_the_kind_needs(lab: LvsLab) -> None:
    for rs in lab.real_servers:
        ns = rs.host.netns
        if lab.kind is LabKind.NAT:
            assert _default_route(ns) == str(PRIVATE_VIP)
            assert VIP not in _addresses_on(ns, "lo")
            continue
        assert _default_route(ns) == str(GATEWAY_PRIVATE)
        device = lab.rs_vip_device
        if lab.kind is LabKind.DR:
            assert device == "lo"
        else:  # tunl0 needs IPIP in the kernel; without it the lab says so and uses lo
            assert device == "tunl0" or (device == "lo" and any("IPIP" in n for n in lab.notes))
        assert {VIP, FWMARK_VIP} <= _addresses_on(ns, device)
        for iface in ("all", "eth0"):
            assert _sysctl(ns, f"net.ipv4.conf.{iface}.arp_ignore") == "1"
            assert _sysctl(ns, f"net.ipv4.conf.{iface}.arp_announce") == "2"
        if lab.kind is LabKind.TUN:
            for iface in ("all", "default", device):
                assert _sysctl(ns, f"net.ipv4.conf.{iface}.rp_filter") == "0"
        # replies from the VIP leave through the gateway, never through a router holding it
        route = ns.ip_json("route", "get", "203.0.113.100", "from", str(VIP))
        assert route[0]["gateway"] == str(GATEWAY_PRIVATE)


def test_gateway_and_routers_forward_without_reverse_path_filter(lab: LvsLab) -> None:
    forwarders = [r.netns for r in lab.routers.values()]
    if lab.gateway is not None:
        forwarders.append(lab.gateway.netns)
        assert lab.gateway.ping(IPv4Address("203.0.113.100")) and lab.gateway.ping(RS_ADDRESSES[0])
    else:
        assert lab.kind is LabKind.NAT
    for ns in forwarders:
        assert _sysctl(ns, "net.ipv4.ip_forward") == "1"
        assert _sysctl(ns, "net.ipv4.conf.all.rp_filter") == "0"


def test_routers_mark_http_and_https_of_the_second_vip(lab: LvsLab) -> None:
    for router in lab.routers.values():
        rules = router.netns.run(["nft", "list", "table", "ip", MARK_TABLE]).stdout
        assert f"ip daddr {FWMARK_VIP} tcp dport {{ 80, 443 }} meta mark set 0x00000050" in rules


def test_master_checker_status_lists_both_services_with_three_alive_servers(lab: LvsLab) -> None:
    for router in lab.routers:  # the backup checks too, as keepalived's does
        assert lab.alive_counts(router) == {"[203.0.113.10]:tcp:80": 3, "FWM 80": 3}
    text = lab.status_text("router1")
    assert "TCP  203.0.113.10:80 rr" in text and "FWM  80 rr persistent 30" in text
    method = {"nat": "Masq", "dr": "Route", "tun": "Tunnel"}[lab.kind.value]
    for rs in RS_ADDRESSES:
        for port in (80, 0):  # the fwmark service's real servers have no port
            assert re.search(rf"^  -> {re.escape(f'{rs}:{port}')} +{method} +1 .* up$", text, re.M), text
    assert "Failed real servers" not in text


def test_lab_status_json_names_the_master_and_its_checker(lab: LvsLab) -> None:
    proc = _cli("status", "--name", lab.name, "--dir", str(lab.workdir), "--json")
    assert proc.returncode == 0, proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    assert status["kind"] == lab.kind.value and status["master"] == "router1"
    assert status["routers"]["router1"]["pykeepalived_running"] and status["routers"]["router2"]["pykeepalived_running"]
    assert set(status["routers"]["router1"]["holds"]) == {str(v) for v in lab.vips}
    assert status["routers"]["router2"]["holds"] == []
    services = status["master_checker"]["services"]
    assert len(services) == 2 and all(sum(rs["alive"] for rs in s["real_servers"]) == 3 for s in services)
    text = _cli("status", "--name", lab.name, "--dir", str(lab.workdir))
    assert text.returncode == 0 and "master: router1" in text.stdout and "FWM  80" in text.stdout


def test_a_second_lab_in_the_same_directory_is_refused(lab: LvsLab) -> None:
    with pytest.raises(LabError, match="already up"):
        LvsLab(lab.kind, name=lab.name, workdir=lab.workdir).up()
    assert lab.which_router_is_master() == "router1"  # the running lab is untouched
    assert LabRecord.load(lab.state_path).phase == "up"


def test_dataplane_client_gets_rs1_rs2_rs3_in_round_robin(lab: LvsLab) -> None:
    if lab.kind is LabKind.TUN and lab.rs_vip_device != "tunl0":
        pytest.skip("this kernel has no IPIP: nothing can decapsulate TUN traffic")
    names = [lab.client_get(f"http://{VIP}/whoami").split()[0] for _ in range(6)]
    start = names.index("rs1")
    assert (names[start:] + names[:start])[:3] == ["rs1", "rs2", "rs3"]
    assert sorted(names) == ["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]


# ----------------------------------------------------------------------------------------------
# labs of their own: failover, failing real servers, failed starts


@pytest.mark.slow
def test_killing_the_master_moves_every_vip_to_router2_and_router1_takes_them_back(nat_lab: LvsLab) -> None:
    nat_lab.kill_router("router1")
    took = wait_until(lambda: nat_lab.which_router_is_master() == "router2", 8.0, what="router2 master")
    assert 2.0 < took < 6.0  # 3 adverts of 1 s plus skew, less the time since the last one
    wait_until(lambda: set(nat_lab.vips) <= nat_lab.routers["router2"].addresses(), 3.0, what="sync group")
    assert not nat_lab.routers["router1"].running()
    nat_lab.start_router("router1")
    assert nat_lab.wait_for_master(8.0, name="router1") == "router1"
    wait_until(lambda: not set(nat_lab.vips) & nat_lab.routers["router2"].addresses(), 5.0, what="router2 backup")
    assert owned(LabRecord.load(nat_lab.state_path).processes["router1"])


@pytest.mark.slow
def test_a_stopped_real_server_leaves_both_services_and_comes_back(nat_lab: LvsLab) -> None:
    nat_lab.stop_real_server("rs2")
    wait_until(lambda: sorted(nat_lab.alive_counts("router1").values()) == [2, 2], 6.0, what="rs2 out")
    assert "10.11.12.2" in nat_lab.status_text("router1").split("Failed real servers:")[1]
    nat_lab.start_real_server(1)
    wait_until(lambda: sorted(nat_lab.alive_counts("router1").values()) == [3, 3], 6.0, what="rs2 back")


@pytest.mark.slow
def test_up_fails_with_the_daemon_log_and_leaves_nothing_when_pykeepalived_exits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(router: lvs_lab.Router) -> list[str]:
        return [sys.executable, "-c", f"import sys\nprint('{router.name} cannot start')\nsys.exit(3)"]

    monkeypatch.setattr(lvs_lab.Router, "argv", broken)
    lab = LvsLab("dr", prefix=unique_prefix("lvsf"), workdir=tmp_path / "lab")
    try:
        with pytest.raises(LabError, match="exited with 3") as info:
            lab.up()
        assert "router1 cannot start" in str(info.value)
        assert not {n for n in _namespaces() if n.startswith(lab.prefix)}
        assert not state_path(lab.workdir).exists()
        assert not any(rs.nginx.running() for rs in lab.real_servers)
    finally:
        lab.close()


@pytest.mark.slow
def test_up_fails_cleanly_when_the_config_test_refuses_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lvs_lab, "render_router_conf", lambda *args, **kwargs: "vrrp_instance {\n")
    lab = LvsLab("nat", prefix=unique_prefix("lvsc"), workdir=tmp_path / "lab")
    try:
        with pytest.raises(LabError, match="pykeepalived -t refuses"):
            lab.up()
        assert not {n for n in _namespaces() if n.startswith(lab.prefix)}
    finally:
        lab.close()


@pytest.mark.slow
def test_two_labs_with_different_names_run_at_once() -> None:
    a = LvsLab("nat", prefix=unique_prefix("lvsa"), name="lvs-a")  # no workdir: a temporary one
    b = LvsLab("dr", prefix=unique_prefix("lvsb"), name="lvs-b")
    with a, b:
        assert a.which_router_is_master() == b.which_router_is_master() == "router1"
        assert not set(a.namespaces) & set(b.namespaces)
        for lab in (a, b):
            assert sorted(lab.alive_counts("router1").values()) == [3, 3]
            assert http_get(lab.routers["router1"].netns, "http://10.11.12.3/whoami").startswith("rs3")
            _show_logs(lab)
    assert not {n for n in _namespaces() if n.startswith((a.prefix, b.prefix))}
    assert not a.workdir.exists() and not b.workdir.exists()


# ----------------------------------------------------------------------------------------------
# the command line


def _lab_processes(record: LabRecord) -> list[int]:
    return [p.pid for p in record.processes.values() if owned(p)]


@pytest.mark.slow
def test_cli_up_status_down_leaves_no_namespace_and_no_process(tmp_path: Path) -> None:
    name, directory = f"k{secrets.token_hex(3)}", tmp_path / "cli"
    try:
        up = _cli("up", "nat", "--name", name, "--dir", str(directory))
        assert up.returncode == 0, up.stderr
        record = LabRecord.load(state_path(directory))
        client = record.hosts["c"]["namespace"]
        assert f"ip netns exec {client} curl -s http://{VIP}/whoami" in up.stdout
        assert f"pykeepalived lab down --name {name} --dir {directory}" in up.stdout
        pids = _lab_processes(record)
        assert len(pids) == 5
        again = _cli("up", "dr", "--name", name, "--dir", str(directory))
        assert again.returncode == 1 and "already up" in again.stderr
        status = _cli("status", "--name", name, "--dir", str(directory), "--json")
        assert json.loads(status.stdout)["master"] == "router1"
        down = _cli("down", "--name", name, "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        assert not {n for n in _namespaces() if n.startswith(f"{name}-")}
        assert not any(pid_alive(pid) for pid in pids)
        assert not state_path(directory).exists() and (directory / "router1.log").exists()
        gone = _cli("status", "--name", name, "--dir", str(directory))
        assert gone.returncode == 1 and "not found" in gone.stderr
    finally:
        destroy(directory)


@pytest.mark.slow
def test_down_cleans_up_after_up_was_killed_half_way(tmp_path: Path) -> None:
    name, directory = f"k{secrets.token_hex(3)}", tmp_path / "killed"
    proc = subprocess.Popen([*CLI, "up", "dr", "--name", name, "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def some_hosts_made() -> bool:
            try:
                return len(LabRecord.load(state_path(directory)).namespaces) >= 4
            except (FileNotFoundError, LabError):
                return False

        wait_until(some_hosts_made, 30.0, interval_s=0.01, what="the lab half-built")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert LabRecord.load(state_path(directory)).phase == "building"
        assert {n for n in _namespaces() if n.startswith(f"{name}-")}
        down = _cli("down", "--name", name, "--dir", str(directory))
        assert down.returncode == 0, down.stderr
        assert not {n for n in _namespaces() if n.startswith(f"{name}-")}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        destroy(directory)


def test_cli_refuses_an_unknown_kind_and_a_missing_lab(tmp_path: Path) -> None:
    assert _cli("up", "ipvs").returncode == 2
    missing = _cli("down", "--name", "nolab", "--dir", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no lab 'nolab'" in missing.stderr
