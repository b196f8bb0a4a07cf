"""What a reload of the checker changes: old and new virtual servers matched, each part kept, changed, added or removed.

Pure (no I/O): the service (check/service.py `reload`) builds the new plan,
asks `plan_reload` what differs and then carries the health state of what
stays over to the new configuration. Identities are the names keepalived
logs: a virtual server by `[VIP]:proto:port`, `FWM n` or `[group]:port`, a
real server by `[address]:proto:port` within its service, a checker by its
place among the real server's checkers of the same kind (keepalived 2.2.7's
`migrate_checkers` matches checkers by kind and settings too).

Comparisons ignore where a keyword was written (file:line): moving a block
in the file changes nothing. A checker whose settings changed keeps its
verdict ("update"); only a new checker, or one of another kind, starts as at
boot ("new", with the alpha rules).

Checker-related global_defs that are only read when the checker starts
(`RESTART_KEYWORDS`) cannot change live: `needs_restart` names those that
differ, the service logs them and keeps the running values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..config.model import CheckerBase, GlobalDefs, RealServer, VirtualServer

Action = Literal["keep", "change", "add"]
CheckerAction = Literal["keep", "update", "new"]

# where a keyword was written is not what it says
_POSITION_FIELDS = frozenset({"location", "keyword_locations", "interface_locations", "linkbeat_locations",
                              "up_down_locations"})

# global_defs the checker process reads only when it starts (its FIFOs and their scripts, script security,
# the data plane and its options, process tuning, names and directories): changing them needs a restart
RESTART_KEYWORDS: tuple[str, ...] = (
    "notify_fifo", "lvs_notify_fifo", "notify_fifo_script", "lvs_notify_fifo_script",
    "script_user", "script_group", "enable_script_security",
    "pykeepalived_dataplane", "nftables", "nftables_priority", "nftables_ifindex", "nftables_counters",
    "lvs_flush", "lvs_flush_on_stop", "lvs_timeouts", "lvs_sync_daemon",
    "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "checker_process_name", "checker_priority", "checker_rt_priority", "checker_rlimit_rttime", "checker_no_swap",
    "checker_cpu_affinity", "max_auto_priority", "min_auto_priority_delay",
    "net_namespace", "net_namespace_ipvs", "instance", "use_pid_dir", "data_use_instance",
    "config_save_dir", "tmp_config_directory", "umask",
    "pykeepalived_consistent_flows",  # the nftables backend's scheduling mode (lvs/nft_limits.py)
    "pykeepalived_checker_notrack",  # the engine's socket mark and the table's raw chains, set at start
    "pykeepalived_syn_probe",  # the engine's raw sockets, set at start
)


def shape(value: Any, skip: frozenset[str] = frozenset()) -> Any:
    """A comparable picture of a model value: nested tuples, positions in the file left out (and `skip`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple(
            (f.name, shape(getattr(value, f.name))) for f in dataclasses.fields(value)
            if f.name not in _POSITION_FIELDS and f.name not in skip))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(k), shape(v)) for k, v in value.items()), key=lambda kv: kv[0])))
    if isinstance(value, list | tuple):
        return ("seq", tuple(shape(v) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(v) for v in value)))
    return value


@dataclass(frozen=True)
class CheckerStep:
    """The new real server's checker `index` (in its config order): from old checker `old_index`, or new."""

    index: int
    action: CheckerAction
    old_index: int | None = None


@dataclass(frozen=True)
class ServerStep:
    key: str
    action: Action
    checkers: tuple[CheckerStep, ...] = ()


@dataclass(frozen=True)
class ServiceStep:
    key: str
    action: Action
    servers: tuple[ServerStep, ...] = ()
    removed_servers: tuple[str, ...] = ()
    settings_changed: bool = False  # scheduler, persistence, quorum, sorry server...: edited in place


@dataclass(frozen=True)
class ReloadPlan:
    """The new services in their new order, and the old ones that go."""

    services: tuple[ServiceStep, ...]
    removed_services: tuple[str, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not self.removed_services and all(s.action == "keep" for s in self.services)

    def counts(self) -> dict[str, int]:
        """How many services and real servers each action touches (for the one summary log line)."""
        out = {"services_added": 0, "services_changed": 0, "services_removed": len(self.removed_services),
               "servers_added": 0, "servers_changed": 0, "servers_removed": 0}
        for svc in self.services:
            if svc.action != "keep":
                out[f"services_{'added' if svc.action == 'add' else 'changed'}"] += 1
            out["servers_removed"] += len(svc.removed_servers)
            for srv in svc.servers:
                if srv.action != "keep" and svc.action != "add":
                    out[f"servers_{'added' if srv.action == 'add' else 'changed'}"] += 1
        return out


ServiceView = tuple[str, VirtualServer, Sequence[tuple[str, RealServer]]]


def keyed(names: Iterable[str]) -> list[str]:
    """Names made unique in order (a second `x` is `x#2`), so that duplicates still match one to one."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def plan_checkers(old: Sequence[CheckerBase], new: Sequence[CheckerBase]) -> tuple[CheckerStep, ...]:
    """Match checkers by kind and place among that kind: identical ones are kept, changed ones updated."""
    old_by_kind: dict[str, list[int]] = {}
    for i, chk in enumerate(old):
        old_by_kind.setdefault(chk.kind, []).append(i)
    used: dict[str, int] = {}
    steps = []
    for i, chk in enumerate(new):
        nth = used.get(chk.kind, 0)
        used[chk.kind] = nth + 1
        candidates = old_by_kind.get(chk.kind, [])
        if nth >= len(candidates):
            steps.append(CheckerStep(i, "new"))
            continue
        j = candidates[nth]
        steps.append(CheckerStep(i, "keep" if shape(old[j]) == shape(chk) else "update", j))
    return tuple(steps)


def _plan_server(key: str, old: RealServer, new: RealServer) -> ServerStep:
    checkers = plan_checkers(old.checkers, new.checkers)
    same_checkers = len(old.checkers) == len(new.checkers) and all(
        c.action == "keep" and c.old_index == c.index for c in checkers)
    same = same_checkers and shape(old, frozenset({"checkers"})) == shape(new, frozenset({"checkers"}))
    return ServerStep(key, "keep" if same else "change", checkers)


def _plan_service(key: str, old: ServiceView, new: ServiceView) -> ServiceStep:
    _, old_vs, old_servers = old
    _, new_vs, new_servers = new
    old_rs = dict(zip(keyed(n for n, _ in old_servers), (rs for _, rs in old_servers), strict=True))
    new_keys = keyed(n for n, _ in new_servers)
    servers = []
    for rs_key, (_, rs) in zip(new_keys, new_servers, strict=True):
        if rs_key in old_rs:
            servers.append(_plan_server(rs_key, old_rs[rs_key], rs))
        else:
            servers.append(ServerStep(rs_key, "add", tuple(CheckerStep(i, "new") for i in range(len(rs.checkers)))))
    removed = tuple(k for k in old_rs if k not in set(new_keys))
    settings_changed = shape(old_vs, frozenset({"real_servers"})) != shape(new_vs, frozenset({"real_servers"}))
    order_changed = [k for k in old_rs if k in set(new_keys)] != [k for k in new_keys if k in old_rs]
    same = not settings_changed and not removed and not order_changed and all(s.action == "keep" for s in servers)
    return ServiceStep(key, "keep" if same else "change", tuple(servers), removed, settings_changed)


def plan_reload(old: Sequence[ServiceView], new: Sequence[ServiceView]) -> ReloadPlan:
    """Old services (name, config, [(real server name, config)]) against the new ones: what to do with each."""
    old_by_key = dict(zip(keyed(name for name, _, _ in old), old, strict=True))
    new_keys = keyed(name for name, _, _ in new)
    steps = []
    for key, view in zip(new_keys, new, strict=True):
        if key in old_by_key:
            steps.append(_plan_service(key, old_by_key[key], view))
        else:
            servers = tuple(ServerStep(n, "add", tuple(CheckerStep(i, "new") for i in range(len(rs.checkers))))
                            for n, (_, rs) in zip(keyed(n for n, _ in view[2]), view[2], strict=True))
            steps.append(ServiceStep(key, "add", servers))
    removed = tuple(k for k in old_by_key if k not in set(new_keys))
    if [k for k in old_by_key if k in set(new_keys)] != [k for k in new_keys if k in old_by_key]:
        # the services' order is the table's order: a move is a change of the moved ones (no state lost)
        steps = [dataclasses.replace(s, action="change") if s.action == "keep" else s for s in steps]
    return ReloadPlan(tuple(steps), removed)


def needs_restart(old: GlobalDefs, new: GlobalDefs) -> list[str]:
    """The checker's start-only global_defs keywords whose value differs (the running value stays)."""
    return [name for name in RESTART_KEYWORDS
            if hasattr(old, name) and shape(getattr(old, name)) != shape(getattr(new, name))]


def keep_start_only(old: GlobalDefs, new: GlobalDefs, names: Sequence[str]) -> GlobalDefs:
    """`new` with the start-only keywords `names` at their running values (what really stays in force)."""
    if not names:
        return new
    return dataclasses.replace(new, **{name: getattr(old, name) for name in names})
