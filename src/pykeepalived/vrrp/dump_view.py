"""What the VRRP dumps show, as plain values: the read-only view their formatters work on.

keepalived writes three files on signals (SIGUSR1: keepalived.data, SIGUSR2:
keepalived.stats, SIGRTMIN+2: keepalived.json) and exporters parse them. The
shell (vrrp/dump_writer.py) fills these dataclasses from its machines, trackers
and configuration at the moment of the signal; the formatters
(data_dump.py, stats_dump.py, json_dump.py) only turn them into text, so that
each layout can be tested without a daemon. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# keepalived's state numbers (include/vrrp.h), as its JSON and SNMP use them
STATE_WORDS = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT", 97: "DELETED", 98: "STOP"}

# the counters keepalived's JSON and stats dumps hold, in its order
KEEPALIVED_COUNTERS = (
    "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err", "advert_interval_err",
    "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure",
    "pri_zero_rcvd", "pri_zero_sent",
)


def state_word(state: int) -> str:
    """keepalived's get_state_str: the word for a state number."""
    return STATE_WORDS.get(state, "unknown")


def cmd_str(argv: list[str] | tuple[str, ...]) -> str:
    """A command as keepalived prints it: each word in single quotes (a lone `<`/`>` first word bare)."""
    words = []
    for i, word in enumerate(argv):
        bare = i == 0 and word[:1] in ("<", ">")
        words.append(word if bare else f"'{word}'")
    return " ".join(words)


@dataclass(frozen=True)
class TrackLine:
    """One tracker of an instance or group: its name and the weight in force."""

    name: str
    weight: int = 0
    reverse: bool = False


@dataclass(frozen=True)
class NotifyLine:
    """A configured notify script: its kind as keepalived names it ("Master", ...) and how it runs."""

    kind: str
    json_key: str
    command: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class InstanceView:
    """One vrrp_instance at the moment of the dump."""

    name: str
    vrid: int
    version: int
    family: int
    state: int
    wantstate: int
    interface: str | None
    base_priority: int
    effective_priority: int
    advert_int_cs: int
    master_adver_int_cs: int
    last_transition: float  # wall clock, seconds
    stats: dict[str, int] = field(default_factory=dict)
    sync_group: str | None = None
    master_router: str | None = None
    master_priority: int = 0
    unicast: bool = False
    unicast_configured: bool = False
    unicast_fault_no_peer: bool = False
    num_faults: int = 0
    num_scripts_init: int = 0
    read_timeout: float | None = None  # wall clock of the next timer, None if none is armed
    master_down_us: int = 0
    src_ip: str | None = None
    src_from_config: bool = False
    multicast_group: str | None = None
    garp_delay_s: float = 5.0
    garp_rep: int = 5
    garp_refresh_s: float = 0.0
    garp_refresh_rep: int = 1
    garp_lower_prio_delay_s: float = 5.0
    garp_lower_prio_rep: int = 5
    down_timer_adverts: int = 3
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    dont_track_primary: bool = False
    skip_check_adv_addr: bool = False
    strict_mode: bool = False
    accept: bool = True
    nopreempt: bool = False
    preempt_delay_s: float = 0.0
    promote_secondaries: bool = False
    auth_type: int = 0  # 0 none, 1 PASS, 2 AH
    auth_data: str = ""
    vips: tuple[str, ...] = ()
    evips: tuple[str, ...] = ()
    vroutes: tuple[str, ...] = ()
    vrules: tuple[str, ...] = ()
    unicast_ttl: int | None = None
    check_unicast_src: bool = False
    unicast_peers: tuple[str, ...] = ()
    fds: tuple[int, int] | None = None
    track_interfaces: tuple[TrackLine, ...] = ()
    track_scripts: tuple[TrackLine, ...] = ()
    track_script_commands: tuple[str, ...] = ()
    track_files: tuple[TrackLine, ...] = ()
    smtp_alert: bool = False
    notify_deleted: bool = False
    notify_scripts: tuple[NotifyLine, ...] = ()
    notify_priority_changes: bool = False
    vmac_ifname: str = ""

    @property
    def vipset(self) -> bool:
        """keepalived's vipset: the VIPs are on the interface (a master holds them)."""
        return self.state == 2


@dataclass(frozen=True)
class GroupView:
    """One vrrp_sync_group."""

    name: str
    state: int
    members: tuple[str, ...]
    num_member_fault: int = 0
    num_member_init: int = 0
    smtp_alert: bool = False
    track_interfaces: tuple[TrackLine, ...] = ()
    track_scripts: tuple[TrackLine, ...] = ()
    track_files: tuple[TrackLine, ...] = ()
    notify_scripts: tuple[NotifyLine, ...] = ()


@dataclass(frozen=True)
class ScriptView:
    """One vrrp_script and its rise/fall counting."""

    name: str
    command: str
    interval_s: float
    timeout_s: float
    weight: int
    weight_reverse: bool
    rise: int
    fall: int
    result: int
    init_state: str  # INIT, INIT/FAILED or "unknown" once it has run
    uid: int = 0
    gid: int = 0
    instances: tuple[TrackLine, ...] = ()
    running: bool = False

    @property
    def good(self) -> bool:
        return self.result >= self.rise


@dataclass(frozen=True)
class TrackFileView:
    """One track_file: the file and the value read last."""

    name: str
    path: str
    weight: int
    weight_reverse: bool
    value: int
    instances: tuple[TrackLine, ...] = ()


@dataclass(frozen=True)
class GlobalView:
    """The global_defs lines of the data dump that we can state truthfully."""

    router_id: str
    script_security: bool
    script_uid: int
    script_gid: int
    default_interface: str | None
    mcast_group4: str
    mcast_group6: str
    garp_delay_s: float
    garp_rep: int
    garp_refresh_s: float
    garp_refresh_rep: int
    garp_lower_prio_delay_s: float | None
    garp_lower_prio_rep: int | None
    down_timer_adverts: int
    garp_interval_s: float
    gna_interval_s: float
    vrrp_version: int
    strict: bool
    umask: int
    network_namespace: str | None = None
    notify_priority_changes: bool = False


@dataclass(frozen=True)
class SocketView:
    """One VRRP socket of the pool and the instances (name, VRID) it serves."""

    fd: int
    interface: str
    family: int
    unicast_src: str | None
    instances: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class DumpView:
    """Everything the VRRP process dumps."""

    instances: tuple[InstanceView, ...]
    groups: tuple[GroupView, ...] = ()
    scripts: tuple[ScriptView, ...] = ()
    track_files: tuple[TrackFileView, ...] = ()
    global_defs: GlobalView | None = None
    sockets: tuple[SocketView, ...] = ()
