"""keepalived 2.2.7's verdicts on VRRP and global_defs settings (each checked with keepalived -t by a corpus config).

Pure: no host facts, so only what the parser and the completion rules decide
from the text. tests/compat/corpus/{vrrp,global}/ hold the same cases and more,
compared with the real keepalived.
"""

from __future__ import annotations

import pytest

from pykeepalived.config import read_config_text


def instance(extra: str = "", *, head: str = "state BACKUP\ninterface eth0\nvirtual_router_id 51\npriority 100",
             vips: str = "192.0.2.10/24", name: str = "VI_1") -> str:
    return (f"vrrp_instance {name} {{\n{head}\n{extra}\nvirtual_ipaddress {{\n{vips}\n}}\n}}\n")


def global_defs(body: str) -> str:
    return f"global_defs {{\n{body}\n}}\n"


def error_lines(text: str) -> list[int]:
    return [e.location.line if e.location else 0 for e in read_config_text(text).errors]


def accepted(text: str) -> bool:
    return not read_config_text(text).errors


@pytest.mark.parametrize("body", [
    "vrrp_garp_interval 10.456",   # keepalived only logs that it is large
    "vrrp_gna_interval 3.5",
    "max_auto_priority",           # no value: the highest realtime priority
    "min_auto_priority_delay 10000000",
    "min_auto_priority_delay 1",
])
def test_global_values_keepalived_takes(body: str) -> None:
    assert accepted(global_defs(body) + instance())


@pytest.mark.parametrize("body", [
    "min_auto_priority_delay 0",
    "min_auto_priority_delay 10000001",
    "vrrp_garp_interval 0",
    "vrrp_iptables VRRP-IN",       # 2.2.7 as built here has nftables only
    "nftables a\n  nftables b",
    "checker_cpu_affinity 0-1",
])
def test_global_values_keepalived_refuses(body: str) -> None:
    assert error_lines(global_defs(body) + instance())


def test_a_large_garp_interval_is_a_warning() -> None:
    result = read_config_text(global_defs("vrrp_garp_interval 10.456") + instance())
    assert any("very large" in w.message for w in result.warnings)


def test_default6_is_a_virtual_route_destination() -> None:
    assert accepted(instance("virtual_routes {\n  default6 via fe80::1 dev eth0\n}"))


def test_same_vrid_on_another_multicast_group_is_fine() -> None:
    assert accepted(instance() + instance("mcast_dst_ip 224.0.0.19", name="VI_2", vips="192.0.2.20/24"))
    assert error_lines(instance() + instance(name="VI_2", vips="192.0.2.20/24"))


def test_tracking_the_own_interface_is_refused() -> None:
    assert error_lines(instance("track_interface {\n  eth0\n}"))
    assert accepted(instance("track_interface {\n  eth1\n}"))


def test_unicast_keywords_need_unicast_peers() -> None:
    assert error_lines(instance("unicast_src_ip 192.0.2.1"))
    assert error_lines(instance("check_unicast_src"))
    # unicast_ttl is refused where keepalived notices it: at the instance's closing brace
    text = instance("unicast_ttl 10")
    assert error_lines(text) == [len(text.splitlines())]
    assert accepted(instance("unicast_src_ip 192.0.2.1\nunicast_peer {\n  192.0.2.2\n}"))


def test_over_long_auth_pass_is_an_error_at_its_line() -> None:
    text = instance("authentication {\n  auth_type PASS\n  auth_pass 123456789\n}")
    assert error_lines(text) == [8]
    assert accepted(instance("authentication {\n  auth_type PASS\n  auth_pass 12345678\n}"))


def test_the_loopback_is_not_a_vrrp_interface() -> None:
    assert 3 in error_lines(instance(head="state BACKUP\ninterface lo\nvirtual_router_id 51\npriority 100"))


def test_state_words_are_case_sensitive() -> None:
    assert error_lines(instance(head="state backup\ninterface eth0\nvirtual_router_id 51\npriority 100")) == [2]


@pytest.mark.parametrize("extra", [
    "authentication {\n  auth_type PASS\n  auth_pass secret\n}",
    "preempt_delay 10",
    "down_timer_adverts 5",
    "garp_lower_prio_repeat 2",
    "higher_prio_send_advert",
    "lower_prio_no_advert false",
    "accept",
])
def test_strict_mode_refuses_what_keepalived_resets(extra: str) -> None:
    assert error_lines(global_defs("vrrp_strict") + instance(extra))
    assert accepted(instance(extra))


def test_strict_mode_master_must_be_the_owner() -> None:
    assert error_lines(global_defs("vrrp_strict") + instance(head="state MASTER\ninterface eth0\nvirtual_router_id 51"
                                                                   "\npriority 100"))
    assert accepted(global_defs("vrrp_strict") + instance(head="state MASTER\ninterface eth0\nvirtual_router_id 51"
                                                               "\npriority 255"))


def test_version_2_after_ipv6_vips_is_refused_at_its_line() -> None:
    text = ("vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\nfe80::10\n}\n"
            "version 2\n}\n")
    assert error_lines(text) == [7]
    assert accepted(instance("version 2", vips="fe80::10"))  # before the VIPs it is taken (not in strict mode)


def test_the_first_address_fixes_the_family() -> None:
    # an IPv6 unicast peer first: the IPv4 VIP is refused at its line
    text = instance("unicast_peer {\n  2001:db8::2\n}")
    assert 10 in error_lines(text)


@pytest.mark.parametrize("extra", ["advert_int 1.5", "advert_int 256", "version 3\nadvert_int 41",
                                   "version 3\nadvert_int 0.055", "vmac_xmit_base", "use_vmac\npromote_secondaries"])
def test_settings_keepalived_adjusts_are_errors(extra: str) -> None:
    assert error_lines(instance(extra))


def test_a_script_keyword_given_twice_is_an_error_at_the_second() -> None:
    assert error_lines(instance("notify_master /bin/true\nnotify_master /bin/false")) == [7]


def test_garp_groups_claim_interfaces_once_and_need_a_delay() -> None:
    two = ("garp_group {\n  garp_interval 0.1\n  interface eth0\n}\n"
           "garp_group {\n  garp_interval 0.2\n  interface eth0\n}\n")
    assert error_lines(two + instance()) == [7]
    assert error_lines("garp_group {\n  interface eth1\n}\n" + instance()) == [3]


def test_linkbeat_interface_options_are_keepalived_words() -> None:
    assert error_lines("linkbeat_interfaces {\n  eth0 poll\n}\n" + instance()) == [2]
    assert accepted("linkbeat_interfaces {\n  eth0 MII\n}\n" + instance())


def test_deprecated_garp_interval_names_are_errors() -> None:
    assert error_lines(global_defs("vrrp_vmac_garp_intvl 30") + instance()) == [2]
    assert error_lines(instance("use_vmac\nvmac_garp_intvl 30")) == [7]


def test_unicast_peer_ttls_must_not_cross() -> None:
    assert error_lines(instance("unicast_peer {\n  192.0.2.2 min_ttl 200 max_ttl 100\n}")) == [7]


@pytest.mark.parametrize("body", [
    "lvs_sync_daemon eth0 VI_1 5",   # the old bare sync id
    "lvs_timeouts sctp 100",
    "vrrp_rx_bufs_policy LOTS",
    "notification_email {\n}",
])
def test_more_global_values_keepalived_refuses(body: str) -> None:
    assert error_lines(global_defs(body) + instance())


@pytest.mark.parametrize("body", ["vrrp_startup_delay 3600", "vrrp_rx_bufs_policy mtu",
                                  "lvs_timeouts tcp 7200 udp 300"])
def test_more_global_values_keepalived_takes(body: str) -> None:
    assert accepted(global_defs(body) + instance())


def test_weighted_trackers_of_sync_group_members_are_errors() -> None:
    members = instance("track_interface {\n  eth1 weight 10\n}") + instance(
        head="state BACKUP\ninterface eth1\nvirtual_router_id 52\npriority 100", name="VI_2", vips="198.51.100.1")
    group = "vrrp_sync_group G {\n  group {\n    VI_1\n    VI_2\n  }\n}\n"
    assert error_lines(members + group)
    weighted = group.replace("  }\n}\n", "  }\n  sync_group_tracking_weight\n}\n")
    assert accepted(members + weighted)


def test_a_track_file_default_weight_counts_for_the_address_owner() -> None:
    tf = "track_file tf1 {\n  file /tmp/x\n}\n"
    owner = "state MASTER\ninterface eth0\nvirtual_router_id 51\npriority 255"
    assert error_lines(tf + instance("track_file {\n  tf1\n}", head=owner))
    assert accepted(tf + instance("track_file {\n  tf1 weight 0\n}", head=owner))


@pytest.mark.parametrize("text", [
    "track_file tf1 {\n  file /tmp/x\n  file /tmp/y\n}\n",
    "track_file tf1 {\n  file /tmp/x\n  weight 300\n}\n",
    "vrrp_track_process p {\n  process a\n  process b\n}\n",
    "vrrp_track_process p {\n  process a\n  weight 5\n  weight 6\n}\n",
    "bfd_instance b1 {\n  neighbor_ip 192.0.2.2\n}\nbfd_instance b2 {\n  neighbor_ip 192.0.2.2\n}\n",
    "bfd_instance b1 {\n  neighbor_ip 192.0.2.2\n  source_ip 2001:db8::1\n}\n",
])
def test_tracker_blocks_keepalived_refuses(text: str) -> None:
    assert error_lines(text + instance())
