"""The typed model of a keepalived configuration.

What later code acts on: the VRRP side reads `vrrp_instances`, `sync_groups`
and the trackers; the checker side reads `virtual_servers`. Every object keeps
the `Location` it was defined at so that later errors (a VIP that cannot be
added, a checker that cannot run) can point back at the file and line.

Defaults are the ones keepalived 2.2.7 applies; where keepalived derives a
value from others (priority from state, checker timings inherited from the
virtual server), `complete.py` fills it in after parsing, so the dump shows
the values that will be used.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from .checker_defaults import VS_CONNECT_TIMEOUT_S, VS_DELAY_LOOP_S
from .errors import Location
from .model_base import ModelObject, model
from .values import IPAddress, IPInterface
from .vocabulary import (CheckerKind, DataPlaneChoice, Family, GroupEntryKind, L4Protocol, LbKind, Scheduler,
                         ServerKind, VrrpState)


@model
class Script(ModelObject):
    """A command keepalived would run: argv as keepalived splits it, and the run-as user."""

    argv: list[str]
    user: str | None = None
    group: str | None = None
    location: Location | None = None


# --------------------------------------------------------------------------- VRRP side
@model
class IpAddressSpec(ModelObject):
    """One line of virtual_ipaddress / static_ipaddress: `ip addr add` syntax."""

    address: IPInterface
    broadcast: str | None = None
    device: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    use_vmac: bool = False
    no_track: bool = False
    track_group: str | None = None
    flags: list[str] = field(default_factory=list)
    preferred_lft: str | None = None
    location: Location | None = None


@model
class NextHop(ModelObject):
    via: IPAddress | None = None
    device: str | None = None
    weight: int | None = None
    onlink: bool = False


@model
class RouteSpec(ModelObject):
    """One line of virtual_routes / static_routes: `ip route add` syntax."""

    destination: str
    route_type: str = "unicast"
    family: Family = 4
    source: IPAddress | None = None
    via: IPAddress | None = None
    device: str | None = None
    table: str | None = None
    metric: int | None = None
    scope: str | None = None
    protocol: str | None = None
    nexthops: list[NextHop] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    no_track: bool = False
    track_group: str | None = None
    location: Location | None = None


@model
class RuleSpec(ModelObject):
    """One line of virtual_rules / static_rules: `ip rule add` syntax."""

    family: Family = 4
    from_prefix: str | None = None
    to_prefix: str | None = None
    preference: int | None = None
    table: str | None = None
    action: str = "table"
    fwmark: str | None = None
    iif: str | None = None
    oif: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    invert: bool = False
    no_track: bool = False
    track_group: str | None = None
    location: Location | None = None


@model
class TrackRef(ModelObject):
    """A reference to a tracked object (interface, script, file, process, BFD) with a weight."""

    name: str
    weight: int | None = None
    reverse: bool = False
    location: Location | None = None


@model
class Authentication(ModelObject):
    auth_type: str | None = None  # "PASS" or "AH"
    auth_pass: str | None = None
    location: Location | None = None


@model
class AuthHmac(ModelObject):
    """keepalived 2.4's HMAC trailer (accepted, not yet acted on)."""

    keys: dict[int, str] = field(default_factory=dict)
    active_key: int | None = None
    anti_replay: str | None = None
    time_window: int | None = None
    mode: str | None = None
    location: Location | None = None


@model
class UnicastPeer(ModelObject):
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None
    location: Location | None = None


@model
class VrrpScript(ModelObject):
    name: str
    script: Script | None = None
    interval_s: float = 1.0
    timeout_s: float | None = None
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    location: Location | None = None
    keyword_locations: dict[str, Location] = field(default_factory=dict, repr=False)


@model
class TrackFile(ModelObject):
    name: str
    file: str | None = None
    weight: int = 1
    weight_reverse: bool = False
    init_file: bool = False
    init_value: int | None = None
    init_overwrite: bool = False
    location: Location | None = None


@model
class TrackProcess(ModelObject):
    name: str
    process: list[str] = field(default_factory=list)
    param_match: str | None = None
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    delay_s: float | None = None
    terminate_delay_s: float | None = None
    fork_delay_s: float | None = None
    full_command: bool = False
    location: Location | None = None


@model
class BfdInstance(ModelObject):
    name: str
    neighbor_ip: IPAddress | None = None
    source_ip: IPAddress | None = None
    min_rx_ms: float = 10.0  # milliseconds to the microsecond, as keepalived reads them
    min_tx_ms: float = 10.0
    idle_tx_ms: float = 1000.0
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None
    max_hops: int | None = None
    multihop: bool = False
    weight: int = 0
    weight_reverse: bool = False
    vrrp_only: bool = False
    checker_only: bool = False
    location: Location | None = None


@model
class SyncGroup(ModelObject):
    name: str
    members: list[TrackRef] = field(default_factory=list)
    track_interfaces: list[TrackRef] = field(default_factory=list)
    track_scripts: list[TrackRef] = field(default_factory=list)
    track_files: list[TrackRef] = field(default_factory=list)
    track_processes: list[TrackRef] = field(default_factory=list)
    track_bfds: list[TrackRef] = field(default_factory=list)
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify: Script | None = None
    smtp_alert: bool | None = None
    global_tracking: bool = False
    sync_group_tracking_weight: bool = False
    notify_priority_changes: bool | None = None
    location: Location | None = None

    def notify_scripts(self) -> list[tuple[str, Script | None]]:
        """Each notify keyword with its script, in keyword order (script vetting walks them)."""
        return [("notify_master", self.notify_master), ("notify_backup", self.notify_backup),
                ("notify_fault", self.notify_fault), ("notify_stop", self.notify_stop), ("notify", self.notify)]


@model
class GarpGroup(ModelObject):
    garp_interval_s: float | None = None
    gna_interval_s: float | None = None
    interfaces: list[str] = field(default_factory=list)
    location: Location | None = None
    interface_locations: dict[str, Location] = field(default_factory=dict, repr=False)  # where each was named


@model
class TrackGroup(ModelObject):
    name: str
    instances: list[str] = field(default_factory=list)
    location: Location | None = None


@model
class VrrpInstance(ModelObject):
    name: str
    location: Location | None = None
    keyword_locations: dict[str, Location] = field(default_factory=dict, repr=False)
    state: VrrpState | None = None  # wanted initial state
    interface: str | None = None
    virtual_router_id: int | None = None
    priority: int | None = None  # completed to 100, or 255 for state MASTER without priority
    advert_int_s: float = 1.0
    version: int | None = None  # completed from global vrrp_version (IPv6: 3)
    family: Family | None = None  # from the first VIP
    virtual_ipaddresses: list[IpAddressSpec] = field(default_factory=list)
    virtual_ipaddresses_excluded: list[IpAddressSpec] = field(default_factory=list)
    no_virtual_ipaddress: bool = False
    virtual_routes: list[RouteSpec] = field(default_factory=list)
    virtual_rules: list[RuleSpec] = field(default_factory=list)
    authentication: Authentication | None = None
    auth_hmac: AuthHmac | None = None
    unicast_src_ip: IPAddress | None = None
    unicast_peers: list[UnicastPeer] = field(default_factory=list)
    unicast_fault_no_peer: bool = False
    unicast_ttl: int | None = None
    check_unicast_src: bool = False
    old_unicast_checksum: str | None = None
    mcast_src_ip: IPAddress | None = None
    mcast_dst_ip: IPAddress | None = None
    track_src_ip: bool = False
    use_vmac: str | None = None
    use_vmac_options: list[str] = field(default_factory=list)
    use_vmac_addr: bool = False
    vmac_xmit_base: bool = False
    use_ipvlan: list[str] | None = None
    native_ipv6: bool = False
    vrf: str | None = None
    dont_track_primary: bool = False
    track_interfaces: list[TrackRef] = field(default_factory=list)
    track_scripts: list[TrackRef] = field(default_factory=list)
    track_files: list[TrackRef] = field(default_factory=list)
    track_processes: list[TrackRef] = field(default_factory=list)
    track_bfds: list[TrackRef] = field(default_factory=list)
    promote_secondaries: bool = False
    linkbeat_use_polling: bool = False
    accept: bool | None = None  # None: keepalived's default (accept unless strict)
    skip_check_adv_addr: bool | None = None
    strict_mode: bool | None = None
    nopreempt: bool = False
    preempt_delay_s: float = 0.0
    debug: int | None = None
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify_deleted_flag: bool = False
    notify: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    smtp_alert: bool | None = None
    notify_priority_changes: bool | None = None
    lvs_sync_daemon_interface: str | None = None
    garp_master_delay_s: float | None = None
    garp_master_refresh_s: float | None = None
    garp_master_repeat: int | None = None
    garp_master_refresh_repeat: int | None = None
    garp_lower_prio_delay_s: float | None = None
    garp_lower_prio_repeat: int | None = None
    garp_extra_if_s: float | None = None
    garp_extra_if_all: bool = False
    down_timer_adverts: int | None = None
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    owner_ignore_adverts: bool | None = None
    timer_expired_backup: int | None = None
    kernel_rx_buf_size: int | None = None
    v3_checksum_as_v2: bool | None = None
    sync_group: str | None = None

    def notify_scripts(self) -> list[tuple[str, Script | None]]:
        """Each notify keyword with its script, in keyword order (script vetting walks them)."""
        return [("notify_master", self.notify_master), ("notify_backup", self.notify_backup),
                ("notify_fault", self.notify_fault), ("notify_stop", self.notify_stop),
                ("notify_deleted", self.notify_deleted), ("notify", self.notify),
                ("notify_master_rx_lower_pri", self.notify_master_rx_lower_pri)]


# --------------------------------------------------------------------------- global_defs
@model
class LvsSyncDaemon(ModelObject):
    interface: str
    instance: str | None = None
    sync_id: int | None = None
    maxlen: int | None = None
    port: int | None = None
    ttl: int | None = None
    group: IPAddress | None = None
    location: Location | None = None


# SO_MARK of the checker's own sockets with pykeepalived_checker_notrack: the nftables table's raw chains untrack
# what carries it (lvs/nft_rules.py add_checker_notrack); no fwmark service may use it (config/complete.py)
CHECKER_NOTRACK_MARK = 0x6B610000
DEFAULT_INTERFACE = "eth0"  # keepalived 2.2.7's default_interface when none is set (DFLT_INT)


@model
class GlobalDefs(ModelObject):
    """global_defs: a typed field for every keyword that code reads, the rest kept in `settings`.

    Keywords nothing acts on yet (process tuning, SNMP, D-Bus, netlink buffer
    sizes, ...) are typed by their converter and kept by keyword name, so that
    the dump shows them. Code must not read `settings`: a keyword that starts
    to matter gets a field here and its handler in schema_global.py names it
    (tests/unit/test_handler_fields.py checks that every handler's field exists).
    """

    keyword_locations: dict[str, Location] = field(default_factory=dict, repr=False)
    router_id: str | None = None
    notification_email: list[str] = field(default_factory=list)
    notification_email_from: str | None = None
    smtp_server: str | None = None
    smtp_server_port: int = 25
    smtp_connect_timeout_s: float = 30.0
    smtp_helo_name: str | None = None
    # mail alerts (alerts/): None = not set, each block's own smtp_alert falls back on these as keepalived does
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    no_email_faults: bool = False
    no_checker_emails: bool = False
    # SNMP (snmp/settings.py): which MIBs the AgentX subagent serves, its traps and the master's socket
    enable_snmp_vrrp: bool = False  # enable_snmp_vrrp, or its old name enable_snmp_keepalived
    enable_snmp_checker: bool = False
    enable_snmp_rfcv2: bool = False  # enable_snmp_rfc sets both RFC ones
    enable_snmp_rfcv3: bool = False
    enable_traps: bool = False
    snmp_socket: str | None = None
    script_user: str | None = None
    script_group: str | None = None
    enable_script_security: bool = False
    vrrp_version: int = 2
    vrrp_mcast_group4: IPAddress | None = None
    vrrp_mcast_group6: IPAddress | None = None
    vrrp_strict: bool = False
    vrrp_garp_master_delay_s: float = 5.0
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_master_refresh_s: float = 0.0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_lower_prio_delay_s: float | None = None
    vrrp_garp_lower_prio_repeat: int | None = None
    vrrp_garp_interval_s: float = 0.0
    vrrp_gna_interval_s: float = 0.0
    vrrp_down_timer_adverts: int = 3
    lvs_sync_daemon: LvsSyncDaemon | None = None
    notify_fifo: Script | None = None
    vrrp_notify_fifo: Script | None = None
    lvs_notify_fifo: Script | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo_script: Script | None = None
    startup_script: Script | None = None
    shutdown_script: Script | None = None
    startup_script_timeout: int | None = None  # None: keepalived's 10 s
    shutdown_script_timeout: int | None = None
    # read by the VRRP side
    default_interface: str | None = None  # static addresses without dev (else DEFAULT_INTERFACE), as keepalived 2.2.7
    # links (vrrp/link_feed.py, net/igmp_reports.py): keepalived 2.2.7's dynamic interfaces, IGMP, unknown VRIDs
    dynamic_interfaces: bool = False  # interfaces named in the config may be missing at start, come and go
    allow_if_changes: bool = False  # dynamic_interfaces allow_if_changes
    disable_local_igmp: bool = False  # igmp_link_local_mcast_reports 0 while VRRP runs
    log_unknown_vrids: bool = False  # log every advert for a VRID no instance of ours has
    nftables: str | None = None  # table for no_accept filtering (None: pykeepalived's default name)
    nftables_priority: int | None = None  # its input chain's priority (None: keepalived's -1; net/accept_filter.py)
    nftables_ifindex: bool = False  # link-local VIPs matched by interface index even with dont_track_primary
    nftables_counters: bool = False  # a counter in every rule of the table
    v3_checksum_as_v2: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_lower_prio_no_advert: bool = False
    vrrp_notify_priority_changes: bool = False
    fifo_write_vrrp_states_on_reload: bool = False  # the states on the notify FIFOs after a VRRP reload
    vmac_prefix: str | None = None  # use_vmac's default name is PREFIX.VRID (keepalived: "vrrp")
    vmac_addr_prefix: str | None = None  # use_vmac_addr's VMACs: PREFIX.VRID (else vmac_prefix, else "vrrp")
    vrrp_garp_extra_if_s: float = 0.0  # vrrp_garp_extra_if: the default of every instance's garp_extra_if
    vrrp_garp_extra_if_all: bool = False
    vrrp_min_garp: bool = False  # one GARP/NA burst of one, no refresh: the defaults it replaces, in settings
    vrrp_higher_prio_send_advert: bool = False
    vrrp_skip_check_adv_addr: bool = False
    # read by the checker side and the data planes
    checker_log_all_failures: bool = False
    rs_init_notifies: bool = False  # notify_up (and the FIFO's RS UP) for real servers up at start
    pykeepalived_dataplane: DataPlaneChoice | None = None  # None: auto
    pykeepalived_consistent_flows: bool | None = None  # None: on with lvs_sync_daemon (lvs/nft_limits.py)
    # the checker's own TCP_CHECK/HTTP_GET connections kept out of conntrack (CHECKER_NOTRACK_MARK; docs/checkers.md)
    pykeepalived_checker_notrack: bool = False
    # TCP_CHECK as SYN probes through a raw socket, no socket per check (check/syn_probe.py; docs/checkers.md)
    pykeepalived_syn_probe: bool = True
    # conntrackd for lvs_sync_daemon on the nftables data plane (ctsync/; docs/conntrack-sync.md)
    pykeepalived_conntrackd: str = "auto"  # auto (conntrackd from PATH), off, or an absolute path to the binary
    pykeepalived_conntrackd_peer: IPAddress | None = None  # UDP unicast to this peer instead of multicast
    # the HTTP API (api/settings.py; docs/api.md), read once at start; flags (--api ...) win over these
    pykeepalived_api: list[str] = field(default_factory=list)  # unix:/PATH or HOST:PORT; empty: off
    pykeepalived_api_location: Location | None = None  # where pykeepalived_api was first given, for messages
    pykeepalived_api_token_file: str | None = None  # the bearer token (required on TCP)
    pykeepalived_api_tls_cert: str | None = None
    pykeepalived_api_tls_key: str | None = None
    pykeepalived_api_runtime: bool = False  # the runtime API (drain, weight, maintenance): off unless enabled
    lvs_flush: bool = False
    lvs_flush_on_stop: list[str] | None = None  # also set by the old spelling lvs_flush_onstop; [] or [VS]
    lvs_timeouts: list[str] | None = None  # [tcp N] [tcpfin N] [udp N], as written
    # process settings (host/tuning.py), per process as keepalived's; None: left as the process started
    process_name: str | None = None  # prctl(PR_SET_NAME) of the parent
    vrrp_process_name: str | None = None
    checker_process_name: str | None = None  # also set by lvs_process_name and process_names
    vrrp_priority: int | None = None  # nice, applied only without a realtime priority
    checker_priority: int | None = None
    vrrp_rt_priority: int | None = None  # SCHED_RR priority
    checker_rt_priority: int | None = None
    vrrp_rlimit_rttime: int | None = None  # RLIMIT_RTTIME (us) under a realtime priority; None: host/tuning.py's
    checker_rlimit_rttime: int | None = None
    vrrp_no_swap: bool = False  # mlockall
    pykeepalived_vrrp_realtime: bool = True  # SCHED_RR 1 for VRRP when no vrrp_rt_priority/vrrp_priority is set
    checker_no_swap: bool = False
    vrrp_cpu_affinity: list[int] | None = None
    vrrp_startup_delay_s: float | None = None  # vrrp/startup_delay.py
    max_auto_priority: int = 0  # realtime priority a loop stall may climb to (0, -1: off; host/auto_priority.py)
    min_auto_priority_delay: int = 1_000_000  # us a timer must be late by to count as a stall (keepalived's 1 s)
    vrrp_netlink_cmd_rcv_bufs: int | None = None  # net/netlink_bufs.py
    vrrp_netlink_cmd_rcv_bufs_force: bool = False
    vrrp_netlink_monitor_rcv_bufs: int | None = None
    vrrp_netlink_monitor_rcv_bufs_force: bool = False
    lvs_netlink_cmd_rcv_bufs: int | None = None  # the checker's rtnetlink socket (net/netlink_bufs.py)
    lvs_netlink_cmd_rcv_bufs_force: bool = False
    lvs_netlink_monitor_rcv_bufs: int | None = None
    lvs_netlink_monitor_rcv_bufs_force: bool = False
    process_monitor_rcv_bufs: int | None = None  # vrrp_track_process's proc connector socket
    process_monitor_rcv_bufs_force: bool = False
    vrrp_rx_bufs_policy: str | None = None  # MTU or ADVERT (vrrp/rx_bufs.py)
    vrrp_rx_bufs_size: int | None = None  # vrrp_rx_bufs_policy SIZE
    vrrp_rx_bufs_multiplier: int | None = None  # None: keepalived's 3
    random_seed: int | None = None  # seeds ${_RANDOM} (config/glibc_random.py, cli.load_snapshot)
    checker_cpu_affinity: list[int] | None = None
    bfd_process_name: str | None = None  # the BFD child's settings (daemon/run_bfd.py), as the others'
    bfd_priority: int | None = None
    bfd_rt_priority: int | None = None
    bfd_rlimit_rttime: int | None = None
    bfd_no_swap: bool = False
    bfd_cpu_affinity: list[int] | None = None
    # read by the daemon
    umask: list[str] | None = None  # as written; validated by the parser, applied at start
    json_dump_file: str | None = None
    stats_dump_file: str | None = None
    config_save_dir: str | None = None  # created at start (host/config_dirs.py); keepalived saves there on reload
    tmp_config_directory: str | None = None  # checked writable at start; our config copy stays a sealed memfd
    include_check: list[str] | None = None  # as written; the lexer applies it (config/include_check.py)
    data_use_instance: bool = False  # keepalived[_check].NAMESPACE_INSTANCE.data (config/instance_names.py)
    # reloads (daemon/reload_parent.py): "" = keepalived's default (/dev/null; the pid file's .reload)
    reload_check_config: str | None = None  # where the reload's config check writes its messages
    reload_file: str | None = None  # created while a reload reads the config, removed after
    reload_time_file: str | None = None  # holds a time to reload at
    reload_repeat: bool = False  # reload_time_file: reload at that time every day, keep the file
    # top-level keywords keepalived keeps with global_defs (the daemon's naming: config/instance_names.py)
    net_namespace: str | None = None  # run in /run/netns/NAME (daemon/netns.py); `-s` overrides
    net_namespace_ipvs: str | None = None  # "" names the default namespace
    namespace_with_ipsets: bool = False
    instance: str | None = None
    use_pid_dir: bool = False  # pid files under /run/keepalived/ (also set by net_namespace and instance)
    settings: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None


# --------------------------------------------------------------------------- checker side
@model
class CheckerBase(ModelObject):
    """Options every checker has; None means inherited from the real/virtual server."""

    kind: CheckerKind
    location: Location | None = None
    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    connect_timeout_s: float | None = None
    fwmark: int | None = None
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    delay_loop_s: float | None = None
    alpha: bool | None = None
    log_all_failures: bool | None = None


@model
class UrlSpec(ModelObject):
    path: str | None = None
    digest: str | None = None
    status_code: list[tuple[int, int]] = field(default_factory=list)
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: list[str] = field(default_factory=list)
    regex_min_offset: int | None = None
    regex_max_offset: int | None = None
    regex_stack: int | None = None
    location: Location | None = None


@model
class HttpCheck(CheckerBase):
    """HTTP_GET and SSL_GET (kind tells which)."""

    urls: list[UrlSpec] = field(default_factory=list)
    virtualhost: str | None = None
    http_protocol: str = "1.0"
    enable_sni: bool = False
    sni_name: str | None = None
    tls_compliant: bool = False
    fast_recovery: bool = False


@model
class TcpCheck(CheckerBase):
    pass


@model
class PingCheck(CheckerBase):
    pass


@model
class SmtpCheck(CheckerBase):
    helo_name: str | None = None
    hosts: list[CheckerBase] = field(default_factory=list)


@model
class DnsCheck(CheckerBase):
    query_type: str = "SOA"
    name: str = "."


@model
class MiscCheck(CheckerBase):
    misc_path: Script | None = None
    misc_timeout_s: float | None = None
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None


@model
class FileCheck(CheckerBase):
    track_file: str | None = None
    weight: int | None = None
    weight_reverse: bool = False


@model
class UdpCheck(CheckerBase):
    payload: bytes | None = None
    require_reply: bool = False
    reply_pattern: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255


@model
class BfdCheck(CheckerBase):
    name: str | None = None


@model
class RealServer(ModelObject):
    address: IPAddress
    port: int | None = None
    location: Location | None = None
    keyword_locations: dict[str, Location] = field(default_factory=dict, repr=False)
    weight: int | None = None  # completed from the virtual server's `weight` (default 1)
    lvs_method: LbKind | None = None
    tunnel: dict[str, Any] | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    inhibit_on_failure: bool | None = None
    notify_up: Script | None = None
    notify_down: Script | None = None
    alpha: bool | None = None
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    connect_timeout_s: float | None = None
    delay_loop_s: float | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    snmp_name: str | None = None
    checkers: list[CheckerBase] = field(default_factory=list)


@model
class SorryServer(ModelObject):
    address: IPAddress
    port: int | None = None
    location: Location | None = None


@model
class VirtualServerGroupEntry(ModelObject):
    kind: GroupEntryKind
    address: IPAddress | None = None
    last_address: IPAddress | None = None
    prefix_len: int | None = None
    port: int | None = None
    fwmark: int | None = None
    family: Family | None = None
    location: Location | None = None


@model
class VirtualServerGroup(ModelObject):
    name: str
    entries: list[VirtualServerGroupEntry] = field(default_factory=list)
    location: Location | None = None


@model
class VirtualServer(ModelObject):
    """virtual_server IP PORT | fwmark N | group NAME."""

    kind: ServerKind
    location: Location | None = None
    keyword_locations: dict[str, Location] = field(default_factory=dict, repr=False)
    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    ip_family: Family | None = None
    delay_loop_s: float = VS_DELAY_LOOP_S
    retry: int | None = None
    delay_before_retry_s: float | None = None
    warmup_s: float | None = None
    connect_timeout_s: float = VS_CONNECT_TIMEOUT_S
    inhibit_on_failure: bool = False
    lvs_sched: Scheduler | None = None  # completed to "wlc"
    sched_flags: list[str] = field(default_factory=list)
    lvs_method: LbKind | None = None  # completed to "NAT"
    tunnel: dict[str, Any] | None = None
    persistence_engine: str | None = None
    persistence_timeout_s: int | None = None
    persistence_granularity: str | None = None
    protocol: L4Protocol | None = None  # completed to "TCP" (keepalived's default)
    ha_suspend: bool = False
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    snmp_name: str | None = None
    alpha: bool = False
    omega: bool = False
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    quorum: int = 1
    hysteresis: int = 0
    weight: int = 1
    sorry_server: SorryServer | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: LbKind | None = None
    pykeepalived_stateless: bool = False  # ours: no per-flow state (lvs/nft_stateless.py, lvs/nft_forward.py)
    real_servers: list[RealServer] = field(default_factory=list)


@model
class SslContext(ModelObject):
    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    location: Location | None = None


# --------------------------------------------------------------------------- ours: the BGP tier
@model
class BgpNeighbor(ModelObject):
    """One upstream router the balancer announces its VIPs to (docs/ecmp.md)."""

    address: IPAddress
    remote_as: int | None = None
    source_ip: IPAddress | None = None
    bfd: str | None = None  # a bfd_instance's name: our own BFD session to the upstream's bfdd
    password: str | None = None  # TCP MD5
    location: Location | None = None


@model
class BgpSpeaker(ModelObject):
    """pykeepalived_bgp: announce VIPs over BGP while their virtual servers are healthy (bgp/, docs/ecmp.md)."""

    local_as: int | None = None
    router_id: IPAddress | None = None  # completed: the first IPv4 source_ip, else global_defs router_id
    hold_time_s: int = 3
    keepalive_s: int | None = None  # completed: hold_time // 3
    connect_retry_s: int = 1
    bgpd_path: str = "/usr/lib/frr/bgpd"
    neighbors: list[BgpNeighbor] = field(default_factory=list)
    announce: list[IPAddress] = field(default_factory=list)
    communities: list[str] = field(default_factory=list)
    med: int | None = None
    location: Location | None = None


# --------------------------------------------------------------------------- the whole file
@model
class KeepalivedConfig(ModelObject):
    """Everything one keepalived.conf (with its includes) says."""

    files: list[str] = field(default_factory=list)
    root_options: dict[str, Any] = field(default_factory=dict)
    global_defs: GlobalDefs = field(default_factory=GlobalDefs)
    static_ipaddresses: list[IpAddressSpec] = field(default_factory=list)
    static_routes: list[RouteSpec] = field(default_factory=list)
    static_rules: list[RuleSpec] = field(default_factory=list)
    track_groups: dict[str, TrackGroup] = field(default_factory=dict)
    linkbeat_interfaces: list[list[str]] = field(default_factory=list)
    linkbeat_locations: dict[str, Location] = field(default_factory=dict, repr=False)  # where each was named
    interface_up_down_delays: list[list[str]] = field(default_factory=list)
    # interface -> (down delay, up delay) in seconds, the valid lines of interface_up_down_delays
    up_down_delays: dict[str, tuple[float, float]] = field(default_factory=dict)
    up_down_locations: dict[str, Location] = field(default_factory=dict, repr=False)
    garp_groups: list[GarpGroup] = field(default_factory=list)
    vrrp_scripts: dict[str, VrrpScript] = field(default_factory=dict)
    track_files: dict[str, TrackFile] = field(default_factory=dict)
    track_processes: dict[str, TrackProcess] = field(default_factory=dict)
    bfd_instances: dict[str, BfdInstance] = field(default_factory=dict)
    sync_groups: dict[str, SyncGroup] = field(default_factory=dict)
    vrrp_instances: dict[str, VrrpInstance] = field(default_factory=dict)
    ssl: SslContext | None = None
    virtual_server_groups: dict[str, VirtualServerGroup] = field(default_factory=dict)
    virtual_servers: list[VirtualServer] = field(default_factory=list)
    bgp: BgpSpeaker | None = None  # ours: pykeepalived_bgp
