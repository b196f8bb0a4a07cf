"""global_defs, the top-level options, track_file and bfd_instance."""

from __future__ import annotations

from . import handlers as h
from .errors import ValueProblem
from .lexer import Segment
from .model import BfdInstance, GlobalDefs, KeepalivedConfig, LvsSyncDaemon, TrackFile
from .context import ParseContext
from .include_check import apply_include_check
from .api_words import parse_listen
from .registry import Block, FieldHandler, LineHandler, Status
from .schema_namespace import register_namespace_keywords
from .values import parse_umask, to_bool, to_int, to_ip, to_timer
from .vocabulary import DATAPLANES

NOT_YET = Status.NOT_YET
UINT_MAX_US = 2**32 - 1
MAX_RT_PRIORITY = 99  # sched_get_priority_max(SCHED_RR) on Linux
NFT_TABLE_MAXNAMELEN = 256
LVS_MAX_TIMEOUT = 86400 * 31
GLOBAL_DEFS = Block("global_defs", GlobalDefs)
TRACK_FILE = Block("track_file", TrackFile)
BFD_INSTANCE = Block("bfd_instance", BfdInstance)


def _open_global(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> GlobalDefs:
    if config.global_defs.location is None:
        config.global_defs.location = seg.location
    return config.global_defs


def _notification_email(ctx: ParseContext, g: GlobalDefs, seg: Segment, lines: list[Segment]) -> None:
    if not lines:  # keepalived reports it at the block's closing brace
        ctx.error(ctx.close_location or seg.location, "empty notification_email block")
    for line in lines:
        g.notification_email.extend(line.words)


def _smtp_server(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    g.smtp_server = word
    if len(seg.words) > 2:
        g.smtp_server_port = to_int(seg.words[2], 1, 65535)


def _script_user(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        g.script_user = word
        g.script_group = seg.words[2] if len(seg.words) > 2 else None


def _umask(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """Kept as words (the daemon sets it at start); a value keepalived refuses is an error here too."""
    if ctx.arg(seg) is None:
        return
    try:
        parse_umask(list(seg.words[1:]))
    except ValueError as exc:
        ctx.error(seg, str(exc), "umask")
        return
    g.umask = list(seg.words[1:])


def _vrrp_version(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is not None:
        g.vrrp_version = to_int(word, 2, 3)


def _mcast_group(attr: str, family: int) -> LineHandler:
    def handler(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        addr = to_ip(word)
        if addr.version != family or not addr.is_multicast:
            raise ValueProblem(f"'{word}' is not an IPv{family} multicast address")
        h.store(g, attr, addr)

    return FieldHandler(attr, handler)


def _lvs_sync_daemon(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    w = seg.words
    if len(w) < 2:
        ctx.arg(seg)
        return
    syncd = LvsSyncDaemon(interface=w[1], location=seg.location)
    options = ("id", "maxlen", "port", "ttl", "group")
    i = 2
    if i + 1 < len(w) and w[i] == "inst":
        syncd.instance = w[i + 1]
        i += 2
    elif i < len(w) and w[i] not in options:
        syncd.instance = w[i]
        i += 1
    if i < len(w) and w[i].isdigit():  # the old form: a bare sync id after the instance (2.2.7: an error)
        syncd.sync_id = to_int(w[i], 0, 255)
        ctx.error(seg, 'please use keyword "id" before lvs_sync_daemon SYNCID')
        i += 1
    while i < len(w):
        opt = w[i]
        if i + 1 >= len(w):
            raise ValueProblem(f"'{opt}' needs a value")
        val = w[i + 1]
        if opt == "id":
            syncd.sync_id = to_int(val, 0, 255)
        elif opt == "maxlen":
            syncd.maxlen = to_int(val, 1, 65535 - 20 - 8)
        elif opt == "port":
            syncd.port = to_int(val, 1, 65535)
        elif opt == "ttl":
            syncd.ttl = to_int(val, 1, 255)
        elif opt == "group":
            syncd.group = to_ip(val)
        else:
            raise ValueProblem(f"unknown lvs_sync_daemon option '{opt}'")
        i += 2
    g.lvs_sync_daemon = syncd


TASK_COMM_LEN = 16  # the kernel's limit for a process name, its NUL included


def _process_names(g: GlobalDefs) -> None:
    """keepalived's default child names; a later *_process_name line overrides them, as in keepalived."""
    g.vrrp_process_name = "keepalived_vrrp"
    g.checker_process_name = "keepalived_lvs"
    g.bfd_process_name = "keepalived_bfd"


def _process_name(attr: str) -> LineHandler:
    """A process name; longer than the kernel keeps is an error (keepalived: truncating), kept cut."""

    def handler(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        if len(word) >= TASK_COMM_LEN:
            ctx.error(seg, f"Process name {word} more than {TASK_COMM_LEN - 1} characters, truncating")
        h.store(g, attr, word[:TASK_COMM_LEN - 1])

    return FieldHandler(attr, handler)


def _garp_pause(attr: str) -> LineHandler:
    """vrrp_garp_interval / vrrp_gna_interval: 1 microsecond up to 2^32-1 of them.

    keepalived 2.2.7 takes any such value and only logs that one of a
    second or more is very large.
    """
    def handler(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        value = to_timer(word, 0.000001, UINT_MAX_US / 1e6)
        if value >= 1:
            ctx.warn(seg, f"the {seg.words[0]} is very large - {word} seconds")
        h.store(g, attr, value)

    return FieldHandler(attr, handler)


def _cpu_affinity(attr: str) -> LineHandler:
    """CPU numbers, one per word (no ranges in 2.2.7); process_checks.py checks them against the host."""

    def handler(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
        if ctx.arg(seg) is None:
            return
        h.store(g, attr, [to_int(w, 0, 2**31 - 1) for w in seg.words[1:]])

    return FieldHandler(attr, handler)


def _rx_bufs_policy(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """MTU, ADVERT or a size, with keepalived 2.2.7's complaints about mixing them (it reads the size from word 2)."""
    if ctx.arg(seg) is None:
        return
    policies: set[str] = set()
    for word in seg.words[1:]:
        if word.upper() in ("MTU", "ADVERT"):
            policies.add(word.upper())
            continue
        try:
            g.vrrp_rx_bufs_size = to_int(seg.words[1], 0, 2**32 - 1)
        except ValueProblem:
            ctx.error(seg, f"Invalid vrrp_rx_bufs_policy {word}")
    if g.vrrp_rx_bufs_size is not None and policies:
        ctx.error(seg, "Cannot set vrrp_rx_bufs_policy size and policy, ignoring policy")
        policies.clear()
    elif policies == {"MTU", "ADVERT"}:
        ctx.error(seg, "Cannot set both vrrp_rx_bufs_policy MTU and ADVERT, ignoring ADVERT")
        policies = {"MTU"}
    if policies:
        g.vrrp_rx_bufs_policy = policies.pop()


def _max_auto_priority(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """Without a value keepalived takes the highest realtime priority (SCHED_RR's 99)."""
    h.store(g, "max_auto_priority",
            to_int(seg.words[1], -1, MAX_RT_PRIORITY) if len(seg.words) > 1 else MAX_RT_PRIORITY)


def _min_auto_priority_delay(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """A whole number of microseconds, 1..10000000 (keepalived 2.2.7's read_int range)."""
    word = ctx.arg(seg)
    if word is not None:
        h.store(g, "min_auto_priority_delay", to_int(word, 1, 10_000_000))


def _vrrp_iptables(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """keepalived 2.2.7 as Debian builds it has nftables, not iptables: an error that falls back to nftables."""
    ctx.error(seg, f"{seg.words[0]}: iptables is not supported, using nftables instead; "
                   "replace vrrp_iptables and vrrp_ipsets with the nftables option")
    if g.nftables is None:
        g.nftables = "keepalived"


def _vrrp_ipsets(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """keepalived 2.2.7 built without libipset does not know the keyword at all."""
    ctx.error(seg, f"unknown keyword '{seg.words[0]}' (keepalived is built without ipset support; use nftables)")


def _nftables(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    if g.nftables is not None:
        ctx.error(seg, "nftables already specified - ignoring")
        return
    name = seg.words[1] if len(seg.words) > 1 else "keepalived"
    if len(name) >= NFT_TABLE_MAXNAMELEN:
        ctx.error(seg, "nftables table name too long - ignoring")
        return
    g.nftables = name


# Keywords stored by name in GlobalDefs.settings: (keyword, handler factory output, summary, status, since)
_g = GLOBAL_DEFS
_g.line("router_id", h.text("router_id"), "name of this router in mails and logs")
_g.list("notification_email", _notification_email, "mail recipients")
_g.line("notification_email_from", h.text("notification_email_from"), "mail sender")
_g.line("smtp_server", _smtp_server, "mail server [port]")
_g.line("smtp_helo_name", h.text("smtp_helo_name"), "HELO name for mails")
_g.line("smtp_connect_timeout", h.timer("smtp_connect_timeout_s", 0, 2147), "mail connect timeout (s)")
_g.line("script_user", _script_user, "default user [group] for scripts")
_g.line("enable_script_security", h.flag("enable_script_security"), "refuse unsafe scripts")
_g.line("umask", _umask, "umask for the daemon and its scripts")
_g.line("vrrp_version", _vrrp_version, "default VRRP version (2 or 3)")
_g.line("vrrp_mcast_group4", _mcast_group("vrrp_mcast_group4", 4), "IPv4 multicast group")
_g.line("vrrp_mcast_group6", _mcast_group("vrrp_mcast_group6", 6), "IPv6 multicast group")
_g.line("vrrp_strict", h.flag("vrrp_strict"), "RFC strict mode for all instances")
_g.line("vrrp_garp_master_delay", h.timer("vrrp_garp_master_delay_s", 0, 86400), "default garp_master_delay")
_g.line("vrrp_garp_master_repeat", h.integer("vrrp_garp_master_repeat", 1, 1000000), "default garp_master_repeat")
_g.line("vrrp_garp_master_refresh", h.timer("vrrp_garp_master_refresh_s", 0, 86400), "default garp_master_refresh")
_g.line(
    "vrrp_garp_master_refresh_repeat",
    h.integer("vrrp_garp_master_refresh_repeat", 1, 1000000),
    "default garp_master_refresh_repeat",
)
_g.line(
    "vrrp_garp_lower_prio_delay",
    h.timer("vrrp_garp_lower_prio_delay_s", 0, 86400),
    "default garp_lower_prio_delay",
)
_g.line(
    "vrrp_garp_lower_prio_repeat",
    h.integer("vrrp_garp_lower_prio_repeat", 0, 1000000),
    "default garp_lower_prio_repeat",
)
_g.line("vrrp_garp_interval", _garp_pause("vrrp_garp_interval_s"), "pause between GARPs (s)")
_g.line("vrrp_gna_interval", _garp_pause("vrrp_gna_interval_s"), "pause between NAs (s)")
_g.line("vrrp_down_timer_adverts", h.integer("vrrp_down_timer_adverts", 1, 100), "default down_timer_adverts")
_g.line("vrrp_iptables", _vrrp_iptables, "iptables chains for no_accept (not in this build: nftables)",
        status=Status.REFUSED)
_g.line("vrrp_ipsets", _vrrp_ipsets, "ipsets for no_accept (not in this build: nftables)", status=Status.REFUSED)
_g.line("nftables", FieldHandler("nftables", _nftables), "nftables table for no_accept")
_g.line("vrrp_cpu_affinity", _cpu_affinity("vrrp_cpu_affinity"), "CPUs of the VRRP process")
_g.line("checker_cpu_affinity", _cpu_affinity("checker_cpu_affinity"), "CPUs of the checker process")
_g.line("bfd_cpu_affinity", _cpu_affinity("bfd_cpu_affinity"), "CPUs of the BFD process")

def _lvs_timeouts(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """`tcp N`, `tcpfin N`, `udp N` (seconds, up to 31 days); anything else is an error in keepalived 2.2.7."""
    w = seg.words
    if len(w) < 3:
        raise ValueProblem("lvs_timeouts requires at least one option")
    i = 1
    while i < len(w):
        if w[i] in ("tcp", "tcpfin", "udp"):
            if i + 1 >= len(w):
                ctx.error(seg, f"no value specified for lvs_timeouts {w[i]} - ignoring")
            else:
                try:
                    to_int(w[i + 1], 0, LVS_MAX_TIMEOUT)
                except ValueProblem as problem:
                    ctx.error(seg, f"invalid lvs_timeouts {w[i]} ({problem}) - ignoring")
            i += 2
            continue
        ctx.error(seg, f"unknown option {w[i]} specified for lvs_timeouts")
        i += 1
    g.lvs_timeouts = list(w[1:])


def _startup_delay(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """1 ms up to 2^32 microseconds; a minute or more is only logged as long."""
    word = ctx.arg(seg)
    if word is None:
        return
    value = to_timer(word, 0.001, UINT_MAX_US / 1e6)
    if value >= 60:
        ctx.warn(seg, f"vrrp_startup_delay is very large - {word} seconds")
    h.store(g, "vrrp_startup_delay_s", value)


_g.line("lvs_timeouts", FieldHandler("lvs_timeouts", _lvs_timeouts), "IPVS tcp/tcpfin/udp timeouts")
_g.line("vrrp_startup_delay", _startup_delay, "delay VRRP at start (s)")
_g.line("lvs_sync_daemon", _lvs_sync_daemon,
        "IPVS connection sync daemon; conntrackd on the nftables data plane (docs/conntrack-sync.md)")
_g.line("pykeepalived_dataplane",
        h.one_of("pykeepalived_dataplane", DATAPLANES, "data plane"),
        "pykeepalived only: what forwards (auto: IPVS if the kernel has it, else nftables)", since="pykeepalived")
# the nftables data plane's failover-safe scheduling: docs/dataplane.md "Failover: persistence and DR/TUN flows"
_g.line("pykeepalived_consistent_flows", h.flag("pykeepalived_consistent_flows"),
        "pykeepalived only: on/off; nftables persistence and DR/TUN flows choose by hash, alike on every router, "
        "so a failover keeps them (default: on with lvs_sync_daemon)", since="pykeepalived")
# the checker's own connections out of conntrack: docs/checkers.md "The checks and conntrack"
_g.line("pykeepalived_checker_notrack", h.flag("pykeepalived_checker_notrack"),
        "pykeepalived only: on/off; the nftables table untracks the checker's own TCP_CHECK and HTTP_GET "
        "connections (their replies are untracked for other tables too)", since="pykeepalived")
# TCP_CHECK without a socket per check: docs/checkers.md "SYN probes"
_g.line("pykeepalived_syn_probe", h.flag("pykeepalived_syn_probe"),
        "pykeepalived only: on (the default)/off; TCP_CHECKs without bind options send their SYN through one "
        "raw socket and read the answer themselves (no socket, connect or epoll change per check); off: a "
        "connect per check", since="pykeepalived")


def _api_listen(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """`pykeepalived_api ADDR...`: each word unix:/PATH or HOST:PORT; repeatable, the addresses add up."""
    if ctx.arg(seg) is None:
        return
    for word in seg.words[1:]:
        parse_listen(word)  # a ValueProblem names the word; the parser adds file:line and the keyword
    if g.pykeepalived_api_location is None:
        h.store(g, "pykeepalived_api_location", seg.location)
    h.store(g, "pykeepalived_api", [*g.pykeepalived_api, *(w for w in seg.words[1:] if w not in g.pykeepalived_api)])


def _api_path(attr: str) -> FieldHandler:
    """A file the API reads at start: one absolute path."""
    def handler(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
        word = ctx.arg(seg)
        if word is None:
            return
        if not word.startswith("/"):
            raise ValueProblem(f"'{word}' is not an absolute path")
        h.store(g, attr, word)

    return FieldHandler(attr, handler)


def _conntrackd(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """`pykeepalived_conntrackd auto|off|/PATH`: whether (and which) conntrackd syncs conntrack for lvs_sync_daemon."""
    word = ctx.arg(seg)
    if word is None:
        return
    if word != "auto" and word != "off" and not word.startswith("/"):
        raise ValueProblem(f"'{word}' is not auto, off or an absolute path to conntrackd")
    h.store(g, "pykeepalived_conntrackd", word)



_g.line("pykeepalived_conntrackd", FieldHandler("pykeepalived_conntrackd", _conntrackd),
        "pykeepalived only: conntrackd for lvs_sync_daemon on the nftables data plane: auto (from PATH), off, "
        "or /PATH of the binary", since="pykeepalived")
_g.line("pykeepalived_conntrackd_peer",
        h.ipv4("pykeepalived_conntrackd_peer", " (conntrackd's sync link here is IPv4)"),
        "pykeepalived only: conntrackd syncs over UDP unicast to this IPv4 address instead of multicast",
        since="pykeepalived")
_g.line("pykeepalived_api", FieldHandler("pykeepalived_api", _api_listen),
        "pykeepalived only: serve the HTTP API (state, /metrics, the page) on unix:/PATH or HOST:PORT",
        since="pykeepalived")
_g.line("pykeepalived_api_token_file", _api_path("pykeepalived_api_token_file"),
        "pykeepalived only: the API's bearer token (first line of the file); required on TCP", since="pykeepalived")
_g.line("pykeepalived_api_tls_cert", _api_path("pykeepalived_api_tls_cert"),
        "pykeepalived only: serve the API over TLS with this certificate (PEM)", since="pykeepalived")
_g.line("pykeepalived_api_tls_key", _api_path("pykeepalived_api_tls_key"),
        "pykeepalived only: the TLS certificate's private key (PEM)", since="pykeepalived")
_g.line("pykeepalived_api_runtime", h.flag("pykeepalived_api_runtime"),
        "pykeepalived only: enable the runtime API (drain, weight, maintenance) on the HTTP API", since="pykeepalived")
# false failovers under load (docs/false-failovers.md, host/tuning.py)
_g.line("pykeepalived_vrrp_realtime", h.flag("pykeepalived_vrrp_realtime"),
        "pykeepalived only: VRRP process SCHED_RR 1 unless its scheduling is configured (vrrp_rt_priority, "
        "vrrp_priority, max/min_auto_priority*); default on, off: keepalived's normal scheduling",
        since="pykeepalived")
_g.line("notify_fifo", h.script("notify_fifo"), "FIFO for all state changes")
_g.line("notify_fifo_script", h.script("notify_fifo_script"), "reader of notify_fifo")
_g.line("vrrp_notify_fifo", h.script("vrrp_notify_fifo"), "FIFO for VRRP changes")
_g.line("vrrp_notify_fifo_script", h.script("vrrp_notify_fifo_script"), "reader of vrrp_notify_fifo")
_g.line("lvs_notify_fifo", h.script("lvs_notify_fifo"), "FIFO for checker changes")
_g.line("lvs_notify_fifo_script", h.script("lvs_notify_fifo_script"), "reader of lvs_notify_fifo")
_g.line("startup_script", h.script("startup_script"), "script run at start", since="2.2")
_g.line("shutdown_script", h.script("shutdown_script"), "script run at stop", since="2.2")

_BOOL_FLAGS = [
    ("smtp_alert", "mail on every change"),
    ("smtp_alert_vrrp", "mail on VRRP changes"),
    ("smtp_alert_checker", "mail on checker changes"),
    ("checker_log_all_failures", "log every failed check"),
    ("no_email_faults", "no mail on FAULT"),
    ("disable_local_igmp", "no IGMP for local groups"),
    ("lvs_flush", "flush IPVS at start"),
    ("vrrp_min_garp", "one GARP, no repeats"),
    ("vrrp_lower_prio_no_advert", "default lower_prio_no_advert"),
    ("vrrp_higher_prio_send_advert", "default higher_prio_send_advert"),
    ("vrrp_check_unicast_src", "default check_unicast_src"),
    ("vrrp_skip_check_adv_addr", "default skip_check_adv_addr"),
    ("vrrp_notify_priority_changes", "notify priority changes"),
    ("fifo_write_vrrp_states_on_reload", "write states to FIFO on reload"),
    ("enable_traps", "SNMP traps"),
    ("enable_snmp_vrrp", "SNMP VRRP MIB"),
    ("enable_snmp_keepalived", "old name of enable_snmp_vrrp"),
    ("enable_snmp_rfc", "SNMP RFC MIBs"),
    ("enable_snmp_rfcv2", "SNMP RFC 2787 MIB"),
    ("enable_snmp_rfcv3", "SNMP RFC 6527 MIB"),
    ("enable_snmp_checker", "SNMP checker MIB"),
    ("rs_init_notifies", "notify real servers at start"),
    ("no_checker_emails", "no checker mails"),
    ("log_unknown_vrids", "log adverts for unknown VRIDs"),
    ("data_use_instance", "instance name in dump file names"),
    ("vrrp_no_swap", "lock VRRP process memory"),
    ("checker_no_swap", "lock checker process memory"),
    ("bfd_no_swap", "lock BFD process memory"),
    ("vrrp_netlink_cmd_rcv_bufs_force", "force netlink buffer size"),
    ("vrrp_netlink_monitor_rcv_bufs_force", "force netlink buffer size"),
    ("lvs_netlink_cmd_rcv_bufs_force", "force netlink buffer size"),
    ("lvs_netlink_monitor_rcv_bufs_force", "force netlink buffer size"),
    ("process_monitor_rcv_bufs_force", "force netlink buffer size"),
    ("nftables_counters", "counters on nftables rules"),
    ("nftables_ifindex", "match interfaces by index"),
    ("use_symlink_paths", "do not resolve script symlinks"),
    ("set_supplementary_groups", "set scripts' supplementary groups"),
    ("reload_repeat", "repeat timed reloads"),
    ("vrrp_owner_ignore_adverts", "owners ignore adverts"),
    ("v3_checksum_as_v2", "v3 IPv4 checksum without pseudo-header"),
]
_SINCE_24 = {"dbus_no_interface_name", "vrrp_owner_ignore_adverts", "v3_checksum_as_v2", "use_symlink_paths",
             "set_supplementary_groups"}
# the flags code reads have GlobalDefs fields of the same name; the others stay in `settings`
_BOOL_FIELDS = {
    "reload_repeat",
    "checker_log_all_failures",
    "fifo_write_vrrp_states_on_reload",  # vrrp/reload_apply.py
    "lvs_flush",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "v3_checksum_as_v2",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
    "no_checker_emails",
    "vrrp_no_swap",
    "checker_no_swap",
    "bfd_no_swap",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_min_garp",
    "vrrp_notify_priority_changes",
    "disable_local_igmp",
    "log_unknown_vrids",
    "nftables_ifindex", "nftables_counters",  # net/accept_filter.py
    "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs_force",
    "data_use_instance",  # config/instance_names.py
    "rs_init_notifies",  # check/service.py
    "enable_traps", "enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfcv2", "enable_snmp_rfcv3",  # snmp/
}
_BOOL_ALIASES: dict[str, LineHandler] = {
    "enable_snmp_keepalived": h.flag("enable_snmp_vrrp"),  # keepalived: the old name, same switch
    "enable_snmp_rfc": FieldHandler("enable_snmp_rfcv2", lambda ctx, g, seg: _snmp_rfc(ctx, g, seg)),
}


def _snmp_rfc(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """enable_snmp_rfc: both RFC MIBs (VRRP-MIB and VRRPv3-MIB), as in keepalived."""
    on = to_bool(seg.words[1]) if len(seg.words) > 1 else True
    g.enable_snmp_rfcv2 = g.enable_snmp_rfcv3 = on


for _name, _summary in _BOOL_FLAGS:
    _handler = _BOOL_ALIASES.get(_name) or h.flag(_name if _name in _BOOL_FIELDS else f"settings.{_name}")
    _g.line(_name, _handler, _summary, since="2.4" if _name in _SINCE_24 else "2.2")

_INTS = [
    ("vrrp_priority", -20, 19, "nice of the VRRP process"),
    ("checker_priority", -20, 19, "nice of the checker process"),
    ("bfd_priority", -20, 19, "nice of the BFD process"),
    ("vrrp_rt_priority", 1, 99, "realtime priority of VRRP"),
    ("checker_rt_priority", 1, 99, "realtime priority of the checker"),
    ("bfd_rt_priority", 1, 99, "realtime priority of BFD"),
    ("vrrp_rlimit_rttime", 1, 2**31 - 1, "RLIMIT_RTTIME of VRRP"),
    ("checker_rlimit_rttime", 1, 2**31 - 1, "RLIMIT_RTTIME of the checker"),
    ("bfd_rlimit_rttime", 1, 2**31 - 1, "RLIMIT_RTTIME of BFD"),
    ("vrrp_rlimit_rtime", 1, 2**31 - 1, "old spelling"),
    ("checker_rlimit_rtime", 1, 2**31 - 1, "old spelling"),
    ("bfd_rlimit_rtime", 1, 2**31 - 1, "old spelling"),
    ("nftables_priority", -2**31, 2**31 - 1, "priority of the nftables chains"),
    ("vrrp_netlink_cmd_rcv_bufs", 0, 2**31 - 1, "netlink buffer size"),
    ("vrrp_netlink_monitor_rcv_bufs", 0, 2**31 - 1, "netlink buffer size"),
    ("lvs_netlink_cmd_rcv_bufs", 0, 2**31 - 1, "netlink buffer size"),
    ("lvs_netlink_monitor_rcv_bufs", 0, 2**31 - 1, "netlink buffer size"),
    ("process_monitor_rcv_bufs", 0, 2**31 - 1, "netlink buffer size"),
    ("vrrp_rx_bufs_multiplier", 1, 2**31 - 1, "receive buffer multiplier"),
    ("random_seed", 0, 2**32 - 1, "seed for ${_RANDOM}"),
]
_INTS_SINCE_24 = [
    ("json_version", 1, 2, "JSON dump layout"),
    ("snmp_vs_stats_update_interval", 0, 2**31 - 1, "SNMP VS stats interval (s)"),
    ("snmp_rs_stats_update_interval", 0, 2**31 - 1, "SNMP RS stats interval (s)"),
]
# the process settings host/tuning.py applies have typed fields (the old rtime spelling fills the rttime one)
_INT_FIELDS = {
    "vrrp_priority", "checker_priority", "vrrp_rt_priority", "checker_rt_priority",
    "vrrp_rlimit_rttime", "checker_rlimit_rttime", "vrrp_rlimit_rtime", "checker_rlimit_rtime",
    "bfd_priority", "bfd_rt_priority", "bfd_rlimit_rttime", "bfd_rlimit_rtime",
    "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs", "vrrp_rx_bufs_multiplier", "random_seed",
    "nftables_priority",  # net/accept_filter.py
    "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_monitor_rcv_bufs", "process_monitor_rcv_bufs",  # net/netlink_bufs.py
}
for _name, _lo, _hi, _summary in _INTS:
    _deprecated = _name.replace("rtime", "rttime") if _name.endswith("_rlimit_rtime") else None
    _field = (_deprecated or _name) if _name in _INT_FIELDS else f"settings.{_name}"
    _g.line(_name, h.integer(_field, _lo, _hi), _summary, deprecated=_deprecated)

_g.line("startup_script_timeout", h.integer("startup_script_timeout", 1, 1000), "startup_script timeout (s)")
_g.line("shutdown_script_timeout", h.integer("shutdown_script_timeout", 1, 1000), "shutdown_script timeout (s)")
for _name, _lo, _hi, _summary in _INTS_SINCE_24:
    _g.line(_name, h.integer(f"settings.{_name}", _lo, _hi), _summary, since="2.4")
_g.line("max_auto_priority", _max_auto_priority, "highest automatic realtime priority")
_g.line("min_auto_priority_delay", _min_auto_priority_delay, "stall before raising priority (us)")

_TIMERS = [
    ("vrrp_delay_after_boot", "delay VRRP after boot (s)"),
]
for _name, _summary in _TIMERS:
    _since = "2.4" if _name == "vrrp_delay_after_boot" else "2.2"
    _field = "vrrp_startup_delay_s" if _name == "vrrp_startup_delay" else f"settings.{_name}"
    _g.line(_name, h.timer(_field, 0, 2147), _summary, since=_since)

_TEXTS = [
    ("process_names", "name the processes"),
    ("process_name", "name of the parent process"),
    ("vrrp_process_name", "name of the VRRP process"),
    ("checker_process_name", "name of the checker process"),
    ("lvs_process_name", "old name of checker_process_name"),
    ("bfd_process_name", "name of the BFD process"),
    ("default_interface", "interface of static addresses without dev"),
    ("dynamic_interfaces", "allow interfaces to come and go"),
    ("snmp_socket", "AgentX socket"),
    ("vrrp_rx_bufs_policy", "receive buffer policy"),
    ("vmac_prefix", "name prefix of VMAC interfaces"),
    ("vmac_addr_prefix", "name prefix of VMAC address interfaces"),
    ("reload_check_config", "check the config before reload"),
    ("reload_time_file", "file holding a reload time"),
    ("reload_file", "file present while a reload reads the config"),
    ("config_save_dir", "where to save configs"),
    ("tmp_config_directory", "where to keep the config copy"),
    ("lvs_flush_on_stop", "flush IPVS on stop"),
    ("lvs_flush_onstop", "old spelling of lvs_flush_on_stop"),
    ("vrrp_garp_extra_if", "periodic GARP on other interfaces"),
    ("vrrp_vmac_garp_intvl", "old name of vrrp_garp_extra_if"),
    ("state_dump_file", "SIGUSR1 dump file"),
    ("stats_dump_file", "SIGUSR2 dump file"),
    ("json_dump_file", "JSON dump file"),
    ("iproute_usr_dir", "iproute2 tables directory"),
    ("iproute_etc_dir", "iproute2 tables directory"),
]
_TEXT_DEPRECATED = {
    "lvs_process_name": "checker_process_name",
    "lvs_flush_onstop": "lvs_flush_on_stop",
    "vrrp_vmac_garp_intvl": "vrrp_garp_extra_if",
}
_TEXT_SINCE_24 = {"state_dump_file", "stats_dump_file", "json_dump_file", "iproute_usr_dir", "iproute_etc_dir"}
def _garp_extra_if(g: GlobalDefs, seg: Segment) -> None:
    """vrrp_garp_extra_if [all] SECONDS (keepalived 2.2.7: the words in any order, seconds 1..86400)."""
    seconds: int | None = None
    for word in seg.words[1:]:
        if word == "all":
            g.vrrp_garp_extra_if_all = True
        else:
            seconds = to_int(word, 1, 86400)
    if seconds is None:
        raise ValueProblem("needs an interval in seconds")
    g.vrrp_garp_extra_if_s = float(seconds)


def _optional_path(seg: Segment) -> str:
    """reload_check_config / reload_file [PATH]: the path, or "" for keepalived's default."""
    return seg.words[1] if len(seg.words) > 1 else ""


def _reload_time_file(g: GlobalDefs, seg: Segment) -> None:
    """reload_time_file PATH (keepalived 2.2.7: exactly one word, else "reload_time_file invalid")."""
    if len(seg.words) != 2:
        raise ValueProblem("reload_time_file invalid")
    g.reload_time_file = seg.words[1]


def _dynamic_interfaces(g: GlobalDefs, seg: Segment) -> None:
    """dynamic_interfaces [allow_if_changes] (keepalived 2.2.7: any other word is an error, the flag still set)."""
    g.dynamic_interfaces = True
    for word in seg.words[1:]:
        if word != "allow_if_changes":
            raise ValueProblem(f"Unknown dynamic_interfaces option '{word}'")
        g.allow_if_changes = True


# the text keywords code reads have typed GlobalDefs fields; the others stay in `settings` as words
_TEXT_FIELDS: dict[str, LineHandler] = {
    "default_interface": h.text("default_interface"),
    "dynamic_interfaces": FieldHandler("dynamic_interfaces", lambda ctx, g, seg: _dynamic_interfaces(g, seg)),
    "json_dump_file": h.first_word("json_dump_file"),
    "stats_dump_file": h.first_word("stats_dump_file"),
    "lvs_flush_on_stop": h.words("lvs_flush_on_stop", 0),
    "lvs_flush_onstop": h.words("lvs_flush_on_stop", 0),
    "process_names": FieldHandler("vrrp_process_name", lambda ctx, g, seg: _process_names(g)),
    "process_name": _process_name("process_name"),
    "vrrp_process_name": _process_name("vrrp_process_name"),
    "checker_process_name": _process_name("checker_process_name"),
    "lvs_process_name": _process_name("checker_process_name"),
    "bfd_process_name": _process_name("bfd_process_name"),
    "vrrp_rx_bufs_policy": FieldHandler("vrrp_rx_bufs_policy", lambda ctx, g, seg: _rx_bufs_policy(ctx, g, seg)),
    "vmac_prefix": h.first_word("vmac_prefix"),
    "vmac_addr_prefix": h.first_word("vmac_addr_prefix"),
    "config_save_dir": h.first_word("config_save_dir"),  # host/config_dirs.py
    "tmp_config_directory": FieldHandler("tmp_config_directory",
                                         lambda ctx, g, seg: _tmp_config_directory(ctx, g, seg)),
    "vrrp_garp_extra_if": lambda ctx, g, seg: _garp_extra_if(g, seg),
    "reload_check_config": FieldHandler("reload_check_config",
                                        lambda ctx, g, seg: setattr(g, "reload_check_config", _optional_path(seg))),
    "reload_file": FieldHandler("reload_file", lambda ctx, g, seg: setattr(g, "reload_file", _optional_path(seg))),
    "reload_time_file": FieldHandler("reload_time_file", lambda ctx, g, seg: _reload_time_file(g, seg)),
    "vrrp_vmac_garp_intvl": lambda ctx, g, seg: _garp_extra_if(g, seg),
    "snmp_socket": h.first_word("snmp_socket"),  # snmp/settings.py
}
def _deprecated_error(handler: LineHandler, instead: str) -> LineHandler:
    """A keyword keepalived 2.2.7 still obeys but reports as a configuration error (CONFIG_DEPRECATED)."""
    def run(ctx: ParseContext, obj: object, seg: Segment) -> None:
        handler(ctx, obj, seg)
        ctx.error(seg, f"keyword \"{seg.words[0]}\" is deprecated - please use \"{instead}\"")

    return FieldHandler(handler.field, run) if isinstance(handler, FieldHandler) else run


_TEXT_FIELDS["vrrp_vmac_garp_intvl"] = _deprecated_error(_TEXT_FIELDS["vrrp_vmac_garp_intvl"], "vrrp_garp_extra_if")
for _name, _summary in _TEXTS:
    _g.line(
        _name,
        _TEXT_FIELDS.get(_name) or h.words(f"settings.{_name}", 0),
        _summary,
        deprecated=_TEXT_DEPRECATED.get(_name),
        since="2.4" if _name in _TEXT_SINCE_24 else "2.2",
    )


def _tmp_config_directory(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """keepalived 2.2.7: a second one is ignored with an error, as is one without a directory."""
    if g.tmp_config_directory is not None:
        ctx.error(seg, f"{seg.words[0]} already specified - ignoring")
    elif len(seg.words) < 2:
        ctx.error(seg, f"{seg.words[0]} missing directory name")
    else:
        g.tmp_config_directory = seg.words[1]


def _include_check(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """Changes what the includes still to come insist on (config/include_check.py); kept as written for dumps."""
    g.include_check = list(seg.words[1:])
    if ctx.include_checks is None:
        return
    ctx.include_checks.value, problems = apply_include_check(ctx.include_checks.value, seg.words[1:])
    for problem in problems:
        ctx.error(seg, problem)


_g.line("include_check", _include_check, "checks on include files")


# Subsystems pykeepalived does not have (D-Bus): keepalived acts on these, so a config that needs one is refused
# with an error that says so, never accepted and silently ignored. config/differences.py lists the verdict change.
NO_DBUS = "pykeepalived has no D-Bus interface (keepalived's org.keepalived.Vrrp1)"


def _refuse_dbus(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    ctx.error(seg, f"enable_dbus: {NO_DBUS}; remove the keyword, or run keepalived where D-Bus is needed")


def _dbus_option(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """keepalived reads these only with enable_dbus, which is refused: alone they change nothing."""
    ctx.warn(seg, f"{seg.words[0]} has no effect: {NO_DBUS}")


# keepalived's nftables_ipvs turns each virtual_server_group with addresses into one IPVS fwmark service, the
# marks set by an nftables table of its own; pykeepalived's IPVS data plane makes one service per group address
# (keepalived's way without the keyword) and its nftables data plane matches group addresses with sets in its own
# table, so nothing would act on the keyword: refused rather than silently ignored.
NO_IPVS_NFTABLES = ("pykeepalived does not mark virtual_server_group traffic with fwmarks: its IPVS data plane "
                    "makes one service per group address (as keepalived without nftables_ipvs) and its nftables "
                    "data plane matches group addresses with sets")


def _refuse_nftables_ipvs(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    ctx.error(seg, f"nftables_ipvs: {NO_IPVS_NFTABLES}; remove the keyword")


def _nftables_ipvs_option(ctx: ParseContext, g: GlobalDefs, seg: Segment) -> None:
    """keepalived reads these only with nftables_ipvs, which is refused: alone they change nothing."""
    ctx.warn(seg, f"{seg.words[0]} has no effect without nftables_ipvs (refused: {NO_IPVS_NFTABLES})")


_g.line("nftables_ipvs", _refuse_nftables_ipvs, "nftables table for VS groups", status=Status.REFUSED)
_g.line("nftables_ipvs_priority", _nftables_ipvs_option, "priority of the IPVS nftables chains",
        status=Status.REFUSED)
_g.line("nftables_ipvs_start_fwmark", _nftables_ipvs_option, "first fwmark for VS groups", status=Status.REFUSED)
_g.line("enable_dbus", _refuse_dbus, "D-Bus interface", status=Status.REFUSED)
_g.line("dbus_service_name", _dbus_option, "D-Bus service name", status=Status.REFUSED)
_g.line("dbus_no_interface_name", _dbus_option, "D-Bus paths without interface", status=Status.REFUSED, since="2.3")


# --------------------------------------------------------------------------- track_file
def _open_track_file(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> TrackFile | None:
    if len(seg.words) < 2:
        ctx.error(seg, f"{seg.words[0]} needs a name")
        return None
    tf = TrackFile(name=seg.words[1], location=seg.location)
    config.track_files[tf.name] = tf
    return tf


def _tf_weight(ctx: ParseContext, tf: TrackFile, seg: Segment) -> None:
    """`weight N [reverse]`, -254..254, once (keepalived 2.2.7's track_file rules)."""
    if tf.weight != 1:
        raise ValueProblem(f"weight already set for track file {tf.name} - ignoring")
    if len(seg.words) > 2 and seg.words[2] != "reverse":
        raise ValueProblem(f"track_file {tf.name} unknown weight option {seg.words[2]}")
    weight, reverse = h.weight_words(ctx, seg, 0, -254, 254)
    if weight is not None:
        tf.weight, tf.weight_reverse = weight, reverse


def _tf_file(ctx: ParseContext, tf: TrackFile, seg: Segment) -> None:
    word = ctx.arg(seg)
    if word is None:
        return
    if tf.file is not None:
        raise ValueProblem(f"file already set for track file {tf.name} - ignoring {word}")
    tf.file = word


def _tf_init_file(ctx: ParseContext, tf: TrackFile, seg: Segment) -> None:
    tf.init_file = True
    for word in seg.words[1:]:
        if word == "overwrite":
            tf.init_overwrite = True
        else:
            tf.init_value = to_int(word, -2**31, 2**31 - 1)
            if not -254 <= tf.init_value <= 254:
                ctx.error(seg, f"track file {tf.name} init value {tf.init_value} is outside the sensible range "
                               "[-254, 254]")


def _tf_close(ctx: ParseContext, tf: TrackFile) -> None:
    if tf.file is None:
        ctx.error(ctx.close_location or tf.location, f"track_file {tf.name} has no file - removing it", "track_file")
        ctx.config.track_files.pop(tf.name, None)


TRACK_FILE.line("file", FieldHandler("file", _tf_file), "the file whose number is tracked")
TRACK_FILE.line("weight", _tf_weight, "multiplier [reverse]")
TRACK_FILE.line("init_file", _tf_init_file, "create the file [VALUE] [overwrite]")


# --------------------------------------------------------------------------- bfd_instance
def _open_bfd(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> BfdInstance | None:
    if len(seg.words) < 2:
        ctx.error(seg, "bfd_instance needs a name")
        return None
    bfd = BfdInstance(name=seg.words[1], location=seg.location)
    config.bfd_instances[bfd.name] = bfd
    return bfd


def _bfd_weight(ctx: ParseContext, bfd: BfdInstance, seg: Segment) -> None:
    weight, reverse = h.weight_words(ctx, seg, 0, -253, 253)
    if weight is not None:
        bfd.weight, bfd.weight_reverse = weight, reverse


def _bfd_close(ctx: ParseContext, bfd: BfdInstance) -> None:
    """keepalived's end-of-block checks: a neighbour, of the source's family, not used by another session."""
    where = ctx.close_location or bfd.location
    if bfd.neighbor_ip is not None and bfd.source_ip is not None and bfd.neighbor_ip.version != bfd.source_ip.version:
        ctx.error(where, f"bfd_instance {bfd.name}: source and neighbor addresses are not of the same family - "
                         "disabling it", "bfd_instance")
        ctx.config.bfd_instances.pop(bfd.name, None)
        return
    if bfd.neighbor_ip is not None and any(other is not bfd and other.neighbor_ip == bfd.neighbor_ip
                                           for other in ctx.config.bfd_instances.values()):
        ctx.error(where, f"bfd_instance {bfd.name} has a duplicate neighbor address {bfd.neighbor_ip} - ignoring it",
                  "bfd_instance")
        ctx.config.bfd_instances.pop(bfd.name, None)
        return
    if bfd.neighbor_ip is None:
        ctx.error(ctx.close_location or bfd.location, f"bfd_instance {bfd.name} has no neighbor_ip - removing it",
                  "bfd_instance")
        ctx.config.bfd_instances.pop(bfd.name, None)


_b = BFD_INSTANCE
_b.line("neighbor_ip", h.ip("neighbor_ip"), "peer address")
_b.line("neighbour_ip", h.ip("neighbor_ip"), "peer address (British spelling)")
_b.line("source_ip", h.ip("source_ip"), "local address")
# keepalived 2.2.7: milliseconds with up to 3 decimals, up to what 32 bits of microseconds hold; idle_tx >= 1 s
_BFD_MAX_MS = (2**32 - 1) // 1000
_b.line("min_rx", h.decimal("min_rx_ms", 1, _BFD_MAX_MS, 3), "minimum receive interval (ms)")
_b.line("min_tx", h.decimal("min_tx_ms", 1, _BFD_MAX_MS, 3), "minimum transmit interval (ms)")
_b.line("idle_tx", h.decimal("idle_tx_ms", 1000, _BFD_MAX_MS, 3), "idle transmit interval (ms)")
_b.line("multiplier", h.integer("multiplier", 1, 255), "detect multiplier")
_b.line("passive", h.flag("passive"), "wait for the peer")
_b.line("ttl", h.integer("ttl", 1, 255), "TTL of packets")
_b.line("hoplimit", h.integer("ttl", 1, 255), "IPv6 hop limit")
_b.line("max_hops", h.integer("max_hops", 0, 255), "most hops accepted")
_b.line("multihop", h.flag("multihop"), "multi-hop session", since="2.4")
_b.line("weight", _bfd_weight, "priority change [reverse]")
_b.line("vrrp", h.flag("vrrp_only"), "report to VRRP only")
_b.line("checker", h.flag("checker_only"), "report to the checker only")


# --------------------------------------------------------------------------- root
def _root_value(name: str) -> LineHandler:
    def handler(ctx: ParseContext, config: KeepalivedConfig, seg: Segment) -> None:
        config.root_options[name] = list(seg.words[1:]) if len(seg.words) > 1 else True

    return handler


def register(root: Block) -> None:
    """Add global_defs, the top-level options, track_file and bfd_instance to `root`."""
    root.nested("global_defs", GLOBAL_DEFS, _open_global, "process-wide settings")
    register_namespace_keywords(root)
    for name, summary, status in [
        ("child_wait_time", "wait for children at stop (s)", NOT_YET),
        ("linkbeat_use_polling", "poll link state for all", Status.PARSED),
    ]:
        root.line(name, _root_value(name), summary, status=status)
    root.nested("track_file", TRACK_FILE, _open_track_file, "a file whose number is tracked", on_close=_tf_close)
    root.nested(
        "vrrp_track_file",
        TRACK_FILE,
        _open_track_file,
        "old name of track_file",
        on_close=_tf_close,
        deprecated="track_file",
    )
    root.nested("bfd_instance", BFD_INSTANCE, _open_bfd, "a BFD session", on_close=_bfd_close)
