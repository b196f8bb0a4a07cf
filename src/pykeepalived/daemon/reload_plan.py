"""What the parent decides on a reload before any child hears of it (pure: two configs in, words out).

- `refused_changes`: what keepalived 2.2.7's parent refuses to change live
  (core/main.c reload_config): the network namespace (and IPVS's), the
  instance name, the nftables table name, disable_local_igmp; and, as these
  decide the pid files' directory, use_pid_dir. Any one of them and the whole
  reload is refused: the daemon runs on as it was and the log says to restart.
- `restart_needed`: global_defs read only when a process starts (scheduling,
  memory locking, netlink buffers, the umask, startup_script...). The reload
  goes ahead; the log names each one as taking effect at the next restart.
- `wanted_children`: which children the new configuration calls for, decided
  as at start (cli.py `_subsystems`), so that a reload that adds the first
  virtual_server starts the checker, as keepalived's parent does.
"""

from __future__ import annotations

from ..config.model import GlobalDefs, KeepalivedConfig, Script

RESTART_HINT = "please restart pykeepalived"

# (field, what the log calls it): the reload is refused when one differs (keepalived 2.2.7's list, and pid files)
_REFUSED: tuple[tuple[str, str], ...] = (
    ("net_namespace", "network namespace"),
    ("net_namespace_ipvs", "IPVS network namespace"),
    ("instance", "instance name"),
    ("nftables", "nftables table name"),
    ("disable_local_igmp", "disable_local_igmp"),
    ("use_pid_dir", "use_pid_dir (the pid files' directory)"),
)

# read once, when a process starts: changing them takes a restart (the reload itself goes ahead)
_AT_START: tuple[str, ...] = (
    "vrrp_process_name", "checker_process_name", "bfd_process_name",
    "vrrp_priority", "checker_priority", "bfd_priority",
    "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority",
    "vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
    "vrrp_no_swap", "checker_no_swap", "bfd_no_swap",
    "vrrp_cpu_affinity", "checker_cpu_affinity", "bfd_cpu_affinity",
    "max_auto_priority", "min_auto_priority_delay",
    "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
    "umask", "startup_script", "startup_script_timeout", "config_save_dir", "tmp_config_directory",
    "pykeepalived_dataplane", "namespace_with_ipsets", "data_use_instance",
    "pykeepalived_api", "pykeepalived_api_token_file", "pykeepalived_api_tls_cert", "pykeepalived_api_tls_key",
    "pykeepalived_api_runtime",  # the HTTP API (api/settings.py) is set up once, at start
    "pykeepalived_consistent_flows",  # the nftables backend's scheduling mode, chosen when it starts
    "pykeepalived_checker_notrack",  # the checker's socket mark and the table's raw chains, set at start
    "pykeepalived_syn_probe",  # the checker engine's raw sockets, set at start
)


def refused_changes(old: GlobalDefs, new: GlobalDefs, namespace_override: str | None = None) -> list[str]:
    """One log line per change a reload cannot make; empty when the reload may go ahead.

    With `-s` (`namespace_override`) the flag wins over net_namespace in both
    configs, as at start, so editing net_namespace then changes nothing.
    """
    lines = []
    for name, what in _REFUSED:
        before, after = getattr(old, name), getattr(new, name)
        if name == "net_namespace" and namespace_override is not None:
            continue
        if before != after:
            lines.append(f"Cannot change {what} at a reload ({_shown(before)} -> {_shown(after)}) - {RESTART_HINT}")
    return lines


def restart_needed(old: GlobalDefs, new: GlobalDefs) -> list[str]:
    """One line per global_defs keyword whose new value takes effect only at the next restart."""
    return [f"global_defs {name} changed ({_shown(getattr(old, name))} -> {_shown(getattr(new, name))}): "
            f"it takes effect at the next restart"
            for name in _AT_START if _comparable(getattr(old, name)) != _comparable(getattr(new, name))]


def wanted_children(config: KeepalivedConfig, bfd_allowed: bool = True) -> set[str]:
    """The children `config` calls for, named as the supervisor names them (VRRP, Healthcheck, BFD)."""
    has_vrrp = bool(config.vrrp_instances or config.static_ipaddresses or config.static_routes
                    or config.static_rules)
    has_check = bool(config.virtual_servers)
    wanted = set()
    if has_vrrp or not has_check:
        wanted.add("VRRP")
    if has_check:
        wanted.add("Healthcheck")
    if bfd_allowed and config.bfd_instances:
        wanted.add("BFD")
    return wanted


def _comparable(value: object) -> object:
    """A script by what it runs, not by the line it was written on."""
    if isinstance(value, Script):
        return (tuple(value.argv), value.user, value.group)
    return value


def _shown(value: object) -> str:
    if isinstance(value, Script):
        return " ".join(value.argv)
    if value is None:
        return "unset"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "unset"
    return str(value)
