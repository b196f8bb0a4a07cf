"""The conntrackd cores: which config is written, which addresses are synced, which command each transition sends."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pykeepalived.config import read_config
from pykeepalived.config.memfs import MemoryFileSystem
from pykeepalived.config.model import KeepalivedConfig
from pykeepalived.ctsync.conf import render
from pykeepalived.ctsync.follower import BULK, COMMIT, FLUSH, REQUEST, RESYNC, SHORTEN, STATS, CtSyncFollower
from pykeepalived.ctsync.spec import UNIX_PATH_MAX, filter_addresses, paths_for, spec_for, wanted

NAT_CONF = """
global_defs {
    lvs_sync_daemon eth1 RH_INT
    %s
}
vrrp_sync_group VG1 { group { RH_EXT RH_INT } }
vrrp_instance RH_EXT {
    interface eth0
    virtual_router_id 50
    priority 150
    virtual_ipaddress {
        203.0.113.10/32 dev eth0
        203.0.113.11/32 dev eth0
    }
}
vrrp_instance RH_INT {
    interface eth1
    virtual_router_id 51
    priority 150
    virtual_ipaddress { 10.11.12.10/32 dev eth1 }
}
virtual_server 203.0.113.10 80 {
    lb_kind NAT
    protocol TCP
    real_server 10.11.12.1 80 { TCP_CHECK { } }
    real_server 10.11.12.2 80 { TCP_CHECK { } }
}
virtual_server fwmark 80 {
    lb_kind NAT
    real_server 10.11.12.3 { TCP_CHECK { } }
}
virtual_server_group VSG { 198.51.100.1-3 53 }
virtual_server group VSG {
    lb_kind DR
    protocol UDP
    real_server 192.0.2.7 53 { TCP_CHECK { connect_port 53 } }
}
"""


def _config(extra: str = "") -> KeepalivedConfig:
    fs = MemoryFileSystem({"/etc/keepalived/keepalived.conf": NAT_CONF % extra})
    return read_config("/etc/keepalived/keepalived.conf", fs).config


def test_nftables_with_lvs_sync_daemon_wants_conntrackd() -> None:
    config = _config()
    assert wanted(config, "nftables", ipvs_present=True) is None
    assert wanted(config, "auto", ipvs_present=False) is None
    assert "IPVS" in str(wanted(config, "auto", ipvs_present=True))
    assert "IPVS" in str(wanted(config, "ipvs", ipvs_present=False))
    assert wanted(_config("pykeepalived_conntrackd off"), "nftables", ipvs_present=False) == \
        "pykeepalived_conntrackd off"


def test_spec_follows_the_instance_and_its_sync_group() -> None:
    spec = spec_for(_config(), "/run/router1.pid", "ab" * 32)
    assert spec.instance == "RH_INT" and spec.members == frozenset({"RH_INT", "RH_EXT"})
    assert (spec.group, spec.port, spec.peer, spec.binary) == (IPv4Address("225.0.0.50"), 3780, None, "conntrackd")
    assert spec.paths.directory == "/run/router1.conntrackd"
    assert spec.paths.socket == "/run/router1.conntrackd/ctl" and spec.paths.lock == "/run/router1.conntrackd/lock"
    assert spec.tcp and spec.udp and not spec.sctp


def test_group_port_and_peer_come_from_the_config() -> None:
    fs = MemoryFileSystem({"/k.conf": (NAT_CONF % "pykeepalived_conntrackd_peer 10.11.12.9\n"
                                       "pykeepalived_conntrackd /opt/ct/conntrackd").replace(
        "lvs_sync_daemon eth1 RH_INT", "lvs_sync_daemon eth1 RH_INT port 4000 group 239.1.2.3")})
    spec = spec_for(read_config("/k.conf", fs).config, "/run/k.pid", "0" * 64)
    assert (spec.group, spec.port, spec.peer) == (IPv4Address("239.1.2.3"), 4000, IPv4Address("10.11.12.9"))
    assert spec.binary == "/opt/ct/conntrackd"
    text = render(spec, IPv4Address("10.11.12.8"))
    assert "\tUDP {" in text and "IPv4_Destination_Address 10.11.12.9" in text and "Port 4000" in text
    assert "Multicast" not in text


def test_filter_keeps_vips_real_servers_and_fwmark_vips() -> None:
    assert filter_addresses(_config()) == (
        "10.11.12.1", "10.11.12.2", "10.11.12.3", "10.11.12.10", "192.0.2.7", "198.51.100.1", "203.0.113.10",
        "203.0.113.11", "198.51.100.2/31")


def test_rendered_config_is_ftfw_over_the_sync_link_with_our_own_files() -> None:
    spec = spec_for(_config(), "/run/router1.pid", "ab" * 32)
    text = render(spec, IPv4Address("10.11.12.8"))
    for line in ("Mode FTFW {", "IPv4_address 225.0.0.50", "Group 3780", "IPv4_interface 10.11.12.8",
                 "Interface eth1", "LockFile /run/router1.conntrackd/lock", "Path /run/router1.conntrackd/ctl",
                 "Systemd off", "Filter From Userspace {", "Address Accept {", "IPv4_address 10.11.12.1",
                 "IPv4_address 198.51.100.2/31", "StartupResync on", "PurgeTimeout 60"):
        assert line in text, line
    assert text.count("{") == text.count("}")
    protocols = text.split("Protocol Accept {")[1].split("}")[0].split()
    assert protocols == ["TCP", "UDP"]


def test_a_long_run_directory_gets_a_short_socket() -> None:
    paths = paths_for("/" + "d" * 120 + "/router.pid", "f" * 64)
    assert len(paths.socket) <= UNIX_PATH_MAX and paths.socket.startswith("/run/pykeepalived/conntrackd-")
    assert paths.config.startswith("/" + "d" * 120 + "/router.conntrackd/")


def test_master_commits_before_its_vips_then_flushes_resyncs_and_sends() -> None:
    f = CtSyncFollower("RH_INT", frozenset({"RH_INT", "RH_EXT"}))
    assert f.state("RH_INT", "BACKUP") == [STATS, SHORTEN, REQUEST]
    assert f.state("RH_EXT", "BACKUP") == []  # only the followed instance moves conntrackd
    assert f.before_vips("RH_EXT") == [COMMIT]  # the group's first member to add VIPs commits
    assert f.before_vips("RH_INT") == []  # once per mastership
    assert f.state("RH_EXT", "MASTER") == []
    assert f.state("RH_INT", "MASTER") == [FLUSH, RESYNC, BULK]
    assert f.before_vips("RH_INT") == []  # a reload re-adding VIPs as master: no commit over our own flows


def test_master_without_a_prior_commit_commits_first() -> None:
    f = CtSyncFollower("VI", frozenset())
    assert f.state("VI", "MASTER") == [COMMIT, FLUSH, RESYNC, BULK]


@pytest.mark.parametrize("word, commands", [("FAULT", [SHORTEN]), ("BACKUP", [STATS, SHORTEN, REQUEST]),
                                            ("STOP", [])])
def test_leaving_master(word: str, commands: list[object]) -> None:
    f = CtSyncFollower("VI", frozenset())
    f.before_vips("VI")
    f.state("VI", "MASTER")
    assert f.state("VI", word) == commands
    assert f.before_vips("VI") == [COMMIT]  # the next mastership commits again
    assert f.before_vips("other") == []


def test_the_guard_protects_nat_services_only() -> None:
    """DR/TUN traffic is invalid to conntrack by design (one direction): the guard must never drop it."""
    from pykeepalived.ctsync.spec import nat_addresses

    assert nat_addresses(_config()) == (
        "10.11.12.1", "10.11.12.2", "10.11.12.3", "10.11.12.10", "203.0.113.10", "203.0.113.11")
    dr = NAT_CONF.replace("lb_kind NAT", "lb_kind DR") % ""
    fs = MemoryFileSystem({"/dr.conf": dr})
    assert nat_addresses(read_config("/dr.conf", fs).config) == ()
    from pykeepalived.ctsync.guard import ruleset

    spec = spec_for(read_config("/dr.conf", fs).config, "/run/dr.pid", "0" * 64)
    assert "ct state invalid" not in ruleset(spec) and "type nat hook prerouting" in ruleset(spec)
