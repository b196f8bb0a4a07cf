"""Which keywords the running daemon acts on today.

The parser knows every keyword of keepalived; this table says which of them
change what the daemon does, so that `-t` and start-up warn about the rest
("parsed but not acted on yet") instead of ignoring them silently. It grows
with each subsystem.
"""

from __future__ import annotations

from .registry import Block, Status
from .schema_check import (
    DNS_CHECK,
    FILE_CHECK,
    HTTP_CHECK,
    MISC_CHECK,
    PING_CHECK,
    REAL_SERVER,
    SMTP_CHECK,
    SMTP_HOST,
    SSL_BLOCK,
    TCP_CHECK,
    UDP_CHECK,
    URL_BLOCK,
    VIRTUAL_SERVER,
)
from .schema_check import BFD_CHECK
from .schema_global import BFD_INSTANCE, GLOBAL_DEFS, TRACK_FILE
from .schema_vrrp import (AUTHENTICATION, GARP_GROUP, TRACK_GROUP, VRRP_INSTANCE, VRRP_SCRIPT, VRRP_SYNC_GROUP,
                          VRRP_TRACK_PROCESS)

_CONNECTION = ("connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "connect_timeout", "fwmark")
_TIMING = ("retry", "delay_before_retry", "warmup", "delay_loop", "alpha", "log_all_failures")

ACTED: list[tuple[Block, tuple[str, ...]]] = [
    (VRRP_INSTANCE, (
        "state", "interface", "virtual_router_id", "priority", "advert_int", "version",
        "virtual_ipaddress", "virtual_ipaddress_excluded", "virtual_routes", "virtual_rules",
        "authentication", "unicast_src_ip", "unicast_peer", "mcast_src_ip", "dont_track_primary",
        "track_interface", "track_script", "track_file", "nopreempt", "preempt", "preempt_delay",
        "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify", "notify_master_rx_lower_pri",
        "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
        "garp_lower_prio_delay", "garp_lower_prio_repeat", "lower_prio_no_advert", "higher_prio_send_advert",
        "skip_check_adv_addr", "check_unicast_src", "down_timer_adverts", "v3_checksum_as_v2", "accept", "no_accept",
        "lvs_sync_daemon_interface",
        # VRRP wire and interface keywords (use_vmac's macvlan, advert TTL, interface settings)
        "use_vmac", "vmac_xmit_base", "unicast_ttl", "promote_secondaries", "strict_mode",
        "mcast_dst_ip", "unicast_fault_no_peer", "notify_priority_changes", "old_unicast_checksum",
        "garp_extra_if", "vmac_garp_intvl",
    )),
    (AUTHENTICATION, ("auth_type", "auth_pass")),
    (VRRP_SYNC_GROUP, (
        "group", "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify",
        "track_interface", "track_script", "track_file", "sync_group_tracking_weight", "global_tracking",
    )),
    (VRRP_SCRIPT, ("script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail")),
    (TRACK_FILE, ("file", "weight")),
    # vrrp_track_process and the static addresses, routes and rules (the tracking helper's)
    (VRRP_INSTANCE, ("track_process",)),
    (VRRP_SYNC_GROUP, ("track_process",)),
    (TRACK_FILE, ("init_file",)),
    (VIRTUAL_SERVER, ("ha_suspend",)),
    (TRACK_GROUP, ("group",)),
    # reloads in the parent (daemon/reload_parent.py, daemon/reload_schedule.py)
    (GLOBAL_DEFS, ("reload_check_config", "reload_file", "reload_time_file", "reload_repeat")),
    (GLOBAL_DEFS, ("notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script", "startup_script",
                   "shutdown_script", "startup_script_timeout", "shutdown_script_timeout")),
    (VRRP_TRACK_PROCESS, ("process", "param_match", "weight", "quorum", "quorum_max", "delay", "terminate_delay",
                          "fork_delay", "full_command")),
    (GLOBAL_DEFS, (
        "router_id", "script_user", "enable_script_security", "vrrp_version", "vrrp_mcast_group4",
        "vrrp_mcast_group6", "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
        "vrrp_garp_master_refresh_repeat", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat",
        "vrrp_down_timer_adverts", "vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert",
        "vrrp_check_unicast_src", "vrrp_skip_check_adv_addr", "notify_fifo", "vrrp_notify_fifo",
        "v3_checksum_as_v2", "json_dump_file", "stats_dump_file", "nftables",
        "lvs_notify_fifo", "checker_log_all_failures", "lvs_sync_daemon", "pykeepalived_dataplane",
        "pykeepalived_conntrackd", "pykeepalived_conntrackd_peer",
        "lvs_flush", "lvs_flush_on_stop", "lvs_flush_onstop", "lvs_timeouts", "umask",
        "pykeepalived_api", "pykeepalived_api_token_file", "pykeepalived_api_tls_cert", "pykeepalived_api_tls_key",
        "pykeepalived_api_runtime",
        "pykeepalived_consistent_flows",  # read by lvs/nft_limits.py consistent_flows
        "pykeepalived_checker_notrack",  # read by lvs/choose.py and check/service.py, at start
        "pykeepalived_syn_probe",  # read by check/service.py and check/workers.py (the engine), at start
    )),
    # the checker side (health and pool rules) and the data plane (IPVS or nftables)
    (VIRTUAL_SERVER, (
        "delay_loop", "connect_timeout", "retry", "delay_before_retry", "warmup", "alpha", "omega", "quorum",
        "hysteresis", "quorum_up", "quorum_down", "weight", "inhibit_on_failure", "sorry_server",
        "sorry_server_inhibit", "virtualhost", "real_server",
        "ip_family", "lb_algo", "lvs_sched", "hashed", "ops", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback",
        "mh-port", "mh-fallback", "lb_kind", "lvs_method", "persistence_engine", "persistence_timeout",
        "persistence_granularity", "protocol", "sorry_server_lvs_method",
        "pykeepalived_stateless",  # read by lvs/plan.py into VirtualService.stateless
    )),
    (REAL_SERVER, (
        "lvs_method", "uthreshold", "lthreshold",
        "weight", "inhibit_on_failure", "notify_up", "notify_down", "alpha", "retry", "delay_before_retry",
        "warmup", "connect_timeout", "delay_loop", "virtualhost", "TCP_CHECK", "HTTP_GET", "SSL_GET",
        "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "FILE_CHECK", "PING_CHECK", "UDP_CHECK",
    )),
    *((block, _CONNECTION + _TIMING) for block in (TCP_CHECK, PING_CHECK)),
    (HTTP_CHECK, _CONNECTION + _TIMING + (
        "nb_get_retry", "virtualhost", "http_protocol", "enable_sni", "sni_name", "tls_compliant", "url",
        "fast_recovery")),
    (URL_BLOCK, ("path", "digest", "status_code", "virtualhost", "regex", "regex_no_match", "regex_min_offset",
                 "regex_max_offset", "regex_options")),
    (SMTP_CHECK, _CONNECTION + _TIMING + ("helo_name", "host")),
    (SMTP_HOST, _CONNECTION),
    (DNS_CHECK, _CONNECTION + _TIMING + ("type", "name")),
    (MISC_CHECK, _TIMING + ("misc_path", "misc_timeout", "misc_dynamic", "user")),
    (FILE_CHECK, ("track_file", "weight")),
    (UDP_CHECK, _CONNECTION + _TIMING + ("payload", "require_reply", "min_reply_length", "max_reply_length")),
    (SSL_BLOCK, ("password", "ca", "certificate", "key")),
    # mail alerts (alerts/)
    (GLOBAL_DEFS, (
        "notification_email", "notification_email_from", "smtp_server", "smtp_helo_name", "smtp_connect_timeout",
        "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "no_email_faults", "no_checker_emails",
    )),
    *((block, ("smtp_alert",)) for block in (VRRP_INSTANCE, VRRP_SYNC_GROUP, VIRTUAL_SERVER, REAL_SERVER)),
    # process settings (host/tuning.py)
    (GLOBAL_DEFS, (
        "process_names", "process_name", "vrrp_process_name", "checker_process_name", "lvs_process_name",
        "vrrp_priority", "checker_priority", "vrrp_rt_priority", "checker_rt_priority",
        "vrrp_rlimit_rttime", "checker_rlimit_rttime", "vrrp_rlimit_rtime", "checker_rlimit_rtime",
        "vrrp_no_swap", "checker_no_swap", "vrrp_cpu_affinity", "checker_cpu_affinity",
        "vrrp_startup_delay",
        "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
        "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
        "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "random_seed",
    )),
    (GLOBAL_DEFS, ("pykeepalived_vrrp_realtime",)),  # false failovers under load (docs/false-failovers.md)
    (VRRP_INSTANCE, ("kernel_rx_buf_size",)),
    # VRRP wire and interface keywords: GARP/NA pacing
    (GLOBAL_DEFS, ("vrrp_garp_interval", "vrrp_gna_interval", "vrrp_min_garp", "vrrp_strict",
                   "vrrp_notify_priority_changes", "vrrp_garp_extra_if", "vrrp_vmac_garp_intvl",
                   "vmac_prefix")),
    (VRRP_SYNC_GROUP, ("notify_priority_changes",)),
    (GARP_GROUP, ("garp_interval", "gna_interval", "interface", "interfaces")),
    # BFD (bfd/, daemon/run_bfd.py): sessions, what tracks them, and the BFD process's settings
    (BFD_INSTANCE, ("neighbor_ip", "neighbour_ip", "source_ip", "min_rx", "min_tx", "idle_tx", "multiplier",
                    "passive", "ttl", "hoplimit", "max_hops", "weight", "vrrp", "checker")),
    (VRRP_INSTANCE, ("track_bfd",)),
    (VRRP_SYNC_GROUP, ("track_bfd",)),
    (REAL_SERVER, ("BFD_CHECK",)),
    (BFD_CHECK, ("name", "alpha")),
    (GLOBAL_DEFS, ("bfd_process_name", "bfd_priority", "bfd_rt_priority", "bfd_rlimit_rttime", "bfd_rlimit_rtime",
                   "bfd_no_swap", "bfd_cpu_affinity")),
    # VRRP interfaces: address VMACs, source tracking, and what keepalived 2.2.7 never puts into effect
    # (vrf: refused without an interface, ignored with one; native_ipv6: the family, read by the parser)
    (VRRP_INSTANCE, ("use_vmac_addr", "use_ipvlan", "track_src_ip", "vrf", "native_ipv6")),
    (GLOBAL_DEFS, ("vmac_addr_prefix",)),
    # links: polling, up/down delays, dynamic interfaces, IGMP, unknown VRIDs (vrrp/link_feed.py)
    (GLOBAL_DEFS, ("default_interface", "dynamic_interfaces", "disable_local_igmp", "log_unknown_vrids")),
    (VRRP_INSTANCE, ("linkbeat_use_polling",)),
    # misc global_defs (issue 14): the no_accept table (net/accept_filter.py)
    (GLOBAL_DEFS, ("nftables_priority", "nftables_ifindex", "nftables_counters")),
    # going realtime when the event loop stalls (host/auto_priority.py)
    (GLOBAL_DEFS, ("max_auto_priority", "min_auto_priority_delay")),
    # the checker's rtnetlink socket and vrrp_track_process's proc connector (net/netlink_bufs.py)
    (GLOBAL_DEFS, ("lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
                   "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force")),
    # dump names (config/instance_names.py)
    (GLOBAL_DEFS, ("data_use_instance",)),
    # the checker: real servers' notify_up at start
    (GLOBAL_DEFS, ("rs_init_notifies",)),
    # Python's re has no match-stack limit for regex_stack to raise (check/http_response.py)
    (URL_BLOCK, ("regex_stack",)),
    # what plain includes insist on (config/include_check.py, config/lexer.py)
    (GLOBAL_DEFS, ("include_check",)),
    # directories prepared at start (host/config_dirs.py); saving on reload waits for reload itself
    (GLOBAL_DEFS, ("config_save_dir", "tmp_config_directory")),
    # VRRP reload (vrrp/reload_apply.py): a removed instance notifies DELETED, states written to the FIFO
    (VRRP_INSTANCE, ("notify_deleted",)),
    (GLOBAL_DEFS, ("fifo_write_vrrp_states_on_reload",)),
    # the AgentX subagent (snmp/): KEEPALIVED-MIB, VRRP-MIB and VRRPv3-MIB, traps
    (GLOBAL_DEFS, ("enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_checker", "enable_snmp_rfc",
                   "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps", "snmp_socket")),
]


ACTED_TOP_LEVEL = ("global_defs", "vrrp_instance", "vrrp_sync_group", "vrrp_script", "track_file",
                   "vrrp_track_file", "virtual_server", "virtual_server_group", "SSL",
                   # the daemon's namespace and names (daemon/netns.py, config/instance_names.py); no ipsets are
                   # used (no_accept is an nftables table, per namespace), so namespace_with_ipsets needs nothing
                   "net_namespace", "instance", "use_pid_dir", "namespace_with_ipsets",
                   # the daemon's own namespace is where the data plane lives; any other is refused at start
                   # (daemon/netns.py ipvs_namespace_problem, tests/netns/test_net_namespace.py)
                   "net_namespace_ipvs",
                   "vrrp_track_process", "static_ipaddress", "static_routes", "static_rules", "track_group",
                   "garp_group", "bfd_instance",
                   # links (vrrp/link_feed.py)
                   "linkbeat_use_polling", "linkbeat_interfaces", "interface_up_down_delays")


def mark_acted(root: Block) -> None:
    for block, names in [*ACTED, (root, ACTED_TOP_LEVEL)]:
        for name in names:
            keyword = block.keywords.get(name)
            if keyword is None:
                raise KeyError(f"support table names unknown keyword {block.name}.{name}")
            keyword.status = Status.ACTED
